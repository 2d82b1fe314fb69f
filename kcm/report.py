"""The configuration as plain data: the one serialisation behind ``describe`` and the
node report (whose NodeReport schema, ``kcm.manifests.node_report_crd``, a test checks
against it)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from kcm.model import Config, Task


def pools_as_dict(config: Config, task_as_data: Callable[[Task], object]) -> dict:
    """Pools -> CPU lists -> tasks, each task as ``task_as_data`` makes it."""
    return {
        pool.name: {
            "name": pool.name,
            "exclusive": pool.exclusive,
            "cpuLists": {
                cpu_list.name: {
                    "cpus": cpu_list.name,
                    "tasks": [task_as_data(task) for task in cpu_list.tasks],
                }
                for cpu_list in pool.cpu_lists.values()
            },
        }
        for pool in config.pools.values()
    }


def config_as_dict(config: Config) -> dict:
    """DESIGN.md's describe document: pools -> CPU lists -> task PIDs. The path is
    normalised (``/x/`` and ``/x/./`` are ``/x``), as the originals print it."""
    return {"path": posixpath.normpath(config.path),
            "pools": pools_as_dict(config, lambda task: task.pid)}

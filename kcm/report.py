"""The configuration model as plain data, for ``describe`` and the node report."""

from kcm.state import Config


def config_as_dict(config: Config) -> dict:
    """DESIGN.md's describe document: pools -> CPU lists -> task PIDs."""
    return {
        "path": config.path,
        "pools": {
            pool.name: {
                "name": pool.name,
                "exclusive": pool.exclusive,
                "cpuLists": {
                    cpu_list.name: {
                        "cpus": cpu_list.name,
                        "tasks": [task.pid for task in cpu_list.tasks],
                    }
                    for cpu_list in pool.cpu_lists.values()
                },
            }
            for pool in config.pools.values()
        },
    }

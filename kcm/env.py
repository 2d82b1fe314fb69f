"""Where this node's facts live: sysfs and procfs roots from the environment."""

from __future__ import annotations

import os

from kcm.procfs import proc_root

TYPE_CHECKING = False  # the topology reader is imported only when a command needs it
if TYPE_CHECKING:
    from kcm.topology import Topology


def sysfs_root() -> str:
    return os.environ.get("KCM_SYSFS") or "/sys"


def read_node_topology() -> Topology:
    from kcm.topology import read_topology

    return read_topology(sysfs_root=sysfs_root(), proc_root=proc_root())

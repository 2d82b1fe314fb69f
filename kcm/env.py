"""Where this node's facts live: sysfs and procfs roots from the environment."""

import os

from kcm.procfs import proc_root
from kcm.topology import Topology, read_topology


def sysfs_root() -> str:
    return os.environ.get("KCM_SYSFS") or "/sys"


def read_node_topology() -> Topology:
    return read_topology(sysfs_root=sysfs_root(), proc_root=proc_root())

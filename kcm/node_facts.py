"""What the node-report and doctor commands read from the node alike: the configuration
as a report sees it, the host's processes, and what enforcement has achieved."""

from kcm.errors import KcmError
from kcm.model import Config
from kcm.node_report import Processes
from kcm.procfs import Liveness, allowed_cpus
from kcm.state import ConfigDir


def read_config(conf: ConfigDir) -> tuple[Config | None, KcmError | None]:
    """The directory as a report sees it: (config, None), or (None, why it failed);
    overlapping CPU lists are left to the report's checks."""
    try:
        with conf.locked(shared=True):
            return conf.load(warn_overlap=False), None
    except KcmError as failure:
        return None, failure


def host_processes(root: str) -> Processes:
    return Processes(alive=Liveness(root),
                     allowed_cpus=lambda pid: allowed_cpus(root, pid))


def enforcement_status(conf: ConfigDir, cgroup_root: str | None) -> dict:
    """What ``kcm enforce`` has achieved on this node, or why it cannot be seen."""
    from kcm.enforcer import make_enforcer

    try:
        return {"available": True, **make_enforcer(conf, cgroup_root, False).observe()}
    except KcmError as error:
        return {"available": False, "reason": str(error)}

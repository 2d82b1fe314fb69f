"""The environment: the only module that reads kcm's ``KCM_*`` variables.

Each variable is read by one function here, validated with ``kcm.inputs``; an empty
variable counts as unset. ``VARIABLES`` is the table docs/config.md shows. Imports
nothing heavy: ``kcm isolate`` reads its variables through this module.
"""

from __future__ import annotations

import os

from kcm.errors import InputError
from kcm.inputs import seconds, whole_number
from kcm.names import (
    CONF_DIR_VARIABLE,
    CRASH_AT_VARIABLE,
    DEFAULT_CONF_DIR,
    HOST_PROC,
    KUBELET_CPU_MANAGER_STATE,
    NUM_CORES_VARIABLE,
    PROC_FS_VARIABLE,
    RECONCILE_SLEEP_VARIABLE,
)

TYPE_CHECKING = False  # the topology reader is imported only when a command needs it
if TYPE_CHECKING:
    from kcm.topology import Topology

DEFAULT_PROC_FS = "/proc"
DEFAULT_SYSFS = "/sys"
DEFAULT_LOCK_TIMEOUT = 30.0
DEFAULT_API_RETRY_SECONDS = 30.0
DEFAULT_STOP_GRACE = 10.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

VARIABLES = {
    CONF_DIR_VARIABLE: f"default for --conf-dir ({DEFAULT_CONF_DIR})",
    PROC_FS_VARIABLE: f"the host's procfs ({DEFAULT_PROC_FS}; in a container e.g. "
                      f"{HOST_PROC}); commands that judge whether a task lives refuse a "
                      "procfs that is not the host's",
    "KCM_SYSFS": f"sysfs root for topology discovery ({DEFAULT_SYSFS})",
    "KCM_CGROUP_ROOT": "default for --cgroup-root of enforce, node-report and doctor (the "
                       "kubelet's kubepods.slice or kubepods)",
    "KCM_KUBELET_STATE": "default for doctor --kubelet-state "
                         f"({KUBELET_CPU_MANAGER_STATE})",
    "KCM_LOCK_TIMEOUT": f"seconds to wait for the configuration lock ({DEFAULT_LOCK_TIMEOUT:g}; "
                        "0 = do not wait; at most a week)",
    NUM_CORES_VARIABLE: "default for isolate --num-cores (1)",
    "KCM_LOG_LEVEL": f"{', '.join(LOG_LEVELS)} (INFO)",
    RECONCILE_SLEEP_VARIABLE: "default for reconcile --interval (unset: run once)",
    "KCM_STOP_GRACE": "seconds kcm isolate gives what is left of a workload, once its main "
                      "process has exited, between SIGTERM and SIGKILL "
                      f"({DEFAULT_STOP_GRACE:g}; 0 = SIGKILL at once)",
    "KCM_API_RETRY_SECONDS": "how long Kubernetes calls retry a failing API server "
                             f"({DEFAULT_API_RETRY_SECONDS:g})",
    "KCM_BUNDLE_DIR": "the bundle kcm install copies (see kcm install --help)",
    "KCM_SERVICE_ACCOUNT_DIR": "the in-cluster service account files "
                               "(/var/run/secrets/kubernetes.io/serviceaccount)",
    CRASH_AT_VARIABLE: "tests only: POINT:N kills kcm with SIGKILL at the Nth pass of a "
                       "crash point of its durable writes (see kcm/durable.py)",
}


CMK_NAMES = {PROC_FS_VARIABLE: "CMK_PROC_FS", NUM_CORES_VARIABLE: "CMK_NUM_CORES",
             "KCM_LOCK_TIMEOUT": "CMK_LOCK_TIMEOUT", "KCM_LOG_LEVEL": "CMK_LOG_LEVEL"}
"""CMK's names for the same settings, read where the KCM_ name is unset (a drop-in for
CMK's workloads and scripts)."""


def _lookup(name: str) -> tuple[str, str]:
    """The value of ``name`` (else of its CMK_ alias) and the variable it came from."""
    value = os.environ.get(name, "").strip()
    if not value and name in CMK_NAMES:
        alias = CMK_NAMES[name]
        value = os.environ.get(alias, "").strip()
        if value:
            return value, alias
    return value, name


def _get(name: str) -> str:
    return _lookup(name)[0]


def conf_dir(flag: str | None) -> str:
    """--conf-dir, else $KCM_CONF_DIR, else /etc/kcm; an empty --conf-dir is an error."""
    if flag is not None:
        if not flag:
            raise InputError("--conf-dir must not be empty")
        return flag
    return os.environ.get(CONF_DIR_VARIABLE) or DEFAULT_CONF_DIR


def proc_fs() -> str:
    return _get(PROC_FS_VARIABLE) or DEFAULT_PROC_FS


def sysfs() -> str:
    return os.environ.get("KCM_SYSFS") or DEFAULT_SYSFS


def cgroup_root(flag: str | None) -> str | None:
    """--cgroup-root, else $KCM_CGROUP_ROOT; None: the kubelet's, found in the hierarchy."""
    return flag or os.environ.get("KCM_CGROUP_ROOT") or None


def kubelet_state(flag: str | None) -> str:
    return flag or os.environ.get("KCM_KUBELET_STATE") or KUBELET_CPU_MANAGER_STATE


def lock_timeout() -> float:
    text, source = _lookup("KCM_LOCK_TIMEOUT")
    return seconds(text, source, allow_zero=True) if text else DEFAULT_LOCK_TIMEOUT


def num_cores() -> int | None:
    text, source = _lookup(NUM_CORES_VARIABLE)
    return whole_number(text, source, minimum=1) if text else None


def log_level() -> str:
    """The level name; an unknown one is reported by ``check_log_level`` at start."""
    return _get("KCM_LOG_LEVEL").upper() or "INFO"


def check_log_level() -> None:
    if log_level() not in LOG_LEVELS:
        text, source = _lookup("KCM_LOG_LEVEL")
        raise InputError(f"{source} must be one of {', '.join(LOG_LEVELS)}, not {text!r}")


def reconcile_sleep_time() -> float | None:
    text = _get(RECONCILE_SLEEP_VARIABLE)
    return seconds(text, RECONCILE_SLEEP_VARIABLE) if text else None


def stop_grace() -> float:
    text = _get("KCM_STOP_GRACE")
    return seconds(text, "KCM_STOP_GRACE", allow_zero=True) if text else DEFAULT_STOP_GRACE


def api_retry_seconds() -> float:
    text = _get("KCM_API_RETRY_SECONDS")
    if not text:
        return DEFAULT_API_RETRY_SECONDS
    return seconds(text, "KCM_API_RETRY_SECONDS", allow_zero=True)


def crash_at() -> tuple[str, int] | None:
    """KCM_CRASH_AT as (crash point, pass number), or None."""
    text = _get(CRASH_AT_VARIABLE)
    if not text:
        return None
    point, _, count = text.partition(":")
    return point, whole_number(count or "1", CRASH_AT_VARIABLE, 1)


def bundle_dir() -> str | None:
    return os.environ.get("KCM_BUNDLE_DIR") or None


def service_account_dir(default: str) -> str:
    return os.environ.get("KCM_SERVICE_ACCOUNT_DIR") or default


def node_name(flag: str | None) -> str | None:
    """--node-name, else $NODE_NAME (the downward API's spec.nodeName)."""
    return flag or os.environ.get("NODE_NAME") or None


def read_cpu_siblings(cpu: int) -> frozenset[int]:
    """The CPUs of ``cpu``'s physical core, from one sysfs file; empty when unknown."""
    from kcm.cpuset import parse_cpulist
    from kcm.errors import CpuListError

    path = f"{sysfs()}/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
    try:
        with open(path) as handle:
            return parse_cpulist(handle.read().strip())
    except (OSError, CpuListError):
        return frozenset()


def read_node_topology() -> Topology:
    from kcm.sysfs import read_topology

    return read_topology(sysfs_root=sysfs(), proc_root=proc_fs())

"""kcm's vocabulary: every name it puts on a node, a pod or a cluster, the paths it
assumes by default, and the rules that make (and recognise) its resource names.

Defined here once; every other module imports them. Light on purpose: ``kcm isolate``
and the argument parser import it.
"""

from kcm import __version__

GROUP = "kcm.dev"
"""API group of the NodeReport, default prefix of the extended resources, and the
prefix of kcm's labels, taints and annotations."""
NODE_LABEL = f"{GROUP}/node"
"""Label (and taint key) of a node that kcm manages."""
NODE_SELECTOR = (f"{GROUP}/enabled", "true")
"""The label that chooses the nodes kcm's DaemonSet runs on, by default."""
NODE_TAINT = {"key": NODE_LABEL, "value": "true", "effect": "NoSchedule"}
POOL_ANNOTATION = f"{GROUP}/pool"
MUTATED_ANNOTATION = f"{GROUP}/mutated"
NODE_REPORT_API_VERSION = f"{GROUP}/v1"

DEFAULT_CONF_DIR = "/etc/kcm"
DEFAULT_INSTALL_DIR = "/opt/bin"
KUBELET_CPU_MANAGER_STATE = "/var/lib/kubelet/cpu_manager_state"
DEFAULT_NAMESPACE = "kcm-system"
DEFAULT_IMAGE = f"ghcr.io/kcm-project/kcm:{__version__}"
HOST_PROC = "/host/proc"
"""Where a kcm container sees the host's /proc (read-only)."""
ENFORCE_PROC = "/host/proc-rw"
"""Where the enforce container sees the host's /proc (writable: /proc/irq)."""

_RESOURCE_SUFFIX = "-cores"


def resource_name(prefix: str, pool: str) -> str:
    """The extended resource that advertises an exclusive pool: ``<prefix>/<pool>-cores``."""
    return f"{prefix}/{pool}{_RESOURCE_SUFFIX}"


def pool_of_resource(name: str, prefix: str) -> str | None:
    """The pool a resource name advertises (the inverse of ``resource_name``), or None
    when the name is not one of kcm's pool resources."""
    head = f"{prefix}/"
    if name.startswith(head) and name.endswith(_RESOURCE_SUFFIX):
        pool = name[len(head):-len(_RESOURCE_SUFFIX)]
        return pool or None
    return None


def is_kcm_resource(name: str, prefix: str) -> bool:
    """Whether a container's resource request names anything under kcm's prefix (a pool
    resource or any other ``<prefix>/*`` name: both make a pod a kcm workload)."""
    return name.startswith(f"{prefix}/")

NRT_GROUP = "topology.node.k8s.io"
NRT_PLURAL = "noderesourcetopologies"
NRT_API_VERSION = f"{NRT_GROUP}/v1alpha2"
"""NodeResourceTopology, the per-NUMA availability the topology-aware scheduler reads."""
APP_NAME = ("app.kubernetes.io/name", "kcm")
"""The label on every object kcm deploys (``kcm.manifests``): how cluster-init tells its
own objects from another component's."""
MANAGED_BY = ("app.kubernetes.io/managed-by", "kcm")
"""The label on objects kcm writes that another agent may also write (NodeResourceTopology):
one without it is not kcm's and is left alone."""

MIN_KUBERNETES_FOR_WEBHOOK = (1, 28)
"""The oldest Kubernetes whose API server applies the webhook's ``matchConditions`` by
default (beta in 1.28, GA in 1.30; alpha and off in 1.27). An older server drops the
field and sends every pod in the cluster to a webhook that fails closed."""


# The environment variables that more than one module names (read in kcm/env.py, set in
# the manifests and by the webhook); every other KCM_* variable is named in env.py alone.
CONF_DIR_VARIABLE = "KCM_CONF_DIR"
PROC_FS_VARIABLE = "KCM_PROC_FS"
NUM_CORES_VARIABLE = "KCM_NUM_CORES"
RECONCILE_SLEEP_VARIABLE = "KCM_RECONCILE_SLEEP_TIME"
CRASH_AT_VARIABLE = "KCM_CRASH_AT"

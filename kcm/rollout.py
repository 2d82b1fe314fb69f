"""Putting kcm's objects into a cluster and following the nodes until kcm is ready on
each: create-or-replace without needless writes, and each node's phase read from its
capacity and its node-agent pod. Used by ``kcm cluster-init``."""

import sys
import time

from kcm.errors import KcmError
from kcm.k8s import NODE, POD, Kind, KubeClient
from kcm.names import APP_NAME, MIN_KUBERNETES_FOR_WEBHOOK, NRT_GROUP, NRT_PLURAL
from kcm.node_patch import is_ready

KINDS = {
    ("v1", "Namespace"): Kind("", "v1", "Namespace", "namespaces"),
    ("v1", "ServiceAccount"): Kind("", "v1", "ServiceAccount", "serviceaccounts", True),
    ("v1", "Secret"): Kind("", "v1", "Secret", "secrets", True),
    ("v1", "Service"): Kind("", "v1", "Service", "services", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"):
        Kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"):
        Kind("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
        Kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
             "customresourcedefinitions"),
    ("apps/v1", "DaemonSet"): Kind("apps", "v1", "DaemonSet", "daemonsets", True),
    ("apps/v1", "Deployment"): Kind("apps", "v1", "Deployment", "deployments", True),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"):
        Kind("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
             "mutatingwebhookconfigurations"),
}
STEPS = ("init", "install", "discover")
POLL_SECONDS = 0.5


def version_of(info: dict) -> tuple[int, int]:
    """(major, minor) of a ``/version`` answer; providers add suffixes ("28+")."""
    try:
        return (int("".join(c for c in str(info.get("major")) if c.isdigit())),
                int("".join(c for c in str(info.get("minor")) if c.isdigit())))
    except ValueError:
        raise KcmError(f"cannot read the API server's version from {info}") from None


def check_server_version(info: dict, webhook: bool) -> None:
    """Refuse a server too old for the webhook's ``matchConditions``: it would drop the
    field and send every pod of the cluster to a webhook that fails closed."""
    if webhook and version_of(info) < MIN_KUBERNETES_FOR_WEBHOOK:
        major, minor = MIN_KUBERNETES_FOR_WEBHOOK
        raise KcmError(f"the API server is {info.get('gitVersion') or version_of(info)}; "
                       f"kcm's webhook needs Kubernetes {major}.{minor} or newer (its "
                       "matchConditions): upgrade, or run with --no-webhook")


def kind_of(obj: dict) -> Kind:
    return KINDS[(obj["apiVersion"], obj["kind"])]


def contains(existing: object, desired: object) -> bool:
    """Whether ``existing`` already has every field of ``desired`` (the server adds
    defaults and bookkeeping of its own)."""
    if isinstance(desired, dict):
        return isinstance(existing, dict) and all(
            key in existing and contains(existing[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(existing, list) and len(existing) == len(desired) and all(
            contains(have, want) for have, want in zip(existing, desired, strict=True))
    return existing == desired


def apply(client: KubeClient, obj: dict, dry_run: bool = False) -> str:
    """Create, or replace when it differs; 'created', 'updated' or 'unchanged' (with
    ``dry_run``, what would happen, changing nothing). A NodeResourceTopology CRD that
    kcm did not install is 'kept': the component that installed it owns its versions."""
    kind = kind_of(obj)
    meta = obj["metadata"]
    existing = client.get(kind, meta["name"], meta.get("namespace"))
    if existing is None:
        if not dry_run:
            client.create(kind, obj)
        return "created"
    key, value = APP_NAME
    if meta["name"] == f"{NRT_PLURAL}.{NRT_GROUP}" and (
            existing["metadata"].get("labels") or {}).get(key) != value:
        return "kept (installed by another component)"
    if contains(existing, obj):
        return "unchanged"
    if dry_run:
        return "updated"
    body = {**obj, "metadata": {**meta,
                                "resourceVersion": existing["metadata"]["resourceVersion"]}}
    if obj["kind"] == "Service":
        for field in ("clusterIP", "clusterIPs"):
            if field in existing.get("spec", {}):
                body["spec"] = {**body["spec"], field: existing["spec"][field]}
    client.replace(kind, body)
    return "updated"


def choose_nodes(client: KubeClient, host_list: str | None) -> list[str]:
    names = [node["metadata"]["name"] for node in client.list(NODE)]
    if host_list is None:
        if not names:
            raise KcmError("the cluster has no nodes")
        return sorted(names)
    wanted = [name.strip() for name in host_list.split(",") if name.strip()]
    missing = [name for name in wanted if name not in names]
    if missing:
        raise KcmError(f"no such nodes in the cluster: {', '.join(missing)}")
    if not wanted:
        raise KcmError("--host-list names no nodes")
    return wanted


class NodeProgress:
    """Where one node is: a step of the node agent's pod, ready, or failed (and why)."""

    def __init__(self, name: str):
        self.name = name
        self.phase = "pending"
        self.reason = ""


def node_phase(client: KubeClient, settings, name: str) -> tuple[str, str, str | None, str | None]:
    """(phase, reason, pod, failing container) of a node, from its capacity and its pod."""
    node = client.get(NODE, name)
    if node is not None and is_ready(node, settings.resource_prefix):
        return "ready", "", None, None
    pods = client.list(POD, namespace=settings.namespace,
                       labels={"app.kubernetes.io/component": "node-agent"},
                       fields={"spec.nodeName": name})
    if not pods:
        return "pending", "no kcm pod scheduled yet", None, None
    pod = pods[0]
    pod_name = pod["metadata"]["name"]
    statuses = {s["name"]: s for s in pod.get("status", {}).get("initContainerStatuses") or []}
    for step in STEPS:
        state = statuses.get(step, {}).get("state") or {}
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            why = f"exit code {terminated.get('exitCode')}"
            if terminated.get("reason"):
                why += f" ({terminated['reason']})"
            return "failed", f"{step} failed: {why}", pod_name, step
        if waiting and waiting.get("reason") in ("CrashLoopBackOff", "ErrImagePull",
                                                 "ImagePullBackOff", "CreateContainerError",
                                                 "CreateContainerConfigError"):
            message = waiting.get("message", "")
            return "failed", f"{step} failed: {waiting['reason']} {message}".strip(), pod_name, step
        return step, "", pod_name, step
    return "running", "waiting for the extended resources", pod_name, None


def wait(client: KubeClient, settings, nodes: list[str], timeout: float) -> dict:
    progress = {name: NodeProgress(name) for name in nodes}
    deadline = time.monotonic() + timeout
    while True:
        for name, state in progress.items():
            if state.phase in ("ready", "failed"):
                continue
            phase, reason, pod, container = node_phase(client, settings, name)
            if phase == "failed" and pod and container:
                lines = client.log(pod, settings.namespace, container, tail_lines=10)
                tail = " | ".join(line.rstrip() for line in lines if line.strip())
                if tail:
                    reason += f"; last log lines: {tail}"
            if phase != state.phase:
                print(f"{name}: {phase}" + (f" ({reason})" if reason else ""), file=sys.stderr,
                      flush=True)
            state.phase, state.reason = phase, reason
        if all(state.phase in ("ready", "failed") for state in progress.values()):
            return progress
        if time.monotonic() >= deadline:
            for state in progress.values():
                if state.phase not in ("ready", "failed"):
                    state.reason = f"timed out at {state.phase}" + (
                        f": {state.reason}" if state.reason else "")
                    state.phase = "failed"
            return progress
        time.sleep(POLL_SECONDS)

"""Kubernetes objects kcm creates, as plain data (rendered to YAML by the commands).

Everything a cluster needs comes from ``cluster_objects(Settings)``; the seed's
per-step Pod templates (init, discover, reconcile) from ``step_objects``. Commands are
argument lists, never a shell string with values pasted in; only what must write to
the host gets a writable hostPath; host /proc is read-only; nothing is privileged.
"""

from __future__ import annotations

import binascii
from collections import namedtuple

from kcm import __version__
from kcm.mutate import workload_condition
from kcm.names import (
    APP_NAME,
    CONF_DIR_VARIABLE,
    DEFAULT_CONF_DIR,
    DEFAULT_IMAGE,
    DEFAULT_INSTALL_DIR,
    DEFAULT_NAMESPACE,
    ENFORCE_PROC,
    GROUP,
    HOST_PROC,
    NODE_SELECTOR,
    NODE_TAINT,
    NRT_GROUP,
    NRT_PLURAL,
    PROC_FS_VARIABLE,
    RECONCILE_SLEEP_VARIABLE,
)
from kcm.yamltext import dumps_all

WEBHOOK_NAME = "kcm-webhook"
NODE_AGENT = "kcm-node"
METRICS_PORT = 9464
WEBHOOK_PORT = 8443
WEBHOOK_CERT_DIR = "/etc/kcm-webhook"


# Named tuples rather than dataclasses: importing ``dataclasses`` (with ``inspect``)
# costs kcm manifests more CPU than rendering every object.
class Settings(namedtuple("Settings", (
        "namespace image conf_dir install_dir num_dp_cores num_cp_cores dp_mode cp_mode "
        "reconcile_interval report_interval node_selector resource_prefix taint webhook "
        "webhook_replicas node_resource_topology"), defaults=(
        DEFAULT_NAMESPACE, DEFAULT_IMAGE, DEFAULT_CONF_DIR, DEFAULT_INSTALL_DIR, 4, 1,
        "packed", "packed", 30.0, 60.0, NODE_SELECTOR, GROUP, False, True, 2, False))):
    """What a deployment of kcm is made of: the options of ``kcm manifests`` and
    ``kcm cluster-init`` (``node_selector`` a (label, value) pair, intervals in
    seconds)."""

    __slots__ = ()


class WebhookTls(namedtuple("WebhookTls", "ca cert key")):
    """PEM texts of the webhook's CA and serving certificate."""

    __slots__ = ()


def settings_from(args) -> Settings:
    """Settings from the options of ``kcm manifests`` and ``kcm cluster-init``."""
    label, _, value = args.node_selector.partition("=")
    return Settings(
        namespace=args.namespace, image=args.image, conf_dir=args.conf_dir,
        install_dir=args.install_dir, num_dp_cores=args.num_dp_cores,
        num_cp_cores=args.num_cp_cores, dp_mode=args.dp_mode, cp_mode=args.cp_mode,
        reconcile_interval=args.reconcile_interval, report_interval=args.report_interval,
        node_selector=(label, value), resource_prefix=args.resource_prefix, taint=args.taint,
        webhook=not args.no_webhook, node_resource_topology=args.node_resource_topology,
    )


_STRING = {"type": "string"}
_CHECK = {
    "type": "object",
    "required": ["name", "ok"],
    "properties": {
        "name": _STRING,
        "ok": {"type": "boolean"},
        "ran": {"type": "boolean"},
        "severity": {"type": "string", "enum": ["error", "warning"]},
        "errors": {"type": "array", "items": _STRING},
    },
}
_TASK = {
    "type": "object",
    "required": ["pid"],
    "properties": {"pid": {"type": "integer"}, "alive": {"type": "boolean"},
                   "workloadPid": {"type": "integer"}},
}
_POOL = {
    "type": "object",
    "required": ["name", "exclusive", "cpuLists"],
    "properties": {
        "name": _STRING,
        "exclusive": {"type": "boolean"},
        "cpuLists": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"cpus": _STRING, "tasks": {"type": "array", "items": _TASK}},
            },
        },
    },
}
_REPORT_SPEC = {
    "type": "object",
    "properties": {
        "kcmVersion": _STRING,
        "time": _STRING,
        "topology": {
            "type": "object",
            "properties": {
                "sockets": {"type": "array", "items": {"type": "integer"}},
                "numaNodes": {"type": "object", "additionalProperties": _STRING},
                "l3Caches": {"type": "integer"},
                "cores": {"type": "integer"},
                "threads": {"type": "integer"},
                "online": _STRING,
                "offline": _STRING,
                "isolated": _STRING,
            },
        },
        "pools": {"type": "object", "additionalProperties": _POOL},
        "checks": {"type": "array", "items": _CHECK},
        "nodeResourceTopology": {
            "type": "object",
            "properties": {"published": {"type": "boolean"}, "reason": _STRING},
        },
        "enforcement": {
            "type": "object",
            "properties": {
                "available": {"type": "boolean"},
                "reason": _STRING,
                "held": _STRING,
                "containers": {"type": "integer"},
                "containersNotConfined": {"type": "array", "items": _STRING},
                "irqsSteered": {"type": "array", "items": _STRING},
                "irqsOnHeldCpus": {"type": "array", "items": _STRING},
                "violations": {"type": "array", "items": _STRING},
                "hostThreadsOnHeldCpus": {"type": "integer"},
            },
        },
    },
}
_REPORT_STATUS = {
    "type": "object",
    "properties": {
        "healthy": {"type": "boolean"},
        "failedChecks": {"type": "array", "items": _STRING},
        "warnings": {"type": "array", "items": _STRING},
        "lastReportTime": _STRING,
    },
}


def node_report_crd() -> dict:
    """The NodeReport CustomResourceDefinition: cluster-scoped, one per node."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"nodereports.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {"plural": "nodereports", "singular": "nodereport", "kind": "NodeReport",
                      "listKind": "NodeReportList", "shortNames": ["kcmnr"]},
            "versions": [{
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "kcm's report of one node: topology, pools, tasks, checks.",
                    "properties": {
                        "apiVersion": _STRING,
                        "kind": _STRING,
                        "metadata": {"type": "object"},
                        "spec": _REPORT_SPEC,
                        "status": _REPORT_STATUS,
                    },
                }},
                "additionalPrinterColumns": [
                    {"name": "Healthy", "type": "boolean", "jsonPath": ".status.healthy"},
                    {"name": "Failed", "type": "string", "jsonPath": ".status.failedChecks"},
                    {"name": "Reported", "type": "string", "jsonPath": ".status.lastReportTime"},
                ],
            }],
        },
    }


_ATTRIBUTES = {"type": "array", "items": {
    "type": "object", "required": ["name", "value"],
    "properties": {"name": _STRING, "value": _STRING}}}
_QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string"}],
             "x-kubernetes-int-or-string": True}
_ZONE = {
    "type": "object",
    "required": ["name", "type"],
    "properties": {
        "name": _STRING, "type": _STRING, "parent": _STRING, "attributes": _ATTRIBUTES,
        "costs": {"type": "array", "items": {
            "type": "object", "required": ["name", "value"],
            "properties": {"name": _STRING, "value": {"type": "integer"}}}},
        "resources": {"type": "array", "items": {
            "type": "object", "required": ["name", "capacity", "allocatable", "available"],
            "properties": {"name": _STRING, "capacity": _QUANTITY,
                           "allocatable": _QUANTITY, "available": _QUANTITY}}},
    },
}


def node_resource_topology_crd() -> dict:
    """The NodeResourceTopology CRD (``topology.node.k8s.io/v1alpha2``, the version the
    topology-aware scheduler plugin reads), for clusters that have none yet:
    ``cluster-init`` leaves one installed by someone else as it is."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{NRT_PLURAL}.{NRT_GROUP}",
                     "labels": _labels("node-resource-topology"),
                     "annotations": {"api-approved.kubernetes.io":
                                     "https://github.com/kubernetes/enhancements/pull/1870"}},
        "spec": {
            "group": NRT_GROUP,
            "scope": "Cluster",
            "names": {"plural": NRT_PLURAL, "singular": "noderesourcetopology",
                      "kind": "NodeResourceTopology", "listKind": "NodeResourceTopologyList",
                      "shortNames": ["node-res-topo"]},
            "versions": [{
                "name": "v1alpha2", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "required": ["zones"],
                    "properties": {
                        "apiVersion": _STRING, "kind": _STRING, "metadata": {"type": "object"},
                        "topologyPolicies": {"type": "array", "items": _STRING},
                        "attributes": _ATTRIBUTES,
                        "zones": {"type": "array", "items": _ZONE},
                    },
                }},
            }],
        },
    }


def node_resource_topology_rbac(settings: Settings) -> list[dict]:
    """The node agent's extra role when it publishes NodeResourceTopologies (its own
    node's; delete on uninstall)."""
    return _agent_role(settings, f"{NODE_AGENT}-topology", "node-resource-topology",
                       [{"apiGroups": [NRT_GROUP], "resources": [NRT_PLURAL],
                         "verbs": ["get", "create", "patch", "delete"]}])


def _agent_role(settings: Settings, name: str, component: str, rules: list[dict]
                ) -> list[dict]:
    """A ClusterRole with ``rules``, bound to the node agent's ServiceAccount."""
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": _meta(name, None, component), "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(name, None, component),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": NODE_AGENT,
                       "namespace": settings.namespace}]},
    ]


# -- building blocks ------------------------------------------------------------

def _number(value: float | str) -> str:
    """Seconds as the shortest text (30, 0.5); text passes through (chart placeholders)."""
    return value if isinstance(value, str) else f"{value:g}"


def _labels(component: str) -> dict:
    return {APP_NAME[0]: APP_NAME[1], "app.kubernetes.io/component": component,
            "app.kubernetes.io/version": __version__}


def _meta(name: str, settings: Settings | None, component: str) -> dict:
    meta: dict = {"name": name, "labels": _labels(component)}
    if settings is not None:
        meta["namespace"] = settings.namespace
    return meta


HOST_CGROUP = "/sys/fs/cgroup"
"""The host's /proc again, writable, for the enforce container alone (``/proc/irq``)."""


def _host_volumes(settings: Settings, install: bool = False) -> list[dict]:
    volumes = [
        {"name": "kcm-conf", "hostPath": {"path": settings.conf_dir, "type": "DirectoryOrCreate"}},
        {"name": "host-proc", "hostPath": {"path": "/proc", "type": "Directory"}},
    ]
    if install:
        volumes.append({"name": "kcm-install",
                        "hostPath": {"path": settings.install_dir, "type": "DirectoryOrCreate"}})
    return volumes


def _mounts(settings: Settings, conf_writable: bool, install: bool = False) -> list[dict]:
    # Only ``readOnly: true`` is written: the API server drops a false one, and a
    # re-run of cluster-init would then see a difference where there is none.
    conf = {"name": "kcm-conf", "mountPath": settings.conf_dir}
    mounts = [conf if conf_writable else {**conf, "readOnly": True},
              {"name": "host-proc", "mountPath": HOST_PROC, "readOnly": True}]
    if install:
        mounts.append({"name": "kcm-install", "mountPath": settings.install_dir})
    return mounts


def _env(settings: Settings, node_name: bool = False) -> list[dict]:
    env = [{"name": CONF_DIR_VARIABLE, "value": settings.conf_dir},
           {"name": PROC_FS_VARIABLE, "value": HOST_PROC}]
    if node_name:
        env.append({"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    return env


_NODE_SECURITY = {
    # root to write the root-owned hostPath directories; nothing else.
    "runAsUser": 0,
    "runAsNonRoot": False,
    "privileged": False,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}


def _container(settings: Settings, name: str, args: list[str], *, conf_writable: bool,
               install: bool = False, node_name: bool = False, extra_env: list | None = None,
               ports: list | None = None) -> dict:
    container = {
        "name": name,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["kcm"],
        "args": args,
        "env": _env(settings, node_name) + (extra_env or []),
        "volumeMounts": _mounts(settings, conf_writable, install),
        "securityContext": dict(_NODE_SECURITY),
        "resources": _RESOURCES,
    }
    if ports:
        container["ports"] = ports
    return container


def _enforce_container(settings: Settings) -> dict:
    """``kcm enforce --interval``: the only container that writes the host's cgroup
    cpusets (and, with --steer-irqs added, /proc/irq), so the only one with those mounts
    writable; still not privileged (root owns those files). Its one capability,
    SYS_NICE, lets it give back a thread's CPU affinity that a cpuset change reset
    (kernels before 6.2), whoever the thread runs as."""
    container = _container(settings, "enforce",
                           ["enforce", f"--conf-dir={settings.conf_dir}",
                            f"--interval={_number(settings.reconcile_interval)}"],
                           conf_writable=True)
    container["env"] = [{"name": CONF_DIR_VARIABLE, "value": settings.conf_dir},
                        {"name": PROC_FS_VARIABLE, "value": ENFORCE_PROC}]
    container["securityContext"] = {**_NODE_SECURITY,
                                    "capabilities": {"drop": ["ALL"], "add": ["SYS_NICE"]}}
    container["volumeMounts"] = [
        {"name": "kcm-conf", "mountPath": settings.conf_dir},
        {"name": "host-proc", "mountPath": ENFORCE_PROC},
        {"name": "host-cgroup", "mountPath": HOST_CGROUP},
    ]
    return container


def _init_args(settings: Settings) -> list[str]:
    return ["init", f"--conf-dir={settings.conf_dir}",
            f"--num-dp-cores={settings.num_dp_cores}", f"--num-cp-cores={settings.num_cp_cores}",
            f"--dp-mode={settings.dp_mode}", f"--cp-mode={settings.cp_mode}"]


def _discover_args(settings: Settings) -> list[str]:
    args = ["discover", f"--conf-dir={settings.conf_dir}",
            f"--resource-prefix={settings.resource_prefix}"]
    return [*args, "--taint"] if settings.taint else args


def _tolerations(settings: Settings) -> list[dict]:
    """Only kcm's own taint, never a tolerate-everything wildcard."""
    return [{"key": NODE_TAINT["key"], "operator": "Equal", "value": NODE_TAINT["value"],
             "effect": NODE_TAINT["effect"]}]


def _pod_spec(settings: Settings, containers: list[dict], init_containers: list | None = None,
              install: bool = False, restart: str = "Always") -> dict:
    spec = {
        "serviceAccountName": NODE_AGENT,
        "automountServiceAccountToken": True,
        "nodeSelector": {settings.node_selector[0]: settings.node_selector[1]},
        "tolerations": _tolerations(settings),
        "restartPolicy": restart,
        "containers": containers,
        "volumes": _host_volumes(settings, install),
    }
    if init_containers:
        spec["initContainers"] = init_containers
    return spec


# -- the cluster's objects ----------------------------------------------------------

def namespace(settings: Settings) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": settings.namespace, "labels": _labels("namespace")}}


def rbac(settings: Settings) -> list[dict]:
    """The node agent may read and patch nodes (capacity, label, taint) and write (and,
    on uninstall, delete) its NodeReports; nothing else. The webhook needs no API access at all."""
    rules = [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
        {"apiGroups": [GROUP], "resources": ["nodereports"],
         "verbs": ["get", "create", "patch", "delete"]},
        {"apiGroups": [GROUP], "resources": ["nodereports/status"], "verbs": ["patch"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _meta(NODE_AGENT, settings, "node-agent"),
         "automountServiceAccountToken": False},
        *_agent_role(settings, NODE_AGENT, "node-agent", rules),
    ]


def node_daemonset(settings: Settings) -> dict:
    """Per node: init, install, discover as init containers; then reconcile and the
    node report (published, with metrics) as long-running containers."""
    init_containers = [
        _container(settings, "init", _init_args(settings), conf_writable=True),
        _container(settings, "install", ["install", f"--install-dir={settings.install_dir}"],
                   conf_writable=False, install=True),
        _container(settings, "discover", _discover_args(settings), conf_writable=False,
                   node_name=True),
    ]
    containers = [
        _container(settings, "reconcile",
                   ["reconcile", f"--conf-dir={settings.conf_dir}",
                    f"--interval={_number(settings.reconcile_interval)}"], conf_writable=True),
        _enforce_container(settings),
        _container(settings, "node-report",
                   ["node-report", f"--conf-dir={settings.conf_dir}", "--publish",
                    f"--interval={_number(settings.report_interval)}",
                    f"--metrics-port={METRICS_PORT}",
                    f"--resource-prefix={settings.resource_prefix}",
                    *(["--node-resource-topology"] if settings.node_resource_topology
                      else [])],
                   conf_writable=False, node_name=True,
                   ports=[{"name": "metrics", "containerPort": METRICS_PORT,
                           "protocol": "TCP"}]),
    ]
    # The node report shows what enforcement achieved: it reads the host's cgroups.
    containers[-1]["volumeMounts"].append({"name": "host-cgroup", "mountPath": HOST_CGROUP,
                                           "readOnly": True})
    selector = {"app.kubernetes.io/name": "kcm", "app.kubernetes.io/component": "node-agent"}
    spec = _pod_spec(settings, containers, init_containers, install=True)
    spec["volumes"].append({"name": "host-cgroup",
                            "hostPath": {"path": HOST_CGROUP, "type": "Directory"}})
    # The host's PID namespace: a cgroup's task list names only the threads of the
    # reader's namespace, and enforce puts back their affinities by thread ID.
    spec["hostPID"] = True
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": _meta(NODE_AGENT, settings, "node-agent"),
        "spec": {
            "selector": {"matchLabels": selector},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": _labels("node-agent")},
                "spec": spec,
            },
        },
    }


def _base64(text: str) -> str:
    """Base64 of the text's UTF-8 (binascii: the base64 module imports re)."""
    return binascii.b2a_base64(text.encode(), newline=False).decode()


def webhook_objects(settings: Settings, tls: WebhookTls) -> list[dict]:
    selector = {"app.kubernetes.io/name": "kcm", "app.kubernetes.io/component": "webhook"}
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": _meta(f"{WEBHOOK_NAME}-tls", settings, "webhook"),
        "data": {name: _base64(text)
                 for name, text in (("tls.crt", tls.cert), ("tls.key", tls.key),
                                    ("ca.crt", tls.ca))},
    }
    container = {
        "name": "webhook",
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["kcm"],
        "args": ["webhook", f"--tls-cert-file={WEBHOOK_CERT_DIR}/tls.crt",
                 f"--tls-private-key-file={WEBHOOK_CERT_DIR}/tls.key",
                 f"--secure-port={WEBHOOK_PORT}", f"--conf-dir={settings.conf_dir}",
                 f"--install-dir={settings.install_dir}",
                 f"--resource-prefix={settings.resource_prefix}"],
        "ports": [{"name": "https", "containerPort": WEBHOOK_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}},
        "volumeMounts": [{"name": "tls", "mountPath": WEBHOOK_CERT_DIR, "readOnly": True}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "privileged": False, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": _RESOURCES,
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(WEBHOOK_NAME, settings, "webhook"),
        "spec": {
            "replicas": settings.webhook_replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": _labels("webhook")},
                "spec": {
                    "serviceAccountName": WEBHOOK_NAME,
                    "automountServiceAccountToken": False,
                    "containers": [container],
                    "volumes": [{"name": "tls", "secret": {"secretName": f"{WEBHOOK_NAME}-tls"}}],
                },
            },
        },
    }
    svc = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _meta(WEBHOOK_NAME, settings, "webhook"),
        "spec": {"selector": selector,
                 "ports": [{"name": "https", "port": 443, "targetPort": "https",
                            "protocol": "TCP"}]},
    }
    uses_kcm = workload_condition(settings.resource_prefix)
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": _meta(WEBHOOK_NAME, None, "webhook"),
        "webhooks": [{
            "name": f"pods.{GROUP}",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            # Only kcm workloads reach the webhook (matchConditions), so failing closed
            # blocks nothing else: a kcm pod never starts without its mounts.
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "reinvocationPolicy": "Never",
            "clientConfig": {
                "service": {"namespace": settings.namespace, "name": WEBHOOK_NAME,
                            "path": "/mutate", "port": 443},
                "caBundle": _base64(tls.ca),
            },
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn",
                "values": ["kube-system", settings.namespace]}]},
            "matchConditions": [{"name": "uses-kcm", "expression": uses_kcm}],
        }],
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": _meta(WEBHOOK_NAME, settings, "webhook"),
               "automountServiceAccountToken": False}
    return [account, secret, deployment, svc, configuration]


def tls_from_secret(secret: dict) -> WebhookTls | None:
    """The webhook's TLS material from its Secret as read from the cluster."""
    import base64

    data = secret.get("data") or {}
    try:
        return WebhookTls(ca=base64.b64decode(data["ca.crt"]).decode(),
                          cert=base64.b64decode(data["tls.crt"]).decode(),
                          key=base64.b64decode(data["tls.key"]).decode())
    except (KeyError, ValueError):
        return None


def webhook_service_names(settings: Settings) -> list[str]:
    """DNS names the API server uses to reach the webhook's Service."""
    base = f"{WEBHOOK_NAME}.{settings.namespace}"
    return [WEBHOOK_NAME, base, f"{base}.svc", f"{base}.svc.cluster.local"]


def cluster_objects(settings: Settings, tls: WebhookTls | None = None) -> list[dict]:
    """Everything a cluster needs, in the order to apply it."""
    objects = [namespace(settings), *rbac(settings), node_report_crd()]
    if settings.node_resource_topology:
        objects += [node_resource_topology_crd(), *node_resource_topology_rbac(settings)]
    objects.append(node_daemonset(settings))
    if settings.webhook:
        if tls is None:
            raise ValueError("the webhook objects need its TLS material")
        objects += webhook_objects(settings, tls)
    return objects


# -- the operator manual's per-step templates ------------------------------------------

STEPS = ("init-pod", "discover-pod", "reconcile")


def step_objects(settings: Settings, step: str) -> list[dict]:
    """The seed's Pod templates: ``kcm init`` and ``kcm discover`` as one-shot Pods,
    ``kcm reconcile`` as a DaemonSet sleeping KCM_RECONCILE_SLEEP_TIME between passes."""
    if step == "init-pod":
        container = _container(settings, "kcm-init", _init_args(settings), conf_writable=True)
        return [{"apiVersion": "v1", "kind": "Pod",
                 "metadata": _meta("kcm-init", settings, "init"),
                 "spec": _pod_spec(settings, [container], restart="Never")}]
    if step == "discover-pod":
        container = _container(settings, "kcm-discover", _discover_args(settings),
                               conf_writable=False, node_name=True)
        return [{"apiVersion": "v1", "kind": "Pod",
                 "metadata": _meta("kcm-discover", settings, "discover"),
                 "spec": _pod_spec(settings, [container], restart="Never")}]
    if step == "reconcile":
        sleep = [{"name": RECONCILE_SLEEP_VARIABLE,
                  "value": _number(settings.reconcile_interval)}]
        container = _container(settings, "kcm-reconcile",
                               ["reconcile", f"--conf-dir={settings.conf_dir}"],
                               conf_writable=True, extra_env=sleep)
        selector = {"app.kubernetes.io/name": "kcm", "app.kubernetes.io/component": "reconcile"}
        return [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                 "metadata": _meta("kcm-reconcile", settings, "reconcile"),
                 "spec": {"selector": {"matchLabels": selector},
                          "template": {"metadata": {"labels": _labels("reconcile")},
                                       "spec": _pod_spec(settings, [container])}}}]
    raise ValueError(f"unknown step {step!r} (one of {', '.join(STEPS)})")


def to_yaml(objects: list[dict]) -> str:
    return dumps_all(objects)

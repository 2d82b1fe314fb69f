"""Kubernetes objects kcm creates, as plain data (rendered to YAML by the commands)."""

GROUP = "kcm.dev"
NODE_LABEL = f"{GROUP}/node"


def resource_name(prefix: str, pool: str) -> str:
    """The extended resource that advertises an exclusive pool: ``kcm.dev/<pool>-cores``."""
    return f"{prefix}/{pool}-cores"


_STRING = {"type": "string"}
_CHECK = {
    "type": "object",
    "required": ["name", "ok"],
    "properties": {
        "name": _STRING,
        "ok": {"type": "boolean"},
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

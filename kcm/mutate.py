"""The admission webhook's decision: which pods are kcm workloads, and the minimal JSON
patch that gives them what ``kcm isolate`` needs. Pure functions over dicts.

A pod is a kcm workload when a container (or init container) requests or limits a
``<prefix>/*`` extended resource, or the pod carries the annotation ``kcm.dev/pool``.
The containers that use kcm are those that request such a resource; in a pod marked
only by the annotation, every (non-init) container. They get:

- the configuration directory (read-write: isolate records tasks there), host /proc
  read-only at /host/proc, and the install directory read-only;
- ``KCM_CONF_DIR``, ``KCM_PROC_FS`` and, when they request ``<prefix>/<pool>-cores``,
  ``KCM_NUM_CORES``.

Only ``add`` operations, on the paths concerned; nothing else is touched: no service
account, no tolerations, no security context. Names that already exist win: a volume,
mount or variable the pod already defines is left as it is. The pod is annotated
``kcm.dev/mutated: "true"``, and such a pod gets no patch (a second pass is a no-op).
"""

from __future__ import annotations

from collections import namedtuple

from kcm.names import (
    CONF_DIR_VARIABLE,
    DEFAULT_CONF_DIR,
    DEFAULT_INSTALL_DIR,
    GROUP,
    HOST_PROC,
    MUTATED_ANNOTATION,
    NUM_CORES_VARIABLE,
    POOL_ANNOTATION,
    PROC_FS_VARIABLE,
    is_kcm_resource,
    pool_of_resource,
)


class WorkloadSettings(namedtuple("WorkloadSettings", "conf_dir install_dir resource_prefix",
                                  defaults=(DEFAULT_CONF_DIR, DEFAULT_INSTALL_DIR, GROUP))):
    """Where workloads find kcm on their host, and the resources that make a pod one.
    (Not a dataclass: ``dataclasses`` costs kcm manifests more than its rendering.)"""

    __slots__ = ()


def _escape(key: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _kcm_resources(container: dict, prefix: str) -> dict[str, str]:
    resources = container.get("resources") or {}
    found: dict[str, str] = {}
    for section in ("limits", "requests"):
        for name, value in (resources.get(section) or {}).items():
            if is_kcm_resource(name, prefix):
                found.setdefault(name, str(value))
    return found


def is_workload(pod: dict, settings: WorkloadSettings) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if POOL_ANNOTATION in annotations:
        return True
    spec = pod.get("spec") or {}
    return any(_kcm_resources(container, settings.resource_prefix)
               for key in ("containers", "initContainers")
               for container in spec.get(key) or [])


def workload_condition(prefix: str) -> str:
    """``is_workload`` as the CEL expression of the webhook's ``matchConditions``, so
    that the API server sends exactly the pods ``is_workload`` accepts (a test
    evaluates both on the same pods)."""
    uses = (f"c.resources.%s.exists(r, r.startsWith('{prefix}/'))")
    container = (f"has(c.resources) && ((has(c.resources.requests) && {uses % 'requests'})"
                 f" || (has(c.resources.limits) && {uses % 'limits'}))")
    return (
        f"(has(object.metadata.annotations) && '{POOL_ANNOTATION}' in object.metadata.annotations)"
        f" || (has(object.spec.containers) && object.spec.containers.exists(c, {container}))"
        f" || (has(object.spec.initContainers) && "
        f"object.spec.initContainers.exists(c, {container}))"
    )


def num_cores(container: dict, prefix: str) -> int | None:
    """CPU lists asked for: the count of ``<prefix>/<pool>-cores`` the container requests."""
    counts = [value for name, value in _kcm_resources(container, prefix).items()
              if pool_of_resource(name, prefix) is not None]
    total = 0
    for value in counts:
        if not (value.isascii() and value.isdigit()) or len(value) > 5:
            return None
        total += int(value)
    return total or None


def shape_error(pod: object) -> str | None:
    """Why ``pod`` is not shaped like a Pod where ``patch_for`` reads it; None if it is.

    The API server sends well-formed pods; this keeps a malformed review a 400, so that
    anything ``patch_for`` raises is a bug of ours (a 500)."""
    if not isinstance(pod, dict):
        return "the object is not a JSON object"
    metadata, spec = pod.get("metadata"), pod.get("spec")
    problems = [_not_map(metadata, "metadata"), _not_map(spec, "spec")]
    if isinstance(metadata, dict):
        problems.append(_not_map(metadata.get("annotations"), "metadata.annotations"))
    if isinstance(spec, dict):
        problems.append(_not_list(spec.get("volumes"), "spec.volumes"))
        for key in ("containers", "initContainers"):
            problems.append(_not_list(spec.get(key), f"spec.{key}"))
            for index, container in enumerate(spec.get(key) or []):
                problems.append(_container_shape_error(container, f"spec.{key}[{index}]"))
    return next((problem for problem in problems if problem), None)


def _container_shape_error(container: object, where: str) -> str | None:
    if not isinstance(container, dict):
        return f"{where} is not an object"
    resources = container.get("resources")
    problems = [_not_map(resources, f"{where}.resources"),
                _not_list(container.get("volumeMounts"), f"{where}.volumeMounts"),
                _not_list(container.get("env"), f"{where}.env")]
    if isinstance(resources, dict):
        problems += [_not_map(resources.get(key), f"{where}.resources.{key}")
                     for key in ("limits", "requests")]
    return next((problem for problem in problems if problem), None)


def _not_map(value: object, where: str) -> str | None:
    return None if value is None or isinstance(value, dict) else f"{where} is not an object"


def _not_list(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return f"{where} is not a list of objects"
    return None


def patch_for(pod: dict, settings: WorkloadSettings) -> list[dict]:
    """The JSON patch for a pod; [] when it is not a kcm workload or already mutated."""
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if MUTATED_ANNOTATION in annotations or not is_workload(pod, settings):
        return []
    spec = pod.get("spec") or {}
    prefix = settings.resource_prefix
    ops: list[dict] = []
    volumes = _volumes(settings)
    existing_volumes = {volume.get("name") for volume in spec.get("volumes") or []}
    new_volumes = [volume for volume in volumes if volume["name"] not in existing_volumes]
    if "volumes" not in spec:
        ops.append({"op": "add", "path": "/spec/volumes", "value": new_volumes})
    else:
        ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in new_volumes]
    annotation_only = not any(_kcm_resources(c, prefix) for key in ("containers", "initContainers")
                              for c in spec.get(key) or [])
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or []):
            uses = bool(_kcm_resources(container, prefix)) or (
                annotation_only and key == "containers")
            if uses:
                ops += _container_ops(f"/spec/{key}/{index}", container, settings)
                ops += _root_ops(f"/spec/{key}/{index}", container, spec)
    if "annotations" not in metadata:
        ops.append({"op": "add", "path": "/metadata/annotations",
                    "value": {MUTATED_ANNOTATION: "true"}})
    else:
        ops.append({"op": "add", "path": f"/metadata/annotations/{_escape(MUTATED_ANNOTATION)}",
                    "value": "true"})
    return ops


def _root_ops(path: str, container: dict, spec: dict) -> list[dict]:
    """``kcm isolate`` writes the configuration directory (a root-owned hostPath), so the
    container runs as root (uid 0; its capabilities stay as the pod sets them) unless the
    pod or the container chose a user, or asked for a non-root one: that choice stands,
    and isolate then says it cannot open the lock file."""
    chosen = ("runAsUser", "runAsNonRoot")
    pod_context = spec.get("securityContext") or {}
    context = container.get("securityContext")
    if any(key in pod_context for key in chosen) or any(key in (context or {}) for key in chosen):
        return []
    if context is None:
        return [{"op": "add", "path": f"{path}/securityContext", "value": {"runAsUser": 0}}]
    return [{"op": "add", "path": f"{path}/securityContext/runAsUser", "value": 0}]


def _volumes(settings: WorkloadSettings) -> list[dict]:
    return [
        {"name": "kcm-conf", "hostPath": {"path": settings.conf_dir, "type": "Directory"}},
        {"name": "kcm-host-proc", "hostPath": {"path": "/proc", "type": "Directory"}},
        {"name": "kcm-install", "hostPath": {"path": settings.install_dir, "type": "Directory"}},
    ]


def _container_ops(path: str, container: dict, settings: WorkloadSettings) -> list[dict]:
    ops: list[dict] = []
    mounts = [
        {"name": "kcm-conf", "mountPath": settings.conf_dir},
        {"name": "kcm-host-proc", "mountPath": HOST_PROC, "readOnly": True},
        {"name": "kcm-install", "mountPath": settings.install_dir, "readOnly": True},
    ]
    have = container.get("volumeMounts") or []
    taken = {m.get("name") for m in have} | {m.get("mountPath") for m in have}
    new_mounts = [m for m in mounts if m["name"] not in taken and m["mountPath"] not in taken]
    if "volumeMounts" not in container:
        if new_mounts:
            ops.append({"op": "add", "path": f"{path}/volumeMounts", "value": new_mounts})
    else:
        ops += [{"op": "add", "path": f"{path}/volumeMounts/-", "value": m} for m in new_mounts]
    env = [{"name": CONF_DIR_VARIABLE, "value": settings.conf_dir},
           {"name": PROC_FS_VARIABLE, "value": HOST_PROC}]
    cores = num_cores(container, settings.resource_prefix)
    if cores is not None:
        env.append({"name": NUM_CORES_VARIABLE, "value": str(cores)})
    defined = {variable.get("name") for variable in container.get("env") or []}
    new_env = [variable for variable in env if variable["name"] not in defined]
    if "env" not in container:
        ops.append({"op": "add", "path": f"{path}/env", "value": new_env})
    else:
        ops += [{"op": "add", "path": f"{path}/env/-", "value": v} for v in new_env]
    return ops

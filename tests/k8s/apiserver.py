"""A stand-in Kubernetes API server for tests: kmock's emulator made strict.

kmock serves HTTP on 127.0.0.1 and parses Kubernetes paths; its emulator merges any
request body into a dict. This subclass replaces that with the semantics kcm relies
on and a real API server enforces:

- every object gets ``uid``, ``creationTimestamp`` and a ``resourceVersion`` that
  changes on every write; a write that names another resourceVersion is a 409 Conflict;
- resources with a status subresource ignore status changes on the main resource and
  everything but status on ``/status``;
- create of an existing name is 409 AlreadyExists, a missing name 422 Invalid, a
  namespaced object in a missing namespace 404; unknown objects 404; custom resources
  exist only while their CustomResourceDefinition does;
- PATCH as JSON merge patch (RFC 7386), JSON patch (RFC 6902, with ``test``; a failed
  test is 422 as on a real server) and strategic merge patch (as merge patch: kcm sends
  none, which tests/k8s_real shows against a real server); server-side apply is refused;
- list with ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, exists, ``!``)
  and ``fieldSelector`` (``metadata.name``, ``metadata.namespace``, ``spec.nodeName``);
- errors are ``Status`` objects with code, reason and message;
- RBAC for the bearer tokens given rules in ``Store.roles`` (others are admins): a
  request that no rule allows (verb, API group, resource or ``resource/subresource``,
  resource name) is a 403 Forbidden, as the real authorizer answers.

Every request is logged (method, path, query, content type, body) for assertions.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import re
import threading
import uuid
from dataclasses import dataclass, field

import aiohttp.web
import attrs
import jsonpatch
import kmock
from aiohttp.test_utils import RawTestServer
from kmock._internal import parsing as kmock_parsing

_kmock_parse_path = kmock_parsing.parse_path


def _parse_path(path: str) -> kmock_parsing.ParsedPath:
    """kmock 0.8 reads ``/api/v1/namespaces[/NAME]`` (the Namespace objects themselves)
    as a namespace prefix with nothing after it, and fails; parse them as the
    cluster-scoped resource they are."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 5:
        name = parts[3] if len(parts) > 3 else None
        sub = parts[4] if len(parts) > 4 else None
        return kmock_parsing.ParsedPath("", "v1", "namespaces", None, name, sub)
    return _kmock_parse_path(path)


kmock_parsing.parse_path = _parse_path


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    status: bool  # has a status subresource


BUILTIN = [
    Kind("", "v1", "nodes", "Node", False, True),
    Kind("", "v1", "namespaces", "Namespace", False, True),
    Kind("", "v1", "pods", "Pod", True, True),
    Kind("", "v1", "services", "Service", True, True),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True, False),
    Kind("", "v1", "secrets", "Secret", True, False),
    Kind("", "v1", "configmaps", "ConfigMap", True, False),
    Kind("apps", "v1", "daemonsets", "DaemonSet", True, True),
    Kind("apps", "v1", "deployments", "Deployment", True, True),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
         False, False),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", True, False),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, False),
    Kind("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
         "MutatingWebhookConfiguration", False, False),
    Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
         False, True),
]

PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+)(?=/[^/]))?/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$"
)


class ApiStatus(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "code": code, "reason": reason, "message": message,
                     "details": details or {}}


@dataclass
class Logged:
    method: str
    path: str
    query: dict
    content_type: str
    body: object
    authorization: str = ""


@dataclass
class Store:
    """The cluster's objects: (group, plural, namespace, name) -> object."""

    objects: dict = field(default_factory=dict)
    revision: int = 100
    log: list[Logged] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Faults to inject: a list of (method, path regex, status) consumed one by one.
    faults: list = field(default_factory=list)
    # Bearer token -> RBAC PolicyRules that bind it; tokens not here may do anything.
    roles: dict = field(default_factory=dict)
    # What GET /version answers (cluster-init refuses servers too old for the webhook).
    version: dict = field(default_factory=lambda: {"major": "1", "minor": "30",
                                                   "gitVersion": "v1.30.0"})

    # -- kinds -----------------------------------------------------------------

    def kind(self, group: str, version: str, plural: str) -> Kind:
        for kind in BUILTIN:
            if (kind.group, kind.version, kind.plural) == (group, version, plural):
                return kind
        crd = self.objects.get(("apiextensions.k8s.io", "customresourcedefinitions", None,
                                f"{plural}.{group}"))
        if crd:
            spec = crd["spec"]
            versions = {v["name"]: v for v in spec["versions"] if v.get("served", True)}
            if version in versions:
                return Kind(group, version, plural, spec["names"]["kind"],
                            spec["scope"] == "Namespaced",
                            "status" in versions[version].get("subresources", {}))
        raise ApiStatus(404, "NotFound", f"the server could not find the requested resource "
                                         f"({group or 'core'}/{version} {plural})")

    # -- direct access for tests -------------------------------------------------

    def put(self, kind: Kind, obj: dict) -> dict:
        """Create an object as a cluster component would (status kept)."""
        with self.lock:
            obj = copy.deepcopy(obj)
            obj.setdefault("apiVersion", f"{kind.group}/{kind.version}".lstrip("/"))
            obj.setdefault("kind", kind.kind)
            meta = obj.setdefault("metadata", {})
            key = (kind.group, kind.plural, meta.get("namespace"), meta["name"])
            self._stamp(obj, new=True)
            if key in self.objects:
                old = self.objects[key]["metadata"]
                meta["uid"], meta["creationTimestamp"] = old["uid"], old["creationTimestamp"]
            self.objects[key] = obj
            return copy.deepcopy(obj)

    def get(self, group: str, plural: str, name: str, namespace: str | None = None) -> dict | None:
        with self.lock:
            obj = self.objects.get((group, plural, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def requests(self, method: str | None = None, contains: str = "") -> list[Logged]:
        with self.lock:
            return [entry for entry in self.log
                    if (method is None or entry.method == method) and contains in entry.path]

    # -- the API -----------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, content_type: str,
               body: object, authorization: str = "") -> tuple[int, object]:
        with self.lock:
            self.log.append(Logged(method, path, dict(query), content_type, body, authorization))
            for index, (fault_method, pattern, status) in enumerate(self.faults):
                if fault_method == method and re.search(pattern, path):
                    del self.faults[index]
                    raise ApiStatus(status, "InternalError" if status >= 500 else "Injected",
                                    f"injected fault {status}")
            if path == "/version" and method == "GET":
                return 200, dict(self.version)
            match = PATH.match(path)
            if not match:
                raise ApiStatus(404, "NotFound", f"no such path {path}")
            group = match["group"] or ""
            version = match["core"] or match["version"]
            kind = self.kind(group, version, match["plural"])
            namespace, name, sub = match["ns"], match["name"], match["sub"]
            if kind.namespaced is False and namespace:
                raise ApiStatus(404, "NotFound", f"{kind.plural} is not namespaced")
            if sub not in (None, "status", "log"):
                raise ApiStatus(404, "NotFound", f"no subresource {sub}")
            if sub == "status" and not kind.status:
                raise ApiStatus(404, "NotFound", f"{kind.plural} has no status subresource")
            self._authorize(authorization, method, kind, name, sub, query)
            if name is None:
                if method == "GET":
                    return 200, self._list(kind, namespace, query)
                if method == "POST":
                    return 201, self._create(kind, namespace, body)
                raise ApiStatus(405, "MethodNotAllowed", f"{method} on a collection")
            key = (kind.group, kind.plural, namespace, name)
            if sub == "log":
                return 200, self._log(key, query.get("container"))
            if method == "GET":
                return 200, copy.deepcopy(self._existing(key, kind))
            if method == "PUT":
                return 200, self._replace(kind, key, body, sub)
            if method == "PATCH":
                return 200, self._patch(kind, key, content_type, body, sub)
            if method == "DELETE":
                obj = self._existing(key, kind)
                del self.objects[key]
                return 200, obj
            raise ApiStatus(405, "MethodNotAllowed", f"{method} not allowed")

    def _authorize(self, authorization: str, method: str, kind: Kind, name: str | None,
                   sub: str | None, query: dict) -> None:
        token = authorization.removeprefix("Bearer ").strip()
        if token not in self.roles:
            return
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            method, "get" if name else ("watch" if query.get("watch") else "list"))
        resource = f"{kind.plural}/{sub}" if sub else kind.plural
        for rule in self.roles[token]:
            if (_covers(rule.get("verbs"), verb) and _covers(rule.get("apiGroups"), kind.group)
                    and _covers(rule.get("resources"), resource)
                    and (not rule.get("resourceNames") or name in rule["resourceNames"])):
                return
        raise ApiStatus(403, "Forbidden", f'{resource} is forbidden: cannot {verb} resource '
                                          f'"{resource}" in API group "{kind.group}"')

    def _existing(self, key: tuple, kind: Kind) -> dict:
        obj = self.objects.get(key)
        if obj is None:
            plural = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
            raise ApiStatus(404, "NotFound", f'{plural} "{key[3]}" not found',
                            {"name": key[3], "kind": kind.plural})
        return obj

    def _stamp(self, obj: dict, new: bool, spec_changed: bool = True) -> None:
        self.revision += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.revision)
        if new:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.datetime.now(datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            meta["generation"] = 1
        elif spec_changed:
            meta["generation"] = meta.get("generation", 1) + 1

    def _list(self, kind: Kind, namespace: str | None, query: dict) -> dict:
        labels = _label_matcher(query.get("labelSelector", ""))
        fields = _field_matcher(query.get("fieldSelector", ""), kind)
        items = [copy.deepcopy(obj) for (group, plural, ns, _), obj in sorted(
                     self.objects.items(), key=lambda item: str(item[0]))
                 if (group, plural) == (kind.group, kind.plural)
                 and (namespace is None or ns == namespace)
                 and labels(obj.get("metadata", {}).get("labels", {})) and fields(obj)]
        return {"kind": f"{kind.kind}List", "apiVersion": _api_version(kind),
                "metadata": {"resourceVersion": str(self.revision)}, "items": items}

    def _create(self, kind: Kind, namespace: str | None, body: object) -> dict:
        if not isinstance(body, dict):
            raise ApiStatus(400, "BadRequest", "the body is not a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + uuid.uuid4().hex[:5]
            meta["name"] = name
        if not name:
            raise ApiStatus(422, "Invalid",
                            f"{kind.kind} is invalid: metadata.name: Required value")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
            raise ApiStatus(422, "Invalid", f"{kind.kind} {name!r} is invalid: metadata.name")
        if obj.get("kind", kind.kind) != kind.kind:
            raise ApiStatus(400, "BadRequest", f"kind {obj.get('kind')} posted to {kind.plural}")
        if kind.namespaced:
            ns = meta.get("namespace") or namespace
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise ApiStatus(400, "BadRequest", "the namespace of the object does not match")
            if ("", "namespaces", None, ns) not in self.objects:
                raise ApiStatus(404, "NotFound", f'namespaces "{ns}" not found')
            meta["namespace"] = ns
        key = (kind.group, kind.plural, meta.get("namespace"), name)
        if key in self.objects:
            raise ApiStatus(409, "AlreadyExists", f'{kind.plural} "{name}" already exists',
                            {"name": name, "kind": kind.plural})
        if kind.status and kind.kind not in ("Node", "Pod"):
            obj.pop("status", None)
        obj["apiVersion"] = _api_version(kind)
        obj["kind"] = kind.kind
        meta.pop("resourceVersion", None)
        self._stamp(obj, new=True)
        _validate(kind, obj)
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def _replace(self, kind: Kind, key: tuple, body: object, sub: str | None) -> dict:
        old = self._existing(key, kind)
        if not isinstance(body, dict) or body.get("metadata", {}).get("name") != key[3]:
            raise ApiStatus(400, "BadRequest", "the name of the object does not match the URL")
        wanted = body["metadata"].get("resourceVersion")
        self._check_version(old, wanted, kind, key)
        return self._store_update(kind, key, old, copy.deepcopy(body), sub)

    def _patch(self, kind: Kind, key: tuple, content_type: str, body: object,
               sub: str | None) -> dict:
        old = self._existing(key, kind)
        media = content_type.split(";")[0].strip()
        if media in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(body, dict):
                raise ApiStatus(400, "BadRequest", "a merge patch must be a JSON object")
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            self._check_version(old, wanted, kind, key)
            new = _merge_patch(copy.deepcopy(old), body)
        elif media == "application/json-patch+json":
            try:
                new = jsonpatch.apply_patch(copy.deepcopy(old), body)
            except jsonpatch.JsonPatchTestFailed as error:
                # The real server's answer (seen on kube-apiserver 1.20): 422, not 409.
                raise ApiStatus(422, "Invalid", f"the test operation failed: {error}") from None
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException,
                    TypeError) as error:
                raise ApiStatus(422, "Invalid", f"the JSON patch is invalid: {error}") from None
        else:
            raise ApiStatus(415, "UnsupportedMediaType",
                            f"the body of the request was in an unknown format: {media}")
        return self._store_update(kind, key, old, new, sub)

    def _check_version(self, old: dict, wanted: str | None, kind: Kind, key: tuple) -> None:
        if wanted is not None and wanted != old["metadata"]["resourceVersion"]:
            raise ApiStatus(409, "Conflict", f'Operation cannot be fulfilled on {kind.plural} '
                                             f'"{key[3]}": the object has been modified; please '
                                             f'apply your changes to the latest version and try '
                                             f'again', {"name": key[3], "kind": kind.plural})

    def _store_update(self, kind: Kind, key: tuple, old: dict, new: dict, sub: str | None) -> dict:
        if kind.status:
            if sub == "status":
                merged = copy.deepcopy(old)
                merged["status"] = new.get("status", {})
                new = merged
            else:
                new["status"] = copy.deepcopy(old.get("status", {}))
                if not new["status"]:
                    new.pop("status")
        for immutable in ("uid", "creationTimestamp", "name", "namespace"):
            if old["metadata"].get(immutable) != new.get("metadata", {}).get(immutable):
                new.setdefault("metadata", {})[immutable] = old["metadata"].get(immutable)
        new["apiVersion"] = old["apiVersion"]
        new["kind"] = old["kind"]
        spec_changed = sub != "status" and new.get("spec") != old.get("spec")
        new["metadata"]["generation"] = old["metadata"].get("generation", 1)
        if new == old:
            return copy.deepcopy(old)
        self._stamp(new, new=False, spec_changed=spec_changed)
        _validate(kind, new)
        self.objects[key] = new
        return copy.deepcopy(new)

    def _log(self, key: tuple, container: str | None) -> str:
        """A pod's log: the test sets it as the annotation ``test/log.<container>``."""
        obj = self.objects.get(("", *key[1:]))
        if obj is None:
            raise ApiStatus(404, "NotFound", f'pods "{key[3]}" not found')
        annotations = obj.get("metadata", {}).get("annotations", {})
        return annotations.get(f"test/log.{container}", annotations.get("test/log", ""))


def _covers(allowed: list | None, value: str) -> bool:
    return bool(allowed) and ("*" in allowed or value in allowed)


def _api_version(kind: Kind) -> str:
    return f"{kind.group}/{kind.version}" if kind.group else kind.version


def _merge_patch(target: object, patch: object) -> object:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i?|[mun])?$")
_RESOURCE_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _validate(kind: Kind, obj: dict) -> None:
    """The checks of the real API that kcm's writes could trip."""
    labels = obj.get("metadata", {}).get("labels") or {}
    for key, value in labels.items():
        if not isinstance(value, str) or len(value) > 63 or not _RESOURCE_NAME.match(key):
            raise ApiStatus(422, "Invalid", f"metadata.labels: Invalid value: {key!r}: {value!r}")
    if kind.kind == "Node":
        for field_name in ("capacity", "allocatable"):
            for name, value in (obj.get("status", {}).get(field_name) or {}).items():
                if not _RESOURCE_NAME.match(name) or not _QUANTITY.match(str(value)):
                    raise ApiStatus(422, "Invalid", f"status.{field_name}[{name}]: Invalid value: "
                                                    f"{value!r}")
        for taint in obj.get("spec", {}).get("taints") or []:
            if taint.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                raise ApiStatus(422, "Invalid", f"spec.taints: Unsupported value: {taint}")


def _label_matcher(selector: str):
    requirements = []
    for part in _split_selector(selector):
        part = part.strip()
        if not part:
            continue
        if match := re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", part):
            values = {v.strip() for v in match[3].split(",")}
            negate = match[2] == "notin"
            requirements.append(lambda labels, k=match[1], vs=values, n=negate:
                                (labels.get(k) in vs) != n if k in labels else n)
        elif match := re.fullmatch(r"([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)", part):
            key, op, value = match.groups()
            if op == "!=":
                requirements.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                requirements.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif match := re.fullmatch(r"!([^\s!=]+)", part):
            requirements.append(lambda labels, k=match[1]: k not in labels)
        elif re.fullmatch(r"[^\s!=()]+", part):
            requirements.append(lambda labels, k=part: k in labels)
        else:
            raise ApiStatus(400, "BadRequest", f"unable to parse requirement: {part!r}")
    return lambda labels: all(requirement(labels) for requirement in requirements)


def _split_selector(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


_FIELDS = {"metadata.name": lambda o: o["metadata"].get("name"),
           "metadata.namespace": lambda o: o["metadata"].get("namespace"),
           "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName")}


def _field_matcher(selector: str, kind: Kind):
    requirements = []
    for part in filter(None, (p.strip() for p in selector.split(","))):
        match = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", part)
        if not match or match[1] not in _FIELDS or (match[1] == "spec.nodeName"
                                                    and kind.kind != "Pod"):
            raise ApiStatus(400, "BadRequest",
                            f'"{part}" is not a known field selector for {kind.plural}')
        getter, negate, value = _FIELDS[match[1]], match[2] == "!=", match[3]
        requirements.append(lambda obj, g=getter, v=value, n=negate: (g(obj) == v) != n)
    return lambda obj: all(requirement(obj) for requirement in requirements)


@attrs.define(kw_only=True)
class StrictApiServer(kmock.KubernetesEmulator):
    """kmock's emulator answering through ``Store``'s strict semantics."""

    store: Store = attrs.field(factory=Store)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        path = raw.path if raw is not None else str(request.url.path)
        content_type = request.headers.get("Content-Type", "") if request.headers else ""
        body: object = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                return _json(ApiStatus(400, "BadRequest", "the body is not JSON").body, 400)
        try:
            status, payload = self.store.handle(
                str(request.method.value).upper(), path, dict(request.params), content_type, body,
                request.headers.get("Authorization", "") if request.headers else "")
        except ApiStatus as error:
            return _json(error.body, error.code)
        if isinstance(payload, str):
            return aiohttp.web.Response(text=payload, status=status)
        return _json(payload, status)


def _json(payload: object, status: int) -> aiohttp.web.Response:
    """JSON as the API server sends it: ``Content-Type: application/json``, no charset."""
    return aiohttp.web.Response(body=json.dumps(payload).encode(), status=status,
                                content_type="application/json")


class RunningApiServer:
    """The stand-in server on 127.0.0.1 in a thread of its own, for synchronous tests."""

    def __init__(self, ssl_context=None):
        self.handler = StrictApiServer()
        self.store = self.handler.store
        self._ssl = ssl_context
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RunningApiServer:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("the stand-in API server did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        options = {"host": "127.0.0.1"}
        if self._ssl is not None:
            context = self._ssl

            class TlsServer(RawTestServer):
                async def start_server(self, **kwargs):
                    kwargs["ssl"] = context
                    return await super().start_server(**kwargs)

            options["server_cls"] = TlsServer
        async with self.handler, kmock.Server(self.handler, **options) as server:
            scheme = "https" if self._ssl is not None else "http"
            self.url = f"{scheme}://127.0.0.1:{server.port}"
            self._ready.set()
            await self._stop.wait()

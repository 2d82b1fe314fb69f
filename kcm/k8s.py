"""The Kubernetes API: the only module that imports the client library (lightkube).

Imported lazily, only by commands that talk to the API. Objects travel as plain dicts.
The API server is found as kubectl finds it: the in-cluster service account when
``KUBERNETES_SERVICE_HOST`` is set, else ``$KUBECONFIG``, else ``~/.kube/config``.

Every call goes through ``_call``: transient failures (the server unreachable, 429,
5xx, and 409 for read-modify-write operations, which re-read before retrying) are
retried with exponential backoff for at most ``KCM_API_RETRY_SECONDS`` (default 30);
anything else becomes a ``KubeError`` naming the object and the server's reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx2
from lightkube import ApiError, Client, KubeConfig
from lightkube.config.kubeconfig import SERVICE_ACCOUNT
from lightkube.core.exceptions import ConfigError as LightkubeConfigError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.types import PatchType

from kcm import env
from kcm.errors import KcmError
from kcm.names import GROUP, NRT_API_VERSION, NRT_GROUP, NRT_PLURAL

T = TypeVar("T")


class KubeError(KcmError):
    """An API call failed; ``code`` is the HTTP status (0 when the server was unreachable)."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Kind:
    """An API resource kcm reads or writes."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = False

    def describe(self, name: str, namespace: str | None = None) -> str:
        where = f"{namespace}/" if namespace else ""
        return f"{self.kind} {where}{name}"


NODE = Kind("", "v1", "Node", "nodes")
POD = Kind("", "v1", "Pod", "pods", namespaced=True)
NODE_REPORT = Kind(GROUP, "v1", "NodeReport", "nodereports")
NODE_RESOURCE_TOPOLOGY = Kind(NRT_GROUP, NRT_API_VERSION.rpartition("/")[2],
                              "NodeResourceTopology", NRT_PLURAL)


def node_name(flag: str | None) -> str:
    name = env.node_name(flag)
    if not name:
        raise KcmError("no node name: pass --node-name or set NODE_NAME (the downward API's "
                       "spec.nodeName)")
    return name


def load_config() -> KubeConfig:
    """In-cluster service account, else $KUBECONFIG, else ~/.kube/config."""
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            if not os.environ.get("KUBERNETES_SERVICE_PORT"):
                raise KcmError("KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not")
            account = env.service_account_dir(SERVICE_ACCOUNT)
            return KubeConfig.from_service_account(service_account=account)
        path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        if not os.path.exists(path):
            raise KcmError(f"no Kubernetes configuration: not in a cluster and {path} "
                           "does not exist")
        return KubeConfig.from_file(path)
    except (LightkubeConfigError, OSError, ValueError, KeyError) as error:
        raise KcmError(f"cannot load the Kubernetes configuration: {error}") from None


class KubeClient:
    """Thin adapter over lightkube: one method per operation kcm needs, dicts in and out."""

    def __init__(self, client: Client | None = None, retry_seconds: float | None = None):
        if retry_seconds is None:
            retry_seconds = env.api_retry_seconds()
        self.retry_seconds = retry_seconds
        self._client = client or Client(config=load_config(), field_manager="kcm")
        self._types: dict[Kind, type] = {}

    def _type(self, kind: Kind):
        if kind not in self._types:
            make = create_namespaced_resource if kind.namespaced else create_global_resource
            self._types[kind] = make(kind.group, kind.version, kind.kind, kind.plural)
        return self._types[kind]

    # -- calls -------------------------------------------------------------------

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict | None:
        """The object, or None when it does not exist."""
        try:
            return self._call(f"get {kind.describe(name, namespace)}",
                              lambda: _as_dict(self._client.get(self._type(kind), name,
                                                                namespace=namespace)))
        except KubeError as error:
            if error.code == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str | None = None,
             labels: dict[str, str] | None = None, fields: dict[str, str] | None = None) -> list:
        what = f"list {kind.plural}"
        return self._call(what, lambda: [_as_dict(item) for item in self._client.list(
            self._type(kind), namespace=namespace, labels=labels, fields=fields)])

    def create(self, kind: Kind, obj: dict) -> dict:
        meta = obj.get("metadata", {})
        what = f"create {kind.describe(meta.get('name', '?'), meta.get('namespace'))}"
        return self._call(what, lambda: _as_dict(self._client.create(
            self._type(kind)(obj) if not isinstance(obj, self._type(kind)) else obj,
            namespace=meta.get("namespace") if kind.namespaced else None)))

    def replace(self, kind: Kind, obj: dict) -> dict:
        meta = obj.get("metadata", {})
        what = f"replace {kind.describe(meta.get('name', '?'), meta.get('namespace'))}"
        return self._call(what, lambda: _as_dict(self._client.replace(
            self._type(kind)(obj), namespace=meta.get("namespace") if kind.namespaced else None)))

    def patch(self, kind: Kind, name: str, patch: dict | list, *, status: bool = False,
              json_patch: bool = False, namespace: str | None = None) -> dict:
        """A merge patch (RFC 7386), or a JSON patch (RFC 6902) with ``json_patch``;
        on the status subresource with ``status``."""
        resource = self._type(kind)
        target = resource.Status if status else resource
        patch_type = PatchType.JSON if json_patch else PatchType.MERGE
        what = f"patch {kind.describe(name, namespace)}{' status' if status else ''}"
        return self._call(what, lambda: _as_dict(self._client.patch(
            target, name, patch, namespace=namespace, patch_type=patch_type)))

    def server_version(self) -> dict:
        """The API server's ``/version`` (major, minor, gitVersion, ...)."""
        def fetch() -> dict:
            # lightkube has no call for /version: its HTTP client has the base URL and auth.
            response = self._client._client._client.get("/version")
            response.raise_for_status()
            return response.json()

        return self._call("get the server version", fetch)

    def delete(self, kind: Kind, name: str, namespace: str | None = None) -> bool:
        """Delete; False when it was already gone."""
        try:
            self._call(f"delete {kind.describe(name, namespace)}",
                       lambda: self._client.delete(self._type(kind), name, namespace=namespace))
            return True
        except KubeError as error:
            if error.code == 404:
                return False
            raise

    def log(self, name: str, namespace: str, container: str | None = None,
            tail_lines: int = 20) -> list[str]:
        return self._call(
            f"read the log of Pod {namespace}/{name}",
            lambda: list(self._client.log(name, namespace=namespace, container=container,
                                          tail_lines=tail_lines)))

    def update(self, kind: Kind, name: str, change: Callable[[dict], dict | list | None], *,
               status: bool = False, json_patch: bool = False) -> dict | None:
        """Read-modify-write: ``change(current)`` returns the patch to send (None: no
        change). The patch should carry the resourceVersion it was computed from, so a
        concurrent writer makes it fail with 409, which re-reads and retries."""
        def attempt() -> dict | None:
            current = self._client.get(self._type(kind), name)
            patch = change(_as_dict(current))
            if patch is None:
                return None
            resource = self._type(kind)
            return _as_dict(self._client.patch(
                resource.Status if status else resource, name, patch,
                patch_type=PatchType.JSON if json_patch else PatchType.MERGE))

        return self._call(f"update {kind.describe(name)}", attempt, retry_conflicts=True)

    # -- retries -------------------------------------------------------------------

    def _call(self, what: str, operation: Callable[[], T], retry_conflicts: bool = False) -> T:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        while True:
            try:
                return operation()
            except ApiError as error:
                status = error.status
                code = status.code or error.response.status_code
                transient = code == 429 or code >= 500 or (retry_conflicts and code == 409)
                failure = KubeError(f"{what}: {code} {status.reason or ''}: "
                                    f"{status.message or ''}".replace(" : ", ": "), code)
            except httpx2.HTTPStatusError as error:
                code = error.response.status_code
                transient = code == 429 or code >= 500
                failure = KubeError(f"{what}: HTTP {code}", code)
            except httpx2.TransportError as error:
                transient = True
                failure = KubeError(f"{what}: cannot reach the API server: "
                                    f"{error or type(error).__name__}")
            if not transient or time.monotonic() + delay > deadline:
                raise failure
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _as_dict(obj) -> dict:
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()

"""The admission server: HTTPS only (TLS 1.2+), ``POST /mutate`` with AdmissionReview
``admission.k8s.io/v1``, and ``GET /healthz``.

Connections are bounded in number and time by ``kcm.serving``. Each connection is
wrapped with the TLS context current at accept time, and the context is rebuilt when
the certificate or key file changes, so a rotated certificate is served without a
restart. Bad requests (too large, wrong content type, malformed JSON, not an
AdmissionReview) get a 4xx without disturbing other connections; a well-formed
review of something other than a Pod is allowed unchanged. A bug in the patch logic
is a 500 (and logged), never mistaken for the client's fault.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading

from kcm import log
from kcm.errors import KcmError
from kcm.mutate import WorkloadSettings, patch_for, shape_error
from kcm.serving import GuardedHandler, GuardedHTTPServer

MAX_BODY = 1 << 20
ADMISSION_VERSION = "admission.k8s.io/v1"


class BadReview(Exception):
    """A request that is not a well-formed AdmissionReview; the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def review_response(body: bytes, settings: WorkloadSettings) -> dict:
    """The AdmissionReview answering ``body``; BadReview when it is not one."""
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadReview(400, f"malformed JSON: {error}") from None
    if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
        raise BadReview(400, "not an AdmissionReview")
    if review.get("apiVersion") != ADMISSION_VERSION:
        raise BadReview(400, f"unsupported AdmissionReview version {review.get('apiVersion')!r} "
                             f"(this webhook speaks {ADMISSION_VERSION})")
    request = review.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
        raise BadReview(400, "the AdmissionReview has no request with a uid")
    response: dict = {"uid": request["uid"], "allowed": True}
    kind = request.get("kind") or {}
    pod = request.get("object")
    if (isinstance(kind, dict) and kind.get("kind") == "Pod" and kind.get("group", "") == ""
            and isinstance(pod, dict) and request.get("operation", "CREATE") == "CREATE"):
        problem = shape_error(pod)
        if problem:
            raise BadReview(400, f"malformed Pod: {problem}")
        patch = patch_for(pod, settings)
        if patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": ADMISSION_VERSION, "kind": "AdmissionReview", "response": response}


class Certificates:
    """The TLS context, rebuilt when the certificate or key file changes."""

    def __init__(self, cert_file: str, key_file: str):
        self.cert_file = cert_file
        self.key_file = key_file
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._context = self._load()

    def _fingerprint(self) -> tuple:
        stats = [os.stat(path) for path in (self.cert_file, self.key_file)]
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)

    def _load(self) -> ssl.SSLContext:
        try:
            stamp = self._fingerprint()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as error:
            raise KcmError(f"cannot load the TLS certificate {self.cert_file} and key "
                           f"{self.key_file}: {error}") from None
        self._stamp = stamp
        return context

    def current(self) -> ssl.SSLContext:
        with self._lock:
            try:
                changed = self._fingerprint() != self._stamp
            except OSError:
                changed = False
            if changed:
                try:
                    self._context = self._load()
                    log.info(f"reloaded the TLS certificate {self.cert_file}")
                except KcmError as error:  # half-written files: keep serving the old one
                    log.warning(str(error))
            return self._context


class WebhookServer(GuardedHTTPServer):
    def __init__(self, address: tuple[str, int], certificates: Certificates,
                 settings: WorkloadSettings):
        self.certificates = certificates
        self.settings = settings
        super().__init__(address, _Handler)

    def get_request(self):
        sock, address = self.socket.accept()
        context = self.certificates.current()
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


class _Handler(GuardedHandler):
    server: WebhookServer

    def setup(self) -> None:
        super().setup()
        self.connection.do_handshake()

    def _reply(self, status: int, payload: dict | str) -> None:
        body = (json.dumps(payload) if isinstance(payload, dict) else payload).encode()
        content_type = "application/json" if isinstance(payload, dict) else "text/plain"
        self.reply(status, body, content_type)

    def _error(self, status: int, message: str) -> None:
        self._reply(status, {"error": message})

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._reply(200, "ok")
        else:
            self._error(404, f"no such path {self.path}")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/mutate":
            self._error(404, f"no such path {self.path}")
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        length_text = self.headers.get("Content-Length", "")
        if not length_text.isdigit():
            self._error(411, "a Content-Length is required")
            self.close_connection = True
            return
        length = int(length_text)
        if length > MAX_BODY:
            self._error(413, f"the body is larger than {MAX_BODY} bytes")
            self.close_connection = True
            return
        body = self.rfile.read(length)
        if content_type != "application/json":
            self._error(415, f"expected Content-Type application/json, got {content_type!r}")
            return
        try:
            answer = review_response(body, self.server.settings)
        except BadReview as error:
            self._error(error.status, str(error))
            return
        except Exception as error:  # a bug of ours: say so, keep serving
            log.log("ERROR", f"admission review failed: {type(error).__name__}: {error}")
            self._error(500, f"internal error: {type(error).__name__}")
            return
        self._reply(200, answer)

    def do_PUT(self) -> None:
        self._error(405, "only POST /mutate and GET /healthz")

    do_DELETE = do_PATCH = do_PUT


def serve(address: str, port: int, certificates: Certificates,
          settings: WorkloadSettings) -> WebhookServer:
    return WebhookServer((address, port), certificates, settings)

"""The HTTP server under kcm's webhook and metrics endpoint: no client can take it down.

One thread per connection (the API server keeps connections open and sends
requests concurrently), with bounds a stdlib server lacks:

- at most ``max_connections`` at once; a new connection past that evicts the
  connection that has waited longest for its next request (an idle flood cannot
  lock out a real client), and is refused only when every slot is mid-request;
- a total deadline per phase, not per read: a new connection must deliver its request
  line within ``first_request_timeout``, a request must be read and answered within
  ``request_timeout``, and a kept-alive connection may idle for ``idle_timeout``. A
  reaper thread shuts down connections past their deadline, so a client sending one
  byte every few seconds is cut off too.

SIGPIPE stays ignored in kcm (see ``kcm.cli``): a client that hangs up mid-answer
ends its own connection with an error, which is logged at debug level.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kcm import log
from kcm.errors import KcmError

WAITING, BUSY = "waiting", "busy"


class GuardedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    max_connections = 256
    first_request_timeout = 10.0
    request_timeout = 10.0
    idle_timeout = 30.0
    reap_every = 0.2

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]):
        self._connections: dict[socket.socket, tuple[str, float, float]] = {}
        self._guard = threading.Lock()
        self._stopped = threading.Event()
        try:
            super().__init__(address, handler)
        except (OSError, OverflowError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise KcmError(f"cannot listen on {address[0] or '*'}:{address[1]}: {reason}") from None
        threading.Thread(target=self._reap, name="reaper", daemon=True).start()

    # -- connection phases -------------------------------------------------------

    def mark(self, connection: socket.socket, phase: str) -> None:
        """Record that ``connection`` now waits for a request or works on one."""
        limit = self.request_timeout if phase == BUSY else self.idle_timeout
        now = time.monotonic()
        with self._guard:
            if connection in self._connections:
                self._connections[connection] = (phase, now, now + limit)

    def connection_count(self) -> int:
        with self._guard:
            return len(self._connections)

    def process_request(self, request, client_address) -> None:
        if not self._admit(request):
            log.debug(f"refused a connection from {client_address[0]}: all slots busy")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _admit(self, request: socket.socket) -> bool:
        now = time.monotonic()
        with self._guard:
            if len(self._connections) >= self.max_connections:
                waiting = [(since, conn) for conn, (phase, since, _) in self._connections.items()
                           if phase == WAITING]
                if not waiting:
                    return False
                _, oldest = min(waiting, key=lambda item: item[0])
                del self._connections[oldest]
                _cut(oldest)
            self._connections[request] = (WAITING, now, now + self.first_request_timeout)
        return True

    def shutdown_request(self, request) -> None:
        with self._guard:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def _reap(self) -> None:
        while not self._stopped.wait(self.reap_every):
            now = time.monotonic()
            with self._guard:
                late = [conn for conn, (_, _, deadline) in self._connections.items()
                        if deadline < now]
                for conn in late:
                    del self._connections[conn]
            for conn in late:
                _cut(conn)

    def handle_error(self, request, client_address) -> None:
        log.debug(f"connection from {client_address[0]} failed")

    def server_close(self) -> None:
        self._stopped.set()
        super().server_close()


class GuardedHandler(BaseHTTPRequestHandler):
    """A handler whose phases the server tracks; ``timeout`` bounds each single read."""

    protocol_version = "HTTP/1.1"
    server: GuardedHTTPServer

    def setup(self) -> None:
        self.timeout = self.server.request_timeout
        super().setup()

    def parse_request(self) -> bool:
        self.server.mark(self.connection, BUSY)  # the request line has arrived
        return super().parse_request()

    def handle_one_request(self) -> None:
        super().handle_one_request()
        self.server.mark(self.connection, WAITING)

    def log_message(self, format: str, *args) -> None:
        log.debug(f"{self.client_address[0]} {format % args}")

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _cut(connection: socket.socket) -> None:
    """End a connection whose thread may be blocked reading it (its thread then exits).

    The plain socket's shutdown, also for a TLS socket: the TLS object's own would
    drop its state under the reading thread."""
    try:
        socket.socket.shutdown(connection, socket.SHUT_RDWR)
    except OSError:
        pass

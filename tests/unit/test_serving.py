"""kcm's guarded HTTP server over real sockets on 127.0.0.1, with short deadlines."""

import http.client
import socket
import threading
import time

import pytest

from kcm.serving import GuardedHandler, GuardedHTTPServer
from tests.integration.workloads import wait_for


class Hello(GuardedHandler):
    def do_GET(self) -> None:
        self.reply(200, b"hello", "text/plain")


class Quick(GuardedHTTPServer):
    max_connections = 4
    first_request_timeout = 0.5
    request_timeout = 0.5
    idle_timeout = 0.5
    reap_every = 0.05


@pytest.fixture
def server():
    server = Quick(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def get(server) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    connection.request("GET", "/")
    return connection.getresponse().status


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_slow_sender_is_cut_off_by_the_total_deadline(server):
    """One byte every 0.2 s never trips a per-read timeout; the total deadline ends it."""
    sock = socket.create_connection(("127.0.0.1", server.server_address[1]))
    sent = 0
    try:
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            sock.send(bytes([byte]))
            sent += 1
            time.sleep(0.2)
    except OSError:
        pass
    assert sent < 20  # cut after about 1 s (0.5 s for the request line, 0.5 s for the rest)
    sock.close()


def test_an_idle_connection_is_closed_after_the_idle_deadline(server):
    sock = socket.create_connection(("127.0.0.1", server.server_address[1]))
    assert closed_within(sock, 10)
    wait_for(lambda: server.connection_count() == 0)


class Patient(Quick):
    """Deadlines far away: only eviction can close an idle connection."""

    first_request_timeout = idle_timeout = 60.0


def test_past_the_limit_the_longest_idle_connection_makes_room():
    server = Patient(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        idle = [socket.create_connection(("127.0.0.1", server.server_address[1]))
                for _ in range(4)]
        wait_for(lambda: server.connection_count() == 4)
        assert get(server) == 200
        assert closed_within(idle[0], 5)
        assert not closed_within(idle[3], 0.2)
        for sock in idle:
            sock.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_listening_on_a_port_in_use_is_one_clear_error(server):
    from kcm.errors import KcmError

    port = server.server_address[1]
    with pytest.raises(KcmError, match=rf"cannot listen on 127.0.0.1:{port}: Address already"):
        Quick(("127.0.0.1", port), Hello)

"""services.http: the one loopback server base binds 127.0.0.1 only, keeps its port, answers only its verbs."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from helpers.idempotency import HttpResponse
from helpers.services.http import HOST, LoopbackServer, free_port, port_is_free, read_body, send
from tests.net import listening


class Echo(LoopbackServer):
    methods = ("POST",)
    label = "the echo server"

    def serve(self, http: BaseHTTPRequestHandler) -> None:
        send(http, HttpResponse(200, {"Content-Type": "text/plain"}, read_body(http)))


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_it_serves_on_loopback_only_and_keeps_its_port_across_a_restart() -> None:
    server = Echo().start()
    try:
        port = server.port
        assert server.url == f"http://{HOST}:{port}"
        assert post(server.url, b"hello") == (200, b"hello")
        server.stop()
        assert not server.running and not listening(HOST, port)
        server.start()
        assert server.port == port, "a caller's URL must stay valid across a restart"
        assert post(server.url, b"again") == (200, b"again")
    finally:
        server.stop()


def test_a_verb_it_does_not_answer_gets_501_and_nothing_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with Echo() as server:
        request = urllib.request.Request(server.url, method="GET")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 501
    assert capfd.readouterr().err == "", "request logs would leak into notebook outputs"


def test_the_bound_address_is_not_every_interface() -> None:
    with Echo() as server:
        assert server._server is not None
        assert server._server.server_address[0] == "127.0.0.1"


def test_port_before_start_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="the echo server has no port yet"):
        _ = Echo().port


def test_free_port_is_free_and_a_listening_port_is_not() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as taken:
        taken.bind((HOST, port))
        taken.listen()
        assert not port_is_free(port)


class Slow(LoopbackServer):
    """Answers each request after ``delay`` seconds, as a slow charge would; tells when it has answered."""

    methods = ("POST",)

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.answered = threading.Event()

    def serve(self, http: BaseHTTPRequestHandler) -> None:
        body = read_body(http)
        time.sleep(self.delay)
        send(http, HttpResponse(200, {"Content-Type": "text/plain"}, body))
        self.answered.set()


def _raw_post(port: int, *, give_up_after: float | None = None, half_close: bool = False) -> bytes:
    with socket.create_connection((HOST, port), timeout=5) as client:
        client.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        if half_close:
            client.shutdown(socket.SHUT_WR)  # done sending, still reading
        if give_up_after is not None:
            time.sleep(give_up_after)
            return b""  # closes without reading: a caller that timed out
        chunks = []
        while chunk := client.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)


def test_an_answer_that_finds_the_caller_gone_is_counted() -> None:
    with Slow(delay=0.3) as server:
        assert _raw_post(server.port).endswith(b"hi") and server.answered.wait(5)
        assert server.closed_by_caller == 0, "a caller that waited for its answer is not counted"
        server.answered.clear()
        _raw_post(server.port, give_up_after=0.05)
        assert server.answered.wait(5)
        assert server.closed_by_caller == 1, "the caller closed before the answer: counted, deterministically"


def test_a_half_closed_caller_still_gets_its_answer() -> None:
    with Slow(delay=0.1) as server:
        assert _raw_post(server.port, half_close=True).endswith(b"hi")

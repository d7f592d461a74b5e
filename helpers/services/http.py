"""One loopback HTTP server base: every HTTP service of the course runs on it, on 127.0.0.1, in a background thread.

The payments API, notebook 04's orders API and lab 04's endpoint are each a :class:`LoopbackServer` with one method,
:meth:`LoopbackServer.serve`, called for every request whatever its verb. The base owns what they would otherwise
each get slightly different: the loopback address (never every interface), a listen backlog that holds a burst of
clients, quiet request logs (nbval compares stderr), a read timeout per request, the port kept across a restart (so
a caller's URL stays valid while the server is "down"), and a caller that gave up counted instead of printed.
"""

from __future__ import annotations

import select
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

from helpers.idempotency import HttpResponse

HOST = "127.0.0.1"
#: Connections the kernel queues while every handler thread is busy (the stdlib default of 5 makes a burst wait).
BACKLOG = 1024
#: Every verb a handler can be asked for; a server says which it answers in :attr:`LoopbackServer.methods`.
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether ``port`` on ``host`` can be bound now (a server that picks its own port asks this first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: a closed port is free
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class _ThreadingServer(ThreadingHTTPServer):
    request_queue_size = BACKLOG
    daemon_threads = True
    block_on_close = False
    closed_by_caller = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A caller that gave up (a timed-out API destination call) closes its end first: the answer finds the
        # connection gone. That is the caller's choice, not the server's failure: counted, not printed to stderr.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            self.closed_by_caller += 1
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """A real HTTP server on 127.0.0.1: ``with Server() as s: requests.get(s.url + ...)``; subclasses define serve."""

    #: The verbs this server answers; any other gets the standard library's 501.
    methods: ClassVar[tuple[str, ...]] = ALL_METHODS
    #: The background thread's name (seen in a debugger, a thread dump).
    thread_name: ClassVar[str] = "loopback-http"
    #: What this server is called in the message of a call made while it is down.
    label: ClassVar[str] = "the server"

    def __init__(self, *, port: int = 0, request_timeout: float | None = 10.0) -> None:
        """``port`` 0 picks a free one at the first start and keeps it for later starts; ``request_timeout``:
        seconds a client may take over each read of its request (then the handler's read raises TimeoutError)."""
        self._port = port
        self.request_timeout = request_timeout
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    # -- what a subclass writes -----------------------------------------------------------------------------------
    def serve(self, http: BaseHTTPRequestHandler) -> None:
        """Answer one request (``http.command``, ``http.path``, ``http.headers``, ``http.rfile``)."""
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._server is not None:
            return self
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = owner.request_timeout  # every read: request line, headers and body

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: request logs on stderr would leak into notebook outputs."""

        for method in self.methods:
            setattr(Handler, f"do_{method}", lambda handler: owner.serve(handler))
        self._server = _ThreadingServer((HOST, self._port), Handler)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (a caller now gets "connection refused"); ``start()`` again serves on the same port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The port this server listens on (or will again after a restart); an error before the first start."""
        if not self._port:
            raise RuntimeError(f"{self.label} has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def closed_by_caller(self) -> int:
        """Answers that found the connection already closed by a caller that gave up waiting (since start)."""
        return self._server.closed_by_caller if self._server is not None else 0


def send(http: BaseHTTPRequestHandler, response: HttpResponse) -> None:
    """Write ``response`` (status, headers, body with its Content-Length); a client that went away is not an error.

    A caller that gave up first (closed its end, as a timed-out API destination call does) is counted in
    ``closed_by_caller``: noticed before the write (:func:`caller_gone`) or by the write failing. The answer is still
    written when the caller only half-closed, so such a client gets it.
    """
    gone = caller_gone(http)
    try:
        http.send_response(response.status)
        for name, value in response.headers.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(response.body)))
        http.end_headers()
        if http.command != "HEAD":
            http.wfile.write(response.body)
    except OSError:
        http.close_connection = True  # the client went away; nothing to tell it
        gone = True
    if gone and isinstance(http.server, _ThreadingServer):
        http.server.closed_by_caller += 1


def caller_gone(http: BaseHTTPRequestHandler) -> bool:
    """Whether the caller has closed its end of the connection (its FIN or a reset arrived), without blocking.

    The next read would return end-of-file at once: ``select`` says the socket is readable and a peek reads no byte.
    A pipelined next request is readable too, but peeks data, so it does not count.
    """
    sock = http.connection
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset by the peer, or already closed here
        return True


def read_body(http: BaseHTTPRequestHandler) -> bytes:
    """The body as its Content-Length frames it (empty when there is none); a lenient reader for course servers
    whose callers are well behaved. The payments API validates framing itself (411, 413, 408)."""
    length = int(http.headers.get("Content-Length") or 0)
    return http.rfile.read(length) if length > 0 else b""

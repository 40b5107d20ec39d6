"""A real local HTTP server that plays back DeFiLlama-like responses for tests and benchmarks.

Clients under test talk real HTTP (sockets, Content-Length, timeouts, broken connections), so
retry, timeout and truncation handling is exercised end to end without mocks::

    with PayloadServer() as srv:
        srv.set("/pools", generate_pools())
        srv.script("/protocols", [Response(status=500), Response(status=500)])  # then the static route
        requests.get(srv.url("/pools"), timeout=5)
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

__all__ = ["PayloadServer", "Response"]

Body = bytes | str | dict | list


@dataclass
class Response:
    """One HTTP answer.

    ``delay`` sleeps before answering (to hang past a client's timeout); ``truncate_at`` sends a
    Content-Length for the whole body but closes the connection after that many body bytes.
    """

    status: int = 200
    body: Body = b""
    headers: dict[str, str] | None = None
    delay: float = 0.0
    truncate_at: int | None = None
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class _State:
    static: dict[str, Response] = field(default_factory=dict)
    scripts: dict[str, deque[Response]] = field(default_factory=dict)
    handlers: list[tuple[str, Callable[[str], Response | None]]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


_NOT_FOUND = Response(status=404, body={"error": "not found"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the CDN; clients reuse pooled connections
    timeout = 30  # idle keep-alive connections give up eventually
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle + delayed ACK add
        # ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # tests should not spam stderr with access logs

    def _serve(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain a request body so keep-alive stays in sync
        path = urlsplit(self.path).path
        with state.lock:
            state.requests.append((self.command, self.path, dict(self.headers.items())))
            queue = state.scripts.get(path)
            resp = queue.popleft() if queue else state.static.get(path)
            handlers = list(state.handlers)
        if resp is None:
            prefix_fn = next((fn for prefix, fn in handlers if path.startswith(prefix)), None)
            try:
                resp = (prefix_fn(self.path) if prefix_fn else None) or _NOT_FOUND
            except Exception as exc:  # a broken test handler should read as a 500, not a dropped socket
                resp = Response(status=500, body=f"handler error: {exc!r}", content_type="text/plain")
        if resp.delay and state.stopping.wait(resp.delay):
            self.close_connection = True
            return  # server is shutting down: drop the hanging request instead of answering it
        body = resp.encoded()
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (resp.headers or {}).items():
            self.send_header(name, value)
        if resp.truncate_at is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if resp.truncate_at is not None:
            self.wfile.write(body[: resp.truncate_at])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # the client sees EOF mid-body
            return
        self.wfile.write(body)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except OSError:
            # The client went away (timed out, or we cut it off): nothing to report.
            self.close_connection = True

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops SYNs under concurrency (1 s retransmit stalls)

    def __init__(self, state: _State) -> None:
        self.state = state
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Cut idle keep-alive connections so their handler threads end now, not after a timeout."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # disconnects are expected in these tests; keep stderr quiet


class PayloadServer:
    """Serve static, scripted and prefix-handled routes on ``127.0.0.1`` at a free port."""

    def __init__(self) -> None:
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> PayloadServer:
        if self._server is None:
            self._state.stopping.clear()
            self._server = _Server(self._state)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="PayloadServer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._state.stopping.set()  # wake handlers sleeping on a `delay`
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> PayloadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("PayloadServer is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- routes --------------------------------------------------------------------------------
    def set(self, path: str, body: Body, status: int = 200, headers: dict[str, str] | None = None,
            content_type: str = "application/json") -> None:
        """Static route: served every time (after any scripted responses for ``path`` run out)."""
        resp = Response(status=status, body=body, headers=headers, content_type=content_type)
        resp.body = resp.encoded()  # encode once, not per request (bodies can be 10+ MB)
        with self._state.lock:
            self._state.static[path] = resp

    def script(self, path: str, responses: list[Response]) -> None:
        """Queue responses for ``path``, consumed one per request, in order."""
        with self._state.lock:
            self._state.scripts.setdefault(path, deque()).extend(responses)

    def set_handler(self, prefix: str, fn: Callable[[str], Response | None]) -> None:
        """Route every path starting with ``prefix`` (e.g. ``/chart/``) to ``fn(path)``.

        ``fn`` gets the request path including any query string; returning ``None`` means 404.
        Longer prefixes win; setting a prefix again replaces its handler.
        """
        with self._state.lock:
            self._state.handlers = [h for h in self._state.handlers if h[0] != prefix]
            self._state.handlers.append((prefix, fn))
            self._state.handlers.sort(key=lambda h: -len(h[0]))

    def clear(self) -> None:
        """Forget routes, scripts, handlers and the request log."""
        with self._state.lock:
            self._state.static.clear()
            self._state.scripts.clear()
            self._state.handlers.clear()
            self._state.requests.clear()

    # -- observations --------------------------------------------------------------------------
    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """Snapshot of ``(method, path, headers)`` received so far, oldest first."""
        with self._state.lock:
            return list(self._state.requests)

    def count(self, path: str) -> int:
        """Requests whose path (with or without the query string) equals ``path``."""
        with self._state.lock:
            return sum(1 for _, p, _ in self._state.requests if p == path or urlsplit(p).path == path)

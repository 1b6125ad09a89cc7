"""A scripted JSON-over-HTTP server on 127.0.0.1 that records every request it gets.

The provider fakes build on it: a test queues replies (or callables that see the parsed
request), points a real SDK client at `server.url`, then asserts on `server.requests`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Recorded:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Scripted = Reply | Callable[[Recorded], Reply]


class ScriptedServer:
    """Serves queued replies in order; subclasses route paths and say what an empty queue means."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting
    def push(self, *replies: Scripted) -> None:
        with self._lock:
            self._script.extend(replies)

    def next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            item = self._script.popleft() if self._script else None
        if item is None:
            return self.exhausted(request)
        return item(request) if callable(item) else item

    @property
    def pending(self) -> int:
        return len(self._script)

    # -- to override
    def handle(self, request: Recorded) -> Reply:
        return self.next_reply(request)

    def exhausted(self, request: Recorded) -> Reply:
        return Reply(500, {"error": f"fake server: no scripted reply left for {request.path}"})

    # -- lifecycle
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ScriptedServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)  # short poll: quick shutdown
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):  # -> Self, for the subclasses
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs: the SDKs reuse connections
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            parts = urlsplit(self.path)
            request = Recorded(self.command, parts.path, parts.query,
                               {k.lower(): v for k, v in self.headers.items()}, body)
            with server._lock:
                server.requests.append(request)
            reply = server.handle(request)
            data = b"" if reply.body is None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    return Handler

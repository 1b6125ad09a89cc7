"""Socket Mode: the app opens a WebSocket (URL from apps.connections.open) and receives envelopes.

Each envelope carries an `envelope_id` the app must ack within 3 seconds by sending
`{"envelope_id": …, "payload": …}` back; the payload of the ack answers slash commands and
view submissions. The server greets each connection with `hello`, as Slack does.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from bot.slack.workspace.state import APP_ID

log = logging.getLogger(__name__)


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.payload: Any = None


class SocketHub:
    """The WebSocket server and its open connections; `send` waits for the app's ack."""

    def __init__(self, host: str, on_change: Callable[[], None] = lambda: None) -> None:
        self._tickets: set[str] = set()
        self._connections: list[ServerConnection] = []
        self._waiters: dict[str, _Waiter] = {}
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._on_change = on_change
        self._server: Server = serve(self._handle, host, 0, compression=None,
                                     ping_interval=None, server_header=None)
        self.host = host
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="workspace-socket-mode", daemon=True)
        self._thread.start()

    def new_url(self) -> str:
        """A one-use URL for apps.connections.open, like Slack's `wss://…/link/?ticket=…`."""
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={APP_ID}"

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._connections)

    def send(self, envelope: dict[str, Any], timeout: float) -> tuple[bool, Any]:
        """Send to one open connection; (acked in time, the ack's payload)."""
        waiter = _Waiter()
        with self._lock:
            if not self._connections:
                return False, None
            conn = self._connections[next(self._turn) % len(self._connections)]
            self._waiters[envelope["envelope_id"]] = waiter
        try:
            conn.send(json.dumps(envelope))
            acked = waiter.done.wait(timeout)
        except ConnectionClosed:
            acked = False
        finally:
            with self._lock:
                self._waiters.pop(envelope["envelope_id"], None)
        return acked, waiter.payload

    def close(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.send(json.dumps({"type": "disconnect", "reason": "warning",
                                      "debug_info": {"host": "sleuth-workspace"}}))
            except ConnectionClosed:
                pass
        self._server.shutdown()
        self._thread.join(timeout=5)

    def _handle(self, conn: ServerConnection) -> None:
        ticket = _query(conn.request.path if conn.request else "").get("ticket", "")
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        if not valid:
            conn.close(code=1008, reason="invalid ticket")  # a used or made-up URL
            return
        with self._lock:
            self._connections.append(conn)
        self._on_change()
        try:
            conn.send(json.dumps({"type": "hello", "num_connections": self.connected,
                                  "debug_info": {"host": "sleuth-workspace",
                                                 "approximate_connection_time": 3600},
                                  "connection_info": {"app_id": APP_ID}}))
            for raw in conn:
                self._on_frame(raw)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            self._on_change()

    def _on_frame(self, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("socket mode: ignoring a frame that is not JSON")
            return
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        with self._lock:
            waiter = self._waiters.get(envelope_id or "")
        if waiter is not None:
            waiter.payload = frame.get("payload")
            waiter.done.set()


def _query(path: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(path).query))

"""The workspace's HTTP server, and the handle that starts and stops it in a thread.

Routes: `/api/<method>` (Web API), `/upload/v1/…` (file upload URLs), `/files/…` (downloads),
`/response/<token>` (response URLs), `/` and `/static/…` (the page), `/ui/…` (the page's
state and a person's actions), `/admin/request_url` (where the app listens, app token only).
Socket Mode runs on a second port (see socketmode.py).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.errors import SleuthError
from bot.slack.workspace.actions import Actions
from bot.slack.workspace.credentials import Credentials, credentials_path
from bot.slack.workspace.delivery import ACK_TIMEOUT, RETRY_DELAYS, Delivery
from bot.slack.workspace.handles import Handles
from bot.slack.workspace.page import page_state, static_file
from bot.slack.workspace.ratelimit import RateLimiter
from bot.slack.workspace.socketmode import SocketHub
from bot.slack.workspace.state import APP_ID, BOT_USER_ID, TEAM_ID, Workspace
from bot.slack.workspace.webapi import ApiError, WebApi

log = logging.getLogger(__name__)

# What the app (manifest.yaml) subscribes to and offers; tests check they match the manifest.
BOT_EVENTS = ["app_mention", "reaction_added"]
COMMANDS = ["/investigate"]
LONG_POLL = 20.0


@dataclass
class RunningWorkspace:
    """A started workspace: its URLs and credentials, the state, and `stop()`."""

    url: str
    api_url: str
    credentials: Credentials
    workspace: Workspace
    actions: Actions
    delivery: Delivery
    _server: ThreadingHTTPServer = field(repr=False)
    _hub: SocketHub = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _home: Path = field(repr=False)

    def set_request_url(self, url: str | None) -> None:
        """Point deliveries at the app's Request URL after Slack's url_verification handshake."""
        if url:
            problem = self.delivery.verify_url(url)
            if problem:
                raise SleuthError(problem)
        self.credentials = self.credentials.model_copy(update={"request_url": url or None})
        self.credentials.to_file(credentials_path(self._home))
        self.workspace.touch()

    def stop(self) -> None:
        self.delivery.close()
        self._hub.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.workspace.close()


def start_workspace(home: Path, port: int = 0, *, host: str = "127.0.0.1",
                    request_url: str | None = None, bot_events: list[str] | None = None,
                    rate_limit: RateLimiter | None = None,
                    retry_delays: tuple[float, ...] = RETRY_DELAYS,
                    ack_timeout: float = ACK_TIMEOUT) -> RunningWorkspace:
    """Start the workspace whose data lives under `home/workspace`; `port=0` picks a free one.

    Credentials are written to `home/workspace/credentials.json` (made on the first start,
    kept after). `request_url` (when given; "" for none) replaces the stored one, verified at
    the first delivery, as when it is typed into Slack's app settings while the app is down.
    """
    folder = home / "workspace"
    ws = Workspace(folder / "workspace.db")
    try:
        server = ThreadingHTTPServer((host, port), _Handler)
    except OSError as exc:
        ws.close()
        raise SleuthError(f"cannot listen on {host}:{port} for the workspace: {exc}") from exc
    server.daemon_threads = True
    base = f"http://{host}:{server.server_address[1]}/"
    credentials = _credentials(folder, base, request_url)
    hub = SocketHub(host, on_change=ws.touch)
    handles = Handles()
    # `running` is bound below; deliveries read its credentials, which set_request_url replaces.
    delivery = Delivery(ws, lambda: running.credentials, hub, bot_events or BOT_EVENTS,
                        ack_timeout=ack_timeout, retry_delays=retry_delays)
    actions = Actions(ws, delivery, handles, lambda: base, COMMANDS)
    api = WebApi(ws, credentials, lambda: base, rate_limit or RateLimiter(), handles,
                 socket_url=hub.new_url, on_message=lambda c, m: _message_event(delivery, c, m),
                 on_reaction=lambda k, c, m, n: _reaction_event(delivery, ws, k, c, m, n))
    thread = threading.Thread(target=server.serve_forever, name="workspace-http", daemon=True)
    running = RunningWorkspace(url=base, api_url=base + "api/", credentials=credentials,
                               workspace=ws, actions=actions, delivery=delivery, _server=server,
                               _hub=hub, _thread=thread, _home=home)
    # The request handler class reaches the workspace through its server.
    server.app = {"api": api, "running": running, "hub": hub,  # type: ignore[attr-defined]
                  "handles": handles}
    thread.start()
    return running


def _credentials(folder: Path, base: str, request_url: str | None) -> Credentials:
    path = folder / "credentials.json"
    if path.is_file():
        try:
            found = Credentials.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError:
            found = None
    else:
        found = None
    found = found or Credentials.generate(team_id=TEAM_ID, app_id=APP_ID,
                                          bot_user_id=BOT_USER_ID)
    credentials = found.model_copy(update={
        "api_url": base + "api/", "page_url": base,
        "request_url": (request_url or None) if request_url is not None else found.request_url})
    credentials.to_file(path)
    return credentials


def _message_event(delivery: Delivery, channel: dict[str, Any], message: dict[str, Any]) -> None:
    """The bot's own messages reach it too when it subscribed to `message.*` (Bolt skips them)."""
    event = {"type": "message", "channel": channel["id"], "event_ts": message["ts"],
             "channel_type": "im" if channel["is_im"] else "channel",
             **{k: v for k, v in message.items() if k not in ("type", "reactions")}}
    delivery.send_event(event)


def _reaction_event(delivery: Delivery, ws: Workspace, kind: str, channel: dict[str, Any],
                    message: dict[str, Any], name: str) -> None:
    delivery.send_event({"type": kind, "user": BOT_USER_ID, "reaction": name,
                         "item_user": message["user"], "event_ts": ws.next_ts(),
                         "item": {"type": "message", "channel": channel["id"],
                                  "ts": message["ts"]}})


class _Handler(BaseHTTPRequestHandler):
    server_version = "SleuthWorkspace/1"
    protocol_version = "HTTP/1.1"

    # ---- plumbing ------------------------------------------------------------------------

    @property
    def app(self) -> dict[str, Any]:
        return self.server.app  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.command, urlsplit(self.path).path.split("/upload/")[0])

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        try:
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The page was closed while its long poll waited: nobody is left to answer.
            self.close_connection = True
            log.debug("the client of %s went away", urlsplit(self.path).path)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8", headers)

    def _args(self, body: bytes) -> dict[str, Any]:
        """Query string, then form or JSON body, as Slack accepts them."""
        args: dict[str, Any] = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        kind = self.headers.get("Content-Type", "")
        if body and kind.startswith("application/json"):
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ApiError("invalid_json")
            args.update(data)
        elif body:
            args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return args

    # ---- routes --------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/api/"):
            return self._api(path.removeprefix("/api/"), b"")
        if path == "/":
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        if path == "/ui/state":
            return self._state()
        if path.startswith("/files/"):
            return self._file(path.split("/")[2], "download" in urlsplit(self.path).query)
        self._json(404, {"ok": False, "error": "not_found"})

    def do_POST(self) -> None:
        path, body = urlsplit(self.path).path, self._body()
        if path.startswith("/api/"):
            return self._api(path.removeprefix("/api/"), body)
        if path.startswith("/upload/v1/"):
            return self._upload(path.split("/"), body)
        if path.startswith("/response/"):
            return self._response(path.removeprefix("/response/"), body)
        if path.startswith("/ui/"):
            return self._ui(path.removeprefix("/ui/"), body)
        if path == "/admin/request_url":
            return self._admin_request_url(body)
        self._json(404, {"ok": False, "error": "not_found"})

    def _api(self, method: str, body: bytes) -> None:
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        try:
            result = self.app["api"].call(method, self._args(body), token)
        except ApiError as exc:
            return self._json(exc.status, exc.body(), exc.headers)
        except json.JSONDecodeError:
            return self._json(200, {"ok": False, "error": "invalid_json"})
        self._json(200, result)

    def _upload(self, parts: list[str], body: bytes) -> None:
        # /upload/v1/<file id>/<key>
        ws = self.app["running"].workspace
        if len(parts) != 5 or not ws.store_upload(parts[3], parts[4], body):
            return self._send(404, b"invalid upload url", "text/plain")
        self._send(200, f"OK - {len(body)}".encode(), "text/plain")

    def _file(self, file_id: str, download: bool) -> None:
        row = self.app["running"].workspace.file_row(file_id)
        if row is None or row["content"] is None:
            return self._json(404, {"ok": False, "error": "file_not_found"})
        # `url_private_download` (…?download=1) saves the file; `url_private` shows it.
        name = re.sub(r'[^A-Za-z0-9._-]+', "_", row["name"])
        headers = {"Content-Disposition": f'attachment; filename="{name}"'} if download else None
        self._send(200, row["content"], "text/plain; charset=utf-8"
                   if not row["name"].endswith(".png") else "image/png", headers)

    def _response(self, token: str, body: bytes) -> None:
        context = self.app["handles"].use_response_url(token)
        if context is None:
            return self._send(404, b"expired_url", "text/plain")
        try:
            payload = json.loads(body) if body.strip().startswith(b"{") \
                else dict(parse_qsl(body.decode()))
            error = self.app["running"].actions.respond(context, payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            error = "invalid_payload"
        if error:
            return self._json(400, {"ok": False, "error": error})
        self._json(200, {"ok": True})

    def _static(self, name: str) -> None:
        found = static_file(name)
        if found is None:
            return self._json(404, {"ok": False, "error": "not_found"})
        self._send(200, *found)

    def _state(self) -> None:
        query = dict(parse_qsl(urlsplit(self.path).query))
        running: RunningWorkspace = self.app["running"]
        if query.get("since", "").isdigit():
            running.workspace.wait_for_change(int(query["since"]), LONG_POLL)
        try:
            state = page_state(running.workspace, running.delivery, self.app["hub"],
                               running.credentials, user=query.get("user"),
                               channel=query.get("channel"), commands=COMMANDS)
        except sqlite3.ProgrammingError:  # the workspace stopped while this poll waited
            return self._json(503, {"ok": False, "error": "stopping"})
        self._json(200, state)

    def _ui(self, action: str, body: bytes) -> None:
        """A person's action from the page; errors go back as `{"ok": false, "error": …}`."""
        actions: Actions = self.app["running"].actions
        try:
            data = json.loads(body or b"{}")
            result = _UI[action](actions, data) if action in _UI else None
        except (SleuthError, KeyError, json.JSONDecodeError) as exc:
            return self._json(400, {"ok": False, "error": str(exc)})
        if result is None:
            return self._json(404, {"ok": False, "error": f"unknown action {action}"})
        self._json(200, result)

    def _admin_request_url(self, body: bytes) -> None:
        running: RunningWorkspace = self.app["running"]
        auth = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if auth != running.credentials.app_token.get_secret_value():
            return self._json(200, {"ok": False, "error": "invalid_auth"})
        try:
            running.set_request_url(self._args(body).get("url") or None)
        except SleuthError as exc:
            return self._json(200, {"ok": False, "error": "url_verification_failed",
                                    "detail": str(exc)})
        self._json(200, {"ok": True, "request_url": running.credentials.request_url})


def _ok(value: Any) -> dict[str, Any]:
    return {"ok": True, "result": value}


_UI = {
    "message": lambda a, d: _ok(a.post(d["user"], d["channel"], d["text"], d.get("thread_ts"))),
    "reaction": lambda a, d: _ok(a.react(d["user"], d["channel"], d["ts"], d["name"])),
    "click": lambda a, d: _reply(a.click(d["user"], d["action_id"], d.get("block_id"),
                                         channel_id=d.get("channel"), ts=d.get("ts"),
                                         view_id=d.get("view_id"), selected=d.get("selected"))),
    "submit": lambda a, d: a.submit_view(d["user"], d["view_id"], d.get("values") or {}),
    "close": lambda a, d: _ok(a.close_view(d["user"], d["view_id"])),
}


def _reply(reply: Any) -> dict[str, Any]:
    return {"ok": reply.ok, "error": reply.error}

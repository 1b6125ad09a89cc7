"""How Slack reaches the app: HTTP (waitress serving Bolt's WSGI adapter) or Socket Mode.

Waitress, not gunicorn: one process holds the bot, the scheduler and the investigation
workers, and gunicorn's forked workers would each start their own scheduler. Waitress serves
from threads in this process, is production-grade, and runs anywhere Python does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from bot.errors import SleuthError

log = logging.getLogger(__name__)
HTTP_THREADS = 8


@dataclass
class Endpoint:
    """A started transport: `url` is the Request URL (None over Socket Mode)."""

    url: str | None
    _stop: Any

    def stop(self) -> None:
        self._stop()


def serve_http(app: App, host: str, port: int, path: str) -> Endpoint:
    """Serve Slack's requests at `http://host:port/path` (plus `GET /healthz`) from threads."""
    bolt = SlackRequestHandler(app, path=path)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        return bolt(environ, start_response)

    try:
        server = create_server(wsgi, host=host, port=port, threads=HTTP_THREADS,
                               ident="sleuth", clear_untrusted_proxy_headers=True)
    except OSError as exc:
        raise SleuthError(f"cannot listen on {host}:{port} for Slack (slack.port): {exc}") \
            from exc
    thread = threading.Thread(target=server.run, name="slack-http", daemon=True)
    thread.start()
    url = f"http://{host}:{server.effective_port}{path}"  # type: ignore[union-attr]

    def stop() -> None:
        server.close()
        thread.join(timeout=5)

    return Endpoint(url, stop)


def serve_socket(app: App, app_token: str) -> Endpoint:
    """Connect out to Slack over Socket Mode (no public URL needed)."""
    handler = SocketModeHandler(app, app_token)
    handler.connect()
    return Endpoint(None, handler.close)

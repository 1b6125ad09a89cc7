"""The web page's side of the server: its static files and the JSON state it renders.

The page (static/index.html, page.js, page.css; no build step, nothing from a CDN) asks for
`/ui/state?user=…&channel=…&since=<version>` and gets an answer as soon as anything
changed (a long poll), then renders channels, messages with Block Kit, threads, reactions,
modals and the log of deliveries to the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.slack.workspace.credentials import Credentials
from bot.slack.workspace.delivery import Delivery
from bot.slack.workspace.socketmode import SocketHub
from bot.slack.workspace.state import (
    APPROVER_USER_ID,
    BOT_USER_ID,
    DEMO_CHANNELS,
    TEAM_ID,
    TEAM_NAME,
    Workspace,
)

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}


def static_file(name: str) -> tuple[bytes, str] | None:
    """(content, content type) of a file under static/, or None (no path tricks)."""
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or not path.is_file() or path.suffix not in CONTENT_TYPES:
        return None
    return path.read_bytes(), CONTENT_TYPES[path.suffix]


def page_state(ws: Workspace, delivery: Delivery, hub: SocketHub, credentials: Credentials,
               *, user: str | None, channel: str | None, commands: list[str]) -> dict[str, Any]:
    """What the page shows `user` looking at `channel` (default: the approver, #data-alerts)."""
    me = ws.user(user or "") or ws.user(APPROVER_USER_ID)
    assert me is not None
    current = ws.channel(channel or "") or ws.channel(DEMO_CHANNELS[0])
    assert current is not None
    return {
        "version": ws.version,
        "team": {"id": TEAM_ID, "name": TEAM_NAME},
        "me": me["id"],
        "bot_user_id": BOT_USER_ID,
        "users": [{"id": u["id"], "name": u["name"], "real_name": u["real_name"],
                   "title": u["profile"]["title"], "is_bot": u["is_bot"]} for u in ws.users()],
        "channels": [{"id": c["id"], "name": c.get("name") or _im_name(ws, c),
                      "is_im": c["is_im"]} for c in ws.channels()],
        "channel": current["id"],
        "messages": ws.channel_messages(current["id"], me["id"]),
        "views": ws.open_views(me["id"]),
        "commands": commands,
        "app": {"socket_connections": hub.connected, "request_url": credentials.request_url,
                "events": sorted(delivery.bot_events)},
        "deliveries": [dict(e) for e in list(delivery.log)[-30:]],
    }


def _im_name(ws: Workspace, channel: dict[str, Any]) -> str:
    user = ws.user(channel.get("user") or "")
    return f"Sleuth ↔ {user['name'] if user else channel.get('user')}"

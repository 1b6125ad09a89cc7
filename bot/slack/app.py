"""The Bolt app: what the bot holds (`Bot`), its listeners, and the guard that acts once.

Listeners live in `bot/slack/listeners/`, one module per feature; each acks at once and leaves
long work to `Investigations` (background threads). Slack retries an event it thinks was lost
(`X-Slack-Retry-Num`, same `event_id`), and people double-click: every delivery that can come
twice is keyed and stored before it is acted on, and a key seen before is answered 200 and
dropped. A slash command cannot come twice (see `delivery_key`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk import WebClient
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.config import Settings
from bot.slack.approvals import Approvers
from bot.slack.cards import Cards
from bot.slack.jobs import Investigations
from bot.slack.messages import Poster
from bot.store.models import SlackEvent
from bot.systemmap import SystemMap

log = logging.getLogger(__name__)


@dataclass
class Bot:
    """What every listener needs."""

    settings: Settings
    engine: Engine
    poster: Poster
    cards: Cards
    jobs: Investigations
    approvers: Approvers
    user_id: str
    team_id: str | None
    system_map: Callable[[], SystemMap] = field(repr=False, default=SystemMap)
    # What auth.test answered at start; Bolt is given it instead of asking Slack again.
    auth: dict[str, Any] = field(repr=False, default_factory=dict)


def build_app(bot: Bot, client: WebClient, signing_secret: str | None) -> App:
    """The Bolt app over `client`; `signing_secret` None for Socket Mode (no HTTP to verify)."""
    from bot.slack.listeners import commands, issues, mentions, reactions, reports

    bolt_log = logging.getLogger("bot.slack.bolt")
    if not any(isinstance(f, _OwnClient) for f in bolt_log.filters):
        bolt_log.addFilter(_OwnClient())
    app = App(client=client, signing_secret=signing_secret or "",
              request_verification_enabled=signing_secret is not None, logger=bolt_log,
              **_known_auth(bot.auth, client))
    app.use(_once(bot.engine))
    for feature in (commands, issues, reports, reactions, mentions):
        feature.register(app, bot)

    @app.error
    def _failed(error: Exception, body: dict[str, Any]) -> None:
        log.error("a %s from Slack failed: %s", body.get("type") or body.get("command"), error,
                  exc_info=error)

    return app


def _known_auth(auth: dict[str, Any], client: WebClient) -> dict[str, Any]:
    """Bolt's `authorize` from the auth.test the bot already made (Bolt's own single-workspace
    setup calls auth.test again, at start or at the first request); nothing when not known."""
    if not auth.get("user_id"):
        return {}

    def authorize(user_id: str | None) -> AuthorizeResult:  # what Bolt's SingleTeam one gives
        return AuthorizeResult(enterprise_id=auth.get("enterprise_id"),
                               team_id=auth.get("team_id"), bot_id=auth.get("bot_id"),
                               bot_user_id=auth["user_id"], bot_token=client.token,
                               user_id=user_id)

    return {"authorize": authorize}


class _OwnClient(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that it goes unused when given a client or
    an `authorize`; the bot always gives its own client (built from that token) and says who it
    is, so the warnings only mislead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in (warning_client_prioritized_and_token_skipped(),
                                           warning_token_skipped())


def delivery_key(body: dict[str, Any]) -> str | None:
    """What makes a delivery the same delivery again (a retry, a double submit)."""
    kind = body.get("type")
    if kind == "event_callback" and body.get("event_id"):
        return f"event:{body['event_id']}"
    if kind == "block_actions" and body.get("actions"):
        action = body["actions"][0]
        return f"action:{action.get('action_ts')}:{body['user']['id']}:{action.get('action_id')}"
    if kind == "view_submission":  # what was typed counts: a corrected resubmission is new
        view = body["view"]
        typed = hashlib.sha256(json.dumps(view.get("state"), sort_keys=True).encode())
        return f"view:{view['id']}:{view.get('hash')}:{typed.hexdigest()[:16]}"
    # A slash command is not keyed: Slack sends each one once (no retries; a new trigger_id
    # every time), and what it starts is once by its own keys (one investigation per issue,
    # a question's thread under `ask:<trigger_id>`). The key's write waited on SQLite's write
    # lock behind a running investigation's steps, in front of the command's answer.
    return None


def first_time(engine: Engine, key: str, kind: str, user: str | None) -> bool:
    with Session(engine) as session:
        session.add(SlackEvent(key=key, kind=kind, user_id=user))
        try:
            session.commit()
        except IntegrityError:
            return False
    return True


def _once(engine: Engine) -> Callable[..., Any]:
    def once(body: dict[str, Any], next: Callable[[], Any]) -> Any:
        key = delivery_key(body)
        if key is None:
            return next()
        user = (body.get("user") or {}).get("id") or body.get("user_id") or \
            (body.get("event") or {}).get("user")
        kind = (body.get("event") or {}).get("type") or body.get("type") or "command"
        if first_time(engine, key, kind, user):
            return next()
        log.info("dropped a repeated delivery %s", key)
        return BoltResponse(status=200, body="")
    return once

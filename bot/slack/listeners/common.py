"""Small things every listener does: read a button's value, answer one person, note in a thread."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.app import Bot

log = logging.getLogger(__name__)


def action_value(body: dict[str, Any]) -> int:
    """The id a button carries (an issue's, a report's)."""
    return int(body["actions"][0]["value"])


def ephemeral(client: WebClient, body: dict[str, Any], text: str) -> None:
    """Answer only the person who clicked, where they clicked."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id")
    message = body.get("message") or {}
    try:
        client.chat_postEphemeral(channel=channel, user=body["user"]["id"], text=text,
                                  thread_ts=message.get("thread_ts"))
    except SlackApiError as exc:
        log.warning("could not answer %s: %s", body["user"]["id"], exc.response.get("error"))


def note_in_thread(bot: Bot, issue_id: int, key: str | None, text: str) -> None:
    """A line in the issue card's thread; `key` makes it once (None: a fresh key)."""
    card = bot.cards.card(issue_id)
    if card is None:
        return
    bot.poster.post(key or f"note:{issue_id}:{time.time_ns()}", card.channel, text,
                    kind="notice", thread_ts=card.ts, issue_id=issue_id)

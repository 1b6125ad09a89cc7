"""An issue card's buttons (Investigate, Mute/Unmute, Resolve), the resolution modal, and the
resolve-then-ask flow of a :white_check_mark: on a card (see reactions.py)."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlmodel import Session

from bot.resolve import mark_resolved, resolve_issue
from bot.slack.app import Bot
from bot.slack.blocks import (
    ACTION_INVESTIGATE,
    ACTION_MUTE,
    ACTION_RESOLVE,
    ACTION_UNMUTE,
    VIEW_RESOLVE,
    resolution_prompt,
    resolve_modal,
)
from bot.slack.listeners.common import action_value, ephemeral, note_in_thread
from bot.store.models import Issue, IssueStatus

log = logging.getLogger(__name__)


def register(app: App, bot: Bot) -> None:
    @app.action(ACTION_INVESTIGATE)
    def investigate(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        issue_id, user = action_value(body), body["user"]["id"]
        if not bot.jobs.for_issue(issue_id, trigger="button", requester=user):
            ephemeral(client, body, f"Issue #{issue_id} is already being investigated in "
                                    "this thread.")

    @app.action(ACTION_MUTE)
    def mute(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        _set_status(bot, action_value(body), IssueStatus.muted, body["user"]["id"])

    @app.action(ACTION_UNMUTE)
    def unmute(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        _set_status(bot, action_value(body), IssueStatus.open, body["user"]["id"])

    @app.action(ACTION_RESOLVE)
    def resolve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        issue_id = action_value(body)
        card = bot.cards.card(issue_id)
        issue = _issue(bot, issue_id)
        if card is None or issue is None:
            return ephemeral(client, body, f"Issue #{issue_id} has no card to resolve.")
        client.views_open(trigger_id=body["trigger_id"],
                          view=resolve_modal(issue, channel=card.channel, ts=card.ts))

    @app.view(VIEW_RESOLVE)
    def resolved(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        line = (view["state"]["values"]["resolution"]["text"].get("value") or "").strip()
        if not line:
            return ack(response_action="errors",
                       errors={"resolution": "Say in one line what fixed it."})
        ack()
        meta = json.loads(view["private_metadata"])
        issue_id, user = int(meta["issue_id"]), body["user"]["id"]
        resolve_issue(bot.settings, bot.engine, issue_id, line)
        bot.cards.show(issue_id)
        note_in_thread(bot, issue_id, f"resolved:{issue_id}:{view['id']}",
                       f":white_check_mark: Resolved by <@{user}>: {line}")


def resolve_by_reaction(bot: Bot, client: WebClient, issue_id: int, user: str,
                        channel: str) -> None:
    """A :white_check_mark: on a card: resolved now, then one line asked for (the memory)."""
    issue = mark_resolved(bot.settings, bot.engine, issue_id)
    bot.cards.show(issue_id)
    if issue.resolution:
        return
    text, blocks = resolution_prompt(issue_id)
    client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)


def _set_status(bot: Bot, issue_id: int, status: IssueStatus, user: str) -> None:
    with Session(bot.engine) as session:
        issue = session.get(Issue, issue_id)
        if issue is None or issue.status == IssueStatus.resolved:
            return
        issue.status = status
        session.add(issue)
        session.commit()
    bot.cards.show(issue_id)
    verb = "muted this issue: it is not investigated on its own" if status == IssueStatus.muted \
        else "unmuted"
    note_in_thread(bot, issue_id, None, f"<@{user}> {verb}.")


def _issue(bot: Bot, issue_id: int) -> Issue | None:
    with Session(bot.engine) as session:
        return session.get(Issue, issue_id)

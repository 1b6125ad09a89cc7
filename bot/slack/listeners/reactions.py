"""Reactions: :mag: on any message investigates it; :white_check_mark: on an issue card resolves
the issue; 👍/👎 on a report is feedback."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.investigate import report_of
from bot.slack.app import Bot, first_time
from bot.slack.jobs import Place
from bot.slack.listeners.issues import resolve_by_reaction
from bot.slack.listeners.reports import rate

log = logging.getLogger(__name__)
INVESTIGATE = {"mag", "mag_right"}
RESOLVE = {"white_check_mark", "heavy_check_mark"}
RATINGS = {"+1": 1, "thumbsup": 1, "-1": -1, "thumbsdown": -1}
MAX_QUOTE = 3000


def register(app: App, bot: Bot) -> None:
    @app.event("reaction_added")
    def reacted(event: dict[str, Any], client: WebClient) -> None:
        item, name, user = event.get("item") or {}, event["reaction"].split("::")[0], event["user"]
        if item.get("type") != "message" or user == bot.user_id:
            return
        channel, ts = item["channel"], item["ts"]
        ours = bot.poster.at(channel, ts)
        if name in INVESTIGATE:
            _investigate(bot, client, channel, ts, user, ours)
        elif name in RESOLVE and ours is not None and ours.kind == "card" and ours.issue_id:
            resolve_by_reaction(bot, client, ours.issue_id, user, channel)
        elif name in RATINGS and ours is not None and ours.kind == "report":
            report = report_of(bot.engine, ours.investigation_id) \
                if ours.investigation_id else None
            if report is not None and report.id is not None:
                rate(bot, report.id, user, RATINGS[name])


def _investigate(bot: Bot, client: WebClient, channel: str, ts: str, user: str,
                 ours: Any) -> None:
    if ours is not None and ours.kind == "card" and ours.issue_id:
        bot.jobs.for_issue(ours.issue_id, trigger="reaction", requester=user)
        return
    if not first_time(bot.engine, f"mag:{channel}:{ts}", "reaction", user):
        return  # someone already asked about this message
    message = _message(client, channel, ts)
    if message is None:
        return
    try:
        client.reactions_add(channel=channel, timestamp=ts, name="eyes")
    except SlackApiError:
        pass  # an acknowledgement only
    text = (message.get("text") or "").strip()[:MAX_QUOTE] or "(a message without text)"
    question = (f"This message in the channel was flagged for investigation:\n\"\"\"\n{text}\n"
                "\"\"\"\nFind what it reports, whether it is a real problem, and its cause.")
    bot.jobs.for_question(question, Place(channel, message.get("thread_ts") or ts),
                          trigger="reaction", requester=user)


def _message(client: WebClient, channel: str, ts: str) -> dict[str, Any] | None:
    """The message at `ts`: a channel message, else a thread reply."""
    try:
        found = client.conversations_history(channel=channel, latest=ts, inclusive=True,
                                             limit=1)["messages"]
        if found and found[0].get("ts") == ts:
            return found[0]
        replies = client.conversations_replies(channel=channel, ts=ts, limit=1)["messages"]
        return replies[0] if replies else None
    except SlackApiError as exc:
        log.warning("cannot read the :mag:'d message %s in %s: %s", ts, channel,
                    exc.response.get("error"))
        return None

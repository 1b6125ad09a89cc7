"""`/investigate <issue id | asset name | free text>`: starts an investigation in a new thread.

An empty or unknown argument gets a short ephemeral answer saying what works; the command is
acked at once either way (Slack shows an error after three seconds).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from slack_bolt import Ack, App, Respond
from sqlmodel import Session

from bot.errors import SleuthError
from bot.slack.app import Bot
from bot.slack.blocks import escape, investigate_help
from bot.slack.jobs import Place
from bot.store.models import Issue, IssueStatus

ISSUE_ID = re.compile(r"^#?(\d+)$")


def register(app: App, bot: Bot) -> None:
    @app.command("/investigate")
    def investigate(ack: Ack, respond: Respond, command: dict[str, Any]) -> None:
        text = " ".join((command.get("text") or "").split())
        user, channel = command["user_id"], command["channel_id"]
        if not text or text.lower() == "help":
            return ack(investigate_help())
        if match := ISSUE_ID.match(text):
            return _issue(bot, ack, respond, int(match.group(1)), user)
        if " " not in text:
            found = bot.system_map().find(text)
            if len(found) != 1:
                return ack(investigate_help(_unknown_asset(bot, text, found)))
            text = f"What is wrong with {found[0]}? Check its recent runs, tests and data."
        ack(f":mag: Investigating in a thread: {text[:200]}")
        _question(bot, f"ask:{command['trigger_id']}", text, user, channel)


def _issue(bot: Bot, ack: Ack, respond: Respond, issue_id: int, user: str) -> None:
    """Answered from the issue's row and what runs now; the start (its card's lookup, posting
    the card if it has none, the inputs) comes after the answer. One started meanwhile by
    another click takes its place: for_issue starts no twin."""
    with Session(bot.engine) as session:
        issue = session.get(Issue, issue_id)
    if issue is None:
        return ack(investigate_help(f"There is no issue #{issue_id}."))
    if bot.jobs.running_for(issue_id):
        return ack(f"Issue #{issue_id} is already being investigated in its thread.")
    note = " (it is resolved; this looks again)" if issue.status == IssueStatus.resolved else ""
    ack(f":mag: Investigating issue #{issue_id} in its card's thread{note}.")
    try:
        bot.jobs.for_issue(issue_id, trigger="command", requester=user)
    except SleuthError as exc:  # no channel takes its card: the answer above was wrong
        respond(f"Issue #{issue_id} cannot be investigated in Slack: {exc}")


def _question(bot: Bot, key: str, text: str, user: str, channel: str) -> None:
    root = bot.poster.post(key, channel,
                           f":mag: <@{user}> asked: {escape(text)}", kind="question")
    bot.jobs.for_question(text, Place(root.channel, root.ts), trigger="command", requester=user)


def _unknown_asset(bot: Bot, name: str, found: list[str]) -> str:
    if found:
        return f"`{name}` matches {len(found)} assets: " + ", ".join(
            f"`{f}`" for f in found[:5]) + ". Say which one (its full id)."
    close = difflib.get_close_matches(name, _names(bot), n=3, cutoff=0.6)
    hint = (" Did you mean " + ", ".join(f"`{c}`" for c in close) + "?") if close else ""
    return f"No issue or asset is named `{name}`.{hint} To ask a question, write a sentence."


def _names(bot: Bot) -> list[str]:
    graph = bot.system_map().graph
    return sorted({a.rsplit(".", 1)[-1] for a in graph if not a.startswith("test.")})

"""An @mention: in an investigation's thread, a follow-up question with that investigation's
report as context; anywhere else, a new investigation in a thread under the mention."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import App, Say

from bot.slack.app import Bot
from bot.slack.jobs import Place, latest_investigation

MENTION = re.compile(r"<@[A-Z0-9]+(\|[^>]*)?>")


def register(app: App, bot: Bot) -> None:
    @app.event("app_mention")
    def mentioned(event: dict[str, Any], say: Say) -> None:
        question = " ".join(MENTION.sub(" ", event.get("text") or "").split())
        thread = event.get("thread_ts") or event["ts"]
        user, channel = event.get("user"), event["channel"]
        if not question:
            say(text="Ask me a question about the pipeline, or use `/investigate`.",
                thread_ts=thread)
            return
        earlier = latest_investigation(bot.engine, thread) if event.get("thread_ts") else None
        place = Place(channel, thread)
        if earlier is not None:
            bot.jobs.follow_up(earlier, question, place, requester=user)
        else:
            bot.jobs.for_question(question, place, trigger="mention", requester=user)

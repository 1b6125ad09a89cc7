"""Issue cards: one per issue, in the channel that owns its asset, edited as the issue changes.

Intake reports what each poll opened, reopened and updated (`IntakeOutcome`); a new issue gets
its card, a known one has its card edited in place (occurrences, last seen, status), and a
reopened one also gets a line in its thread saying so.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.errors import SleuthError
from bot.intake.pipeline import IntakeOutcome
from bot.slack.blocks import issue_card
from bot.slack.messages import Poster
from bot.store.models import Issue, SlackMessage

log = logging.getLogger(__name__)
# Slack's answers that mean "not this channel": the card goes to the default channel instead.
CHANNEL_ERRORS = ("channel_not_found", "not_in_channel", "is_archived")


def card_key(issue_id: int) -> str:
    return f"card:{issue_id}"


class Cards:
    def __init__(self, poster: Poster, engine: Engine, default_channel: str) -> None:
        self.poster, self.engine, self.default_channel = poster, engine, default_channel

    def publish(self, outcome: IntakeOutcome) -> list[int]:
        """Post or edit the cards of what intake touched; the ids whose card is new."""
        new = []
        for issue_id in [*outcome.opened, *outcome.reopened, *outcome.updated]:
            try:
                if self.show(issue_id, reopened=issue_id in outcome.reopened):
                    new.append(issue_id)
            except (SlackApiError, SleuthError) as exc:  # Slack down must not stop intake
                log.error("could not post the card of issue %d: %s", issue_id, _reason(exc))
        return new

    def show(self, issue_id: int, *, reopened: bool = False) -> bool:
        """Post the issue's card if it has none, else edit it; True when it was posted now."""
        issue = self._issue(issue_id)
        text, blocks = issue_card(issue)
        key = card_key(issue_id)
        if self.poster.recorded(key) is None:
            self._post(issue, text, blocks)
            return True
        card = self.poster.update(key, text, blocks)
        if reopened and card is not None:
            self.poster.post(f"reopened:{issue_id}:{issue.last_seen.isoformat()}", card.channel,
                             ":repeat: This issue happened again after it was resolved.",
                             kind="notice", thread_ts=card.ts, issue_id=issue_id)
        return False

    def card(self, issue_id: int) -> SlackMessage | None:
        return self.poster.recorded(card_key(issue_id))

    def _post(self, issue: Issue, text: str, blocks: list) -> None:
        assert issue.id is not None
        for channel in dict.fromkeys([issue.channel, self.default_channel]):
            try:
                self.poster.post(card_key(issue.id), channel, text, blocks, kind="card",
                                 issue_id=issue.id)
                return
            except SleuthError as exc:  # no such channel in the workspace
                log.warning("issue %d: %s; trying %s", issue.id, exc, self.default_channel)
            except SlackApiError as exc:
                if _reason(exc) not in CHANNEL_ERRORS:
                    raise
                log.warning("issue %d: cannot post to %s (%s); trying %s", issue.id, channel,
                            _reason(exc), self.default_channel)
        raise SleuthError(f"issue {issue.id}: no channel took its card ({issue.channel}, "
                          f"{self.default_channel}); invite the bot to one of them")

    def _issue(self, issue_id: int) -> Issue:
        with Session(self.engine) as session:
            issue = session.get(Issue, issue_id)
        if issue is None:
            raise SleuthError(f"no issue {issue_id} in the store")
        return issue


def _reason(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc)
    return str(exc)

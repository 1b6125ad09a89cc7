"""Issue cards: one per issue, in the channel that owns its asset, edited as the issue changes.

Intake reports what each poll opened, reopened and updated (`IntakeOutcome`); a new issue gets
its card, a known one has its card edited in place (occurrences, last seen, status), and a
reopened one also gets a line in its thread saying so.

An issue can change channel after its card is posted: sources are polled separately, so a task
failure with no owner may open it in the default channel before a dbt test moves its root to a
model another team owns. The card then follows: it is posted once in the new channel (under its
own key) and the old one becomes a pointer to it, without buttons. Investigations already shown
under the old card stay in its thread (a running one reports there); one note in the new card's
thread links to them.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.errors import SleuthError
from bot.intake.pipeline import IntakeOutcome
from bot.slack.blocks import EarlierRun, earlier_runs, issue_card, moved_card
from bot.slack.messages import Poster
from bot.store.models import Investigation, InvestigationStatus, Issue, SlackMessage

log = logging.getLogger(__name__)
# Slack's answers that mean "not this channel": the card goes to the default channel instead.
CHANNEL_ERRORS = ("channel_not_found", "not_in_channel", "is_archived")
MOVED = "moved"  # the kind of a card whose issue moved to another channel: now a pointer


def card_key(issue_id: int, channel: str | None = None) -> str:
    """`card:3` is issue 3's first card; `card:3:C0456` its card in a channel it moved to."""
    return f"card:{issue_id}" + (f":{channel}" if channel else "")


class Cards:
    def __init__(self, poster: Poster, engine: Engine, default_channel: str) -> None:
        self.poster, self.engine, self.default_channel = poster, engine, default_channel
        # Channels that could not take a card (missing, bot not invited): tried once a process,
        # not on every edit of every card that wants to go there.
        self._unusable: set[str] = set()

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
        """Post the issue's card if it has none, else edit it (in the channel that owns the
        issue now: a new root may have moved it); True when it was posted now."""
        issue = self._issue(issue_id)
        text, blocks = issue_card(issue)
        cards = self._cards(issue_id)
        card = _current(cards)
        if card is None:
            self._post(issue, text, blocks)
            return True
        owner = self._owner(issue)
        moved = None
        if owner is not None and owner != card.channel:
            moved = self._move(issue, owner, text, blocks)
        card = self.poster.update((moved or card).key, text, blocks) or moved or card
        if moved is not None or len(cards) > 1:  # one card, never moved: nothing points at it
            self._point_to(issue, card)
        if reopened:
            self.poster.post(f"reopened:{issue_id}:{issue.last_seen.isoformat()}", card.channel,
                             ":repeat: This issue happened again after it was resolved.",
                             kind="notice", thread_ts=card.ts, issue_id=issue_id)
        return False

    def card(self, issue_id: int) -> SlackMessage | None:
        """The issue's card: where its buttons, notes and new investigations are."""
        return _current(self._cards(issue_id))

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
            self._unusable.add(channel)
        raise SleuthError(f"issue {issue.id}: no channel took its card ({issue.channel}, "
                          f"{self.default_channel}); invite the bot to one of them")

    # ------------------------------------------------------------------ a card that moves

    def _owner(self, issue: Issue) -> str | None:
        """The id of the channel that owns the issue now; None when it cannot take the card
        (the card then stays where it is)."""
        if issue.channel in self._unusable:
            return None
        try:
            return self.poster.channel_id(issue.channel)
        except SleuthError as exc:
            log.warning("issue %d: %s; its card stays where it is", issue.id, exc)
            self._unusable.add(issue.channel)
            return None

    def _move(self, issue: Issue, channel: str, text: str, blocks: list) -> SlackMessage | None:
        """The card in `channel`: posted once (its own key), or a pointer there made a card
        again (the issue moved back); None when the channel refuses it."""
        assert issue.id is not None
        there = next((m for m in self._cards(issue.id) if m.channel == channel), None)
        key = there.key if there is not None else card_key(issue.id, channel)
        try:
            self.poster.post(key, channel, text, blocks, kind="card", issue_id=issue.id)
        except SlackApiError as exc:
            if _reason(exc) not in CHANNEL_ERRORS:
                raise
            log.warning("issue %d: cannot move its card to %s (%s); it stays where it is",
                        issue.id, issue.channel, _reason(exc))
            self._unusable.add(issue.channel)
            return None
        log.info("issue %d moved to %s: its card follows", issue.id, issue.channel)
        return self.poster.update(key, text, blocks, kind="card")

    def _point_to(self, issue: Issue, card: SlackMessage) -> None:
        """Every other card of the issue becomes a pointer to `card`, and `card`'s thread links
        to the investigations under them (both also after a crash halfway)."""
        assert issue.id is not None
        others = [m for m in self._cards(issue.id) if m.id != card.id]
        stale = [m for m in others if m.kind == "card"]
        if stale:
            text, blocks = moved_card(issue, card.channel, self._permalink(card))
            for old in stale:
                self.poster.update(old.key, text, blocks, kind=MOVED)
        if others:
            self._link_earlier(issue.id, card, others)

    def _link_earlier(self, issue_id: int, card: SlackMessage,
                      others: list[SlackMessage]) -> None:
        """One note in `card`'s thread naming the investigations shown under `others`, once
        there are any (one still starting may show there after the move)."""
        key = f"earlier:{card.key}"
        if self.poster.recorded(key) is not None:
            return
        runs = [EarlierRun(investigation_id=run.id or 0,
                           running=run.status == InvestigationStatus.running,
                           channel=summary.channel, permalink=self._permalink(summary))
                for run, summary in self._shown_under(issue_id, others)]
        if runs:
            self.poster.post(key, card.channel, earlier_runs(runs), kind="notice",
                             thread_ts=card.ts, issue_id=issue_id)

    def _shown_under(self, issue_id: int, cards: list[SlackMessage]
                     ) -> list[tuple[Investigation, SlackMessage]]:
        """The issue's investigations whose summary is in the thread of one of `cards`, with
        that summary, oldest first."""
        threads = {(c.channel, c.ts) for c in cards}
        with Session(self.engine) as session:
            found = session.exec(select(Investigation, SlackMessage)
                                 .join(SlackMessage,
                                       col(SlackMessage.investigation_id) == Investigation.id)
                                 .where(SlackMessage.issue_id == issue_id,
                                        SlackMessage.kind == "summary")
                                 .order_by(col(Investigation.id))).all()
        return [(run, summary) for run, summary in found
                if (summary.channel, summary.thread_ts) in threads]

    def _permalink(self, message: SlackMessage) -> str | None:
        try:
            return self.poster.client.chat_getPermalink(channel=message.channel,
                                                        message_ts=message.ts)["permalink"]
        except SlackApiError as exc:  # a workspace without it: the text names the channel
            log.info("no permalink for the message at %s/%s: %s", message.channel, message.ts,
                     _reason(exc))
            return None

    def _cards(self, issue_id: int) -> list[SlackMessage]:
        """The issue's cards and pointers, the last-changed last."""
        with Session(self.engine) as session:
            return list(session.exec(select(SlackMessage).where(
                SlackMessage.issue_id == issue_id, col(SlackMessage.kind).in_(["card", MOVED]))
                .order_by(col(SlackMessage.updated_at), col(SlackMessage.id))).all())

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


def _current(cards: list[SlackMessage]) -> SlackMessage | None:
    """Of an issue's cards and pointers (last-changed last), the card in use."""
    current = [m for m in cards if m.kind == "card"]
    return current[-1] if current else None

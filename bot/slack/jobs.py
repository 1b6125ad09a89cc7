"""Investigations started from Slack, run in background threads so every listener acks at once.

Each one lives in a thread: an issue's card thread, the thread under a /investigate or :mag:
message, or the thread of an earlier investigation (a follow-up). At most one runs per issue;
a second click says so instead of starting a twin.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from rich.console import Console
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from agents.orchestrator import Investigation as Inputs
from agents.redact import redact
from agents.trace import TraceEvent
from bot.config import Secrets, Settings
from bot.investigate import (
    Investigated,
    issue_inputs,
    question_inputs,
    report_of,
    run_investigation,
)
from bot.slack.cards import Cards
from bot.slack.messages import Poster
from bot.slack.thread import ThreadTrace
from bot.store.models import Investigation, SlackMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Place:
    """Where an investigation shows: a channel and the thread's root message."""

    channel: str
    thread_ts: str


class _Forward:
    """The sink run_investigation gets before the thread exists: events go to `trace` once set."""

    def __init__(self) -> None:
        self.trace: ThreadTrace | None = None

    def emit(self, event: TraceEvent) -> None:
        if self.trace is not None:
            self.trace.emit(event)


class Investigations:
    def __init__(self, settings: Settings, engine: Engine, poster: Poster, cards: Cards, *,
                 team_id: str | None, secrets: Secrets | None = None,
                 console: Console | None = None,
                 on_done: Callable[[Investigated], None] | None = None) -> None:
        self.settings, self.engine, self.poster, self.cards = settings, engine, poster, cards
        self.team_id, self.secrets = team_id, secrets or Secrets.from_env()
        self.console, self.on_done = console, on_done  # the terminal too (`sleuth demo`)
        self._pool = ThreadPoolExecutor(settings.slack.workers, thread_name_prefix="investigate")
        self._running: dict[int, Future] = {}  # issue id -> its investigation
        self._others: list[Future] = []  # questions and follow-ups
        self._lock = threading.Lock()
        self.known = tuple(s.get_secret_value() for s in self.secrets.model_dump().values()
                           if s is not None)

    def for_issue(self, issue_id: int, *, trigger: str, requester: str | None = None) -> bool:
        """Investigate the issue in its card's thread; False if one is already running."""
        with self._lock:
            if issue_id in self._running and not self._running[issue_id].done():
                return False
            card = self.cards.card(issue_id)
            if card is None:
                self.cards.show(issue_id)
                card = self.cards.card(issue_id)
            assert card is not None
            inputs = issue_inputs(self.engine, issue_id, trigger=trigger)
            self._running[issue_id] = self._submit(inputs, Place(card.channel, card.ts),
                                                   requester, issue_id)
            return True

    def for_question(self, question: str, place: Place, *, trigger: str,
                     requester: str | None = None) -> Future:
        """Investigate a question (a /investigate text, a :mag:'d message) in `place`."""
        return self._other(self._submit(question_inputs(question, trigger=trigger), place,
                                        requester, None))

    def follow_up(self, investigation_id: int, question: str, place: Place, *,
                  requester: str | None = None) -> Future:
        """A question asked in an investigation's thread, with that investigation's report."""
        with Session(self.engine) as session:
            earlier = session.get(Investigation, investigation_id)
        report = report_of(self.engine, investigation_id)
        context = [f"Follow-up to investigation #{investigation_id}"
                   + (f" ({earlier.question})" if earlier else "") + "."]
        if report is not None:
            body = report.body
            cause = body.get("root_cause") or {}
            context.append(f"Its report: {body.get('summary', '')} Root cause: "
                           f"{cause.get('node')} ({cause.get('category')}), confidence "
                           f"{report.confidence:.2f}.")
        inputs = question_inputs(f"{question}\n\n" + " ".join(context), trigger="mention")
        issue_id = earlier.issue_id if earlier else None
        inputs = inputs.model_copy(update={"issue_id": str(issue_id) if issue_id else None})
        return self._other(self._submit(inputs, place, requester, issue_id))

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every investigation started so far (scripts, `--once`)."""
        with self._lock:
            pending = [*self._running.values(), *self._others]
        for future in pending:
            future.result(timeout=timeout)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    def running_for(self, issue_id: int) -> bool:
        future = self._running.get(issue_id)
        return future is not None and not future.done()

    def _submit(self, inputs: Inputs, place: Place, requester: str | None,
                issue_id: int | None) -> Future:
        return self._pool.submit(self._run, inputs, place, requester, issue_id)

    def _other(self, future: Future) -> Future:
        with self._lock:
            self._others = [f for f in self._others if not f.done()] + [future]
        return future

    def _run(self, inputs: Inputs, place: Place, requester: str | None,
             issue_id: int | None) -> int | None:
        forward = _Forward()

        def started(investigation_id: int, policy: str) -> None:
            forward.trace = ThreadTrace(
                self.poster, channel=place.channel, thread_ts=place.thread_ts,
                investigation_id=investigation_id, title=inputs.title, issue_id=issue_id,
                requester=requester, team_id=self.team_id, mode=self.settings.slack.trace,
                interval=self.settings.slack.update_interval.total_seconds())
            forward.trace.start(policy)  # the summary names it from its first post

        try:
            done = run_investigation(self.settings, self.engine, inputs, sink=forward,
                                     on_start=started, secrets=self.secrets,
                                     console=self.console)
        except Exception as exc:  # shown in the thread; the store has every step so far
            log.exception("investigation of %r failed", inputs.title)
            if forward.trace is not None:
                forward.trace.fail(redact(f"{type(exc).__name__}: {exc}", self.known))
            return None
        assert forward.trace is not None
        forward.trace.finish(done)
        if self.on_done is not None:
            self.on_done(done)
        return done.id


def latest_investigation(engine: Engine, thread_ts: str) -> int | None:
    """The newest investigation shown in the thread rooted at `thread_ts`."""
    with Session(engine) as session:
        found = session.exec(select(SlackMessage).where(
            SlackMessage.thread_ts == thread_ts, col(SlackMessage.investigation_id).is_not(None))
            .order_by(col(SlackMessage.id).desc())).first()
    return found.investigation_id if found else None

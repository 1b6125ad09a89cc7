"""Polling every source on its own interval, and turning what they saw into issues.

`Poller` does one source's poll: skip it while it is backed off; poll from the stored cursor;
store the signals (`Intake.ingest`) and only then the new cursor, so a crash in between
re-reads, never skips (signals are deduplicated); run filter and grouping; report a failing
source once when it starts failing and once when it recovers, not at every poll. A source
that raises `SourceBusy` (its warehouse locked by the pipeline writing it) is neither: the
poll is skipped with its cursor kept, said once, and polled again on schedule without
backoff; busy for longer than `busy_limit`, it counts as failing.

`start_scheduler` runs the polls with APScheduler: one interval job per source in a
persistent SQLAlchemy job store (the store's database), `max_instances=1` so a slow source
never overlaps itself, `coalesce` so a backlog of missed runs collapses into one. Jobs name
their function by reference and their source by name; the live objects they need are in
the `Poller` registered here at start (APScheduler cannot pickle a live source).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import Session

from agents.redact import redact
from bot.intake.pipeline import Intake, IntakeOutcome
from bot.sources.base import Source, SourceBusy
from bot.store.models import SourceState, as_utc, utcnow

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
RECHECK_JOB = "intake:recheck"
BUSY_LIMIT = timedelta(hours=1)  # a lock held longer is no writer's run: the source is failing


@dataclass(frozen=True)
class ScheduledSource:
    source: Source
    interval: timedelta


@dataclass(frozen=True)
class Backoff:
    """After n consecutive failures a source waits first * 2**(n-1), at most `longest`."""

    first: timedelta = timedelta(minutes=1)
    longest: timedelta = timedelta(hours=1)

    def delay(self, failures: int) -> timedelta:
        return min(self.first * 2 ** max(failures - 1, 0), self.longest)


@dataclass
class PollResult:
    source: str
    status: str  # ok | failed | backed_off | busy
    stored: int = 0
    seen: int = 0
    error: str | None = None
    outcome: IntakeOutcome = field(default_factory=IntakeOutcome)


Notice = Callable[[str], None]


class Poller:
    """One poll of one source, end to end; see the module docstring."""

    def __init__(self, engine: Engine, intake: Intake, sources: Sequence[ScheduledSource],
                 *, backoff: Backoff | None = None, notice: Notice | None = None,
                 on_outcome: Callable[[IntakeOutcome], None] | None = None,
                 busy_limit: timedelta = BUSY_LIMIT) -> None:
        self.engine = engine
        self.intake = intake
        self.sources = {s.source.name: s for s in sources}
        self.backoff = backoff or Backoff()
        self.busy_limit = busy_limit
        self._busy_since: dict[str, datetime] = {}  # per source busy now: since when
        self.notice = notice or (lambda text: log.warning("%s", text))
        self.on_outcome = on_outcome
        self._process_lock = threading.Lock()  # grouping is one writer: no twin issues

    def poll(self, name: str, now: datetime | None = None, *, process: bool = True) -> PollResult:
        """Poll one source and store what it saw; then (by default) filter and group."""
        now = now or utcnow()
        source = self.sources[name].source
        state = self._state(name)
        if state.retry_at is not None and as_utc(state.retry_at) > now:
            return PollResult(name, "backed_off", error=state.last_error)
        try:
            signals, cursor = source.poll(state.cursor or None)
        except SourceBusy as exc:
            return self._busy(state, exc, now)
        except Exception as exc:  # noqa: BLE001 - a source failure is contained: others keep polling
            return self._failed(state, exc, now)
        stored = self.intake.ingest(signals)
        self._succeeded(state, cursor.model_dump(mode="json"), now)
        outcome = self.process(now) if process else IntakeOutcome()
        return PollResult(name, "ok", stored=stored, seen=len(signals), outcome=outcome)

    def poll_all(self, now: datetime | None = None) -> tuple[list[PollResult], IntakeOutcome]:
        """Every source once, then one pass of filter and grouping over all they saw, so
        signals are grouped in the order they happened, whichever source saw them."""
        results = [self.poll(name, now, process=False) for name in self.sources]
        return results, self.process(now)

    def process(self, now: datetime | None = None) -> IntakeOutcome:
        with self._process_lock:
            outcome = self.intake.process(now)
        if self.on_outcome is not None and (outcome.opened or outcome.updated):
            self.on_outcome(outcome)
        return outcome

    # ------------------------------------------------------------ state

    def _state(self, name: str) -> SourceState:
        with Session(self.engine) as session:
            return session.get(SourceState, name) or SourceState(name=name)

    def _save(self, state: SourceState) -> None:
        with Session(self.engine) as session:
            session.merge(state)
            session.commit()

    def _busy(self, state: SourceState, exc: SourceBusy, now: datetime) -> PollResult:
        """A poll skipped, cursor kept: said when the source becomes busy, then quiet until it
        has been busy `busy_limit`, when it fails as any source does (backoff, reported once)."""
        first = state.name not in self._busy_since
        since = self._busy_since.setdefault(state.name, now)
        if now - since >= self.busy_limit:
            return self._failed(state, exc, now, error=f"busy since {since:%Y-%m-%d %H:%M} UTC: "
                                                       f"{exc}")
        text = redact(str(exc))[:2000]
        if first:
            self.notice(f"source {state.name}: {text} (polled again on schedule; reported as "
                        f"failing if it lasts over {_duration(self.busy_limit)})")
        state.polled_at, state.last_error = now, text
        self._save(state)
        return PollResult(state.name, "busy", error=text)

    def _failed(self, state: SourceState, exc: Exception, now: datetime, *,
                error: str | None = None) -> PollResult:
        error = redact(error or f"{type(exc).__name__}: {exc}")[:2000]
        state.failures += 1
        state.polled_at, state.last_error = now, error
        state.retry_at = now + self.backoff.delay(state.failures)
        self._save(state)
        if state.failures == 1:
            self.notice(f"source {state.name} failed: {error} (retrying with backoff; "
                        "this is reported once until it recovers)")
        log.debug("source %s failed (%d in a row)", state.name, state.failures, exc_info=exc)
        return PollResult(state.name, "failed", error=error)

    def _succeeded(self, state: SourceState, cursor: dict, now: datetime) -> None:
        if state.failures:
            self.notice(f"source {state.name} recovered after {state.failures} failed poll(s)")
        self._busy_since.pop(state.name, None)
        state.cursor, state.polled_at, state.ok_at = cursor, now, now
        state.failures, state.last_error, state.retry_at = 0, None, None
        self._save(state)


def _duration(span: timedelta) -> str:
    minutes = round(span.total_seconds() / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:g} h"


# ---------------------------------------------------------------- APScheduler

_poller: Poller | None = None


def run_poll(name: str) -> None:
    """The job function (referenced by name in the job store)."""
    if _poller is not None and name in _poller.sources:
        _poller.poll(name)


def run_recheck() -> None:
    """Held signals (waiting on a retry's outcome) are decided when their time comes."""
    if _poller is not None:
        _poller.process()


def stop_scheduler(scheduler: BackgroundScheduler, wait: bool = True) -> None:
    """Stop polling and let go of the poller (its sources hold warehouse connections)."""
    global _poller
    scheduler.shutdown(wait=wait)
    _poller = None


def start_scheduler(poller: Poller, store_url: str,
                    recheck: timedelta = timedelta(minutes=1)) -> BackgroundScheduler:
    """Start polling in background threads; the caller stops it with `stop_scheduler`."""
    global _poller
    _poller = poller
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=store_url, tablename=JOB_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        timezone="UTC",
    )
    scheduler.start(paused=True)
    wanted = {f"poll:{name}" for name in poller.sources} | {RECHECK_JOB}
    for job in scheduler.get_jobs():
        if job.id not in wanted:  # a source removed from the config stops being polled
            job.remove()
    for name, scheduled in poller.sources.items():
        scheduler.add_job(f"{__name__}:run_poll", "interval", args=[name], id=f"poll:{name}",
                          seconds=scheduled.interval.total_seconds(), replace_existing=True,
                          next_run_time=utcnow())
    scheduler.add_job(f"{__name__}:run_recheck", "interval", id=RECHECK_JOB,
                      seconds=recheck.total_seconds(), replace_existing=True)
    scheduler.resume()
    return scheduler

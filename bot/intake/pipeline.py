"""Intake's path for what sources saw: store every signal, then filter, then group.

`ingest` stores a poll's signals (a signal seen again, by `dedup_key`, is stored once) and
commits before anything is decided, so a crash between a poll and its decisions loses
nothing: `process` picks up every signal still `new`, and every `held` one whose recheck
time has come, oldest first, and records for each what the noise filter said (rule and
reason) or which issue it joined and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from bot.intake.grouping import Grouper
from bot.intake.signals import RawSignal
from bot.store.models import Signal, SignalStatus, as_utc, utcnow


class NoiseDecision(Protocol):
    verdict: Literal["keep", "drop", "hold"]
    rule: str
    reason: str
    recheck_at: datetime | None


class NoiseDecider(Protocol):
    def decide(self, signal: RawSignal, now: datetime) -> NoiseDecision: ...


@dataclass
class IntakeOutcome:
    """What one `process` did."""

    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    filtered: int = 0
    held: int = 0
    grouped: int = 0

    def merge(self, other: IntakeOutcome) -> None:
        self.opened += [i for i in other.opened if i not in self.opened]
        self.updated += [i for i in other.updated if i not in self.updated + self.opened]
        self.reopened += [i for i in other.reopened if i not in self.reopened]
        self.filtered += other.filtered
        self.held += other.held
        self.grouped += other.grouped


class Intake:
    def __init__(self, engine: Engine, grouper: Grouper, noise: NoiseDecider | None = None) -> None:
        self.engine = engine
        self.grouper = grouper
        self.noise = noise

    def ingest(self, signals: Sequence[RawSignal]) -> int:
        """Store the signals not stored yet; how many were new."""
        if not signals:
            return 0
        unique = {s.dedup_key: s for s in signals}
        with Session(self.engine) as session:
            known = set(session.exec(
                select(Signal.dedup_key).where(col(Signal.dedup_key).in_(list(unique)))).all())
            fresh = [s for key, s in unique.items() if key not in known]
            session.add_all(_row(s) for s in fresh)
            session.commit()
        return len(fresh)

    def process(self, now: datetime | None = None, limit: int = 10_000) -> IntakeOutcome:
        """Decide every signal that is due; see the module docstring."""
        now = now or utcnow()
        outcome = IntakeOutcome()
        with Session(self.engine) as session:
            due = session.exec(
                select(Signal).where(or_(
                    Signal.status == SignalStatus.new,
                    (Signal.status == SignalStatus.held) & (col(Signal.recheck_at) <= now)))
                .order_by(col(Signal.observed_at), col(Signal.id)).limit(limit)).all()
            for signal in due:
                self._decide(session, signal, now, outcome)
                session.commit()  # one decision at a time: a crash re-decides at most one
        return outcome

    def _decide(self, session: Session, signal: Signal, now: datetime,
                outcome: IntakeOutcome) -> None:
        if self.noise is not None:
            decision = self.noise.decide(raw_signal(signal), now)
            signal.filter_rule, signal.filter_reason = decision.rule, decision.reason
            if decision.verdict == "drop":
                signal.status = SignalStatus.filtered
                outcome.filtered += 1
                return
            if decision.verdict == "hold":
                signal.status, signal.recheck_at = SignalStatus.held, decision.recheck_at
                outcome.held += 1
                return
        placement = self.grouper.place(session, signal)
        signal.status, signal.issue_id = SignalStatus.grouped, placement.issue.id
        signal.group_reason = placement.reason
        outcome.grouped += 1
        issue_id = placement.issue.id or 0
        if placement.created:
            outcome.opened.append(issue_id)
        elif issue_id not in outcome.opened + outcome.updated:
            outcome.updated.append(issue_id)
        if placement.reopened:
            outcome.reopened.append(issue_id)


def _row(signal: RawSignal) -> Signal:
    return Signal(source=signal.source, kind=signal.kind, asset=signal.asset, title=signal.title,
                  detail=signal.detail, dedup_key=signal.dedup_key, run_id=signal.run_id,
                  observed_at=signal.observed_at)


def raw_signal(row: Signal) -> RawSignal:
    """The stored signal as sources made it (SQLite hands datetimes back without a zone)."""
    return RawSignal(source=row.source, kind=row.kind, asset=row.asset,  # type: ignore[arg-type]
                     title=row.title, observed_at=as_utc(row.observed_at), dedup_key=row.dedup_key,
                     run_id=row.run_id, detail=row.detail)

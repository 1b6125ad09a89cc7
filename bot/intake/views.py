"""What intake shows in a terminal: stored signals and issues as rich tables (pure functions),
and the queries behind `sleuth signals` and `sleuth issues`."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.intake.scheduler import PollResult
from bot.store.models import Issue, IssueStatus, Signal, SignalStatus, as_utc

_STATUS_STYLE = {"grouped": "yellow", "filtered": "dim", "held": "cyan", "new": "white"}


def stored_signals(engine: Engine, *, filtered: bool = False, limit: int = 50) -> list[Signal]:
    with Session(engine) as session:
        query = select(Signal).order_by(col(Signal.observed_at).desc(), col(Signal.id).desc())
        if filtered:
            query = query.where(Signal.status == SignalStatus.filtered)
        return list(session.exec(query.limit(limit)).all())


def stored_issues(engine: Engine, *, everything: bool = False) -> list[Issue]:
    with Session(engine) as session:
        query = select(Issue).order_by(col(Issue.last_seen).desc())
        if not everything:
            query = query.where(Issue.status == IssueStatus.open)
        return list(session.exec(query).all())


def signals_table(signals: list[Signal], title: str = "Signals") -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("id", "observed (UTC)", "source", "kind", "asset", "what", "decision"):
        table.add_column(column, overflow="fold")
    for s in signals:
        style = _STATUS_STYLE.get(s.status, "white")
        table.add_row(str(s.id), f"{as_utc(s.observed_at):%Y-%m-%d %H:%M}", s.source, s.kind,
                      _short_asset(s.asset), Text(s.title[:120]), Text(_decision(s), style=style))
    return table


def issues_table(issues: list[Issue], title: str = "Issues") -> Table:
    table = Table(title=title, expand=True)  # ratios share the width: the title gets most
    table.add_column("id")
    table.add_column("sev")
    table.add_column("status")
    table.add_column("title", overflow="fold", ratio=3)
    for column in ("root asset", "channel", "seen", "first → last seen (UTC)"):
        table.add_column(column, overflow="fold", ratio=1)
    for i in issues:
        table.add_row(str(i.id), i.severity, i.status, Text(i.title[:120]),
                      _short_asset(i.asset), i.channel, str(i.occurrences),
                      f"{as_utc(i.first_seen):%m-%d %H:%M} → {as_utc(i.last_seen):%H:%M}")
    return table


def polls_table(results: list[PollResult]) -> Table:
    table = Table(title="Sources polled")
    for column in ("source", "status", "signals", "new", "note"):
        table.add_column(column, overflow="fold")
    for r in results:
        style = "green" if r.status == "ok" else "red"
        table.add_row(r.source, Text(r.status, style=style), str(r.seen), str(r.stored),
                      Text(r.error or ""))
    return table


def _decision(s: Signal) -> str:
    if s.status == SignalStatus.grouped:
        return f"issue #{s.issue_id}: {s.group_reason}"
    if s.status in (SignalStatus.filtered, SignalStatus.held):
        return f"{s.status}: {s.filter_rule} — {s.filter_reason}"
    return s.status


def _short_asset(asset: str) -> str:
    """`model.sleuth_demo.fct_orders` reads as `fct_orders`; tests lose dbt's hash suffix."""
    parts = asset.split(".")
    if parts[0] in ("model", "test", "seed", "snapshot", "exposure") and len(parts) >= 3:
        name = parts[2]
        return f"{parts[0]} {name}"
    if parts[0] == "source" and len(parts) >= 4:
        return f"source {parts[2]}.{parts[3]}"
    return asset

"""Polling: cursors kept after the signals are stored, failing sources backed off and reported
once, and APScheduler's persistent job store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import inspect
from sqlmodel import Session

from bot.intake.grouping import Grouper
from bot.intake.pipeline import Intake
from bot.intake.scheduler import Backoff, Poller, ScheduledSource, start_scheduler
from bot.intake.signals import RawSignal
from bot.sources.base import as_cursor
from bot.store import open_store
from bot.store.models import SourceState
from bot.systemmap import SystemMap

T0 = datetime(2026, 11, 20, 2, tzinfo=UTC)


class Count(BaseModel):
    polls: int = 0


class Counting:
    """A source that yields one new signal a poll, or fails while `failing` says so."""

    def __init__(self, name: str = "counting") -> None:
        self.name = name
        self.failing = 0
        self.cursors: list[dict[str, Any] | None] = []
        self.polled = threading.Event()

    def poll(self, cursor: Any = None) -> tuple[list[RawSignal], Count]:
        self.cursors.append(cursor)
        self.polled.set()
        if self.failing:
            self.failing -= 1
            raise ConnectionError("refused by http://user:hunter2@airflow:8080/api/v2")
        state = as_cursor(Count, cursor)
        signal = RawSignal(source=self.name, kind="task_failed", asset="task.d.t",
                           title=f"failed #{state.polls}", observed_at=T0,
                           dedup_key=f"{self.name}:{state.polls}")
        return [signal], Count(polls=state.polls + 1)

    def check(self) -> list[str]:
        return []


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 's.db'}"


def poller_for(url: str, *sources: Counting, notices: list[str] | None = None) -> Poller:
    engine = open_store(url)
    intake = Intake(engine, Grouper(SystemMap()))
    return Poller(engine, intake, [ScheduledSource(s, timedelta(minutes=1)) for s in sources],
                  backoff=Backoff(timedelta(minutes=1), timedelta(minutes=5)),
                  notice=(notices.append if notices is not None else None))


def test_the_cursor_is_kept_between_polls_and_across_restarts(store_url: str) -> None:
    source = Counting()
    poller_for(store_url, source).poll("counting", T0)
    poller_for(store_url, source).poll("counting", T0)  # a restart: a new poller, same store
    assert source.cursors == [None, {"polls": 1}]


def test_a_failing_source_is_backed_off_and_reported_once(store_url: str) -> None:
    notices: list[str] = []
    source = Counting()
    poller = poller_for(store_url, source, notices=notices)
    source.failing = 3
    first = poller.poll("counting", T0)
    assert first.status == "failed" and "hunter2" not in (first.error or "")
    assert poller.poll("counting", T0 + timedelta(seconds=30)).status == "backed_off"
    assert poller.poll("counting", T0 + timedelta(minutes=1)).status == "failed"
    # the second failure in a row waits twice as long
    assert poller.poll("counting", T0 + timedelta(minutes=2)).status == "backed_off"
    assert poller.poll("counting", T0 + timedelta(minutes=3)).status == "failed"
    assert poller.poll("counting", T0 + timedelta(minutes=10)).status == "ok"
    assert len(notices) == 2
    assert notices[0].startswith("source counting failed") and "hunter2" not in notices[0]
    assert notices[1] == "source counting recovered after 3 failed poll(s)"
    with Session(poller.engine) as session:
        state = session.get(SourceState, "counting")
        assert state is not None and state.failures == 0 and state.cursor == {"polls": 1}


def test_one_failing_source_does_not_stop_the_others(store_url: str) -> None:
    bad, good = Counting("bad"), Counting("good")
    bad.failing = 1
    results, outcome = poller_for(store_url, bad, good).poll_all(T0)
    assert [(r.source, r.status, r.stored) for r in results] == [("bad", "failed", 0),
                                                                 ("good", "ok", 1)]
    assert outcome.opened  # the good source's signal became an issue


def test_the_scheduler_keeps_jobs_in_the_store_and_drops_removed_sources(
        store_url: str) -> None:
    one, two = Counting("one"), Counting("two")
    scheduler = start_scheduler(poller_for(store_url, one, two), store_url)
    try:
        assert one.polled.wait(30) and two.polled.wait(30)  # both ran once at start
        ids = {job.id for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=True)
    assert ids == {"poll:one", "poll:two", "intake:recheck"}
    assert "apscheduler_jobs" in inspect(open_store(store_url)).get_table_names()
    scheduler = start_scheduler(poller_for(store_url, one), store_url)  # `two` left the config
    try:
        assert {job.id for job in scheduler.get_jobs()} == {"poll:one", "intake:recheck"}
        job = scheduler.get_job("poll:one")
        assert job.max_instances == 1 and job.coalesce
    finally:
        scheduler.shutdown(wait=True)


def test_a_locked_warehouse_skips_polls_said_once_then_fails_if_it_lasts(
        store_url: str, tmp_path: Path) -> None:
    """The table monitor over a DuckDB file another process writes: each poll is skipped with
    the cursor kept and no backoff, said once; polls go on normally when the writer is done.
    Locked past `busy_limit`, the source is failing: reported once, backed off, recovered."""
    from tests.sources.test_tables import Clock as TableClock
    from tests.sources.test_tables import Day, DuckWarehouse, make_source, writer_holding

    warehouse = DuckWarehouse(tmp_path / "w.duckdb")
    warehouse.load(Day(T0.date()))
    tables = make_source(warehouse.url, TableClock())
    notices: list[str] = []
    engine = open_store(store_url)
    poller = Poller(engine, Intake(engine, Grouper(SystemMap())),
                    [ScheduledSource(tables, timedelta(minutes=1))],
                    backoff=Backoff(timedelta(minutes=1), timedelta(minutes=5)),
                    notice=notices.append, busy_limit=timedelta(minutes=30))

    def cursor() -> dict[str, Any]:
        with Session(engine) as session:
            state = session.get(SourceState, "tables")
            assert state is not None
            return state.cursor

    assert poller.poll("tables", T0).status == "ok"
    kept = cursor()
    with writer_holding(warehouse.path) as pid:
        busy = [poller.poll("tables", T0 + timedelta(minutes=m)) for m in (1, 2)]
        assert [r.status for r in busy] == ["busy", "busy"]
        said = (f"source tables: warehouse {warehouse.path} is locked by another process (pid "
                f"{pid}); tables not checked this poll (polled again on schedule; reported as "
                "failing if it lasts over 30 min)")
        assert notices == [said]
        assert cursor() == kept
    assert poller.poll("tables", T0 + timedelta(minutes=3)).status == "ok"
    assert len(notices) == 1  # never failing: nothing recovered

    with writer_holding(warehouse.path):
        results = [poller.poll("tables", T0 + timedelta(minutes=m)) for m in (10, 39, 40, 40.5)]
    assert [r.status for r in results] == ["busy", "busy", "failed", "backed_off"]
    assert len(notices) == 3 and "is locked by another process" in notices[1]  # a new lock
    assert notices[2].startswith("source tables failed: busy since 2026-11-20 02:10 UTC: "
                                 f"warehouse {warehouse.path} is locked by another process")
    assert poller.poll("tables", T0 + timedelta(minutes=42)).status == "ok"
    assert notices[3:] == ["source tables recovered after 1 failed poll(s)"]

"""The DAG-runs source over the demo platform's run records.

Fast tests write run records with the demo's own writer (`bot.demo.runs.save_run`); the slow
ones read what the demo platform's runner wrote for two scenarios, built once per session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.demo.paths import DAG_ID, PlatformPaths
from bot.demo.runs import DagRun, TaskInstance, save_run
from bot.intake.signals import RawSignal
from bot.sources.dag_runs import DagRunsSource, RunsCursor
from bot.sources.demo_runs import DemoRunsBackend
from tests.conftest import DEMO_DAYS, DEMO_SEED

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def a_run(run_id: str, state: str, start: datetime, minutes: int = 30) -> DagRun:
    return DagRun(dag_id="etl", run_id=run_id, logical_date=start, data_interval_start=start,
                  data_interval_end=start + timedelta(days=1), state=state, start_date=start,
                  end_date=start + timedelta(minutes=minutes))


def a_try(run: DagRun, task: str, number: int, state: str, minute: int,
          log: Path | None = None, max_tries: int = 3) -> TaskInstance:
    start = run.start_date + timedelta(minutes=minute)
    return TaskInstance(dag_id=run.dag_id, run_id=run.run_id, task_id=task, try_number=number,
                        max_tries=max_tries, state=state, start_date=start,
                        end_date=start + timedelta(seconds=40), duration=40.0,
                        operator="PythonOperator", hostname="worker-1",
                        log_path=str(log) if log else None)


def source_at(db: Path, now: datetime, **kwargs: object) -> DagRunsSource:
    return DagRunsSource(DemoRunsBackend(db), clock=lambda: now, **kwargs)  # type: ignore[arg-type]


def test_each_failed_try_that_recovered_is_one_task_retried(tmp_path: Path) -> None:
    db, log = tmp_path / "runs.sqlite", tmp_path / "attempt=2.log"
    log.write_text("[2026-11-20, 02:05:01 UTC] {taskinstance.py:1935} ERROR - Task failed with "
                   "exception\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
                   "TimeoutError: read timed out\n")
    run = a_run("scheduled__2026-11-20", "success", T0)
    save_run(db, run, [a_try(run, "extract", 1, "up_for_retry", 1),
                       a_try(run, "extract", 2, "up_for_retry", 5, log),
                       a_try(run, "extract", 3, "success", 9),
                       a_try(run, "report", 1, "success", 12)])
    signals, _ = source_at(db, T0 + timedelta(hours=1)).poll()
    assert [(s.kind, s.detail["try_number"], s.detail["recovered_try"]) for s in signals] == [
        ("task_retried", 1, 3), ("task_retried", 2, 3)]
    first, second = signals
    assert first.detail["log_missing"] == "no log" and "exception" not in first.detail
    assert second.detail["exception"] == "TimeoutError: read timed out"
    assert second.detail["error_line"] == "Task failed with exception"
    assert second.observed_at == T0 + timedelta(minutes=5, seconds=40)
    assert {s.asset for s in signals} == {"task.etl.extract"}


def test_without_the_dag_file_every_upstream_failed_task_is_blocked(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    run = a_run("scheduled__2026-11-20", "failed", T0)
    save_run(db, run, [a_try(run, "extract", 1, "failed", 1, max_tries=1),
                       a_try(run, "transform", 0, "upstream_failed", 2),
                       a_try(run, "audit", 0, "skipped", 2)])
    (failed,) = source_at(db, T0 + timedelta(hours=1)).poll()[0]
    assert failed.kind == "task_failed" and failed.detail["blocked_tasks"] == ["transform"]
    assert failed.title == "Task etl.extract failed on try 1 of 1"  # no log, no headline


def test_the_first_poll_looks_back_and_later_ones_read_only_new_runs(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    old, recent = a_run("r1", "failed", T0 - timedelta(days=3)), a_run("r2", "failed", T0)
    for run in (old, recent):
        save_run(db, run, [a_try(run, "load", 1, "failed", 1, max_tries=1)])
    source = source_at(db, T0 + timedelta(hours=2), lookback_hours=24)
    signals, cursor = source.poll()
    assert [s.run_id for s in signals] == ["r2"]
    assert cursor.high_water == recent.end_date and set(cursor.runs) == {"etl/r2"}
    assert source.poll(cursor)[0] == []
    later = a_run("r3", "failed", T0 + timedelta(days=1))
    save_run(db, later, [a_try(later, "load", 1, "failed", 1, max_tries=1)])
    signals, cursor = source.poll(cursor)
    assert [s.run_id for s in signals] == ["r3"]
    # A re-run of r2 (cleared, tried again) ends later: its new try is new, its old one is not.
    rerun = a_run("r2", "failed", T0 + timedelta(days=2))
    save_run(db, rerun, [a_try(rerun, "load", 1, "failed", 1, max_tries=2),
                         a_try(rerun, "load", 2, "failed", 3, max_tries=2)])
    signals, _ = source.poll(cursor)
    assert [(s.run_id, s.detail["try_number"]) for s in signals] == [("r2", 2)]


def test_the_cursor_keeps_the_newest_runs_and_every_one_in_the_overlap(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    for day in range(6):
        run = a_run(f"r{day}", "success", T0 + timedelta(days=day))
        save_run(db, run, [a_try(run, "load", 1, "success", 1)])
    source = source_at(db, T0 + timedelta(days=7), lookback_hours=24 * 10, keep_runs=3,
                       overlap=timedelta(days=1, hours=1))
    _, cursor = source.poll()
    assert sorted(cursor.runs) == ["etl/r3", "etl/r4", "etl/r5"]
    stored = RunsCursor.model_validate(cursor.model_dump(mode="json"))
    assert stored == cursor


def test_check_names_the_missing_file_and_an_unknown_dag(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    assert DagRunsSource(DemoRunsBackend(db)).check() == [
        f"the demo platform's run records {db} do not exist: run `sleuth demo run` first"]
    run = a_run("r1", "success", T0)
    save_run(db, run, [a_try(run, "load", 1, "success", 1)])
    assert DagRunsSource(DemoRunsBackend(db), dag_ids=["etl", "nightly"]).check() == [
        f"DAG 'nightly' has no runs in {db} (it has: etl)"]


def test_final_state_and_history(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    for day, states in enumerate([["success"], ["up_for_retry", "success"], ["failed"]]):
        run = a_run(f"r{day}", "success", T0 + timedelta(days=day))
        save_run(db, run, [a_try(run, "load", n, s, n) for n, s in enumerate(states, 1)])
    source = source_at(db, T0 + timedelta(days=3))
    history = source.task_history("etl", "load", T0 + timedelta(hours=12))
    assert [(t.run_id, t.try_number, t.state) for t in history] == [
        ("r1", 1, "up_for_retry"), ("r1", 2, "success"), ("r2", 1, "failed")]
    assert source.final_state("etl", "r1", "load") == "success"
    assert source.final_state("etl", "r2", "load") == "failed"
    assert source.final_state("etl", "r9", "load") is None


# --------------------------------------------------------------------------- the demo platform


@dataclass(frozen=True)
class DemoPoll:
    signals: list[RawSignal]
    again: list[RawSignal]
    fault_run: str
    runs: int
    check: list[str]
    final: dict[str, str | None]


SCENARIOS = ("flaky_network", "cascade")


@pytest.fixture(scope="session")
def demo_polls(demo_platform: tuple[PlatformPaths, Path]) -> dict[str, DemoPoll]:
    """Each scenario polled right after it ran: the platform folder is rebuilt for the next."""
    from bot.demo.platform import run_scenario
    from bot.demo.scenarios import get_scenario

    paths, cache = demo_platform
    polls = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
        for name in SCENARIOS:
            outcome = run_scenario(get_scenario(name), paths=paths, days=DEMO_DAYS,
                                   seed=DEMO_SEED, cache=cache)
            source = DagRunsSource(DemoRunsBackend(paths.runs_db, repo=paths.repo),
                                   lookback_hours=24 * (DEMO_DAYS + 3))
            signals, cursor = source.poll()
            fault = outcome.fault.run_id
            final = {t: source.final_state(DAG_ID, fault, t)
                     for t in ("load_payments_payments", "dbt_build", "publish_revenue_dashboard")}
            polls[name] = DemoPoll(signals, source.poll(cursor)[0], fault, len(cursor.runs),
                                   source.check(), final)
    return polls


@pytest.mark.slow
def test_demo_flaky_network_is_one_recovered_retry_and_no_failure(
        demo_polls: dict[str, DemoPoll]) -> None:
    poll = demo_polls["flaky_network"]
    assert poll.check == [] and poll.again == [] and poll.runs == DEMO_DAYS + 1
    (retried,) = poll.signals
    assert retried.kind == "task_retried" and retried.run_id == poll.fault_run
    assert retried.asset == f"task.{DAG_ID}.load_payments_payments"
    assert retried.detail["try_number"] == 1 and retried.detail["recovered_try"] == 2
    assert retried.detail["max_tries"] == 3
    assert "Connection reset by peer" in retried.detail["exception"]
    assert retried.detail["log_excerpt"].endswith("Task exited with return code 1")
    assert poll.final["load_payments_payments"] == "success"


@pytest.mark.slow
def test_demo_cascade_fails_dbt_build_and_blocks_the_publish(
        demo_polls: dict[str, DemoPoll]) -> None:
    poll = demo_polls["cascade"]
    assert poll.again == []
    (failed,) = [s for s in poll.signals if s.kind == "task_failed"]
    assert failed.asset == f"task.{DAG_ID}.dbt_build" and failed.run_id == poll.fault_run
    assert failed.detail["blocked_tasks"] == ["publish_revenue_dashboard"]
    assert failed.detail["try_number"] == failed.detail["max_tries"] == 2
    assert [t["try_number"] for t in failed.detail["earlier_failed_tries"]] == [1]
    assert failed.detail["operator"] == "BashOperator"
    assert failed.detail["log_excerpt"] and failed.detail["error_line"]
    assert failed.dedup_key == f"dagrun:{DAG_ID}:{poll.fault_run}:dbt_build:2:task_failed"
    assert poll.final["dbt_build"] == "failed"
    assert poll.final["publish_revenue_dashboard"] == "upstream_failed"

"""Run tools over real demo run records (SQLite) and log files written here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.tools.base import Tool
from agents.tools.runs import run_tools
from bot.config import LogSourceConfig
from bot.demo import runs as records
from bot.sources.demo_runs import DemoRunsBackend
from bot.world.logs import LogFiles
from bot.world.runs import Runs

T0 = datetime(2026, 11, 20, 1, tzinfo=UTC)


def build(tmp_path: Path) -> dict[str, Tool]:
    db = tmp_path / "runs.sqlite"
    logs = tmp_path / "logs"
    for day, state in enumerate(["success", "success", "failed"]):
        run_id = f"scheduled__2026-11-2{day}"
        start = T0 + timedelta(days=day)
        tries = []
        for task, try_number, task_state in [("load", 1, "up_for_retry" if state == "failed"
                                              else "success"),
                                             *([("load", 2, "failed"),
                                                ("dbt_build", 0, "upstream_failed")]
                                               if state == "failed" else [])]:
            path = logs / f"dag_id=daily/run_id={run_id}/task_id={task}/attempt={try_number}.log"
            if try_number:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(f"[2026-11-2{day}, 01:00:{i:02d} UTC] {{x.py:1}} INFO - "
                                        f"step {i}\n" for i in range(80))
                                + "[2026-11-22, 01:01:00 UTC] {x.py:9} ERROR - Binder Error: "
                                  "column customer_id not found; password=s3cr3t-value\n")
            tries.append(records.TaskInstance(
                dag_id="daily", run_id=run_id, task_id=task, try_number=try_number, max_tries=2,
                state=task_state, start_date=start, end_date=start + timedelta(minutes=1),
                duration=60.0, operator="PythonOperator",
                log_path=str(path) if try_number else None))
        records.save_run(db, records.DagRun(
            dag_id="daily", run_id=run_id, logical_date=start - timedelta(hours=1),
            data_interval_start=start - timedelta(days=1), data_interval_end=start,
            state=state, start_date=start, end_date=start + timedelta(minutes=5)), tries)
    files = LogFiles([LogSourceConfig(name="airflow", paths=[f"{logs}/**/*.log"])])
    runs = Runs(DemoRunsBackend(db), label_of=files.label_ending)
    return {t.name: t for t in run_tools(runs, max_log_lines=50)}


def test_dag_runs_say_when_it_started_failing(tmp_path: Path) -> None:
    out = build(tmp_path)["dag_runs"].call({"dag_id": "daily", "since": "2026-11-01T00:00:00Z"})
    assert out.summary == ("3 runs of daily since 2026-11-01: 2 success, 1 failed; last "
                           "scheduled__2026-11-22 failed; last good scheduled__2026-11-21")


def test_task_tries_name_the_failed_and_the_blocked(tmp_path: Path) -> None:
    out = build(tmp_path)["task_tries"].call({"dag_id": "daily",
                                              "run_id": "scheduled__2026-11-22"})
    assert "failed: load; blocked: dbt_build" in out.summary
    assert sorted((t["task_id"], t["try_number"]) for t in out.data["tries"]) == [
        ("dbt_build", 0), ("load", 1), ("load", 2)]


def test_task_log_tail_is_cited_as_the_log_store_names_the_file(tmp_path: Path) -> None:
    tools = build(tmp_path)
    out = tools["task_log"].call({"dag_id": "daily", "run_id": "scheduled__2026-11-22",
                                  "task_id": "load", "try_number": 2, "tail": 500})
    assert out.data["start"] == 32 and out.data["end"] == 81  # capped at 50 lines
    assert out.citations[0].reference == ("logs/dag_id=daily/run_id=scheduled__2026-11-22/"
                                          "task_id=load/attempt=2.log#L32-L81")
    assert "Binder Error" in out.summary and "s3cr3t-value" not in out.for_model()
    missing = tools["task_log"].call({"dag_id": "daily", "run_id": "scheduled__2026-11-22",
                                      "task_id": "dbt_build", "try_number": 1})
    assert missing.status == "no_data"

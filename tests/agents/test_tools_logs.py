"""Log tools over a few real Airflow-style log files written here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agents.report import REFERENCE_FORMATS
from agents.tools.base import Tool
from agents.tools.logs import log_tools
from bot.config import LogSourceConfig
from bot.world.logs import LogFiles

SECRET = "hunter2-very-secret"
H = "[2026-11-23, 01:{m:02d}:{s:02d} UTC] {{{src}}} {lvl} - "


def line(m: int, s: int, lvl: str, msg: str, src: str = "loaders.py:83") -> str:
    return H.format(m=m, s=s, src=src, lvl=lvl) + msg


def failing_try(minute: int) -> str:
    return "\n".join([
        line(minute, 0, "INFO", "Starting attempt"),
        line(minute, 1, "INFO", f"connecting to postgresql://loader:{SECRET}@db:5432/shop"),
        line(minute, 2, "ERROR", "Task failed with exception", "taskinstance.py:1935"),
        "Traceback (most recent call last):",
        '  File "loaders.py", line 160, in load',
        "    con.execute(sql)",
        '_duckdb.BinderException: Binder Error: column "customer_id" not found',
        line(minute, 3, "INFO", "Marking task as UP_FOR_RETRY"),
    ]) + "\n"


@pytest.fixture
def logs(tmp_path: Path) -> LogFiles:
    root = tmp_path / "airflow" / "logs" / "dag_id=daily"
    runs = {"run_id=r1/task_id=load_orders/attempt=1.log": failing_try(30),
            "run_id=r1/task_id=load_orders/attempt=2.log": failing_try(35),
            "run_id=r1/task_id=dbt_build/attempt=1.log":
                "\n".join(line(20, i % 60, "INFO", f"model {i} OK") for i in range(120)) + "\n",
            "run_id=r0/task_id=load_orders/attempt=1.log":
                line(10, 0, "INFO", "Loaded 5,145 rows") + "\n"}
    for rel, text in runs.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return LogFiles([LogSourceConfig(name="airflow",
                                     paths=[f"{tmp_path}/airflow/logs/**/*.log"])])


def tools(logs: LogFiles, **kwargs) -> dict[str, Tool]:
    return {t.name: t for t in log_tools(logs, **kwargs)}


def log_refs_ok(out) -> bool:
    return bool(out.citations) and all(
        c.kind == "log" and re.fullmatch(REFERENCE_FORMATS["log"][0], c.reference)
        for c in out.citations)


def test_a_pattern_finds_the_line_inside_a_traceback_with_file_and_line(logs) -> None:
    out = tools(logs)["search_logs"].call({"pattern": "BinderException"})
    assert out.status == "ok" and log_refs_ok(out)
    first = out.data["lines"][0]
    assert first["at"] == ("logs/dag_id=daily/run_id=r1/task_id=load_orders/attempt=1.log#L7")
    assert first["level"] == "ERROR" and first["time"] == "2026-11-23T01:30:02+00:00"
    assert "2 lines matching 'BinderException' in 2 file(s)" in out.summary


def test_filters_by_task_run_level_and_time(logs) -> None:
    search = tools(logs)["search_logs"]
    errors = search.call({"task": "daily.load_orders", "level": "ERROR"})
    assert [x["at"].rsplit("/", 1)[-1] for x in errors.data["lines"]] == [
        "attempt=1.log#L3", "attempt=2.log#L3"]
    assert search.call({"run_id": "r0"}).data["lines"][0]["text"].endswith("Loaded 5,145 rows")
    window = search.call({"task": "load_orders", "since": "2026-11-23T01:33:00Z",
                          "until": "2026-11-23T01:36:00Z", "level": "ERROR"})
    assert len(window.data["lines"]) == 1 and "attempt=2" in window.data["lines"][0]["at"]
    assert search.call({"task": "nope"}).status == "no_data"
    assert search.call({"pattern": "("}).status == "error"


def test_error_templates_group_repeats_by_their_exception(logs) -> None:
    out = tools(logs)["error_templates"].call({"task": "load_orders"})
    (template,) = out.data["templates"]
    assert template["count"] == 2 and "BinderException" in template["template"]
    assert template["first_at"].endswith("attempt=1.log#L3")
    assert template["last_at"].endswith("attempt=2.log#L3") and log_refs_ok(out)


def test_first_occurrence_is_the_earliest_in_time(logs) -> None:
    out = tools(logs)["first_occurrence"].call({"pattern": "Starting attempt"})
    assert out.data["first"]["time"] == "2026-11-23T01:30:00+00:00"
    assert out.data["matches"] == 2


def test_read_log_is_bounded_and_takes_only_known_files(logs) -> None:
    read = tools(logs, max_read=10)["read_log"]
    name = "logs/dag_id=daily/run_id=r1/task_id=dbt_build/attempt=1.log"
    out = read.call({"file": name, "start": 5, "end": 100})
    assert out.data["end"] == 14 and out.data["truncated"] is True
    assert out.citations[0].reference == f"{name}#L5-L14" and "cut at 10 lines" in out.summary
    for bad in ("../../etc/passwd", "/etc/passwd", "logs/nope.log"):
        assert read.call({"file": bad}).status == "error"


def test_many_matches_are_cut_and_said(logs) -> None:
    out = tools(logs, max_lines=5)["search_logs"].call({"task": "dbt_build"})
    assert len(out.data["lines"]) == 5 and out.data["truncated"] is True
    assert out.summary.startswith("5+ lines") and len(out.citations) == 5


def test_a_password_in_a_log_line_is_redacted(logs) -> None:
    out = tools(logs)["search_logs"].call({"pattern": "connecting"})
    text = out.for_model()
    assert SECRET not in text and "[REDACTED:password]" in text
    assert all(SECRET not in c.excerpt for c in out.citations)

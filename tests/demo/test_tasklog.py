"""Task logs: Airflow's file layout, line format, framing lines and tracebacks."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot.demo import airflow_errors
from bot.demo.dagspec import DagSpec
from bot.demo.operators import Operator, TaskContext
from bot.demo.paths import PlatformPaths
from bot.demo.runner import execute_dag
from bot.demo.tasklog import AttemptLog, SimClock, attempt_log_path

LINE = re.compile(
    r"^\[\d{4}-\d{2}-\d{2}, \d{2}:\d{2}:\d{2} UTC\] \{[\w.]+:\d+\} (INFO|WARNING|ERROR) - "
)
RUN_AT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def test_attempt_log_path_is_airflows_layout(tmp_path: Path) -> None:
    path = attempt_log_path(
        tmp_path, "daily_warehouse", "scheduled__2026-11-20T00:00:00+00:00", "dbt_build", 2
    )
    assert path.relative_to(tmp_path).as_posix() == (
        "dag_id=daily_warehouse/run_id=scheduled__2026-11-20T00:00:00+00:00/task_id=dbt_build/attempt=2.log"
    )


def test_logger_writes_simulated_time_and_caller_location(tmp_path: Path) -> None:
    clock = SimClock(RUN_AT)
    with AttemptLog(tmp_path / "a.log", clock) as log:
        log.logger.info("Loaded %d rows", 42)
        clock.advance(3600)
        log.logger.warning("late")
        log.airflow("taskinstance.py:1157", "Dependencies all met")
        log.logger.debug("not written: Airflow's task logger is at INFO")
    lines = (tmp_path / "a.log").read_text().splitlines()
    assert re.match(
        r"^\[2026-11-21, 02:00:0\d UTC\] \{test_tasklog\.py:\d+\} INFO - Loaded 42 rows$", lines[0]
    )
    assert lines[1].startswith("[2026-11-21, 03:00:0") and lines[1].endswith("WARNING - late")
    assert " {taskinstance.py:1157} INFO - Dependencies all met" in lines[2]
    assert len(lines) == 3


def test_attempt_loggers_are_independent(tmp_path: Path) -> None:
    first = AttemptLog(tmp_path / "1.log", SimClock(RUN_AT))
    second = AttemptLog(tmp_path / "2.log", SimClock(RUN_AT))
    first.logger.info("one")
    second.logger.info("two")
    first.close()
    second.close()
    assert "two" not in (tmp_path / "1.log").read_text()
    assert "one" not in (tmp_path / "2.log").read_text()
    assert not logging.getLogger("airflow.task").handlers


# ---------------------------------------------------------------- a failing task's log


def transform(ctx: TaskContext) -> None:
    """Stand-in task code that fails on its first try, the way real code does."""
    ctx.log.logger.info("Reading partition %s", ctx.day)
    if ctx.try_number == 1:
        {"orders": 1}["customers"]


def noop(ctx: TaskContext) -> None:
    return None


DAG = DagSpec.model_validate(
    {
        "dag_id": "daily_warehouse",
        "default_args": {"owner": "data-platform", "retries": 1, "retry_delay_sec": 300},
        "tasks": {
            "load_shop_orders": {"operator": "load", "loader": "shop_orders"},
            "publish_revenue_dashboard": {
                "operator": "publish",
                "exposure": "revenue_dashboard",
                "dependencies": ["load_shop_orders"],
            },
        },
    }
)
OPERATORS = {
    "load": Operator("PythonOperator", transform, transform),
    "publish": Operator("PythonOperator", noop, noop),
}


def test_failed_try_log_reads_like_airflow_with_the_traceback(tmp_path: Path) -> None:
    paths = PlatformPaths(tmp_path)
    result = execute_dag(
        DAG,
        date(2026, 11, 20),
        paths=paths,
        run_at=RUN_AT,
        latest=False,
        seed=1,
        operators=OPERATORS,
    )
    first, second = result.tries("load_shop_orders")
    assert (first.state, second.state) == ("up_for_retry", "success")
    text = Path(first.log_path).read_text()
    run_id = "scheduled__2026-11-20T00:00:00+00:00"
    for expected in [
        "{taskinstance.py:1157} INFO - Dependencies all met for dep_context=non-requeueable deps "
        f"ti=<TaskInstance: daily_warehouse.load_shop_orders {run_id} [queued]>",
        "INFO - Starting attempt 1 of 2",
        "INFO - Executing <Task(PythonOperator): load_shop_orders> on 2026-11-20 00:00:00+00:00",
        "AIRFLOW_CTX_TRY_NUMBER='1'",
        "{test_tasklog.py:",  # the task's own log line, at its own file and line
        "{taskinstance.py:1935} ERROR - Task failed with exception\n"
        "Traceback (most recent call last):\n"
        '  File "/home/airflow/.local/lib/python3.11/site-packages/airflow/operators/python.py", '
        "line 192, in execute\n",
        f'  File "{__file__}", line ',
        ", in transform\n",
        "\nKeyError: 'customers'\n",
        "INFO - Marking task as UP_FOR_RETRY. dag_id=daily_warehouse, task_id=load_shop_orders, "
        f"run_id={run_id}, execution_date=20261120T000000, start_date=20261121T0200",
        "INFO - Task exited with return code 1",
    ]:
        assert expected in text, expected
    assert "bot/demo/runner.py" not in text  # the runtime's own frames are not a worker's
    # every line is either a log line or part of the traceback under the ERROR line
    body = text.split("Traceback (most recent call last):")[1].split("KeyError: 'customers'")[0]
    non_log = [line for line in text.splitlines() if not LINE.match(line)]
    assert all(
        line in body or line in ("Traceback (most recent call last):", "KeyError: 'customers'")
        for line in non_log
    )

    ok = Path(second.log_path).read_text()
    assert "Starting attempt 2 of 2" in ok
    assert "{python.py:194} INFO - Done. Returned value was: None" in ok
    assert "Marking task as SUCCESS." in ok and "Task exited with return code 0" in ok
    assert Path(second.log_path).name == "attempt=2.log"


def test_failed_for_good_is_marked_failed(tmp_path: Path) -> None:
    always = {**OPERATORS, "load": Operator("PythonOperator", _always_fails, _always_fails)}
    result = execute_dag(
        DAG,
        date(2026, 11, 20),
        paths=PlatformPaths(tmp_path),
        run_at=RUN_AT,
        latest=False,
        seed=1,
        operators=always,
    )
    last = result.tries("load_shop_orders")[-1]
    text = Path(last.log_path).read_text()
    assert "Marking task as FAILED." in text
    assert "ERROR - Failed to execute job" in text and "RuntimeError: warehouse unreachable" in text


def _always_fails(ctx: TaskContext) -> None:
    raise RuntimeError("warehouse unreachable")


def test_connection_reset_renders_the_whole_exception_chain() -> None:
    caller = airflow_errors.caller_frame(transform)
    text = airflow_errors.render_traceback(
        airflow_errors.connection_reset(
            "api.payments.example.com", "/v1/payments?date=2026-11-20", caller
        ),
        airflow_errors.PYTHON_OPERATOR,
    )
    assert text.startswith("Traceback (most recent call last):")
    assert text.count("Traceback (most recent call last):") == 4
    assert "ConnectionResetError: [Errno 104] Connection reset by peer" in text
    assert (
        "urllib3.exceptions.ProtocolError: ('Connection aborted.', ConnectionResetError(104, "
        in text
    )
    assert "The above exception was the direct cause of the following exception:" in text
    assert "During handling of the above exception, another exception occurred:" in text
    assert text.endswith(
        "requests.exceptions.ConnectionError: HTTPSConnectionPool("
        "host='api.payments.example.com', port=443): Max retries exceeded with url: "
        "/v1/payments?date=2026-11-20 (Caused by ProtocolError('Connection "
        "aborted.', ConnectionResetError(104, 'Connection reset by peer')))"
    )
    assert f'File "{__file__}"' in text and "in transform" in text


def test_clock_advances_without_sleeping() -> None:
    clock = SimClock(RUN_AT)
    clock.advance(timedelta(minutes=15).total_seconds())
    assert timedelta(minutes=15) <= clock.now() - RUN_AT < timedelta(minutes=15, seconds=5)

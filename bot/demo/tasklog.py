"""Task logs as Airflow 2 writes them: one file per try, its classic line format, its framing.

Layout: `logs/dag_id=<dag>/run_id=<run>/task_id=<task>/attempt=<n>.log`. Lines:
`[2026-11-21, 02:00:01 UTC] {taskinstance.py:1157} INFO - Dependencies all met for ...`.
Timestamps come from a simulated clock, so a history of daily runs can be produced in
seconds while every log still reads as if the task ran at its scheduled hour.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

LOG_FORMAT = "[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s"
TIME_FORMAT = "%Y-%m-%d, %H:%M:%S UTC"


def attempt_log_path(logs: Path, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    return (
        logs
        / f"dag_id={dag_id}"
        / f"run_id={run_id}"
        / f"task_id={task_id}"
        / f"attempt={try_number}.log"
    )


class SimClock:
    """Runs at real speed from a simulated start; `advance` stands in for waits never slept."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        self._start = start.astimezone(UTC)
        self._wall0 = time.time()
        self._skipped = 0.0

    def now(self) -> datetime:
        return self.at(time.time())

    def at(self, wall: float) -> datetime:
        """Simulated time of a real moment (`time.time()`), e.g. a log record's."""
        return self._start + timedelta(seconds=wall - self._wall0 + self._skipped)

    def advance(self, seconds: float) -> None:
        self._skipped += seconds


class _SimFormatter(logging.Formatter):
    def __init__(self, clock: SimClock) -> None:
        super().__init__(LOG_FORMAT)
        self._clock = clock

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return self._clock.at(record.created).strftime(TIME_FORMAT)


class AttemptLog:
    """The log file of one try. `logger` is what task code logs through."""

    def __init__(self, path: Path, clock: SimClock) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.clock = clock
        self._handler = logging.FileHandler(path, mode="w", encoding="utf-8")
        self._handler.setFormatter(_SimFormatter(clock))
        # Not registered with logging's manager: one per try would otherwise live forever.
        self.logger = logging.Logger("airflow.task", logging.INFO)
        self.logger.addHandler(self._handler)
        self.logger.propagate = False

    def airflow(
        self, where: str, message: str, level: int = logging.INFO, exc_text: str | None = None
    ) -> None:
        """A line as Airflow's own code (`where` = "file.py:lineno") writes it."""
        filename, _, lineno = where.partition(":")
        record = logging.LogRecord(
            "airflow.task", level, filename, int(lineno or 0), message, None, None
        )
        record.exc_text = exc_text
        self.logger.handle(record)

    def close(self) -> None:
        self.logger.removeHandler(self._handler)
        self._handler.close()

    def __enter__(self) -> AttemptLog:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# ---------------------------------------------------------------- Airflow's framing lines


@dataclass(frozen=True)
class TryInfo:
    """What Airflow prints about a task instance try."""

    dag_id: str
    task_id: str
    run_id: str
    logical_date: datetime
    try_number: int
    max_tries: int
    operator_class: str
    owner: str
    pid: int
    job_id: int
    hostname: str
    dag_file: str

    def ti(self, state: str) -> str:
        return f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id} [{state}]>"


def _compact(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S")


def log_task_start(log: AttemptLog, info: TryInfo) -> None:
    logical = info.logical_date.isoformat()
    log.airflow(
        "taskinstance.py:1157",
        f"Dependencies all met for dep_context=non-requeueable deps ti={info.ti('queued')}",
    )
    log.airflow(
        "taskinstance.py:1157",
        f"Dependencies all met for dep_context=requeueable deps ti={info.ti('queued')}",
    )
    log.airflow("taskinstance.py:1359", f"Starting attempt {info.try_number} of {info.max_tries}")
    log.airflow(
        "taskinstance.py:1380",
        f"Executing <Task({info.operator_class}): {info.task_id}> "
        f"on {info.logical_date.isoformat(' ')}",
    )
    log.airflow("standard_task_runner.py:57", f"Started process {info.pid} to run task")
    command = [
        "airflow",
        "tasks",
        "run",
        info.dag_id,
        info.task_id,
        info.run_id,
        "--job-id",
        str(info.job_id),
        "--raw",
        "--subdir",
        info.dag_file,
        "--cfg-path",
        f"/tmp/tmp{info.job_id:x}cfg",
    ]
    log.airflow("standard_task_runner.py:84", f"Running: {command}")
    log.airflow("standard_task_runner.py:85", f"Job {info.job_id}: Subtask {info.task_id}")
    log.airflow("task_command.py:416", f"Running {info.ti('running')} on host {info.hostname}")
    log.airflow(
        "taskinstance.py:1660",
        "Exporting env vars: "
        + " ".join(
            [
                f"AIRFLOW_CTX_DAG_OWNER='{info.owner}'",
                f"AIRFLOW_CTX_DAG_ID='{info.dag_id}'",
                f"AIRFLOW_CTX_TASK_ID='{info.task_id}'",
                f"AIRFLOW_CTX_EXECUTION_DATE='{logical}'",
                f"AIRFLOW_CTX_TRY_NUMBER='{info.try_number}'",
                f"AIRFLOW_CTX_DAG_RUN_ID='{info.run_id}'",
            ]
        ),
    )


def _marking(info: TryInfo, state: str, start: datetime, end: datetime) -> str:
    return (
        f"Marking task as {state}. dag_id={info.dag_id}, task_id={info.task_id}, "
        f"run_id={info.run_id}, execution_date={_compact(info.logical_date)}, "
        f"start_date={_compact(start)}, end_date={_compact(end)}"
    )


def log_task_success(
    log: AttemptLog,
    info: TryInfo,
    start: datetime,
    end: datetime,
    returned: object = None,
    downstream: int = 0,
) -> None:
    if info.operator_class == "PythonOperator":
        log.airflow("python.py:194", f"Done. Returned value was: {returned!r}")
    log.airflow("taskinstance.py:1398", _marking(info, "SUCCESS", start, end))
    log.airflow("local_task_job_runner.py:228", "Task exited with return code 0")
    log.airflow(
        "taskinstance.py:2776",
        f"{downstream} downstream tasks scheduled from follow-on schedule check",
    )


def log_task_failure(
    log: AttemptLog,
    info: TryInfo,
    exc: BaseException,
    traceback_text: str,
    start: datetime,
    end: datetime,
    *,
    will_retry: bool,
) -> None:
    log.airflow(
        "taskinstance.py:1935", "Task failed with exception", logging.ERROR, exc_text=traceback_text
    )
    log.airflow(
        "taskinstance.py:1398",
        _marking(info, "UP_FOR_RETRY" if will_retry else "FAILED", start, end),
    )
    log.airflow(
        "standard_task_runner.py:104",
        f"Failed to execute job {info.job_id} for task {info.task_id} ({exc}; {info.pid})",
        logging.ERROR,
    )
    log.airflow("local_task_job_runner.py:228", "Task exited with return code 1")

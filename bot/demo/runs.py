"""DAG run and task instance records, as Airflow's metadata database keeps them (SQLite).

`task_instance` holds one row per try (Airflow splits these between `task_instance` and
`task_instance_history`). A task that never ran (upstream_failed, skipped) has one row with
try_number 0 and no log. Times are ISO 8601 UTC strings with microseconds, so they sort.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

TaskState = Literal["success", "failed", "up_for_retry", "upstream_failed", "skipped"]
RunState = Literal["success", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dag_run (
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    run_type TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    data_interval_start TEXT NOT NULL,
    data_interval_end TEXT NOT NULL,
    state TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    PRIMARY KEY (dag_id, run_id)
);
CREATE TABLE IF NOT EXISTS task_instance (
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    try_number INTEGER NOT NULL,
    max_tries INTEGER NOT NULL,
    state TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    duration REAL,
    operator TEXT NOT NULL,
    hostname TEXT,
    pid INTEGER,
    job_id INTEGER,
    log_path TEXT,
    PRIMARY KEY (dag_id, run_id, task_id, try_number)
);
CREATE INDEX IF NOT EXISTS dag_run_logical_date ON dag_run (dag_id, logical_date);
"""


class DagRun(BaseModel):
    dag_id: str
    run_id: str
    run_type: str = "scheduled"
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    state: RunState
    start_date: datetime
    end_date: datetime


class TaskInstance(BaseModel):
    """One try of a task (try_number 0: the task never ran)."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    max_tries: int
    state: TaskState
    start_date: datetime
    end_date: datetime
    duration: float | None
    operator: str
    hostname: str | None = None
    pid: int | None = None
    job_id: int | None = None
    log_path: str | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@contextmanager
def _connect(db: Path) -> Iterator[sqlite3.Connection]:
    db.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(db)) as con:
        con.row_factory = sqlite3.Row
        con.executescript(_SCHEMA)
        with con:  # one transaction
            yield con


def save_run(db: Path, run: DagRun, tries: Sequence[TaskInstance]) -> None:
    """Store a finished run; a run with the same id (a re-run) is replaced."""
    with _connect(db) as con:
        con.execute(
            "DELETE FROM task_instance WHERE dag_id = ? AND run_id = ?", (run.dag_id, run.run_id)
        )
        con.execute("DELETE FROM dag_run WHERE dag_id = ? AND run_id = ?", (run.dag_id, run.run_id))
        row = run.model_dump()
        con.execute(
            f"INSERT INTO dag_run ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            [_iso(v) if isinstance(v, datetime) else v for v in row.values()],
        )
        for ti in tries:
            row = ti.model_dump()
            con.execute(
                f"INSERT INTO task_instance ({', '.join(row)}) "
                f"VALUES ({', '.join('?' * len(row))})",
                [_iso(v) if isinstance(v, datetime) else v for v in row.values()],
            )


def list_runs(
    db: Path,
    *,
    dag_id: str | None = None,
    state: RunState | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DagRun]:
    """Runs by logical date, oldest first; `since`/`until` bound the logical date (inclusive)."""
    where, args = _filters(dag_id=dag_id, state=state)
    if since is not None:
        where.append("logical_date >= ?")
        args.append(_iso(since))
    if until is not None:
        where.append("logical_date <= ?")
        args.append(_iso(until))
    sql = "SELECT * FROM dag_run" + (f" WHERE {' AND '.join(where)}" if where else "")
    return [DagRun(**dict(r)) for r in _query(db, sql + " ORDER BY logical_date, dag_id", args)]


def get_run(db: Path, run_id: str, *, dag_id: str) -> DagRun | None:
    rows = _query(db, "SELECT * FROM dag_run WHERE dag_id = ? AND run_id = ?", [dag_id, run_id])
    return DagRun(**dict(rows[0])) if rows else None


def task_instances(
    db: Path, run_id: str, *, dag_id: str, task_id: str | None = None, final_only: bool = False
) -> list[TaskInstance]:
    """Tries of a run in the order they started; `final_only` keeps each task's last try."""
    where, args = _filters(dag_id=dag_id, run_id=run_id, task_id=task_id)
    sql = (f"SELECT * FROM task_instance WHERE {' AND '.join(where)} "
           "ORDER BY start_date, task_id, try_number")
    tries = [TaskInstance(**dict(r)) for r in _query(db, sql, args)]
    if final_only:
        last = {ti.task_id: ti for ti in sorted(tries, key=lambda t: t.try_number)}
        tries = [ti for ti in tries if last[ti.task_id] is ti]
    return tries


def _filters(**equal: str | None) -> tuple[list[str], list[object]]:
    given = {k: v for k, v in equal.items() if v is not None}
    return [f"{k} = ?" for k in given], list(given.values())


def _query(db: Path, sql: str, args: Sequence[object]) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    with _connect(db) as con:
        return con.execute(sql, list(args)).fetchall()

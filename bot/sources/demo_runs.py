"""The demo platform's run records (`bot.demo.runs`, SQLite) as a `RunsBackend`.

The demo keeps one row per try, as Airflow's task_instance and task_instance_history
together; a task that never ran has try 0. Its `max_tries` already counts every try. Runs
are written once they end, so a run's end is its `updated_at`. The DAG's shape, for the
tasks a failure blocked, comes from the DAG file in the platform's repository.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from bot.demo import runs
from bot.demo.dagspec import DagSpecError, dag_file, load_dag
from bot.sources.dag_runs import DagRunRecord, RunsBackendError, TaskTry

T = TypeVar("T")


class DemoRunsBackend:
    """Reads `runs.sqlite` of a demo platform; `repo` holds its `dags/<dag_id>.yml`."""

    def __init__(self, runs_db: Path, repo: Path | None = None) -> None:
        self.runs_db = Path(runs_db)
        self.repo = repo
        self.label = str(self.runs_db)

    def runs_since(self, since: datetime, dag_ids: Sequence[str] | None) -> list[DagRunRecord]:
        found: list[runs.DagRun] = []
        for dag_id in dag_ids or [None]:
            found += self._read(lambda d=dag_id: runs.list_runs(self.runs_db, dag_id=d))
        return [_run(r) for r in found if r.end_date >= since]

    def run(self, dag_id: str, run_id: str) -> DagRunRecord | None:
        found = self._read(lambda: runs.get_run(self.runs_db, run_id, dag_id=dag_id))
        return _run(found) if found is not None else None

    def tries(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[TaskTry]:
        rows = self._read(lambda: runs.task_instances(self.runs_db, run_id, dag_id=dag_id,
                                                      task_id=task_id))
        return [TaskTry.model_validate(ti.model_dump()) for ti in rows]

    def log(self, attempt: TaskTry) -> str | None:
        rows = self._read(lambda: runs.task_instances(self.runs_db, attempt.run_id,
                                                      dag_id=attempt.dag_id,
                                                      task_id=attempt.task_id))
        path = next((ti.log_path for ti in rows if ti.try_number == attempt.try_number), None)
        if not path or not Path(path).is_file():
            return None
        return Path(path).read_text(encoding="utf-8", errors="replace")

    def downstream(self, dag_id: str) -> Mapping[str, Sequence[str]] | None:
        if self.repo is None or not dag_file(self.repo, dag_id).is_file():
            return None
        try:
            dag = load_dag(dag_file(self.repo, dag_id), dag_id)
        except DagSpecError:
            return None
        return {task: dag.downstream(task) for task in dag.tasks}

    def check(self, dag_ids: Sequence[str] | None) -> list[str]:
        if not self.runs_db.is_file():
            return [f"the demo platform's run records {self.runs_db} do not exist: "
                    "run `sleuth demo run` first"]
        try:
            known = {r.dag_id for r in runs.list_runs(self.runs_db)}
        except Exception as exc:  # sqlite3 or pydantic: either way the file is unusable
            return [f"cannot read the run records {self.runs_db}: {exc}"]
        return [f"DAG {d!r} has no runs in {self.runs_db} (it has: {', '.join(sorted(known))})"
                for d in dag_ids or [] if d not in known]

    def _read(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except (ValidationError, OSError, sqlite3.Error) as exc:
            raise RunsBackendError(f"cannot read the run records {self.runs_db}: {exc}") from exc


def _run(r: runs.DagRun) -> DagRunRecord:
    return DagRunRecord(dag_id=r.dag_id, run_id=r.run_id, state=r.state,
                        logical_date=r.logical_date, start_date=r.start_date,
                        end_date=r.end_date, updated_at=r.end_date)

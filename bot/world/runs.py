"""DAG runs for the investigation, over the intake's `RunsBackend` (Airflow's API or the demo's
run records). A try's log is named by the log files' label when the log store holds the file,
so that `task_log` and `search_logs` cite the same lines the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from agents.world import DagRun, TaskLog, TaskTry
from bot.sources.dag_runs import RunsBackend
from bot.sources.dag_runs import TaskTry as BackendTry


class Runs:
    """The `RunHistory` of a runs backend."""

    def __init__(self, backend: RunsBackend,
                 label_of: Callable[[str], str | None] = lambda _suffix: None) -> None:
        """`label_of`: the log store's label of the file ending in an Airflow-style path."""
        self.backend = backend
        self.label_of = label_of

    def runs(self, dag_id: str, since: datetime) -> list[DagRun]:
        found = self.backend.runs_since(since, [dag_id])
        return [DagRun(dag_id=r.dag_id, run_id=r.run_id, state=r.state,
                       logical_date=r.logical_date, start_date=r.start_date,
                       end_date=r.end_date)
                for r in sorted(found, key=lambda r: (r.logical_date or r.updated_at, r.run_id))]

    def tries(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[TaskTry]:
        return [TaskTry.model_validate(t.model_dump(exclude={"max_tries"}))
                for t in self.backend.tries(dag_id, run_id, task_id)]

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> TaskLog | None:
        attempt = next((t for t in self.backend.tries(dag_id, run_id, task_id)
                        if t.try_number == try_number), None)
        if attempt is None:
            return None
        text = self.backend.log(attempt)
        if text is None:
            return None
        return TaskLog(file=self._file(attempt), text=text)

    def _file(self, attempt: BackendTry) -> str:
        """The log store's label of the try's file (found by Airflow's layout), else that
        layout under `airflow/`."""
        path = (f"dag_id={attempt.dag_id}/run_id={attempt.run_id}/task_id={attempt.task_id}"
                + (f"/map_index={attempt.map_index}" if attempt.map_index >= 0 else "")
                + f"/attempt={attempt.try_number}.log")
        return self.label_of(path) or f"airflow/{path}"

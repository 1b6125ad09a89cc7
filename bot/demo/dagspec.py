"""The platform's DAG as declared in the repo: dag-factory style YAML, validated on read.

`dags/daily_warehouse.yml` is one mapping `{dag_id: {default_args, tasks, ...}}` as
dag-factory reads it. Per task: `operator`, `dependencies` (upstream task ids), `retries`,
`retry_delay_sec`, `execution_timeout_secs`, `latest_only`, plus what the operator needs
(`loader`, `bash_command`, `exposure`). Task settings fall back to `default_args`.
"""

from __future__ import annotations

from datetime import date, timedelta
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

OperatorName = Literal["load", "dbt_build", "dbt_source_freshness", "publish"]


class DagSpecError(ValueError):
    """The DAG file cannot be used; the message says where and why."""


class DefaultArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str = "airflow"
    start_date: date | None = None
    retries: int = Field(2, ge=0, description="Retries after the first try.")
    retry_delay_sec: float = Field(300, ge=0)
    execution_timeout_secs: float | None = Field(None, gt=0)
    email_on_failure: bool = False
    email_on_retry: bool = False


class TaskSpec(BaseModel):
    """One task; unset settings are taken from the DAG's `default_args` by `DagSpec`."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = ""
    operator: OperatorName
    dependencies: list[str] = Field(default_factory=list, description="Upstream task ids.")
    retries: int | None = Field(None, ge=0)
    retry_delay_sec: float | None = Field(None, ge=0)
    execution_timeout_secs: float | None = Field(None, gt=0)
    latest_only: bool = Field(
        False, description="Skip unless the run is the latest (Airflow's LatestOnlyOperator)."
    )
    loader: str | None = Field(None, description="load: the loader to run.")
    bash_command: str | None = Field(None, description="dbt_*: the dbt command line.")
    exposure: str | None = Field(None, description="publish: the dbt exposure it feeds.")

    @model_validator(mode="after")
    def _operator_arguments(self) -> TaskSpec:
        needs = {
            "load": "loader",
            "dbt_build": "bash_command",
            "dbt_source_freshness": "bash_command",
            "publish": "exposure",
        }[self.operator]
        if getattr(self, needs) is None:
            raise ValueError(f"operator '{self.operator}' needs '{needs}'")
        if self.bash_command is not None and not self.bash_command.split()[:1] == ["dbt"]:
            raise ValueError(f"bash_command must run dbt, got {self.bash_command!r}")
        return self

    @property
    def max_tries(self) -> int:
        return (self.retries or 0) + 1

    @property
    def retry_delay(self) -> timedelta:
        return timedelta(seconds=self.retry_delay_sec or 0)

    @property
    def execution_timeout(self) -> timedelta | None:
        if self.execution_timeout_secs is None:
            return None
        return timedelta(seconds=self.execution_timeout_secs)


class DagSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dag_id: str = ""
    description: str = ""
    schedule_interval: str = "@daily"
    catchup: bool = False
    max_active_runs: int = 1
    tags: list[str] = Field(default_factory=list)
    default_args: DefaultArgs = Field(default_factory=DefaultArgs)
    tasks: dict[str, TaskSpec]

    @model_validator(mode="after")
    def _resolve_tasks(self) -> DagSpec:
        for task_id, task in self.tasks.items():
            task.task_id = task_id
            for name in ("retries", "retry_delay_sec", "execution_timeout_secs"):
                if getattr(task, name) is None:
                    setattr(task, name, getattr(self.default_args, name))
            unknown = [u for u in task.dependencies if u not in self.tasks]
            if unknown:
                raise ValueError(f"task '{task_id}' depends on unknown task(s) {unknown}")
        try:
            self.topological_order()
        except CycleError as exc:
            raise ValueError(f"tasks form a cycle: {' -> '.join(exc.args[1])}") from None
        return self

    def topological_order(self) -> list[TaskSpec]:
        """Upstream first; ties keep the file's order, so runs are reproducible."""
        sorter = TopologicalSorter({t: self.tasks[t].dependencies for t in self.tasks})
        sorter.prepare()
        position = {task_id: i for i, task_id in enumerate(self.tasks)}
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=position.__getitem__)
            order.extend(ready)
            sorter.done(*ready)
        return [self.tasks[t] for t in order]

    def downstream(self, task_id: str) -> list[str]:
        return [t for t, spec in self.tasks.items() if task_id in spec.dependencies]


def dag_file(repo: Path, dag_id: str) -> Path:
    return repo / "dags" / f"{dag_id}.yml"


def load_dag(path: Path, dag_id: str | None = None) -> DagSpec:
    """Read and validate a dag-factory file; `dag_id` picks one DAG if it holds several."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DagSpecError(f"{path}: cannot read DAG file: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise DagSpecError(f"{path}: expected a mapping of dag_id to DAG settings")
    dags = {k: v for k, v in raw.items() if k != "default"}  # dag-factory's shared block
    if dag_id is None:
        if len(dags) != 1:
            raise DagSpecError(f"{path}: holds {sorted(dags)}; say which dag_id to load")
        dag_id = next(iter(dags))
    if dag_id not in dags:
        raise DagSpecError(f"{path}: no DAG '{dag_id}' (found {sorted(dags)})")
    try:
        return DagSpec.model_validate({**(dags[dag_id] or {}), "dag_id": dag_id})
    except ValidationError as exc:
        raise DagSpecError(f"{path}: DAG '{dag_id}' is invalid:\n{_explain(exc)}") from None


def _explain(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)

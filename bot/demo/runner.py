"""One daily DAG run, executed the way Airflow's scheduler and workers would.

Tasks run one after another in topological order, really (loads, dbt, publish), but on a
simulated clock: each task starts when its upstream tasks are done (plus the scheduler's
pickup delay) and lasts as long as it really took, so the loads overlap as on a real worker
pool and a history of runs takes seconds. Retry delays and hangs move the clock, never sleep.

States follow Airflow: a failed try with retries left is `up_for_retry`; the last failed try
is `failed` and its downstream tasks `upstream_failed`; a `latest_only` task is `skipped` in
runs that are not the latest; the run is `failed` if any task failed.
"""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.demo import airflow_errors
from bot.demo.dagspec import DagSpec, TaskSpec, dag_file, load_dag
from bot.demo.dbt_task import warehouse_freshness, write_profiles
from bot.demo.metrics import MetricsStore, Sample
from bot.demo.operators import Operator, TaskContext, default_operators, source_table
from bot.demo.paths import DAG_ID, PlatformPaths
from bot.demo.runs import DagRun, TaskInstance, TaskState, save_run
from bot.demo.tasklog import (
    AttemptLog,
    SimClock,
    TryInfo,
    attempt_log_path,
    log_task_failure,
    log_task_start,
    log_task_success,
)

# ---------------------------------------------------------------- runtime faults


class FlakyTask(BaseModel):
    """A load whose upstream API resets the connection on some tries (noise if a retry passes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str
    failing_tries: list[int] = Field(
        default_factory=lambda: [1], description="Tries that fail, from 1."
    )


class HungTask(BaseModel):
    """A load whose landing-zone mount stops answering, so it runs into its execution_timeout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str
    tries: list[int] | None = Field(None, description="Tries that hang, from 1; None: every try.")


class RuntimeFaults(BaseModel):
    """Faults of the platform itself in one run (data faults belong to the generator)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flaky: list[FlakyTask] = Field(default_factory=list)
    hung: list[HungTask] = Field(default_factory=list)
    warehouse_memory_limit: str | None = Field(
        None,
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$",
        description="DuckDB memory_limit for the run's dbt profile, e.g. '48MB'.",
    )

    @model_validator(mode="after")
    def _one_fault_per_task(self) -> RuntimeFaults:
        ids = [f.task_id for f in self.flaky] + [h.task_id for h in self.hung]
        if len(ids) != len(set(ids)):
            raise ValueError("a task can be flaky or hung, not both")
        return self

    def check_against(self, dag: DagSpec) -> None:
        for fault in [*self.flaky, *self.hung]:
            task = dag.tasks.get(fault.task_id)
            if task is None or task.operator != "load":
                raise ValueError(
                    f"runtime fault on '{fault.task_id}': "
                    f"only load tasks of {dag.dag_id} fetch from upstream"
                )
        for hung in self.hung:
            if dag.tasks[hung.task_id].execution_timeout is None:
                raise ValueError(
                    f"'{hung.task_id}' has no execution_timeout: a hang would never end"
                )

    def fault_for(
        self, task_id: str, try_number: int
    ) -> Literal["connection_reset", "hang"] | None:
        if any(f.task_id == task_id and try_number in f.failing_tries for f in self.flaky):
            return "connection_reset"
        if any(
            h.task_id == task_id and (h.tries is None or try_number in h.tries) for h in self.hung
        ):
            return "hang"
        return None


# ---------------------------------------------------------------- results


class DagRunResult(BaseModel):
    dag_run: DagRun
    task_instances: list[TaskInstance] = Field(description="Every try, in the order they ran.")

    @property
    def state(self) -> str:
        return self.dag_run.state

    @property
    def run_id(self) -> str:
        return self.dag_run.run_id

    def final_states(self) -> dict[str, TaskState]:
        return {ti.task_id: ti.state for ti in self.task_instances}

    def tries(self, task_id: str) -> list[TaskInstance]:
        return [ti for ti in self.task_instances if ti.task_id == task_id]


def run_id_for(day: date) -> str:
    return f"scheduled__{logical_date(day).isoformat()}"


def logical_date(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


# ---------------------------------------------------------------- running


def run_dag(
    day: date,
    *,
    paths: PlatformPaths,
    run_at: datetime,
    latest: bool,
    faults: RuntimeFaults | None = None,
    seed: int,
) -> DagRunResult:
    """Run `daily_warehouse` for logical date `day`, as the repo's DAG file declares it."""
    dag = load_dag(dag_file(paths.repo, DAG_ID), DAG_ID)
    return execute_dag(
        dag,
        day,
        paths=paths,
        run_at=run_at,
        latest=latest,
        faults=faults,
        seed=seed,
        operators=default_operators(),
    )


def execute_dag(
    dag: DagSpec,
    day: date,
    *,
    paths: PlatformPaths,
    run_at: datetime,
    latest: bool,
    faults: RuntimeFaults | None = None,
    seed: int,
    operators: Mapping[str, Operator],
) -> DagRunResult:
    """Run `dag` with the given operator implementations (tests bring their own)."""
    faults = faults or RuntimeFaults()
    faults.check_against(dag)
    missing = {t.operator for t in dag.tasks.values()} - set(operators)
    if missing:
        raise ValueError(f"no implementation for operator(s) {sorted(missing)}")
    run = _Run(
        dag,
        day,
        paths,
        run_at.astimezone(UTC),
        latest,
        faults,
        seed,
        operators,
        MetricsStore(paths.metrics_db),
    )
    run.prepare()
    for task in dag.topological_order():
        run.run_task(task)
    return run.finish()


@dataclass
class _Outcome:
    state: TaskState
    end: datetime


@dataclass
class _Run:
    dag: DagSpec
    day: date
    paths: PlatformPaths
    run_at: datetime
    latest: bool
    faults: RuntimeFaults
    seed: int
    operators: Mapping[str, Operator]
    metrics: MetricsStore

    def __post_init__(self) -> None:
        self.run_id = run_id_for(self.day)
        self.outcomes: dict[str, _Outcome] = {}
        self.tries: list[TaskInstance] = []
        self.jobs = 0

    def prepare(self) -> None:
        """A re-run of a day replaces its logs and artifacts; profiles carry the infra fault."""
        shutil.rmtree(
            self.paths.logs / f"dag_id={self.dag.dag_id}" / f"run_id={self.run_id}",
            ignore_errors=True,
        )
        shutil.rmtree(self.paths.artifacts / self.run_id, ignore_errors=True)
        write_profiles(self.paths, memory_limit=self.faults.warehouse_memory_limit)

    def _rng(self, *key: object) -> random.Random:
        return random.Random(":".join(map(str, (self.seed, self.run_id, *key))))

    def run_task(self, task: TaskSpec) -> None:
        upstream = [self.outcomes[u] for u in task.dependencies]
        ready = max([self.run_at, *(o.end for o in upstream)])
        if any(o.state in ("failed", "upstream_failed") for o in upstream):
            self._never_ran(task, "upstream_failed", ready)
        elif any(o.state == "skipped" for o in upstream) or (task.latest_only and not self.latest):
            self._never_ran(
                task, "skipped", ready + timedelta(seconds=self._rng(task.task_id).uniform(0.5, 2))
            )
        else:
            self._run_tries(task, ready)

    def _never_ran(self, task: TaskSpec, state: TaskState, at: datetime) -> None:
        self.outcomes[task.task_id] = _Outcome(state, at)
        self.tries.append(
            TaskInstance(
                dag_id=self.dag.dag_id,
                run_id=self.run_id,
                task_id=task.task_id,
                try_number=0,
                max_tries=task.max_tries,
                state=state,
                start_date=at,
                end_date=at,
                duration=None,
                operator=self.operators[task.operator].airflow_class,
            )
        )

    def _run_tries(self, task: TaskSpec, ready: datetime) -> None:
        start = ready + timedelta(seconds=self._rng(task.task_id, "queue").uniform(0.8, 3.5))
        for try_number in range(1, task.max_tries + 1):
            ti = self._run_try(task, try_number, start)
            self.tries.append(ti)
            if ti.state != "up_for_retry":
                break
            pickup = self._rng(task.task_id, try_number, "retry").uniform(1, 6)
            start = ti.end_date + task.retry_delay + timedelta(seconds=pickup)
        self.outcomes[task.task_id] = _Outcome(ti.state, ti.end_date)
        self._record_task_metrics(task, ti)

    def _run_try(self, task: TaskSpec, try_number: int, start: datetime) -> TaskInstance:
        operator = self.operators[task.operator]
        info = self._try_info(task, try_number, operator)
        path = attempt_log_path(self.paths.logs, info.dag_id, info.run_id, info.task_id, try_number)
        clock = SimClock(start)
        with AttemptLog(path, clock) as log:
            log_task_start(log, info)
            ctx = TaskContext(
                dag=self.dag,
                task=task,
                day=self.day,
                run_id=self.run_id,
                try_number=try_number,
                latest=self.latest,
                paths=self.paths,
                log=log,
                metrics=self.metrics,
            )
            state, end = self._attempt(operator, ctx, info, start)
        return TaskInstance(
            dag_id=info.dag_id,
            run_id=info.run_id,
            task_id=info.task_id,
            try_number=try_number,
            max_tries=task.max_tries,
            state=state,
            start_date=start,
            end_date=end,
            duration=(end - start).total_seconds(),
            operator=operator.airflow_class,
            hostname=info.hostname,
            pid=info.pid,
            job_id=info.job_id,
            log_path=str(path),
        )

    def _try_info(self, task: TaskSpec, try_number: int, operator: Operator) -> TryInfo:
        rng = self._rng(task.task_id, try_number, "worker")
        self.jobs += 1
        return TryInfo(
            dag_id=self.dag.dag_id,
            task_id=task.task_id,
            run_id=self.run_id,
            logical_date=logical_date(self.day),
            try_number=try_number,
            max_tries=task.max_tries,
            operator_class=operator.airflow_class,
            owner=self.dag.default_args.owner,
            pid=rng.randint(300, 32000),
            job_id=self.day.toordinal() % 100_000 * 40 + self.jobs,
            hostname=f"airflow-worker-{rng.randint(0, 2)}",
            dag_file=f"DAGS_FOLDER/{self.dag.dag_id}.yml",
        )

    def _attempt(
        self, operator: Operator, ctx: TaskContext, info: TryInfo, start: datetime
    ) -> tuple[TaskState, datetime]:
        """Run the task code once and log the outcome as the worker would."""
        log = ctx.log
        try:
            returned = self._execute(operator, ctx, info)
        except Exception as exc:  # any failure of task code fails the try, as on a worker
            end = log.clock.now()
            retry = ctx.try_number < ctx.task.max_tries
            log_task_failure(
                log, info, exc, _traceback(operator, exc), start, end, will_retry=retry
            )
            return ("up_for_retry" if retry else "failed"), end
        end = log.clock.now()
        downstream = len(self.dag.downstream(ctx.task.task_id))
        log_task_success(log, info, start, end, returned, downstream=downstream)
        return "success", end

    def _execute(self, operator: Operator, ctx: TaskContext, info: TryInfo) -> object:
        """The operator's work, or the runtime fault that replaces it on this try."""
        fault = self.faults.fault_for(ctx.task.task_id, ctx.try_number)
        if fault is None:
            return operator.execute(ctx)
        assert ctx.task.loader is not None and operator.python_callable is not None
        source, table = source_table(ctx.task.loader)
        host, url = (
            f"api.{source}.example.com",
            f"/v1/{table}?date={self.day.isoformat()}&limit=1000",
        )
        caller = airflow_errors.caller_frame(operator.python_callable)
        rng = self._rng(ctx.task.task_id, ctx.try_number, "fault")
        if fault == "hang":
            assert ctx.task.execution_timeout is not None
            ctx.log.clock.advance(ctx.task.execution_timeout.total_seconds() + rng.uniform(0, 0.3))
            ctx.log.airflow(
                "timeout.py:68", f"Process timed out, PID: {info.pid}", level=logging.ERROR
            )
            raise airflow_errors.stalled_listing(info.pid, caller)
        _log_retries(ctx, url, rng)
        raise airflow_errors.connection_reset(host, url, caller)

    def _record_task_metrics(self, task: TaskSpec, last: TaskInstance) -> None:
        labels = {"dag_id": self.dag.dag_id, "task_id": task.task_id}
        self.metrics.record_many(
            [
                Sample(
                    name="task_duration_seconds",
                    labels=labels,
                    ts=last.end_date,
                    value=last.duration or 0.0,
                ),
                Sample(name="task_tries", labels=labels, ts=last.end_date, value=last.try_number),
            ]
        )

    def finish(self) -> DagRunResult:
        end = max(o.end for o in self.outcomes.values()) + timedelta(
            seconds=self._rng("end").uniform(0.5, 2)
        )
        failed = any(o.state in ("failed", "upstream_failed") for o in self.outcomes.values())
        self._record_freshness()
        dag_run = DagRun(
            dag_id=self.dag.dag_id,
            run_id=self.run_id,
            logical_date=logical_date(self.day),
            data_interval_start=logical_date(self.day),
            data_interval_end=logical_date(self.day) + timedelta(days=1),
            state="failed" if failed else "success",
            start_date=self.run_at,
            end_date=end,
        )
        self.metrics.record(
            "dag_run_duration_seconds",
            {"dag_id": self.dag.dag_id},
            end,
            (end - self.run_at).total_seconds(),
        )
        tries = sorted(self.tries, key=lambda ti: (ti.start_date, ti.try_number))
        save_run(self.paths.runs_db, dag_run, tries)
        return DagRunResult(dag_run=dag_run, task_instances=tries)

    def _record_freshness(self) -> None:
        """Runs whose freshness check was skipped still get the lags it would have reported."""
        checks = [t for t in self.dag.tasks.values() if t.operator == "dbt_source_freshness"]
        if any(self.outcomes[t.task_id].state != "skipped" for t in checks):
            return  # the check ran and recorded dbt's own numbers
        loads = [
            self.outcomes[t.task_id].end for t in self.dag.tasks.values() if t.operator == "load"
        ]
        at = max(loads, default=self.run_at)
        self.metrics.record_many(
            Sample(name="freshness_lag_seconds", labels={"source": s, "table": t}, ts=at, value=lag)
            for (s, t), lag in warehouse_freshness(self.paths, at).items()
        )


def _log_retries(ctx: TaskContext, url: str, rng: random.Random) -> None:
    """urllib3's warnings while it retries a reset connection, with its backoff on the clock."""
    reason = airflow_errors.RESET_REASON
    for total, backoff in ((2, 1.0), (1, 2.0), (0, 4.0)):
        ctx.log.clock.advance(rng.uniform(0.2, 1.5))
        ctx.log.airflow(
            "connectionpool.py:874",
            f"Retrying (Retry(total={total}, connect=None, read=None, redirect=None, status=None)) "
            f"after connection broken by '{reason}': {url}",
            level=logging.WARNING,
        )
        ctx.log.clock.advance(backoff)
    ctx.log.clock.advance(rng.uniform(0.2, 1.5))


def _traceback(operator: Operator, exc: BaseException) -> str:
    if operator.airflow_class == "BashOperator":
        frames = (
            airflow_errors.BASH_OPERATOR if isinstance(exc, airflow_errors.AirflowException) else []
        )
    else:
        frames = airflow_errors.PYTHON_OPERATOR
    return airflow_errors.render_traceback(exc, frames, operator.python_callable)

"""The DAG-runs source: task instances that failed, or failed and then recovered, as signals.

It reads an orchestrator's run records through a small `RunsBackend` (Airflow 3's REST API in
`bot.sources.airflow_api`, the demo platform's run records in `bot.sources.demo_runs`) and
turns them into `RawSignal`s:

- task_failed: a task instance whose last try ended `failed` (its retries used up). Detail:
  the try (number, of how many, state, start/end, duration, operator, host), the tail of its
  log, the log's first ERROR line and its exception, the earlier failed tries' errors, and
  `blocked_tasks`: the tasks below it that never ran (upstream_failed).
- task_retried: a try that failed while a later try of the same task instance succeeded. The
  noise filter decides these are flaky; the source only reports the facts.

Tasks that never ran (upstream_failed, skipped) are no signals: they are consequences.

The asset is `task.<dag_id>.<task_id>` and the run id Airflow's, the same strings the
log-file source (`logfiles.airflow_try`) derives from a log's path, so that a try's log
errors and its run record meet on one asset and run. `dedup_key` is
`dagrun:<dag_id>:<run_id>:<task_id>[:<map_index>]:<try_number>:<kind>`.

Polling: the first poll reads runs updated in the last `lookback_hours`; later ones read runs
updated since the newest one seen, less an overlap (clocks and commits are not instant). A
run still running is kept in the cursor and read again until it ends; the keys already
emitted per run keep a run read twice from giving a signal twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.config import Secrets, Settings
from bot.errors import SleuthError
from bot.intake.logformats import parse_line
from bot.intake.signals import RawSignal
from bot.sources.base import as_cursor
from bot.sources.dbt_files import UtcDatetime
from bot.sources.logevents import is_error_level, scan_traceback

log = logging.getLogger(__name__)

RUN_FINISHED = frozenset({"success", "failed"})
# A failed try is recorded `failed` when it was the last, `up_for_retry` when more may follow.
TRY_FAILED = frozenset({"failed", "up_for_retry"})
# States a task instance does not leave by itself (a clear starts a new try).
TASK_FINISHED = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})
LOG_TAIL_LINES = 40
LOG_TAIL_CHARS = 6_000
_TITLE_CHARS = 200
_LINE_CHARS = 500

TryKind = Literal["task_failed", "task_retried"]


class RunsBackendError(SleuthError):
    """The run records cannot be read (server down, refused login, bad answer); names where."""


class DagRunRecord(BaseModel):
    """One DAG run as the orchestrator keeps it."""

    model_config = ConfigDict(frozen=True)

    dag_id: str
    run_id: str
    state: str = Field(description="queued, running, success or failed.")
    logical_date: UtcDatetime | None = None
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
    updated_at: UtcDatetime = Field(
        description="When the record last changed (end, else start, where none is kept): "
                    "the cursor's high-water mark.")

    @property
    def key(self) -> str:
        return f"{self.dag_id}/{self.run_id}"

    @property
    def finished(self) -> bool:
        return self.state in RUN_FINISHED


class TaskTry(BaseModel):
    """One try of one task instance; try_number 0 is a task that never ran."""

    model_config = ConfigDict(frozen=True)

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = Field(-1, description="Index of a mapped task's instance; -1 unmapped.")
    try_number: int
    max_tries: int | None = Field(
        None, description="How many tries it may take in all (Airflow's max_tries + 1).")
    state: str | None = None
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
    duration: float | None = None
    operator: str | None = None
    hostname: str | None = None

    @property
    def instance(self) -> tuple[str, int]:
        return self.task_id, self.map_index


class RunsBackend(Protocol):
    """Where DAG runs are read from. Records that cannot be read are skipped with a warning;
    a backend that cannot answer at all raises `RunsBackendError`."""

    label: str  # the URL or file, for messages

    def runs_since(self, since: datetime, dag_ids: Sequence[str] | None) -> list[DagRunRecord]:
        """Runs updated at or after `since`, running ones included."""
        ...

    def run(self, dag_id: str, run_id: str) -> DagRunRecord | None:
        ...

    def tries(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[TaskTry]:
        """Every try of every task instance of a run (or of one task), never-ran ones too."""
        ...

    def log(self, attempt: TaskTry) -> str | None:
        """A try's log as text, None if there is none."""
        ...

    def downstream(self, dag_id: str) -> Mapping[str, Sequence[str]] | None:
        """Each task's direct downstream task ids; None if the DAG's shape is unknown."""
        ...

    def check(self, dag_ids: Sequence[str] | None) -> list[str]:
        ...


class SeenRun(BaseModel):
    """A run read before: as it was, and the signals it gave."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    updated_at: UtcDatetime
    state: str
    emitted: list[str] = Field(default_factory=list)


class RunsCursor(BaseModel):
    """What a `DagRunsSource` has read; the scheduler keeps it between polls."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    high_water: UtcDatetime | None = Field(
        None, description="The newest `updated_at` read; the next poll starts here less the "
                          "overlap. None: the first poll reads `lookback_hours` back.")
    runs: dict[str, SeenRun] = Field(
        default_factory=dict, description="Runs read, by `dag_id/run_id`: the unfinished ones "
                                          "to read again, the recent ones to skip.")

    def open_runs(self) -> list[str]:
        return [key for key, seen in self.runs.items() if seen.state not in RUN_FINISHED]


@dataclass(frozen=True)
class _Finding:
    """A signal to be, before its log is read (logs are read only for new signals)."""

    kind: TryKind
    attempt: TaskTry           # the failed try
    earlier: list[TaskTry]     # the instance's failed tries before it
    recovered: TaskTry | None  # the try that succeeded (task_retried)
    tries: int                 # tries the instance took so far

    @property
    def key(self) -> str:
        a = self.attempt
        index = f":{a.map_index}" if a.map_index >= 0 else ""
        return f"dagrun:{a.dag_id}:{a.run_id}:{a.task_id}{index}:{a.try_number}:{self.kind}"


class DagRunsSource:
    """Failed and retried task instances of DAG runs as signals; see the module docstring."""

    def __init__(
        self,
        backend: RunsBackend,
        *,
        name: str = "airflow",
        dag_ids: Sequence[str] | None = None,
        lookback_hours: float = 24,
        overlap: timedelta = timedelta(minutes=5),
        keep_runs: int = 500,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.backend = backend
        self.name = name
        self.dag_ids = list(dag_ids) if dag_ids else None
        self.lookback = timedelta(hours=lookback_hours)
        self.overlap = overlap
        self.keep_runs = keep_runs
        self.clock = clock

    # ------------------------------------------------------------ the source

    def poll(self, cursor: RunsCursor | Mapping[str, Any] | None = None,
             ) -> tuple[list[RawSignal], RunsCursor]:
        """New signals since `cursor` (None: the first poll), and the cursor to keep."""
        state = as_cursor(RunsCursor, cursor)
        since = (state.high_water - self.overlap if state.high_water is not None
                 else self.clock() - self.lookback)
        runs = {r.key: r for r in self.backend.runs_since(since, self.dag_ids)}
        for key in state.open_runs():
            if key not in runs:
                dag_id, _, run_id = key.partition("/")
                again = self.backend.run(dag_id, run_id)
                if again is None:
                    log.warning("%s: run %s is gone from %s", self.name, key, self.backend.label)
                    continue
                runs[key] = again
        seen = dict(state.runs)
        signals: list[RawSignal] = []
        for run in sorted(runs.values(), key=lambda r: (r.updated_at, r.key)):
            before = seen.get(run.key)
            if before is not None and before.state in RUN_FINISHED and \
                    before.updated_at == run.updated_at:
                continue  # read in full already, unchanged since
            emitted = set(before.emitted) if before is not None else set()
            new = self.run_signals(run, skip=emitted)
            signals += new
            seen[run.key] = SeenRun(updated_at=run.updated_at, state=run.state,
                                    emitted=sorted(emitted | {s.dedup_key for s in new}))
        high_water = max([r.updated_at for r in runs.values()]
                         + ([state.high_water] if state.high_water else []), default=None)
        return signals, RunsCursor(high_water=high_water, runs=self._pruned(seen, high_water))

    def check(self) -> list[str]:
        """What keeps this source from working, one sentence each; empty if nothing."""
        return self.backend.check(self.dag_ids)

    # ------------------------------------------------------------ queries for others

    def task_history(self, dag_id: str, task_id: str, since: datetime) -> list[TaskTry]:
        """Every try of a task in runs since `since`, oldest first: how flaky is it?"""
        tries: list[TaskTry] = []
        for run in self.backend.runs_since(since, [dag_id]):
            tries += [t for t in self.backend.tries(dag_id, run.run_id, task_id)
                      if t.task_id == task_id and (t.start_date is None or t.start_date >= since)]
        return sorted(tries, key=lambda t: (t.start_date or since, t.run_id, t.try_number))

    def final_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        """How a task instance ended; "running" while it may still change; None if unknown."""
        tries = self.backend.tries(dag_id, run_id, task_id)
        if not tries:
            return None
        last = max(tries, key=lambda t: t.try_number)
        return last.state if last.state in TASK_FINISHED else "running"

    # ------------------------------------------------------------ signals

    def run_signals(self, run: DagRunRecord, skip: Collection[str] = ()) -> list[RawSignal]:
        """The signals a run gives as it stands, but those whose dedup key is in `skip`
        (given before: their logs are not read again)."""
        tries = self.backend.tries(run.dag_id, run.run_id)
        findings = [f for f in findings_of(tries) if f.key not in skip]
        if not findings:
            return []
        blocked = _blocked(tries, self.backend.downstream(run.dag_id)
                           if any(f.kind == "task_failed" for f in findings) else None)
        return [self._signal(run, f, blocked) for f in findings]

    def _signal(self, run: DagRunRecord, found: _Finding,
                blocked: Mapping[str, list[str]]) -> RawSignal:
        a = found.attempt
        excerpt = self._excerpt(a)
        detail: dict[str, Any] = {
            **try_facts(a),
            "run_state": run.state,
            "logical_date": _iso(run.logical_date),
            "tries": found.tries,
            **excerpt.facts(),
            "earlier_failed_tries": [
                {"try_number": t.try_number, "end_date": _iso(t.end_date),
                 "error": self._excerpt(t).headline}
                for t in found.earlier] or None,
        }
        if found.kind == "task_failed":
            down = blocked.get(a.task_id, [])
            detail |= {"blocked_tasks": down, "blocked_count": len(down)}
            title = (f"Task {a.dag_id}.{a.task_id} failed on try {a.try_number}"
                     f"{f' of {a.max_tries}' if a.max_tries else ''}")
        else:
            assert found.recovered is not None
            r = found.recovered
            detail |= {"recovered_try": r.try_number, "recovered_at": _iso(r.end_date)}
            title = (f"Task {a.dag_id}.{a.task_id} try {a.try_number} failed, "
                     f"recovered on try {r.try_number}")
        if excerpt.headline:
            title += f": {excerpt.headline}"
        return RawSignal(
            source=self.name,
            kind=found.kind,
            asset=f"task.{a.dag_id}.{a.task_id}",
            title=_clip(" ".join(title.split()), _TITLE_CHARS),
            observed_at=a.end_date or a.start_date or run.updated_at,
            dedup_key=found.key,
            run_id=a.run_id,
            detail={k: v for k, v in detail.items() if v is not None},
        )

    def _excerpt(self, attempt: TaskTry) -> LogExcerpt:
        try:
            text = self.backend.log(attempt)
        except RunsBackendError as exc:  # a missing log must not hide the failure itself
            log.warning("%s: %s", self.name, exc)
            return LogExcerpt(missing=str(exc))
        if text is None:
            return LogExcerpt(missing="no log")
        return LogExcerpt.of(text)

    def _pruned(self, seen: dict[str, SeenRun], high_water: datetime | None) -> dict[str, SeenRun]:
        """Open runs and the overlap's runs stay; of the rest, the newest `keep_runs`."""
        if len(seen) <= self.keep_runs or high_water is None:
            return seen
        floor = high_water - self.overlap
        must = {k for k, s in seen.items() if s.state not in RUN_FINISHED or s.updated_at >= floor}
        rest = sorted((k for k in seen if k not in must), key=lambda k: seen[k].updated_at)
        keep = must | set(rest[len(rest) - max(self.keep_runs - len(must), 0):])
        return {k: s for k, s in seen.items() if k in keep}


def findings_of(tries: Iterable[TaskTry]) -> list[_Finding]:
    """The signals a run's tries call for: final failures and failures later recovered."""
    by_instance: dict[tuple[str, int], list[TaskTry]] = defaultdict(list)
    for t in tries:
        if t.try_number > 0:
            by_instance[t.instance].append(t)
    found: list[_Finding] = []
    for instance in sorted(by_instance):
        ordered = sorted(by_instance[instance], key=lambda t: t.try_number)
        failed = [t for t in ordered if t.state in TRY_FAILED]
        last = ordered[-1]
        if last.state == "failed":
            found.append(_Finding("task_failed", last, failed[:-1], None, last.try_number))
        elif last.state == "success":
            found += [_Finding("task_retried", t, [], last, last.try_number)
                      for t in failed if t.try_number < last.try_number]
    return found


def _blocked(tries: Sequence[TaskTry],
             downstream: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    """For each failed task, the upstream_failed tasks below it. Without the DAG's shape,
    every upstream_failed task of the run is put under every failure."""
    never_ran = sorted({t.task_id for t in tries if t.state == "upstream_failed"})
    failed = {t.task_id for t in tries if t.state == "failed"}
    if downstream is None:
        return {task: never_ran for task in failed}
    blocked = set(never_ran)
    result: dict[str, list[str]] = {}
    for task in failed:
        below, stack = set(), list(downstream.get(task, ()))
        while stack:
            node = stack.pop()
            if node not in below:
                below.add(node)
                stack += downstream.get(node, ())
        result[task] = sorted(below & blocked)
    return result


def try_facts(t: TaskTry) -> dict[str, Any]:
    """A try as plain data, for a signal's detail or a tool's answer."""
    return {
        "dag_id": t.dag_id,
        "task_id": t.task_id,
        "run_id": t.run_id,
        "map_index": t.map_index if t.map_index >= 0 else None,
        "try_number": t.try_number,
        "max_tries": t.max_tries,
        "state": t.state,
        "start_date": _iso(t.start_date),
        "end_date": _iso(t.end_date),
        "duration": t.duration,
        "operator": t.operator,
        "hostname": t.hostname or None,
    }


@dataclass(frozen=True)
class LogExcerpt:
    """What a try's log says: its last lines, its first ERROR line, its exception."""

    tail: str | None = None
    error_line: str | None = None
    exception: str | None = None
    missing: str | None = None

    @classmethod
    def of(cls, text: str) -> LogExcerpt:
        lines = text.splitlines()
        tail = "\n".join(lines[-LOG_TAIL_LINES:])
        if len(tail) > LOG_TAIL_CHARS:
            tail = "…" + tail[-LOG_TAIL_CHARS:]
        error = next((r.content for r in map(parse_line, lines) if is_error_level(r.level)), None)
        exception = scan_traceback(text).exception
        return cls(tail=tail or None, error_line=_clip(error, _LINE_CHARS) if error else None,
                   exception=_clip(exception, _LINE_CHARS) if exception else None)

    @property
    def headline(self) -> str | None:
        """What went wrong in one line: the exception, else the first error line."""
        return self.exception or self.error_line

    def facts(self) -> dict[str, Any]:
        return {"log_excerpt": self.tail, "error_line": self.error_line,
                "exception": self.exception, "log_missing": self.missing}


def parse_records(model: type[BaseModel], rows: Iterable[Any], where: str) -> list[Any]:
    """Each row validated as `model`; a row that fails is skipped with a warning."""
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(model.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(map(str, first["loc"])) or "(record)"
            log.warning("%s: record %d skipped: %s: %s", where, i, field, first["msg"])
    return out


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dag_runs_source(settings: Settings, secrets: Secrets | None = None) -> DagRunsSource:
    """The source `sources.airflow` describes: the API server at `url`, else the run records
    (`with_defaults` points them at the demo platform's)."""
    from bot.sources.airflow_api import AirflowApiBackend
    from bot.sources.demo_runs import DemoRunsBackend

    config = settings.with_defaults().sources.airflow
    backend: RunsBackend
    if config.url is not None:
        password = (secrets or Secrets.from_env()).airflow_password
        backend = AirflowApiBackend(config.url, config.username, password,
                                    timeout=config.timeout_seconds, verify_tls=config.verify_tls)
    else:
        assert config.runs_db is not None  # with_defaults fills it
        backend = DemoRunsBackend(config.runs_db, repo=settings.demo_platform.repo)
    return DagRunsSource(backend, name="airflow", dag_ids=config.dag_ids,
                         lookback_hours=config.lookback_hours)

"""Does a run show what a scenario's ground truth promises, and does a healthy run show nothing?

Everything is read back from the platform's artifacts — the run records, dbt's archived
`run_results.json` and `sources.json`, and the metrics store — never from the runner's memory,
so these checks hold for what intake will actually see.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from pydantic import BaseModel

from bot.demo.metrics import MetricsStore
from bot.demo.paths import DAG_ID, PlatformPaths
from bot.demo.runs import get_run, list_runs, task_instances
from bot.demo.truth import Symptom

_TASK_PREFIX = f"task.{DAG_ID}."
_OK_NODE_STATUSES = {"success", "pass", "no-op"}  # exposures are no-op in dbt 1.11


class SymptomCheck(BaseModel):
    symptom: Symptom
    observed: bool
    evidence: str


def check_symptom(symptom: Symptom, paths: PlatformPaths, run_id: str) -> SymptomCheck:
    observed, evidence = _CHECKS[symptom.kind](symptom, paths, run_id)
    return SymptomCheck(symptom=symptom, observed=observed, evidence=evidence)


def healthy_problems(paths: PlatformPaths, run_id: str) -> list[str]:
    """Everything in a run that a healthy day must not have; empty when the day is clean."""
    problems: list[str] = []
    run = get_run(paths.runs_db, run_id, dag_id=DAG_ID)
    if run is None:
        return [f"no record of run {run_id}"]
    if run.state != "success":
        problems.append(f"run state {run.state}")
    for ti in task_instances(paths.runs_db, run_id, dag_id=DAG_ID):
        if ti.state not in ("success", "skipped"):
            problems.append(f"{ti.task_id} try {ti.try_number}: {ti.state}")
    for result in _results(paths, run_id, "run_results.json"):
        if result["status"] not in _OK_NODE_STATUSES:
            problems.append(f"{result['unique_id']}: {result['status']}")
    for result in _results(paths, run_id, "sources.json"):
        if result["status"] != "pass":
            problems.append(f"{result['unique_id']}: freshness {result['status']}")
    return problems


def _final_state(paths: PlatformPaths, run_id: str, task_id: str) -> str | None:
    tries = task_instances(paths.runs_db, run_id, dag_id=DAG_ID, task_id=task_id)
    return tries[-1].state if tries else None


def _task_state(expected: str):  # type: ignore[no-untyped-def]
    def check(symptom: Symptom, paths: PlatformPaths, run_id: str) -> tuple[bool, str]:
        task_id = symptom.node.removeprefix(_TASK_PREFIX)
        state = _final_state(paths, run_id, task_id)
        return state == expected, f"{task_id} final state {state}"
    return check


def _retried(symptom: Symptom, paths: PlatformPaths, run_id: str) -> tuple[bool, str]:
    task_id = symptom.node.removeprefix(_TASK_PREFIX)
    states = [t.state for t in task_instances(paths.runs_db, run_id, dag_id=DAG_ID,
                                               task_id=task_id)]
    retried = len(states) > 1 and states[-1] == "success"
    return retried, f"{task_id} tries: {', '.join(states) or 'none'}"


def _node_status(expected: str):  # type: ignore[no-untyped-def]
    def check(symptom: Symptom, paths: PlatformPaths, run_id: str) -> tuple[bool, str]:
        matches = [r for r in _results(paths, run_id, "run_results.json")
                   if _same_node(r["unique_id"], symptom.node)]
        if not matches:
            return False, f"{symptom.node} not in run_results.json"
        statuses = sorted({r["status"] for r in matches})
        return expected in statuses, f"{symptom.node}: {', '.join(statuses)}"
    return check


def _skipped(symptom: Symptom, paths: PlatformPaths, run_id: str) -> tuple[bool, str]:
    skipped = [r["unique_id"] for r in _results(paths, run_id, "run_results.json")
               if r["status"] == "skipped"]
    return len(skipped) >= (symptom.at_least or 1), f"{len(skipped)} dbt nodes skipped"


def _stale(symptom: Symptom, paths: PlatformPaths, run_id: str) -> tuple[bool, str]:
    matches = [r for r in _results(paths, run_id, "sources.json")
               if r["unique_id"] == symptom.node]
    if not matches:
        return False, f"{symptom.node} not in sources.json"
    status = matches[0]["status"]
    lag = matches[0].get("max_loaded_at_time_ago_in_s")
    lag_text = f", {lag / 3600:.1f} h since last load" if lag is not None else ""
    return status == "error", f"freshness {status}{lag_text}"


def _shift(symptom: Symptom, paths: PlatformPaths, run_id: str) -> tuple[bool, str]:
    values = _per_run(paths, symptom.node, symptom.labels)
    if symptom.per:
        divisor = _per_run(paths, symptom.per, symptom.per_labels)
        values = {r: v / divisor[r] for r, v in values.items() if divisor.get(r)}
    if run_id not in values:
        return False, f"{_label(symptom)}: no value in run {run_id}"
    current = values.pop(run_id)
    runs = {r.run_id: r.start_date for r in list_runs(paths.runs_db, dag_id=DAG_ID)}
    history = [v for r, v in values.items() if runs.get(r) and runs[r] < runs[run_id]]
    if not history:
        return False, f"{_label(symptom)}: no earlier runs to compare with"
    baseline = statistics.median(history)
    ratio = current / baseline if baseline else float("inf")
    factor = symptom.factor or 2.0
    moved = ratio >= factor if symptom.direction == "up" else ratio <= 1 / factor
    return moved, (f"{_label(symptom)}: {current:.4g} vs median {baseline:.4g} "
                   f"of {len(history)} earlier runs (x{ratio:.2f})")


def _per_run(paths: PlatformPaths, name: str, labels: dict[str, str]) -> dict[str, float]:
    """The metric's last value within each DAG run (a retried task records more than one)."""
    runs = list_runs(paths.runs_db, dag_id=DAG_ID)
    series = MetricsStore(paths.metrics_db).query(name, labels or None)
    values: dict[str, float] = {}
    for point in sorted((p for s in series for p in s.points), key=lambda p: p.ts):
        for run in runs:
            if run.start_date <= point.ts <= run.end_date:
                values[run.run_id] = point.value
    return values


def _label(symptom: Symptom) -> str:
    text = f"{symptom.node}{symptom.labels or ''}"
    return f"{text} per {symptom.per}{symptom.per_labels or ''}" if symptom.per else text


def _same_node(unique_id: str, node: str) -> bool:
    """dbt test ids end in a hash (`test.p.unique_x_id.1a2b3c`); ground truth leaves it out."""
    return unique_id == node or (node.startswith("test.") and unique_id.startswith(node + "."))


def _results(paths: PlatformPaths, run_id: str, name: str) -> list[dict[str, Any]]:
    path = paths.artifacts / run_id / name
    if not path.is_file():
        return []
    return list(json.loads(path.read_text()).get("results", []))


_CHECKS = {
    "task_failed": _task_state("failed"),
    "upstream_failed": _task_state("upstream_failed"),
    "task_retried": _retried,
    "test_failed": _node_status("fail"),
    "model_error": _node_status("error"),
    "nodes_skipped": _skipped,
    "source_stale": _stale,
    "metric_shift": _shift,
}

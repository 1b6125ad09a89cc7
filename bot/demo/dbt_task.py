"""The dbt tasks: `dbt build` and `dbt source freshness` run in-process, shown as BashOperator.

dbt runs through `dbtRunner` against the platform's repo with the deployment's profiles; its
console lines (the ones `dbt` would print) stream into the task log with simulated times.
After each invocation its artifacts are archived under `artifacts/<run_id>/` and what they
say is recorded as metrics.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import yaml

from bot.demo.airflow_errors import bash_failure
from bot.demo.metrics import Sample
from bot.demo.paths import DBT_PROJECT_NAME, PlatformPaths

if TYPE_CHECKING:
    from dbt_common.events.base_types import EventMsg

    from bot.demo.operators import TaskContext

TARGET = "prod"
DUCKDB_THREADS = 2  # pinned: DuckDB's memory use, and so out-of-memory, scales with threads
ARTIFACTS = ("run_results.json", "manifest.json", "sources.json")
_SILENT_EVENTS = {"CacheAction", "CacheDumpGraph"}
# Console lines reach the task log through the callback only; dbt.log is kept as dbt keeps it.
_QUIET = (
    "--log-level",
    "none",
    "--log-level-file",
    "debug",
    "--no-use-colors",
    "--no-send-anonymous-usage-stats",
)


def write_profiles(
    paths: PlatformPaths, *, memory_limit: str | None = None, threads: int = 2
) -> Path:
    """The deployment's dbt profile: DuckDB at the platform's warehouse file."""
    settings: dict[str, str] = {"threads": str(DUCKDB_THREADS)}
    if memory_limit:
        settings["memory_limit"] = memory_limit
    output = {
        "type": "duckdb",
        "path": str(paths.warehouse),
        "threads": threads,
        "settings": settings,
    }
    profile = {DBT_PROJECT_NAME: {"target": TARGET, "outputs": {TARGET: output}}}
    path = paths.profiles_dir / "profiles.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


# ---------------------------------------------------------------- invoking dbt


@dataclass
class NodeResult:
    unique_id: str
    resource_type: str
    status: str
    message: str | None = None
    max_loaded_at_time_ago_in_s: float | None = None  # source freshness only


@dataclass
class DbtOutcome:
    exit_code: int  # what the dbt CLI would exit with: 0 ok, 1 failed nodes, 2 dbt itself failed
    started: float  # wall clock, to tell this invocation's artifacts from older ones
    results: list[NodeResult] = field(default_factory=list)


def invoke_dbt(ctx: TaskContext, bash_command: str) -> DbtOutcome:
    """Run a `dbt ...` command line in-process, logging as BashOperator's subprocess hook does."""
    from dbt.cli.main import dbtRunner  # heavy: only when a dbt task runs

    log, clock = ctx.log, ctx.log.clock
    log.airflow("subprocess.py:63", "Tmp dir root location:\n /tmp")
    log.airflow("subprocess.py:75", f"Running command: ['/usr/bin/bash', '-c', {bash_command!r}]")
    log.airflow("subprocess.py:86", "Output:")

    def console(msg: EventMsg) -> None:
        if msg.info.level not in ("info", "warn", "error") or msg.info.name in _SILENT_EVENTS:
            return
        wall = msg.info.ts.seconds + msg.info.ts.nanos / 1e9
        text = (
            msg.info.msg
            if msg.info.name == "PrintEvent"
            else f"{clock.at(wall):%H:%M:%S}  {msg.info.msg}"
        )
        for line in text.splitlines() or [""]:
            log.airflow("subprocess.py:93", line.rstrip())

    where = ["--project-dir", str(ctx.paths.repo), "--profiles-dir", str(ctx.paths.profiles_dir)]
    args = shlex.split(bash_command)[1:] + where + list(_QUIET)
    started = time.time()
    try:
        result = dbtRunner(callbacks=[console]).invoke(args)
    finally:
        _release_warehouse()
    exit_code = 0 if result.success else (2 if result.exception is not None else 1)
    log.airflow("subprocess.py:97", f"Command exited with return code {exit_code}")
    nodes = getattr(result.result, "results", None) or []
    return DbtOutcome(exit_code, started, [_node_result(r) for r in nodes])


def _release_warehouse() -> None:
    """Close the DuckDB instance dbt-duckdb keeps per process.

    Left open, the next connection to the file in this process would share it, and with it
    the run's settings (a memory limit meant for one run would outlive it).
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager as manager

    with manager._LOCK:
        if manager._ENV is not None:
            manager._ENV.close()
            manager._ENV = None


def _node_result(result: object) -> NodeResult:
    node = result.node  # type: ignore[attr-defined]
    status = result.status  # type: ignore[attr-defined]
    return NodeResult(
        unique_id=node.unique_id,
        resource_type=str(getattr(node.resource_type, "value", node.resource_type)),
        status=str(getattr(status, "value", status)),
        message=getattr(result, "message", None),
        max_loaded_at_time_ago_in_s=getattr(result, "age", None),
    )


def archive_artifacts(paths: PlatformPaths, run_id: str, since: float) -> list[Path]:
    """Copy the artifacts this invocation wrote into `artifacts/<run_id>/`; target/ stays."""
    archive = paths.artifacts / run_id
    copied = []
    for name in ARTIFACTS:
        source = paths.dbt_target / name
        if source.exists() and source.stat().st_mtime >= since - 1:
            archive.mkdir(parents=True, exist_ok=True)
            copied.append(Path(shutil.copy2(source, archive / name)))
    return copied


# ---------------------------------------------------------------- the two tasks


def dbt_build(ctx: TaskContext) -> None:
    outcome = _run(ctx)
    end = ctx.log.clock.now()
    tests = [r for r in outcome.results if r.resource_type in ("test", "unit_test")]
    ctx.metrics.record_many(
        [
            Sample(
                name="dbt_test_failures",
                labels={},
                ts=end,
                value=sum(r.status in ("fail", "error") for r in tests),
            ),
            Sample(
                name="dbt_test_warnings",
                labels={},
                ts=end,
                value=sum(r.status == "warn" for r in tests),
            ),
            Sample(
                name="dbt_model_errors",
                labels={},
                ts=end,
                value=sum(
                    r.resource_type == "model" and r.status == "error" for r in outcome.results
                ),
            ),
            *[
                Sample(name="model_row_count", labels={"model": model}, ts=end, value=rows)
                for model, rows in model_row_counts(ctx.paths).items()
            ],
        ]
    )
    if outcome.exit_code:
        raise bash_failure(outcome.exit_code)


def dbt_source_freshness(ctx: TaskContext) -> None:
    outcome = _run(ctx)
    end = ctx.log.clock.now()
    ctx.metrics.record_many(
        Sample(
            name="freshness_lag_seconds",
            labels=_source_labels(r.unique_id),
            ts=end,
            value=r.max_loaded_at_time_ago_in_s,
        )
        for r in outcome.results
        if r.max_loaded_at_time_ago_in_s is not None
    )
    if outcome.exit_code:
        raise bash_failure(outcome.exit_code)


def _run(ctx: TaskContext) -> DbtOutcome:
    assert ctx.task.bash_command is not None  # guaranteed by the DAG's validation
    outcome = invoke_dbt(ctx, ctx.task.bash_command)
    archive_artifacts(ctx.paths, ctx.run_id, outcome.started)
    return outcome


def _source_labels(unique_id: str) -> dict[str, str]:
    _, _, source, table = unique_id.split(".", 3)  # source.<project>.<source>.<table>
    return {"source": source, "table": table}


# ---------------------------------------------------------------- reading the warehouse


def _manifest(paths: PlatformPaths) -> dict:
    path = paths.dbt_target / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def model_relations(paths: PlatformPaths) -> dict[str, str]:
    """Model name -> relation, for every model dbt materializes in the warehouse."""
    nodes = _manifest(paths).get("nodes", {}).values()
    return {
        n["name"]: n["relation_name"]
        for n in nodes
        if n.get("resource_type") == "model"
        and n.get("relation_name")
        and n.get("config", {}).get("materialized") != "ephemeral"
    }


def model_row_counts(paths: PlatformPaths) -> dict[str, int]:
    """count(*) of every model that exists in the warehouse."""
    counts = {}
    with warehouse(paths) as con:
        for model, relation in sorted(model_relations(paths).items()):
            try:
                counts[model] = con.execute(f"select count(*) from {relation}").fetchone()[0]
            except duckdb.Error:
                continue  # not built (yet): no sample rather than a made-up zero
    return counts


def warehouse_freshness(paths: PlatformPaths, at: datetime) -> dict[tuple[str, str], float]:
    """What `dbt source freshness` would report at `at`: seconds since each source's newest load."""
    sources = [
        (s["source_name"], s["name"], s["relation_name"], field_name)
        for s in _manifest(paths).get("sources", {}).values()
        if (field_name := s.get("loaded_at_field") or s.get("config", {}).get("loaded_at_field"))
    ]
    lags: dict[tuple[str, str], float] = {}
    if not sources:
        return lags
    with warehouse(paths) as con:
        for source, table, relation, field_name in sources:
            try:
                newest = con.execute(f"select max({field_name}) from {relation}").fetchone()[0]
            except duckdb.Error:
                continue  # the table or column is gone: dbt would report an error, not a lag
            if isinstance(newest, datetime):
                newest = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
                lags[(source, table)] = (at - newest).total_seconds()
    return lags


@contextmanager
def warehouse(paths: PlatformPaths) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection, so dbt and the loaders find the file unlocked afterwards."""
    con = duckdb.connect(str(paths.warehouse))
    try:
        yield con
    finally:
        con.close()

"""Warehouse table monitors: volume, freshness, null rate, key uniqueness, schema, distribution.

`TableMonitorSource` watches tables over any SQLAlchemy URL. DuckDB is opened read-only, once
per poll. A warehouse locked by another writer (the pipeline mid-run) is retried briefly, then
the poll raises `SourceBusy`: skipped whole, nothing judged from a read that did not happen,
the cursor kept. A warehouse that cannot be reached fails the poll (the scheduler reports it);
a table that is missing or whose queries fail is skipped with a warning, and the others are
checked.
Which tables, keys and columns: with `auto`, every dbt model and source of the manifest, keys
from its unique tests, watched null rates from not_null tests and relationships foreign keys,
the timestamp from a source's `loaded_at_field` and its limit from its freshness `error_after`;
explicit `monitors` add tables or override those fields. Every statistic is computed in the
warehouse (`table_stats`), and judged against its own history with `BatchSeries`.

When a statistic gets a new point. Polls come every few minutes while most tables change once
a day, and a point per poll would fill the history with copies of the same day. So each poll
first reads a fingerprint (row count, max timestamp, latest period); statistics are sampled
only when it changed, or when `resample_after` passed since the last sample (a table rewritten
with the same row count still gets a point a day). A point is dated by the latest period of
the data when the table has one (so a reloaded partition replaces its own point, and weekdays
are the data's), else by the poll. Schema and freshness are checked on every poll: a table
that stopped changing is exactly when freshness matters.

The first poll. A table sampled for the first time has no history from earlier polls, but
when it has a period (partition or timestamp day) its history is in the table: one query
grouped by period reads the newest period and the `backfill_periods` before it. Those are
replayed through the same checks, oldest first, as if each had been polled, seeding every
series with points dated by period; their findings are dropped and their points all kept as
normal (the past as it was is the baseline: a weekend surge is a pattern, not an incident).
The newest period is then judged against them as any later poll would, never against itself.
The periods' newest timestamps give the usual interval between updates for freshness. The
whole table's row count and duplicate keys have no per-period past and are learned from
polls, as are tables without a period or whose periods are not dates (nothing to date the
points by). The series keep at most twice the baseline's window, so the cursor stays bounded.
A period of today (or later) is still filling: it is never history, a drop of its row count
does not fire (a morning has fewer rows than a day), and it is sampled again once its day is
over, when its count is final.

What fires (one `table_check` signal per broken check):
- volume: row count, and rows in the latest period, far from their history (either way);
  until a weekday is learned, not within the range of the recent week's days (its shape);
- freshness: age of max(timestamp) above `max_age`, or far above the usual interval between
  updates (ages by the wall clock; the demo platform's by its own, see `demo_clock`);
- null rate: above the column's ceiling, or far above its history by at least
  `null_rate_min_delta`;
- uniqueness: duplicate keys where history had none (or far more than usual), in two senses:
  across the whole table (what a dbt unique test checks: a key delivered again in a later
  partition counts) and within the latest period (the same key twice in one day's data, as
  when a file is loaded twice); one signal per key, with both counts;
- schema: columns added, removed or retyped since the last snapshot (once; the new schema is
  then the snapshot);
- distribution: at least two of mean, stddev, p50, p95, min and max of a numeric column far
  from their history (one alone is mostly sampling noise).
Null rates and distributions are judged only over at least `min_rows` rows.
The `dedup_key` is stable per table, check, column and the data's period (or fingerprint), so
polling the same data again stores nothing new.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from agents.tools.sql_guard import READONLY_CONFIG
from bot.config import TableMonitorConfig, TablesConfig
from bot.demo import runs as demo_runs
from bot.errors import SleuthError
from bot.intake.baseline import BaselineConfig, BatchSeries, Verdict, judge, within_weekly_range
from bot.intake.signals import RawSignal
from bot.sources import table_stats as ts
from bot.sources.base import SourceBusy, as_cursor
from bot.sources.dbt_files import Artifact, ArtifactError
from bot.sources.dbt_lineage import Lineage
from bot.sources.dbt_manifest import Manifest, read_manifest
from bot.sources.table_stats import Fingerprint, Plan, Relation, ScopeStats

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

WATCHED_TYPES = frozenset({"model", "seed", "snapshot", "source"})
HISTORY_TAIL = 8  # points of history quoted in a signal
LOCK_RETRY_DELAYS = (0.2, 0.5, 1.0)  # seconds between tries to open a locked warehouse
_LOCK_PID = re.compile(r"\(PID (\d+)\)")  # DuckDB names the lock's holder: "... (PID 4242)"
_PERIOD_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1),
                 "day": timedelta(days=1)}


# ------------------------------------------------------------------ cursor


class TableState(BaseModel):
    """What one table's earlier polls left: its schema, fingerprint and statistics' history."""

    columns: dict[str, str] | None = Field(None, description="Schema snapshot: name to type.")
    fingerprint: dict[str, str | None] | None = None
    sampled_at: datetime | None = None
    polled_at: datetime | None = None
    max_timestamp: datetime | None = None
    series: dict[str, BatchSeries] = Field(default_factory=dict)


class TablesCursor(BaseModel):
    """Per table (`schema.table`), its state; tables no longer watched are dropped."""

    tables: dict[str, TableState] = Field(default_factory=dict)


# ------------------------------------------------------------------ the demo's clock


def demo_clock(runs_db: Path) -> Callable[[], datetime]:
    """The demo platform's now: the end of its latest DAG run (never later than the wall clock).

    The demo is a snapshot: its nightly DAG ran for the fault day and never runs again. Against
    the wall clock every source of it went stale 18 hours after `sleuth demo run` (their dbt
    error_after), and at once when a platform built the day before was polled: freshness
    findings about a world that is not running, while the scenario's own stale table was
    already found. Its clock keeps ages as they were when it ran; a user's warehouse, running,
    is judged by the wall clock.
    """

    def now() -> datetime:
        wall = datetime.now(UTC)
        if not runs_db.is_file():  # reading would create it
            return wall
        try:
            latest = max((run.end_date for run in demo_runs.list_runs(runs_db)), default=None)
        except (OSError, sqlite3.Error, ValidationError) as exc:
            log.warning("demo run records %s unreadable, the wall clock judges: %s", runs_db, exc)
            return wall
        return wall if latest is None else min(wall, ts.as_datetime(latest) or wall)

    return now


# ------------------------------------------------------------------ what is watched


@dataclass(frozen=True)
class WatchedTable:
    """One table and what to watch in it; None columns are found when its schema is read."""

    relation: Relation
    asset: str
    display: str
    timestamp_column: str | None = None
    partition_column: str | None = None
    keys: tuple[str, ...] = ()
    null_columns: tuple[str, ...] = ()
    numeric_columns: tuple[str, ...] | None = None
    max_age: timedelta | None = None
    max_null_rate: float | None = None
    foreign_keys: tuple[str, ...] = ()


class _After(Artifact):
    count: int | None = None
    period: Literal["minute", "hour", "day"] | None = None

    def delta(self) -> timedelta | None:
        return self.count * _PERIOD_UNITS[self.period] if self.count and self.period else None


class _Freshness(Artifact):
    warn_after: _After | None = None
    error_after: _After | None = None


class _SourceFreshness(Artifact):
    """What dbt's manifest says of a source's freshness (not in `ManifestNode`)."""

    loaded_at_field: str | None = None
    freshness: _Freshness | None = None

    def max_age(self) -> timedelta | None:
        if self.freshness is None:
            return None
        for after in (self.freshness.error_after, self.freshness.warn_after):
            if after is not None and (delta := after.delta()):
                return delta
        return None


@dataclass
class _Project:
    """A manifest read once per change of the file: names and auto-derived tables."""

    lineage: Lineage | None = None
    by_relation: dict[tuple[str, str], str] = field(default_factory=dict)
    auto: list[WatchedTable] = field(default_factory=list)
    stamp: tuple[int, int] | None = None


def read_project(path: Path | None, dialect: str) -> _Project:
    """Lineage, relation index and auto-derived tables of a manifest; `ArtifactError` if bad."""
    if path is None or not path.is_file():
        return _Project()
    manifest = read_manifest(path)
    freshness = _source_freshness(path)
    lineage = Lineage(manifest)
    keys, not_null, fks = _tested_columns(manifest)
    project = _Project(lineage=lineage, stamp=_stamp(path))
    for node in manifest.all_nodes():
        if node.resource_type not in WATCHED_TYPES or not node.config.enabled \
                or node.config.materialized == "ephemeral" or not node.schema_:
            continue
        table = (node.identifier if node.resource_type == "source" else node.alias) or node.name
        with_db = dialect not in ("duckdb", "sqlite")  # one file, one database: its name varies
        relation = Relation(name=table, schema=node.schema_,
                            catalog=node.database if with_db else None)
        project.by_relation[_relation_key(relation)] = node.unique_id
        fresh = freshness.get(node.unique_id, _SourceFreshness())
        uid = node.unique_id
        project.auto.append(WatchedTable(
            relation=relation, asset=uid, display=lineage.display_name(uid),
            timestamp_column=fresh.loaded_at_field, keys=tuple(keys.get(uid, ())),
            null_columns=tuple(dict.fromkeys([*not_null.get(uid, ()), *fks.get(uid, ())])),
            foreign_keys=tuple(fks.get(uid, ())), max_age=fresh.max_age()))
    return project


def _tested_columns(manifest: Manifest) -> tuple[dict[str, list[str]], ...]:
    """Per node: unique-tested, not_null-tested and relationships-tested (foreign key) columns."""
    found: dict[str, dict[str, list[str]]] = {"unique": {}, "not_null": {}, "relationships": {}}
    for test in manifest.nodes.values():
        meta = test.test_metadata
        if test.resource_type != "test" or meta is None or meta.namespace not in (None, "dbt"):
            continue
        column = test.column_name or meta.arguments.get("column_name")
        if meta.name in found and test.attached_node and isinstance(column, str) and column:
            columns = found[meta.name].setdefault(test.attached_node, [])
            if column not in columns:
                columns.append(column)
    return found["unique"], found["not_null"], found["relationships"]


def _source_freshness(path: Path) -> dict[str, _SourceFreshness]:
    try:
        sources = json.loads(path.read_text(encoding="utf-8")).get("sources") or {}
    except (OSError, ValueError):
        return {}
    out = {}
    for uid, raw in sources.items():
        if not isinstance(raw, dict):
            continue
        config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
        merged = {"loaded_at_field": raw.get("loaded_at_field") or config.get("loaded_at_field"),
                  "freshness": raw.get("freshness") or config.get("freshness")}
        try:
            out[uid] = _SourceFreshness.model_validate(merged)
        except ValidationError:
            continue  # a freshness dbt reads and Sleuth does not: no default limit
    return out


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _relation_key(relation: Relation) -> tuple[str, str]:
    return (relation.schema or "").lower(), relation.name.lower()


def watched_tables(config: TablesConfig, project: _Project, dialect: str) -> list[WatchedTable]:
    """Auto-derived tables that pass include/exclude, with explicit monitors laid over them."""
    tables = {_relation_key(t.relation): t for t in project.auto if _selected(config, t)} \
        if config.auto else {}
    for i, monitor in enumerate(config.monitors):
        try:
            relation = Relation.parse(monitor.table)
        except ValueError as exc:
            raise SleuthError(f"sources.tables.monitors.{i}.table: {exc}") from exc
        key = _relation_key(relation)
        base = tables.get(key) or _unmanaged(relation, project)
        tables[key] = _overlay(replace(base, relation=relation), monitor)
    return list(tables.values())


def _selected(config: TablesConfig, table: WatchedTable) -> bool:
    names = [table.relation.label.lower(), table.display.lower(), table.asset.lower()]

    def hit(globs: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(n, g.lower()) for g in globs for n in names)

    return hit(config.include) and not hit(config.exclude)


def _unmanaged(relation: Relation, project: _Project) -> WatchedTable:
    """A configured table: the dbt node's identity if the manifest has it."""
    uid = project.by_relation.get(_relation_key(relation))
    if uid and project.lineage is not None:
        return WatchedTable(relation=relation, asset=uid, display=project.lineage.display_name(uid))
    return WatchedTable(relation=relation, asset=f"table:{relation.label}", display=relation.label)


def _overlay(table: WatchedTable, monitor: TableMonitorConfig) -> WatchedTable:
    updates: dict[str, Any] = {
        "timestamp_column": monitor.timestamp_column, "partition_column": monitor.partition_column,
        "max_age": monitor.max_age, "max_null_rate": monitor.max_null_rate,
        "keys": None if monitor.key_columns is None else tuple(monitor.key_columns),
        "null_columns": None if monitor.null_columns is None else tuple(monitor.null_columns),
        "numeric_columns": None if monitor.numeric_columns is None
        else tuple(monitor.numeric_columns),
    }
    return replace(table, **{k: v for k, v in updates.items() if v is not None})


# ------------------------------------------------------------------ findings


@dataclass
class Sample:
    """One point of every statistic: a period's statistics, with on a live sample the whole
    table's row count and duplicate keys (a past period replayed from the table has neither)."""

    at: datetime
    token: str  # the data's period (or fingerprint): part of the dedup key
    scope: ScopeStats
    partial: bool = False  # a period of today or later, still filling
    fingerprint: Fingerprint | None = None
    duplicates: dict[str, int] = field(default_factory=dict)  # over the whole table
    duplicates_sql: str = ""


@dataclass
class Finding:
    """One broken check, before it becomes a signal."""

    check: Literal["volume", "freshness", "null_rate", "uniqueness", "schema", "distribution"]
    column: str | None
    title: str
    observed: Any
    expected: Any
    sql: str | None
    token: str  # the data's period (or fingerprint): part of the dedup key
    extra: dict[str, Any] = field(default_factory=dict)


class TableMonitorSource:
    """Polls warehouse tables; see the module docstring for what fires and when."""

    def __init__(self, name: str, url: str, config: TablesConfig | None = None, *,
                 manifest_path: Path | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.name = name
        self.url = url
        self.config = config or TablesConfig()
        self.manifest_path = manifest_path
        self._clock = clock or (lambda: datetime.now(UTC))
        self._engine: Engine | None = None
        self._project = _Project()
        try:
            self._backend = make_url(url).get_backend_name()
        except ArgumentError as exc:
            raise SleuthError(f"sources.warehouse.url: not a SQLAlchemy URL ({exc})") from exc
        self.dialect = ts.sqlglot_dialect(self._backend)
        watched_tables(self.config, _Project(), self.dialect)  # bad monitor tables fail here

    @classmethod
    def from_settings(cls, settings: Settings, *, name: str = "tables",
                      clock: Callable[[], datetime] | None = None) -> TableMonitorSource:
        """The configured warehouse and dbt manifest (the demo platform's by default, judged
        by the demo's own clock: see `demo_clock`)."""
        settings = settings.with_defaults()
        src, demo = settings.sources, settings.demo_platform
        if clock is None and src.warehouse.url == f"duckdb:///{demo.warehouse}":
            clock = demo_clock(demo.runs_db)
        artifacts = src.dbt.artifacts_dir
        return cls(name, src.warehouse.url or "", src.tables, clock=clock,
                   manifest_path=artifacts / "manifest.json" if artifacts else None)

    # -------------------------------------------------------------- Source protocol

    def check(self) -> list[str]:
        problems = []
        url = make_url(self.url)
        if self._backend == "duckdb" and url.database not in (None, "", ":memory:") \
                and not Path(url.database).expanduser().is_file():
            problems.append(f"the DuckDB warehouse {url.database} does not exist yet")
        else:
            try:
                with self._connect(retry=False):
                    pass
            except SourceBusy:
                pass  # the pipeline writing now is not a misconfiguration
            except SQLAlchemyError as exc:
                problems.append(f"cannot connect to the warehouse {self._where()}: "
                                f"{_reason(exc)}")
        if self.config.auto and not (self.manifest_path and self.manifest_path.is_file()):
            problems.append(f"no dbt manifest at {self.manifest_path} to derive table monitors "
                            "from (run dbt, or set sources.tables.auto: false with monitors)")
        elif not self.config.auto and not self.config.monitors:
            problems.append("sources.tables has neither auto nor monitors: nothing to watch")
        return problems

    def poll(self, cursor: TablesCursor | dict[str, Any] | None = None
             ) -> tuple[list[RawSignal], TablesCursor]:
        state = as_cursor(TablesCursor, cursor).model_copy(deep=True)
        now = self._clock()
        tables = watched_tables(self.config, self.project(), self.dialect)
        state.tables = {t.relation.label: state.tables[t.relation.label]
                        for t in tables if t.relation.label in state.tables}
        due = sorted(tables, key=lambda t: _polled(state, t))[: self.config.max_tables_per_poll]
        signals: list[RawSignal] = []
        try:
            with self._connect() as conn:
                schemas = ts.read_columns(conn, [t.relation for t in due])
                for table in due:
                    signals += self._poll_table(conn, table, schemas.get(table.relation), state,
                                                now)
        except SQLAlchemyError as exc:  # the connection is gone: no table's state is kept
            if held := self._held(exc):
                raise SourceBusy(held) from exc
            raise ConnectionError(f"warehouse {self._where()} unavailable: {_reason(exc)}") \
                from exc
        return signals, state

    def _poll_table(self, conn: Connection, table: WatchedTable, columns: dict[str, str] | None,
                    state: TablesCursor, now: datetime) -> list[RawSignal]:
        """Check one table; a failure skips it (its state untouched) and not the others."""
        label = table.relation.label
        if columns is None:
            log.warning("%s: table %s not found; skipped this poll", self.name, label)
            return []
        current = state.tables.get(label, TableState()).model_copy(deep=True)
        try:
            findings = self._check_table(conn, table, columns, current, now)
        except SQLAlchemyError as exc:
            if conn.invalidated or self._held(exc):
                raise  # the connection is gone or locked: the whole poll stops here
            conn.rollback()  # a failed statement aborts the transaction on some warehouses
            log.warning("%s: skipped %s this poll: %s", self.name, label, _reason(exc))
            return []
        current.polled_at = now
        state.tables[label] = current
        return [self._signal(table, f, now) for f in findings]

    def project(self) -> _Project:
        """The manifest's tables, read again when the file changes."""
        stamp = _stamp(self.manifest_path) if self.manifest_path else None
        if stamp != self._project.stamp:
            try:
                self._project = read_project(self.manifest_path, self.dialect)
            except ArtifactError as exc:
                log.warning("%s: dbt manifest unreadable, kept the last one: %s", self.name, exc)
        return self._project

    # -------------------------------------------------------------- one table

    def _check_table(self, conn: Connection, table: WatchedTable, columns: dict[str, str],
                     state: TableState, now: datetime) -> list[Finding]:
        drift = schema_drift(table, state, columns)
        plan = self._plan(table, columns)
        fp = ts.fingerprint(conn, plan, self.dialect)
        newest = self._backfill(conn, table, plan, state, fp, now)
        findings = drift + freshness(table, state, fp, plan, now, self.config.sensitivity)
        if not self._due(state, fp, now, schema_changed=bool(drift)):
            return findings
        dups, dup_sql = ts.duplicates(conn, plan, self.dialect)
        sample = Sample(at=ts.as_datetime(fp.period) or now, token=_token(fp),
                        scope=newest or ts.scope_stats(conn, plan, self.dialect),
                        partial=_partial(fp.period, now), fingerprint=fp, duplicates=dups,
                        duplicates_sql=dup_sql or "")
        judged = judge_sample(table, state, sample, plan, self.config)
        for finding in judged:
            if finding.check == "uniqueness" and finding.column and self.config.sample_limit:
                values, sql = ts.duplicate_sample(
                    conn, plan, finding.column, self.config.sample_limit, self.dialect,
                    latest_period=finding.extra["scope"] == "period")
                finding.extra.update(sample=values, sample_sql=sql)
        state.fingerprint, state.sampled_at = fp.token(), now
        return findings + judged

    def _backfill(self, conn: Connection, table: WatchedTable, plan: Plan, state: TableState,
                  fp: Fingerprint, now: datetime) -> ScopeStats | None:
        """On a table's first sampling, its recent periods replayed as history (see the module
        docstring); the newest period's statistics, to be judged. None when there is nothing
        to replay: sampled before, no period, periods that are not dates, or turned off."""
        limit = self.config.backfill_periods
        if state.sampled_at is not None or not limit or plan.period() is None \
                or ts.as_datetime(fp.period) is None:
            return None
        periods = ts.period_stats(conn, plan, limit + 1, self.dialect)
        dated = [(ts.as_datetime(p.period), p) for p in periods]
        if not periods or any(at is None for at, _ in dated):
            return None
        for at, scope in dated[:-1]:  # the newest is judged, never its own history
            if at is not None and not _partial(scope.period, now):
                judge_sample(table, state, Sample(at=at, token=str(scope.period), scope=scope),
                             plan, self.config)
        backfill_intervals(state, periods, self.config.sensitivity)
        for series in state.series.values():  # the past as it was is the baseline, weekends
            for point in series.points:       # and all: no one was told any of it was wrong
                point.anomalous = False
        return periods[-1]

    def _plan(self, table: WatchedTable, columns: dict[str, str]) -> Plan:
        """What to compute, names spelled as the warehouse does; missing columns left out."""
        stored = {c.lower(): c for c in columns}
        missing: list[str] = []

        def resolve(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
            found = [stored[n.lower()] for n in names if n.lower() in stored]
            missing.extend(n for n in names if n.lower() not in stored)
            return tuple(dict.fromkeys(found))

        def first(name: str | None, candidates: list[str]) -> str | None:
            if name:
                return (resolve([name]) or (None,))[0]
            return next((stored[c.lower()] for c in candidates if c.lower() in stored), None)

        cfg = self.config
        ts_col = first(table.timestamp_column, cfg.timestamp_column_names)
        part = first(table.partition_column, cfg.partition_column_names)
        keys = resolve(table.keys)
        numeric = resolve(table.numeric_columns) if table.numeric_columns is not None else \
            _auto_numeric(columns, {*keys, *table.foreign_keys, ts_col, part},
                          cfg.max_numeric_columns)
        plan = Plan(relation=table.relation, timestamp_column=ts_col, partition_column=part,
                    keys=keys, null_columns=resolve(table.null_columns), numeric_columns=numeric)
        if missing:
            log.warning("%s: %s has no column %s; not watched", self.name, table.relation.label,
                        ", ".join(sorted(set(missing))))
        return plan

    def _due(self, state: TableState, fp: Fingerprint, now: datetime, *,
             schema_changed: bool) -> bool:
        """A new point when the data changed, or the last one is older than `resample_after`."""
        if state.sampled_at is None or schema_changed or state.fingerprint != fp.token():
            return True
        if _partial(fp.period, state.sampled_at) and not _partial(fp.period, now):
            return True  # sampled while its day was still filling: its final count is due
        return now - state.sampled_at >= self.config.resample_after

    def _signal(self, table: WatchedTable, finding: Finding, now: datetime) -> RawSignal:
        detail = {"check": finding.check, "column": finding.column, "table": table.relation.label,
                  "observed": finding.observed, "expected": finding.expected, "sql": finding.sql,
                  **finding.extra}
        key = ":".join([self.name, table.relation.label, finding.check, finding.column or "*",
                        finding.token])
        return RawSignal(source=self.name, kind="table_check", asset=table.asset,
                         title=finding.title[:200], observed_at=now, dedup_key=key,
                         detail=_jsonable(detail))

    # -------------------------------------------------------------- connections

    @contextmanager
    def _connect(self, *, retry: bool = True) -> Iterator[Connection]:
        """One connection per poll; on a lock (the pipeline writing) retry briefly, then give up.

        One connection, not one per table: opening a DuckDB file costs tens of milliseconds,
        and the writer is kept out the shortest total time by a single quick poll.
        """
        delays = LOCK_RETRY_DELAYS if retry else ()
        for attempt in range(len(delays) + 1):
            try:
                conn = self._get_engine().connect()
                break
            except SQLAlchemyError as exc:
                held = self._held(exc)
                if held is None:
                    raise
                if attempt == len(delays):
                    raise SourceBusy(held) from exc
                time.sleep(delays[attempt])
        with conn:
            yield conn

    def _held(self, exc: SQLAlchemyError) -> str | None:
        """The line saying who holds the warehouse, when `exc` is a lock (another process
        writing it, or a connection of this process opened with another configuration, which
        DuckDB refuses alike); None for any other error."""
        text = str(getattr(exc, "orig", None) or exc)
        if "different configuration" in text:
            holder = "a connection of this process with another configuration"
        elif "lock" in text.lower():
            pid = _LOCK_PID.search(text)
            holder = f"another process (pid {pid.group(1)})" if pid else "another connection"
        else:
            return None
        return f"warehouse {self._where()} is locked by {holder}; tables not checked this poll"

    def _where(self) -> str:
        """The warehouse as people name it: a file's path, else its URL without password."""
        url = make_url(self.url)
        if self._backend in ("duckdb", "sqlite") and url.database:
            return url.database
        return url.render_as_string(hide_password=True)

    def _get_engine(self) -> Engine:
        if self._engine is None:
            # The investigation's tools open the same file in this process; DuckDB refuses a
            # second connection to one file with another configuration, so both use this one.
            args = {"read_only": True, "config": dict(READONLY_CONFIG)} \
                if self._backend == "duckdb" else {}
            self._engine = create_engine(self.url, poolclass=NullPool, connect_args=args)
        return self._engine


# ------------------------------------------------------------------ the checks


def schema_drift(table: WatchedTable, state: TableState,
                 columns: dict[str, str]) -> list[Finding]:
    before, state.columns = state.columns, dict(columns)
    if before is None or before == columns:
        return []
    added = [c for c in columns if c not in before]
    removed = [c for c in before if c not in columns]
    retyped = {c: [before[c], t] for c, t in columns.items() if c in before and before[c] != t}
    parts = ([f"added {', '.join(added)}"] if added else []) + \
        ([f"removed {', '.join(removed)}"] if removed else []) + \
        [f"{c} {old} → {new}" for c, (old, new) in retyped.items()]
    digest = hashlib.sha256(json.dumps(columns, sort_keys=True).encode()).hexdigest()[:12]
    return [Finding("schema", None, f"{table.display} schema changed: {'; '.join(parts)}",
                    observed=columns, expected=before, sql=None, token=digest,
                    extra={"added": added, "removed": removed, "type_changed": retyped})]


def freshness(table: WatchedTable, state: TableState, fp: Fingerprint, plan: Plan,
              now: datetime, sensitivity: BaselineConfig) -> list[Finding]:
    """Age of the newest row against `max_age`, and against the usual time between updates."""
    newest = fp.max_timestamp
    if newest is None:
        return []
    intervals = state.series.setdefault("freshness.interval_hours", BatchSeries())
    if state.max_timestamp is not None and newest > state.max_timestamp:
        hours = (newest - state.max_timestamp).total_seconds() / 3600
        intervals.update(newest, hours, sensitivity)
    state.max_timestamp = newest
    age = max((now - newest).total_seconds() / 3600, 0.0)
    limit = table.max_age.total_seconds() / 3600 if table.max_age else None
    verdict = judge(intervals.points, now, age, sensitivity)
    if limit is not None and age > limit:
        expected = f"at most {_hours(limit)}"
    elif verdict.anomalous and verdict.direction == "spike":
        expected = f"updates every {_hours(verdict.expected or 0)}"
    else:
        return []
    title = f"{table.display} last updated {_hours(age)} ago ({expected})"
    return [Finding("freshness", plan.timestamp_column, title,
                    observed={"max_timestamp": newest.isoformat(), "age_hours": round(age, 2)},
                    expected=expected, sql=fp.sql, token=newest.isoformat(),
                    extra={"history": _tail(intervals)})]


def judge_sample(table: WatchedTable, state: TableState, sample: Sample, plan: Plan,
                 config: TablesConfig) -> list[Finding]:
    """Every statistic of one sample judged against its history, then added to it."""
    findings = volume(table, state, sample, plan, config)
    findings += null_rates(table, state, sample, config)
    findings += [f for key in plan.keys if (f := uniqueness(table, state, sample, key, config))]
    return findings + distributions(table, state, sample, config)


def backfill_intervals(state: TableState, periods: list[ScopeStats],
                       sensitivity: BaselineConfig) -> None:
    """The usual time between updates, from the newest timestamp of each recent period."""
    stamps = [p.max_timestamp for p in periods if p.max_timestamp is not None]
    series = state.series.setdefault("freshness.interval_hours", BatchSeries())
    for before, after in itertools.pairwise(stamps):
        if after > before:
            series.update(after, (after - before).total_seconds() / 3600, sensitivity)
    if stamps:
        state.max_timestamp = max(stamps)


def volume(table: WatchedTable, state: TableState, sample: Sample, plan: Plan,
           config: TablesConfig) -> list[Finding]:
    """Row count, and rows in the latest period; either way, far from history. A period still
    filling has fewer rows than a whole one: there only a spike of its count fires. Counts
    follow the week, so until weekdays are learned they need `count_min_change_any_day`, and
    a count within the range of the recent week's days is that week's shape, not a move."""
    sensitivity = config.sensitivity.model_copy(
        update={"min_change_any_day": config.count_min_change_any_day})
    judged = [("rows", "row count", sample.fingerprint.rows, sample.fingerprint.sql)] \
        if sample.fingerprint else []
    if plan.period() is not None:
        judged.append(("period_rows", "rows in latest period", sample.scope.rows,
                       sample.scope.sql))
    moved = []
    for stat, label, value, sql in judged:
        series = state.series.setdefault(f"volume.{stat}", BatchSeries())
        earlier = [p for p in series.points if p.at < sample.at][-2 * sensitivity.window:]
        verdict = series.update(sample.at, value, sensitivity)
        if verdict.anomalous and within_weekly_range(earlier, verdict, sensitivity):
            _settle(series, sample.at, fired=False)
            continue
        filling = sample.partial and stat == "period_rows" and verdict.direction == "drop"
        if verdict.anomalous and not filling:  # a filling period's point stays out of baselines
            moved.append((stat, label, verdict, sql, series))
    if not moved:
        return []
    stat, label, verdict, sql, series = moved[-1]  # the period's count says most
    title = f"{table.display} {label} {verdict.observed:,.0f} (usual {verdict.expected:,.0f})"
    return [Finding("volume", None, title, observed=verdict.observed, expected=verdict.expected,
                    sql=sql, token=sample.token,
                    extra={"statistic": stat, **_verdict(verdict), "history": _tail(series),
                           "moved": [m[0] for m in moved]})]


def null_rates(table: WatchedTable, state: TableState, sample: Sample,
               config: TablesConfig) -> list[Finding]:
    scope, at = sample.scope, sample.at
    if scope.rows < config.min_rows:
        return []
    found = []
    for column, rate in scope.null_rates.items():
        series = state.series.setdefault(f"null_rate.{column}", BatchSeries())
        verdict = series.update(at, rate, config.sensitivity)
        ceiling = table.max_null_rate
        over = ceiling is not None and rate > ceiling
        moved = verdict.anomalous and verdict.direction == "spike" \
            and rate - (verdict.expected or 0.0) >= config.null_rate_min_delta
        _settle(series, at, moved)
        if not (over or moved):
            continue
        usual = f"usual {verdict.expected:.1%}" if verdict.expected is not None \
            else f"ceiling {ceiling:.1%}"
        title = f"{table.display}.{column} null rate {rate:.1%} ({usual})"
        found.append(Finding("null_rate", column, title, observed=rate,
                             expected=verdict.expected, sql=scope.sql, token=sample.token,
                             extra={"ceiling": ceiling, "rows": scope.rows, **_verdict(verdict),
                                    "history": _tail(series)}))
    return found


def uniqueness(table: WatchedTable, state: TableState, sample: Sample, key: str,
               config: TablesConfig) -> Finding | None:
    """Duplicate keys in two senses, each its own series: across the whole table
    (`uniqueness.KEY`: a state of the table at one moment, learned poll by poll) and within the
    period (`uniqueness_in_period.KEY`: its past is in the table, so it is backfilled). Both
    may fire; the one signal of the key then leads with the whole table's count, unless only
    the period's has a history to compare with (a first poll)."""
    judged = []
    if key in sample.duplicates:
        judged.append(("table", f"uniqueness.{key}", sample.duplicates[key],
                       sample.duplicates_sql))
    if key in sample.scope.duplicates:
        judged.append(("period", f"uniqueness_in_period.{key}", sample.scope.duplicates[key],
                       sample.scope.sql))
    fired = []
    for scope, name, count, sql in judged:
        series = state.series.setdefault(name, BatchSeries())
        if verdict := _duplicates_fire(series, sample.at, count, config.sensitivity):
            fired.append((scope, count, sql, verdict, series))
    if not fired:
        return None
    scope, count, sql, verdict, series = max(fired, key=lambda f: (f[3].history > 0,
                                                                   f[0] == "table"))
    usual = verdict.expected if verdict.expected is not None else 0
    where = " in its latest period" if scope == "period" else ""
    title = f"{table.display}.{key} has {count:,} duplicate keys{where} (usual {usual:,.0f})"
    return Finding("uniqueness", key, title, observed=count, expected=usual, sql=sql,
                   token=sample.token,
                   extra={"scope": scope, "table_duplicates": sample.duplicates.get(key),
                          "period_duplicates": sample.scope.duplicates.get(key),
                          **_verdict(verdict), "history": _tail(series)})


def _duplicates_fire(series: BatchSeries, at: datetime, count: int,
                     sensitivity: BaselineConfig) -> Verdict | None:
    """The verdict if `count` duplicates fire: some where history had none, or far more."""
    earlier = [p.value for p in series.points if p.at < at]
    verdict = series.update(at, count, sensitivity)
    fires = count > 0 and (not any(earlier) or (verdict.anomalous and verdict.direction == "spike"))
    _settle(series, at, fires)
    return verdict if fires else None


def distributions(table: WatchedTable, state: TableState, sample: Sample,
                  config: TablesConfig) -> list[Finding]:
    """A column fires when at least two of its statistics moved: one alone is mostly sampling
    noise (a p95 of small counts stepping from 1 to 2, one outlier moving the max)."""
    scope, at = sample.scope, sample.at
    if scope.rows < config.min_rows:
        return []
    found = []
    for column, stats in scope.numeric.items():
        judged = {}
        for stat in ts.NUMERIC_STATS:
            if stat in stats:
                series = state.series.setdefault(f"distribution.{column}.{stat}", BatchSeries())
                judged[stat] = (series, series.update(at, stats[stat], config.sensitivity))
        moved = {s: v for s, (_, v) in judged.items() if v.anomalous}
        for series, _ in judged.values():
            _settle(series, at, len(moved) >= 2)
        if len(moved) < 2:
            continue
        stat, first = next(iter(moved.items()))
        title = (f"{table.display}.{column} {stat} {_number(first.observed)} "
                 f"(usual {_number(first.expected)})")
        found.append(Finding(
            "distribution", column, title, observed=stats,
            expected={s: v.expected for s, v in moved.items()}, sql=scope.sql,
            token=sample.token,
            extra={"moved": {s: _verdict(v) for s, v in moved.items()},
                   "history": _tail(judged[stat][0])}))
    return found


# ------------------------------------------------------------------ helpers


def _auto_numeric(columns: dict[str, str], exclude: set[str | None], limit: int
                  ) -> tuple[str, ...]:
    """Numeric columns that are measures, not identifiers."""
    picked = [c for c, t in columns.items() if ts.is_numeric_type(t) and c not in exclude
              and not (c.lower() == "id" or c.lower().endswith("_id"))]
    return tuple(picked[:limit])


def _settle(series: BatchSeries, at: datetime, fired: bool) -> None:
    """A move too small to fire is normal data: keep it in later baselines."""
    for point in series.points:
        if point.at == at and not fired:
            point.anomalous = False


def _partial(period: Any, now: datetime) -> bool:
    """A period of today or later is still filling; one that is not a date cannot tell."""
    start = ts.as_datetime(period)
    return start is not None and start.date() >= now.date()


def _polled(state: TablesCursor, table: WatchedTable) -> datetime:
    current = state.tables.get(table.relation.label)
    return current.polled_at if current and current.polled_at else datetime.min.replace(tzinfo=UTC)


def _token(fp: Fingerprint) -> str:
    if fp.period is not None:
        return str(fp.period)
    return hashlib.sha256(json.dumps(fp.token(), sort_keys=True).encode()).hexdigest()[:12]


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {"z": verdict.z, "change": verdict.change, "baseline": verdict.note,
            "history_runs": verdict.history}


def _tail(series: BatchSeries) -> list[dict[str, Any]]:
    return [{"at": p.at.isoformat(), "value": p.value, "anomalous": p.anomalous}
            for p in series.points[-HISTORY_TAIL:]]


def _hours(hours: float) -> str:
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"


def _number(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's one-line message, without SQLAlchemy's statement dump."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))

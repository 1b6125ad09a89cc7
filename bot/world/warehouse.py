"""The warehouse the investigation reads: DuckDB, or any SQLAlchemy URL, read-only per query.

DuckDB opens a fresh read-only connection per query (`connect_readonly`: no file, URL or
extension access) and runs it with `run_guarded`'s timeout; a fresh connection sees the
latest data and holds no lock between queries. Other URLs run each query in a read-only
transaction with a statement timeout where the dialect has one: Postgres (`SET TRANSACTION
READ ONLY`, `SET LOCAL statement_timeout`), SQLite (`PRAGMA query_only`, a progress handler
that interrupts past the deadline). Elsewhere the guard is the only wall and the timeout is
the driver's.

Earlier schemas come from the table monitors' snapshots in Sleuth's store (`sourcestate` of
the `tables` source), when intake has polled the table before.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlglot import exp

from agents.tools.sql_guard import (
    GuardedQuery,
    QueryResult,
    SqlFailed,
    SqlTimeout,
    connect_readonly,
    run_guarded,
)
from agents.world import Column, RecordedSchema
from bot.errors import SleuthError
from bot.sources.table_stats import sqlglot_dialect

log = logging.getLogger(__name__)
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")

_TABLES = ("select table_schema, table_name from information_schema.tables "
           "where table_schema not in ('information_schema', 'pg_catalog') "
           "order by table_schema, table_name")
_COLUMNS = ("select column_name, data_type from information_schema.columns "
            "where lower(table_schema) = lower(:schema) and lower(table_name) = lower(:name) "
            "order by ordinal_position")


class DuckDbWarehouse:
    """A DuckDB file, read through a new read-only connection per call."""

    dialect = "duckdb"

    def __init__(self, path: Path, schemas: StoreSchemas | None = None) -> None:
        self.path = Path(path)
        self.schemas = schemas

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if not self.path.is_file():
            raise SqlFailed(f"the DuckDB warehouse {self.path} does not exist")
        try:
            con = connect_readonly(self.path)
        except duckdb.Error as exc:  # locked by a writer (dbt mid-build), or not DuckDB
            raise SqlFailed(f"cannot open {self.path} read-only: "
                            f"{str(exc).splitlines()[0]}") from None
        try:
            yield con
        finally:
            con.close()

    def run(self, query: GuardedQuery, timeout_s: float) -> QueryResult:
        with self._connection() as con:
            return run_guarded(con, query, timeout_s)

    def tables(self) -> list[str]:
        with self._connection() as con:
            return [_name(s, t) for s, t in con.execute(_TABLES).fetchall()]

    def columns(self, table: str) -> list[Column]:
        schema, name = _split(table)
        with self._connection() as con:
            rows = con.execute(_COLUMNS.replace(":schema", "?").replace(":name", "?"),
                               [schema or "main", name]).fetchall()
        return [Column(name=n, type=t) for n, t in rows]

    def recorded_schemas(self, table: str) -> list[RecordedSchema]:
        return self.schemas.of(table) if self.schemas else []


class SqlAlchemyWarehouse:
    """Any SQLAlchemy URL; see the module docstring for what read-only means per dialect."""

    def __init__(self, url: str, schemas: StoreSchemas | None = None) -> None:
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise SleuthError(f"sources.warehouse.url: not a SQLAlchemy URL ({exc})") from exc
        self.backend = parsed.get_backend_name()
        self.dialect = sqlglot_dialect(self.backend)
        self.label = parsed.render_as_string(hide_password=True)
        if self.backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            # Opened read-only by the OS too: `mode=ro` through SQLite's URI filenames.
            parsed = parsed.set(database=f"file:{parsed.database}?mode=ro",
                                query={**parsed.query, "uri": "true"})
        self.engine = create_engine(parsed, poolclass=NullPool)
        self.schemas = schemas

    def run(self, query: GuardedQuery, timeout_s: float) -> QueryResult:
        try:
            with self.engine.connect() as conn, self._read_only(conn, timeout_s):
                cursor = conn.exec_driver_sql(query.probe_sql)
                columns = list(cursor.keys())
                rows = [list(r) for r in cursor.fetchmany(query.limit + 1)]
        except SqlTimeout:
            raise
        except SQLAlchemyError as exc:
            message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            if "interrupt" in message.lower() or "statement timeout" in message.lower():
                raise SqlTimeout(f"query interrupted after {timeout_s:g} s; filter earlier or "
                                 "aggregate") from None
            raise SqlFailed(message) from None
        truncated = len(rows) > query.limit
        rows = rows[: query.limit]
        return QueryResult(columns=columns, rows=rows, row_count=len(rows), truncated=truncated)

    @contextmanager
    def _read_only(self, conn: Connection, timeout_s: float) -> Iterator[None]:
        if self.backend == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            try:
                yield
            finally:
                conn.rollback()
        elif self.backend == "sqlite":
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA query_only = 1")
            deadline = time.monotonic() + timeout_s
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                yield
            finally:
                raw.set_progress_handler(None, 0)
                conn.rollback()
        else:
            try:
                yield
            finally:
                conn.rollback()

    def tables(self) -> list[str]:
        with self.engine.connect() as conn:
            if self.backend == "sqlite":
                rows = conn.execute(text("select 'main', name from sqlite_master "
                                         "where type in ('table', 'view') order by name"))
            else:
                rows = conn.execute(text(_TABLES))
            return [_name(s, t) for s, t in rows]

    def columns(self, table: str) -> list[Column]:
        schema, name = _split(table)
        with self.engine.connect() as conn:
            if self.backend == "sqlite":
                if schema not in (None, "main"):
                    return []
                rows = conn.execute(text("select name, type from pragma_table_info(:name)"),
                                    {"name": name})
            else:
                rows = conn.execute(text(_COLUMNS), {"schema": schema or "public", "name": name})
            return [Column(name=n, type=t or "") for n, t in rows]

    def recorded_schemas(self, table: str) -> list[RecordedSchema]:
        return self.schemas.of(table) if self.schemas else []


class StoreSchemas:
    """The table monitors' schema snapshots, read from Sleuth's store (never written)."""

    def __init__(self, store_url: str, source: str = "tables") -> None:
        self.store_url = store_url
        self.source = source

    def of(self, table: str) -> list[RecordedSchema]:
        try:
            engine = create_engine(self.store_url, poolclass=NullPool)
            with engine.connect() as conn:
                row = conn.execute(text("select cursor, polled_at from sourcestate "
                                        "where name = :name"), {"name": self.source}).first()
        except SQLAlchemyError as exc:  # no store yet, or not migrated: nothing recorded
            log.debug("no schema snapshots from the store: %s", exc)
            return []
        if row is None:
            return []
        cursor = row[0] if isinstance(row[0], dict) else _json(row[0])
        state = (cursor.get("tables") or {}).get(table.lower()) or \
            next((v for k, v in (cursor.get("tables") or {}).items()
                  if k.lower() == table.lower()), None)
        if not state or not state.get("columns"):
            return []
        when = state.get("polled_at") or row[1]
        return [RecordedSchema(source="table monitor snapshot", columns=state["columns"],
                               as_of=datetime.fromisoformat(when) if isinstance(when, str)
                               else when)]


def _json(value: Any) -> dict[str, Any]:
    try:
        loaded = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _split(table: str) -> tuple[str | None, str]:
    """(schema, name) of `schema.table`, parts possibly quoted (`shop."odd name"`)."""
    try:
        parts = [p.name for p in exp.to_table(table).parts]
    except (sqlglot.errors.ParseError, ValueError):
        parts = [p.strip('"') for p in table.split(".")]
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


def _name(schema: str, table: str) -> str:
    """`schema.table`, a part quoted when it is no plain identifier."""
    return ".".join(p if _PLAIN.match(p) else '"' + p.replace('"', '""') + '"'
                    for p in (schema, table))


def make_warehouse(url: str, store_url: str | None = None
                   ) -> DuckDbWarehouse | SqlAlchemyWarehouse:
    """The warehouse of `sources.warehouse.url`."""
    schemas = StoreSchemas(store_url) if store_url else None
    parsed = make_url(url)
    if parsed.get_backend_name() == "duckdb" and parsed.database not in (None, "", ":memory:"):
        return DuckDbWarehouse(Path(parsed.database).expanduser(), schemas)
    return SqlAlchemyWarehouse(url, schemas)

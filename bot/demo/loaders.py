"""Extract/load tasks: copy one day of upstream files into the warehouse's raw schemas.

Each loader is configured by `loaders/<name>.yml` in the platform's repository, so a commit
can change what it loads. A loader selects and casts the columns its config lists (a renamed
or dropped upstream column fails with DuckDB's Binder error naming it), applies an optional
filter, and adds `_loaded_at` and `_partition_date`. `append_partition` replaces the day's
partition, so re-runs are idempotent; `replace` swaps in a full snapshot.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

LOADERS_DIR = "loaders"


class LoaderConfig(BaseModel):
    """`loaders/<name>.yml`: where one upstream table comes from and how it is loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    table: str
    target: str = Field(description="`raw_<source>.<table>` in the warehouse.")
    path: str = Field(description="Glob below the landing zone; `{date}` is the partition day.")
    format: Literal["csv", "jsonl"]
    columns: dict[str, str] = Field(description="Column name to DuckDB type, in table order.")
    mode: Literal["append_partition", "replace"] = "append_partition"
    filter: str | None = Field(None, description="SQL predicate over the typed columns.")
    window_days: int = Field(1, ge=1, description="How many partitions back to (re)load.")

    @field_validator("target")
    @classmethod
    def _qualified(cls, value: str) -> str:
        if value.count(".") != 1:
            raise ValueError("target must be schema.table")
        return value


class LoadResult(BaseModel):
    loader: str
    target: str
    rows: int = Field(description="Rows written to the target by this run.")
    files: list[Path] = Field(description="Upstream files read.")


def loader_names(repo: Path) -> list[str]:
    """Loaders configured in the repository, by file stem."""
    return sorted(p.stem for p in (repo / LOADERS_DIR).glob("*.yml"))


def load_config(repo: Path, name: str) -> LoaderConfig:
    path = repo / LOADERS_DIR / f"{name}.yml"
    if not path.exists():
        raise FileNotFoundError(f"no loader config {path}")
    return LoaderConfig.model_validate(yaml.safe_load(path.read_text()))


def run_loader(
    name: str,
    day: date,
    *,
    repo: Path,
    landing: Path,
    warehouse: Path,
    loaded_at: datetime,
    log: logging.Logger,
) -> LoadResult:
    """Load the partition(s) of `day` for loader `name`; see the module docstring."""
    config = load_config(repo, name)
    started = time.perf_counter()
    days = [day] if config.mode == "replace" else [
        day - timedelta(days=back) for back in reversed(range(config.window_days))
    ]
    log.info("Loading %s (%s/%s.yml): %s.%s -> %s (mode=%s, window_days=%d)", name, LOADERS_DIR,
             name, config.source, config.table, config.target, config.mode, config.window_days)
    rows, files = 0, []
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        _ensure_target(con, config)
        for part in days:
            found = sorted(landing.glob(config.path.format(date=part.isoformat())))
            if not found:
                log.warning("dt=%s: no files matched %s; nothing loaded for this partition",
                            part, config.path.format(date=part.isoformat()))
                continue
            log.info("dt=%s: found %d file(s): %s", part, len(found),
                     ", ".join(f"{p.name} ({p.stat().st_size / 1000:,.1f} kB)" for p in found))
            try:
                rows += _load_partition(con, config, part, found, _naive_utc(loaded_at), log)
            except duckdb.Error as err:
                err.add_note(f"loader {name}, partition dt={part}, files {[str(p) for p in found]}")
                raise
            files += found
    log.info("Loaded %s rows into %s from %d file(s) in %.2fs", f"{rows:,}", config.target,
             len(files), time.perf_counter() - started)
    return LoadResult(loader=name, target=config.target, rows=rows, files=files)


def _naive_utc(moment: datetime) -> datetime:
    """DuckDB `timestamp` columns hold UTC without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _ensure_target(con: duckdb.DuckDBPyConnection, config: LoaderConfig) -> None:
    """Create the raw table, and add columns a config change introduced."""
    schema, table = config.target.split(".")
    con.execute(f"create schema if not exists {_quote(schema)}")
    columns = {**config.columns, "_loaded_at": "timestamp", "_partition_date": "date"}
    ddl = ", ".join(f"{_quote(c)} {t}" for c, t in columns.items())
    con.execute(f"create table if not exists {config.target} ({ddl})")
    existing = {r[0] for r in con.execute(
        "select column_name from information_schema.columns"
        " where table_schema = ? and table_name = ?", [schema, table]).fetchall()}
    for column, type_ in columns.items():
        if column not in existing:
            con.execute(f"alter table {config.target} add column {_quote(column)} {type_}")


def _reader(config: LoaderConfig, files: list[Path]) -> str:
    paths = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in files) + "]"
    if config.format == "csv":
        # Everything as text first, so the casts below are the only typing (and fail loudly).
        return f"read_csv({paths}, header = true, all_varchar = true)"
    return f"read_json({paths}, format = 'newline_delimited', sample_size = -1)"


def _load_partition(
    con: duckdb.DuckDBPyConnection,
    config: LoaderConfig,
    part: date,
    files: list[Path],
    loaded_at: datetime,
    log: logging.Logger,
) -> int:
    # Qualified, so that a column missing upstream is a Binder error naming it rather than a
    # reference to the alias being defined.
    select = ",\n    ".join(f"cast(upstream.{_quote(c)} as {t}) as {_quote(c)}"
                            for c, t in config.columns.items())
    con.execute(
        f"create or replace temp table _batch as\nselect\n    {select},\n"
        f"    $loaded_at::timestamp as _loaded_at,\n    $part::date as _partition_date\n"
        f"from {_reader(config, files)} as upstream",
        {"loaded_at": loaded_at, "part": part},
    )
    read = _count(con, "select count(*) from _batch")
    where = f"where {config.filter}" if config.filter else ""
    kept = _count(con, f"select count(*) from _batch {where}")
    log.info("dt=%s: read %s rows%s", part, f"{read:,}",
             f", {kept:,} after filter `{config.filter}`" if config.filter else "")
    con.execute("begin transaction")
    if config.mode == "replace":
        con.execute(f"create or replace table {config.target} as select * from _batch {where}")
        deleted = None
    else:
        deleted = _count(con, f"delete from {config.target} where _partition_date = ?", [part])
        con.execute(f"insert into {config.target} by name select * from _batch {where}")
    con.execute("commit")
    con.execute("drop table _batch")
    replaced = "replaced the table" if deleted is None else f"replaced {deleted:,} existing rows"
    log.info("dt=%s: wrote %s rows to %s (%s)", part, f"{kept:,}", config.target, replaced)
    return kept


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> int:
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row else 0

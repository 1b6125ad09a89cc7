"""Table statistics computed inside the warehouse: the SQL, built with sqlglot, and its results.

Every statement is an aggregate, so only numbers leave the warehouse (and, for a duplicated
key, at most `limit` key values). Names come from config and manifests, never pasted into
SQL text: each is a sqlglot identifier, quoted and escaped for the connection's dialect.

Per table and poll, at most: one query for the columns, one cheap `fingerprint` (row count,
max timestamp, latest period) that says whether the table changed, and when it did, one
whole-table query for key uniqueness and one query over the latest period (the whole table
when there is no period) for null counts, numeric distributions and duplicate keys within the
period. On a table's first sampling that last query is `periods_sql` instead: the same
aggregates grouped by period over the latest few, so the table's own history is read at once.
Population variance is
derived from avg(x) and avg(x²), which every SQL dialect has; quantiles are approximate
where the dialect has such a function, exact (`percentile_cont`) on Postgres, absent elsewhere.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlglot
from sqlalchemy import Connection, bindparam, inspect, text
from sqlalchemy.exc import NoSuchTableError
from sqlglot import exp

# SQLAlchemy dialect names that sqlglot spells differently.
_DIALECTS = {"postgresql": "postgres", "mssql": "tsql", "awsathena": "athena"}
APPROX_QUANTILE_DIALECTS = frozenset({"duckdb", "snowflake", "bigquery", "trino", "presto",
                                      "athena", "spark", "databricks", "redshift"})
QUANTILES = (("p50", 0.5), ("p95", 0.95))
NUMERIC_STATS = ("mean", "stddev", "p50", "p95", "min", "max")
_NUMERIC_TYPE = re.compile(
    r"^\s*(U?(TINY|SMALL|MEDIUM|BIG|HUGE)?INT(EGER)?\d*|DECIMAL|NUMERIC|NUMBER|DOUBLE|FLOAT\d*"
    r"|REAL)\b", re.IGNORECASE)


def _split_dotted(reference: str) -> list[str] | None:
    """Dotted name parts, double quotes honoured; None if a quote is left open."""
    parts, current, quoted, i = [], "", False, 0
    text = reference.strip()
    while i < len(text):
        char = text[i]
        if char == '"' and quoted and text[i + 1:i + 2] == '"':
            current, i = current + '"', i + 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
        i += 1
    if quoted:
        return None
    return [*parts, current.strip()]


def sqlglot_dialect(sqlalchemy_name: str) -> str:
    """The sqlglot dialect of a SQLAlchemy dialect name; '' (generic SQL) if sqlglot lacks it."""
    name = _DIALECTS.get(sqlalchemy_name, sqlalchemy_name)
    try:
        sqlglot.Dialect.get_or_raise(name)
    except ValueError:
        return ""
    return name


def is_numeric_type(type_name: str) -> bool:
    return bool(_NUMERIC_TYPE.match(type_name))


@dataclass(frozen=True)
class Relation:
    """A table as `[catalog.]schema.table`; parts are names, not SQL."""

    name: str
    schema: str | None = None
    catalog: str | None = None

    @classmethod
    def parse(cls, reference: str) -> Relation:
        """`table`, `schema.table` or `db.schema.table`; a part holding dots or spaces may be
        double-quoted (`raw."odd.name"`, with `""` for a quote inside)."""
        parts = _split_dotted(reference)
        if parts is None or not 1 <= len(parts) <= 3 or not all(parts):
            raise ValueError(f"not a table name ([database.]schema.table): {reference!r}")
        *prefix, name = parts
        schema = prefix[-1] if prefix else None
        return cls(name=name, schema=schema, catalog=prefix[0] if len(prefix) == 2 else None)

    @property
    def label(self) -> str:
        """How people and the cursor name it: `schema.table`, unquoted."""
        return ".".join(p for p in (self.schema, self.name) if p)

    def table(self) -> exp.Table:
        return exp.table_(self.name, db=self.schema, catalog=self.catalog, quoted=True)


@dataclass(frozen=True)
class Plan:
    """What to compute for one table; every column name as the warehouse stores it."""

    relation: Relation
    timestamp_column: str | None = None
    partition_column: str | None = None
    keys: tuple[str, ...] = ()
    null_columns: tuple[str, ...] = ()
    numeric_columns: tuple[str, ...] = ()

    def period(self) -> exp.Expression | None:
        """The expression naming a row's period: the partition, else the timestamp's day."""
        if self.partition_column:
            return _col(self.partition_column)
        if self.timestamp_column:
            return exp.cast(_col(self.timestamp_column), "date")
        return None


@dataclass
class Fingerprint:
    """Cheap facts that change whenever the table's data does."""

    rows: int
    max_timestamp: datetime | None
    period: Any  # the latest period's value as the warehouse returned it (date, str, int)
    sql: str

    def token(self) -> dict[str, str | None]:
        return {"rows": str(self.rows),
                "max_timestamp": self.max_timestamp.isoformat() if self.max_timestamp else None,
                "period": None if self.period is None else str(self.period)}


@dataclass
class ScopeStats:
    """Rows, null rates, distributions and duplicate keys over one period (or the whole table).

    `duplicates` counts, per key, repeats within the period: a key twice in one day's data.
    It is left empty when the scope is the whole table, where `duplicates()` says the same.
    """

    rows: int
    null_rates: dict[str, float] = field(default_factory=dict)
    numeric: dict[str, dict[str, float]] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    period: Any = None  # the period's value as the warehouse returned it; None: latest or table
    max_timestamp: datetime | None = None  # newest timestamp in the period (`periods_sql` only)
    sql: str = ""


# ------------------------------------------------------------------ columns


def read_columns(conn: Connection, relations: list[Relation]) -> dict[Relation, dict[str, str]]:
    """Each table's columns (name to type, in table order); tables not found are left out.

    DuckDB answers in one information_schema query (duckdb-engine's inspector queries Postgres
    catalogs DuckDB does not have); other dialects through SQLAlchemy's inspector, per table.
    """
    if conn.dialect.name == "duckdb":
        return _duckdb_columns(conn, relations)
    inspector = inspect(conn)
    found: dict[Relation, dict[str, str]] = {}
    for relation in relations:
        try:
            columns = inspector.get_columns(relation.name, schema=relation.schema)
        except NoSuchTableError:
            continue
        if columns:
            found[relation] = {c["name"]: str(c["type"]) for c in columns}
    return found


def _duckdb_columns(conn: Connection, relations: list[Relation]
                    ) -> dict[Relation, dict[str, str]]:
    schemas = sorted({(r.schema or "main").lower() for r in relations})
    if not schemas:
        return {}
    query = text("select table_catalog, table_schema, table_name, column_name, data_type"
                 " from information_schema.columns where lower(table_schema) in :schemas"
                 " order by table_catalog, table_schema, table_name, ordinal_position"
                 ).bindparams(bindparam("schemas", expanding=True))
    tables: dict[tuple[str, str, str], dict[str, str]] = {}
    for catalog, schema, table, column, type_ in conn.execute(query, {"schemas": schemas}):
        tables.setdefault((catalog.lower(), schema.lower(), table.lower()), {})[column] = type_
    found = {}
    for relation in relations:
        want = ((relation.schema or "main").lower(), relation.name.lower())
        for (catalog, schema, table), columns in tables.items():
            same_catalog = not relation.catalog or relation.catalog.lower() == catalog
            if (schema, table) == want and same_catalog:
                found[relation] = columns
                break
    return found


# ------------------------------------------------------------------ queries


def fingerprint_sql(plan: Plan, dialect: str) -> str:
    period = plan.period()
    select = [exp.Count(this=exp.Star()).as_("row_count"),
              _max(_col(plan.timestamp_column)) if plan.timestamp_column else exp.null(),
              _max(period) if period is not None else exp.null()]
    return exp.select(*select).from_(plan.relation.table()).sql(dialect=dialect)


def keys_sql(plan: Plan, dialect: str) -> str | None:
    """Duplicate count per key over the whole table: non-null values minus distinct ones."""
    if not plan.keys:
        return None
    select = [_duplicate_count(k).as_(f"dup_{i}") for i, k in enumerate(plan.keys)]
    return exp.select(*select).from_(plan.relation.table()).sql(dialect=dialect)


def scope_sql(plan: Plan, dialect: str) -> str:
    """Row count, non-null counts, numeric aggregates and in-period duplicate keys over the
    latest period."""
    query = exp.select(*_scope_select(plan, dialect)).from_(plan.relation.table())
    return _in_latest_period(query, plan).sql(dialect=dialect)


def periods_sql(plan: Plan, limit: int, dialect: str) -> str:
    """`scope_sql`'s aggregates per period, for the latest `limit` periods (newest first), with
    each period's newest timestamp; rows without a period are left out, as `scope_sql` does."""
    period = plan.period()
    if period is None:
        raise ValueError(f"{plan.relation.label} has no partition or timestamp column")
    select = [period.copy().as_("scope_period")]
    if plan.timestamp_column:
        select.append(_max(_col(plan.timestamp_column)).as_("scope_max_ts"))
    return (exp.select(*select, *_scope_select(plan, dialect)).from_(plan.relation.table())
            .where(exp.Not(this=exp.Is(this=period.copy(), expression=exp.null())))
            .group_by(period.copy()).order_by(exp.Ordered(this=period.copy(), desc=True))
            .limit(limit).sql(dialect=dialect))


def _scope_select(plan: Plan, dialect: str) -> list[exp.Expression]:
    select: list[exp.Expression] = [exp.Count(this=exp.Star()).as_("row_count")]
    select += [exp.Count(this=_col(c)).as_(f"nn_{i}") for i, c in enumerate(plan.null_columns)]
    for i, column in enumerate(plan.numeric_columns):
        value = exp.cast(_col(column), "double")
        select += [exp.Avg(this=value).as_(f"avg_{i}"),
                   exp.Avg(this=exp.Mul(this=value, expression=value.copy())).as_(f"sq_{i}"),
                   exp.Min(this=value.copy()).as_(f"min_{i}"),
                   exp.Max(this=value.copy()).as_(f"max_{i}")]
        select += [_quantile(value, q, dialect).as_(f"{name}_{i}") for name, q in QUANTILES
                   if _has_quantiles(dialect)]
    if plan.period() is not None:  # over the whole table, `keys_sql` already counts them
        select += [_duplicate_count(k).as_(f"pdup_{i}") for i, k in enumerate(plan.keys)]
    return select


def _in_latest_period(query: exp.Select, plan: Plan) -> exp.Select:
    period = plan.period()
    if period is None:
        return query
    latest = exp.select(_max(period.copy())).from_(plan.relation.table())
    return query.where(exp.EQ(this=period, expression=exp.Subquery(this=latest)))


def duplicates_sql(plan: Plan, key: str, limit: int, dialect: str, *,
                   latest_period: bool = False) -> str:
    """The most repeated values of a key, with their counts: the sample a signal quotes; over
    the whole table, or the latest period when that is where the key repeats."""
    count = exp.Count(this=exp.Star())
    query = (exp.select(_col(key), count.as_("copies")).from_(plan.relation.table())
             .where(exp.Not(this=exp.Is(this=_col(key), expression=exp.null()))))
    if latest_period:
        query = _in_latest_period(query, plan)
    return (query.group_by(_col(key))
            .having(exp.GT(this=count.copy(), expression=exp.Literal.number(1)))
            .order_by(exp.Ordered(this=exp.column("copies"), desc=True)).limit(limit)
            .sql(dialect=dialect))


def _duplicate_count(key: str) -> exp.Expression:
    """Non-null values minus distinct ones: how many rows repeat a key already seen."""
    return exp.Sub(this=exp.Count(this=_col(key)),
                   expression=exp.Count(this=exp.Distinct(expressions=[_col(key)])))


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _max(value: exp.Expression) -> exp.Max:
    return exp.Max(this=value)


def _has_quantiles(dialect: str) -> bool:
    return dialect in APPROX_QUANTILE_DIALECTS or dialect == "postgres"


def _quantile(value: exp.Expression, q: float, dialect: str) -> exp.Expression:
    if dialect == "postgres":  # no approximate one: the exact ordered-set aggregate
        return exp.WithinGroup(this=exp.PercentileCont(this=exp.Literal.number(q)),
                               expression=exp.Order(expressions=[exp.Ordered(this=value.copy())]))
    return exp.ApproxQuantile(this=value.copy(), quantile=exp.Literal.number(q))


# ------------------------------------------------------------------ running them


def fingerprint(conn: Connection, plan: Plan, dialect: str) -> Fingerprint:
    sql = fingerprint_sql(plan, dialect)
    rows, max_ts, period = conn.exec_driver_sql(sql).one()
    return Fingerprint(rows=int(rows or 0), max_timestamp=as_datetime(max_ts), period=period,
                       sql=sql)


def duplicates(conn: Connection, plan: Plan, dialect: str) -> tuple[dict[str, int], str | None]:
    sql = keys_sql(plan, dialect)
    if sql is None:
        return {}, None
    row = conn.exec_driver_sql(sql).one()
    return {k: int(v or 0) for k, v in zip(plan.keys, row, strict=True)}, sql


def duplicate_sample(conn: Connection, plan: Plan, key: str, limit: int, dialect: str, *,
                     latest_period: bool = False) -> tuple[list[dict[str, Any]], str]:
    sql = duplicates_sql(plan, key, limit, dialect, latest_period=latest_period)
    rows = conn.exec_driver_sql(sql).fetchmany(limit)
    return [{"value": _plain(v), "copies": int(n)} for v, n in rows], sql


def scope_stats(conn: Connection, plan: Plan, dialect: str) -> ScopeStats:
    sql = scope_sql(plan, dialect)
    return _scope(conn.exec_driver_sql(sql).one()._mapping, plan, sql)


def period_stats(conn: Connection, plan: Plan, limit: int, dialect: str) -> list[ScopeStats]:
    """The latest `limit` periods' statistics, oldest first (see `periods_sql`)."""
    sql = periods_sql(plan, limit, dialect)
    found = []
    for row in conn.exec_driver_sql(sql).fetchall():
        stats = _scope(row._mapping, plan, sql)
        stats.period = row._mapping["scope_period"]
        if "scope_max_ts" in row._mapping:
            stats.max_timestamp = as_datetime(row._mapping["scope_max_ts"])
        found.append(stats)
    return found[::-1]


def _scope(row: Any, plan: Plan, sql: str) -> ScopeStats:
    total = int(row["row_count"] or 0)
    stats = ScopeStats(rows=total, sql=sql)
    if total == 0:
        return stats
    for i, key in enumerate(plan.keys):
        if f"pdup_{i}" in row:
            stats.duplicates[key] = int(row[f"pdup_{i}"] or 0)
    for i, column in enumerate(plan.null_columns):
        stats.null_rates[column] = 1 - int(row[f"nn_{i}"] or 0) / total
    for i, column in enumerate(plan.numeric_columns):
        mean, square = _float(row[f"avg_{i}"]), _float(row[f"sq_{i}"])
        if mean is None or square is None:
            continue  # every value null: the null rate tells
        values = {"mean": mean, "stddev": math.sqrt(max(square - mean * mean, 0.0)),
                  "min": _float(row[f"min_{i}"]), "max": _float(row[f"max_{i}"])}
        for name, _ in QUANTILES:
            if f"{name}_{i}" in row:
                values[name] = _float(row[f"{name}_{i}"])
        stats.numeric[column] = {k: v for k, v in values.items() if v is not None}
    return stats


def as_datetime(value: Any) -> datetime | None:
    """A warehouse timestamp or date as an aware UTC datetime (naive values are UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _plain(value: Any) -> Any:
    """A sampled value as JSON can hold it."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    return str(value)

"""Data tools: SQL against the warehouse, and the checks a data engineer runs first.

Every query, the model's own (`run_sql`) or one built here, goes through `guard_sql` and runs
with a row limit and a timeout. Built queries are made with sqlglot from quoted identifiers,
after the table and columns were checked against the warehouse's catalog, so a name can never
be SQL. Each result cites `sql:<id>`, the id a hash of the SQL that ran.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import sqlglot
from pydantic import Field
from sqlglot import exp

from agents.tools.base import Tool, ToolOutput
from agents.tools.common import cite, fail, make_tool, number, pct, plain, query_id
from agents.tools.sql_guard import QueryResult, SqlFailed, SqlRefused, guard_sql
from agents.world import Column, Warehouse

# Column names that hold a table's partition (load day), tried in order.
PARTITION_NAMES = ("_partition_date", "partition_date", "ds", "dt", "date", "day")
NUMERIC = ("INT", "DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL", "HUGEINT", "BIGINT")
MAX_COLUMNS = 30
# GROUP/ORDER BY the first output column by position: by name, an output alias (a null-rate
# column named after the partition column) would win over the table's column.
_FIRST = exp.Literal.number(1)

Table = Annotated[str, Field(description="`schema.table`, e.g. staging.stg_shop__orders.")]


class _Refusal(Exception):
    """A tool argument the warehouse cannot answer (unknown table or column)."""


def data_tools(warehouse: Warehouse, *, row_limit: int = 200, timeout_s: float = 20,
               known_secrets: Iterable[str] = ()) -> list[Tool]:
    """The data subagent's tools over `warehouse`."""
    q = _Queries(warehouse, row_limit, timeout_s)

    def run_sql(sql: Annotated[str, Field(description="One SELECT (or WITH … SELECT).")]
                ) -> ToolOutput:
        """Run one read-only SQL query on the warehouse and return its rows.

        Only SELECT / WITH … SELECT; no DDL, DML, ATTACH, COPY, PRAGMA or file/URL functions.
        A row limit is applied and said; aggregate in SQL rather than fetching rows. Use
        `schema.table` names (schema_of lists a table's columns)."""
        try:
            result, ran = q.run(sql)
        except SqlRefused as exc:
            return fail("SQL refused", exc.reason)
        except SqlFailed as exc:
            return fail("SQL failed", str(exc))
        tables = ", ".join(q.last_tables) or "no table"
        more = " (truncated at the row limit)" if result.truncated else ""
        return q.output(f"SQL on {tables}: {result.row_count} rows{more}", ran, result)

    def null_rates(table: Table, columns: Annotated[list[str] | None, Field(
                       description="Columns to check; default every column (up to 30).")] = None,
                   by: Annotated[str | None, Field(
                       description="Partition or date column to split by; default the "
                                   "table's partition column if it has one.")] = None,
                   last_n: Annotated[int, Field(ge=1, le=60)] = 7) -> ToolOutput:
        """Share of NULL values per column, per partition (newest `last_n`) when the table
        has a partition or date column, so a jump on the latest load stands out."""
        try:
            cols = q.columns(table, columns)
            split = q.partition(table, by)
        except _Refusal as exc:
            return fail(f"null_rates on {table}", str(exc))
        names = [c.name for c in cols][:MAX_COLUMNS]
        select: list[exp.Expression] = [exp.alias_(exp.Count(this=exp.Star()), "row_count")]
        select += [exp.alias_(_null_rate(n), n, quoted=True) for n in names]
        query = exp.select(*select).from_(q.table(table))
        if split:
            query = (exp.select(exp.alias_(_col(split), "partition"), *select)
                     .from_(q.table(table)).group_by(_FIRST)
                     .order_by(exp.Ordered(this=_FIRST, desc=True)).limit(last_n))
        try:
            result, ran = q.run_built(query)
        except (SqlRefused, SqlFailed) as exc:
            return fail(f"null_rates on {table}", str(exc))
        return q.output(_null_summary(table, split, names, result), ran, result)

    def key_uniqueness(table: Table, key: Annotated[list[str], Field(
                           min_length=1, description="The key's columns.")]) -> ToolOutput:
        """Is `key` unique in the table? Counts rows, distinct keys, duplicated keys and null
        keys, with the most repeated key values as a sample."""
        try:
            cols = [c.name for c in q.columns(table, key)]
        except _Refusal as exc:
            return fail(f"key_uniqueness on {table}", str(exc))
        keys = [_col(c) for c in cols]
        grouped = (exp.select(*keys, exp.alias_(exp.Count(this=exp.Star()), "n"))
                   .from_(q.table(table)).group_by(*keys))
        any_null = exp.or_(*[exp.Is(this=_col(c), expression=exp.Null()) for c in cols])
        summary_q = exp.select(
            exp.alias_(exp.Sum(this=exp.column("n")), "row_count"),
            exp.alias_(exp.Count(this=exp.Star()), "distinct_keys"),
            exp.alias_(_count_if(exp.GT(this=exp.column("n"), expression=exp.Literal.number(1))),
                       "duplicated_keys"),
            exp.alias_(exp.Max(this=exp.column("n")), "max_repeats"),
            exp.alias_(exp.Sum(this=exp.Case(ifs=[exp.If(this=any_null, true=exp.column("n"))],
                                              default=exp.Literal.number(0))), "null_key_rows"),
        ).from_(grouped.subquery("g"))
        sample_q = (grouped.having(exp.GT(this=exp.Count(this=exp.Star()),
                                          expression=exp.Literal.number(1)))
                    .order_by(exp.Ordered(this=exp.column("n"), desc=True)).limit(5))
        try:
            result, ran = q.run_built(summary_q)
            sample, ran_sample = q.run_built(sample_q)
        except (SqlRefused, SqlFailed) as exc:
            return fail(f"key_uniqueness on {table}", str(exc))
        row = dict(zip(result.columns, result.rows[0], strict=True)) if result.rows else {}
        dup = int(row.get("duplicated_keys") or 0)
        verdict = "unique" if dup == 0 else f"{number(dup)} duplicated keys (max " \
                                            f"{number(row.get('max_repeats'))} rows per key)"
        out = q.output(f"uniqueness of {table}({', '.join(cols)}): {verdict}, "
                       f"{number(row.get('row_count') or 0)} rows", ran, result)
        out.data["duplicates_sample"] = [plain(r) for r in sample.rows]
        out.citations.append(cite("sql", f"sql:{query_id(ran_sample)}", ran_sample))
        out.data["sample_query"] = {"query_id": query_id(ran_sample), "sql": ran_sample}
        return out

    def row_counts(table: Table, by_column: Annotated[str | None, Field(
                       description="Partition or date column; default the table's partition "
                                   "column.")] = None,
                   last_n: Annotated[int, Field(ge=1, le=90)] = 14) -> ToolOutput:
        """Rows per partition (or date) for the newest `last_n` values: the table's volume
        history, with the latest compared to the median of the others."""
        try:
            split = q.partition(table, by_column)
        except _Refusal as exc:
            return fail(f"row_counts on {table}", str(exc))
        if split is None:
            query = exp.select(exp.alias_(exp.Count(this=exp.Star()), "row_count")
                               ).from_(q.table(table))
        else:
            query = (exp.select(exp.alias_(_col(split), "partition"),
                                exp.alias_(exp.Count(this=exp.Star()), "row_count"))
                     .from_(q.table(table)).group_by(_FIRST)
                     .order_by(exp.Ordered(this=_FIRST, desc=True)).limit(last_n))
        try:
            result, ran = q.run_built(query)
        except (SqlRefused, SqlFailed) as exc:
            return fail(f"row_counts on {table}", str(exc))
        return q.output(_count_summary(table, split, result), ran, result)

    def column_profile(table: Table, column: str) -> ToolOutput:
        """Profile one column: rows, nulls, distinct values, and for numbers min, max, mean,
        p50 and p95; for text the most common values."""
        try:
            (col,) = q.columns(table, [column])
        except _Refusal as exc:
            return fail(f"column_profile of {table}.{column}", str(exc))
        stats_q = exp.select(*_profile(col, q.dialect)).from_(q.table(table))
        top_q = None if _numeric(col) else (
            exp.select(exp.alias_(_col(col.name), "value"),
                       exp.alias_(exp.Count(this=exp.Star()), "row_count"))
            .from_(q.table(table)).group_by(_col(col.name))
            .order_by(exp.Ordered(this=exp.column("row_count"), desc=True)).limit(10))
        try:
            result, ran = q.run_built(stats_q)
            top = q.run_built(top_q) if top_q is not None else None
        except (SqlRefused, SqlFailed) as exc:
            return fail(f"column_profile of {table}.{column}", str(exc))
        row = dict(zip(result.columns, (plain(v) for v in result.rows[0]), strict=True))
        shown = ", ".join(f"{k} {number(v) if isinstance(v, int | float) else v}"
                          for k, v in row.items() if k != "row_count")
        out = q.output(f"profile of {table}.{col.name} ({col.type}): {shown}", ran, result)
        if top is not None:
            out.data["top_values"] = [plain(r) for r in top[0].rows]
            out.citations.append(cite("sql", f"sql:{query_id(top[1])}", top[1]))
        return out

    def schema_of(table: Table) -> ToolOutput:
        """The table's columns and types, in order."""
        cols = warehouse.columns(table)
        if not cols:
            return _unknown_table(table, warehouse)
        return ToolOutput(status="ok", summary=f"schema of {table}: {len(cols)} columns",
                          data={"table": table, "columns": [c.model_dump() for c in cols]})

    def schema_diff(table: Table) -> ToolOutput:
        """Columns added, removed or retyped in the table compared with what was recorded
        earlier (a table monitor's snapshot from an earlier run, dbt's documented columns)."""
        cols = warehouse.columns(table)
        if not cols:
            return _unknown_table(table, warehouse)
        records = warehouse.recorded_schemas(table)
        if not records:
            return ToolOutput(status="no_data", summary=f"schema diff of {table}: no earlier "
                              "schema recorded", data={"columns": [c.model_dump() for c in cols]})
        now = {c.name.lower(): c.type for c in cols}
        diffs = []
        for record in records:
            then = {k.lower(): v for k, v in record.columns.items()}
            diffs.append({
                "against": record.source, "as_of": plain(record.as_of),
                "added": sorted(set(now) - set(then)),
                "removed": sorted(set(then) - set(now)),
                "retyped": sorted(f"{c}: {then[c]} -> {now[c]}" for c in set(now) & set(then)
                                  if then[c] and then[c].upper() != now[c].upper()),
            })
        changed = [d for d in diffs if d["added"] or d["removed"] or d["retyped"]]
        first = changed[0] if changed else None
        against = ", ".join(r.source for r in records)
        summary = (f"schema diff of {table}: no change against {against}"
                   if first is None else
                   f"schema diff of {table} vs {first['against']}: "
                   + "; ".join(f"{k} {', '.join(first[k])}" for k in ("added", "removed",
                                                                       "retyped") if first[k]))
        return ToolOutput(status="ok", summary=summary, data={"table": table, "diffs": diffs})

    def compare_values(table: Table, column: str,
                       by: Annotated[str | None, Field(
                           description="Partition or date column; default the table's.")] = None,
                       a: Annotated[str | None, Field(
                           description="The last good partition; default the one before b.")
                       ] = None,
                       b: Annotated[str | None, Field(
                           description="The bad partition; default the newest.")] = None,
                       ) -> ToolOutput:
        """Compare a column's distribution between two partitions (last good `a`, bad `b`):
        rows, null rate, distinct values, and mean/min/max/p50/p95 for numbers, or the most
        common values' shares for text."""
        try:
            (col,) = q.columns(table, [column])
            split = q.partition(table, by)
            if split is None:
                raise _Refusal(f"{table} has no partition column; name one with `by`")
            a, b = q.pair(table, split, a, b)
        except (_Refusal, SqlRefused, SqlFailed) as exc:
            return fail(f"compare_values of {table}.{column}", str(exc))
        stats = _profile(col, q.dialect)
        query = (exp.select(exp.alias_(_col(split), "partition"), *stats).from_(q.table(table))
                 .where(exp.In(this=_col(split), expressions=[exp.Literal.string(a),
                                                              exp.Literal.string(b)]))
                 .group_by(_FIRST).order_by(_FIRST))
        try:
            result, ran = q.run_built(query)
        except (SqlRefused, SqlFailed) as exc:
            return fail(f"compare_values of {table}.{column}", str(exc))
        rows = {str(plain(r[0])): dict(zip(result.columns[1:], map(plain, r[1:]), strict=True))
                for r in result.rows}
        out = q.output(_compare_summary(table, col.name, a, b, rows), ran, result)
        out.data["by"] = split
        return out

    tools = [run_sql, null_rates, key_uniqueness, row_counts, column_profile, schema_of,
             schema_diff, compare_values]
    return [make_tool(fn, known_secrets) for fn in tools]


class _Queries:
    """Guarding, running and describing queries over one warehouse."""

    def __init__(self, warehouse: Warehouse, row_limit: int, timeout_s: float) -> None:
        self.warehouse = warehouse
        self.dialect = warehouse.dialect
        self.row_limit = row_limit
        self.timeout_s = timeout_s
        self.last_tables: list[str] = []

    def run(self, sql: str) -> tuple[QueryResult, str]:
        guarded = guard_sql(sql, dialect=self.dialect, row_limit=self.row_limit)
        self.last_tables = guarded.tables
        return self.warehouse.run(guarded, self.timeout_s), guarded.sql

    def run_built(self, query: exp.Expression) -> tuple[QueryResult, str]:
        return self.run(query.sql(dialect=self.dialect))

    def output(self, summary: str, sql: str, result: QueryResult) -> ToolOutput:
        qid = query_id(sql)
        return ToolOutput(
            status="ok" if result.rows else "no_data", summary=summary,
            data={"query_id": qid, "sql": sql, "columns": result.columns,
                  "rows": [plain(r) for r in result.rows], "row_count": result.row_count,
                  "truncated": result.truncated},
            citations=[cite("sql", f"sql:{qid}", sql)])

    def table(self, table: str) -> exp.Table:
        parts = _parts(table)
        return exp.table_(parts[-1], db=parts[-2] if len(parts) > 1 else None,
                          catalog=parts[-3] if len(parts) > 2 else None, quoted=True)

    def columns(self, table: str, wanted: Sequence[str] | None) -> list[Column]:
        cols = self.warehouse.columns(table)
        if not cols:
            raise _Refusal(_unknown_table(table, self.warehouse).error or "")
        by_name = {c.name.lower(): c for c in cols}
        if not wanted:
            return cols
        missing = [w for w in wanted if w.lower() not in by_name]
        if missing:
            raise _Refusal(f"{table} has no column {', '.join(missing)}; its columns: "
                           f"{', '.join(c.name for c in cols[:MAX_COLUMNS])}")
        return [by_name[w.lower()] for w in wanted]

    def partition(self, table: str, by: str | None) -> str | None:
        if by:
            return self.columns(table, [by])[0].name
        names = {c.name.lower(): c.name for c in self.warehouse.columns(table)}
        return next((names[n] for n in PARTITION_NAMES if n in names), None)

    def pair(self, table: str, split: str, a: str | None, b: str | None) -> tuple[str, str]:
        """The partitions to compare: given ones, else the newest two."""
        if a and b:
            return a, b
        query = (exp.select(exp.alias_(_col(split), "p")).distinct().from_(self.table(table))
                 .order_by(exp.Ordered(this=_FIRST, desc=True)).limit(60))
        found = [str(plain(r[0])) for r in self.run_built(query)[0].rows if r[0] is not None]
        b = b or (found[0] if found else None)
        older = [p for p in found if b is not None and p < b]
        a = a or (older[0] if older else None)
        if not a or not b:
            raise _Refusal(f"{table} has fewer than two partitions of {split}; give a and b")
        return a, b


def _parts(table: str) -> list[str]:
    try:
        parsed = exp.to_table(table)
    except (sqlglot.errors.ParseError, ValueError) as exc:
        raise _Refusal(f"not a table name: {table!r}; use schema.table") from exc
    return [p.name for p in parsed.parts]


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _numeric(col: Column) -> bool:
    return any(t in col.type.upper() for t in NUMERIC)


def _count_if(condition: exp.Expression) -> exp.Expression:
    return exp.Sum(this=exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))],
                                 default=exp.Literal.number(0)))


def _null_rate(name: str) -> exp.Expression:
    nulls = _count_if(exp.Is(this=_col(name), expression=exp.Null()))
    total = exp.Cast(this=exp.Count(this=exp.Star()), to=exp.DataType.build("double"))
    return exp.Round(this=exp.Div(this=nulls, expression=exp.Nullif(
        this=total, expression=exp.Literal.number(0))), decimals=exp.Literal.number(6))


def _percentile(name: str, p: float, dialect: str) -> exp.Expression | None:
    if dialect in ("sqlite", "mysql"):
        return None
    return sqlglot.parse_one(f"PERCENTILE_CONT({p}) WITHIN GROUP (ORDER BY x)", read="postgres"
                             ).transform(lambda n: _col(name) if isinstance(n, exp.Column)
                                         else n)


def _profile(col: Column, dialect: str) -> list[exp.Expression]:
    c = _col(col.name)
    stats = [exp.alias_(exp.Count(this=exp.Star()), "row_count"),
             exp.alias_(_null_rate(col.name), "null_rate"),
             exp.alias_(exp.Count(this=exp.Distinct(expressions=[c])), "distinct_values")]
    if not _numeric(col):
        return stats
    as_double = exp.Cast(this=c, to=exp.DataType.build("double"))
    stats += [exp.alias_(exp.Min(this=c), "min"), exp.alias_(exp.Max(this=c), "max"),
              exp.alias_(exp.Avg(this=as_double), "mean")]
    for p, label in ((0.5, "p50"), (0.95, "p95")):
        found = _percentile(col.name, p, dialect)
        if found is not None:
            stats.append(exp.alias_(found, label))
    return stats


def _unknown_table(table: str, warehouse: Warehouse) -> ToolOutput:
    names = warehouse.tables()
    stem = table.split(".")[-1].lower()
    near = [n for n in names if stem in n.lower()][:10] or names[:20]
    return fail(f"no table {table}", f"no table or view {table!r}; try one of: "
                                     f"{', '.join(near)}")


def _null_summary(table: str, split: str | None, names: list[str], result: QueryResult) -> str:
    """The columns whose null rate rose most on the latest partition (else the highest)."""
    if not result.rows:
        return f"null rates on {table}: no rows"
    rows = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
    latest = rows[0]
    where = f" in {split}={plain(latest['partition'])}" if split else ""
    found = []
    for name in names:
        rate = latest.get(name) or 0.0
        before = statistics.median(r.get(name) or 0.0 for r in rows[1:]) if rows[1:] else None
        if rate:
            found.append((rate - (before or 0.0), rate, name, before))
    if not found:
        return f"null rates on {table}{where}: no nulls in {len(names)} columns"
    parts = [f"{name} {pct(rate)}" + (f" (was {pct(before)})" if before is not None else "")
             for _, rate, name, before in sorted(found, reverse=True)[:3]]
    return f"null rates on {table}{where}: " + ", ".join(parts) + \
        f" ({number(latest['row_count'])} rows)"


def _count_summary(table: str, split: str | None, result: QueryResult) -> str:
    if not result.rows:
        return f"row counts of {table}: no rows"
    if split is None:
        return f"row count of {table}: {number(result.rows[0][0])}"
    latest, *rest = result.rows
    text = f"row counts of {table} by {split}: {number(latest[1])} on {plain(latest[0])}"
    if rest:
        median = statistics.median(r[1] for r in rest)
        change = (latest[1] - median) / median if median else None
        text += f" vs median {number(median)} of {len(rest)} earlier"
        if change is not None:
            text += f" ({change:+.1%})"
    return text


def _compare_summary(table: str, column: str, a: str, b: str,
                     rows: dict[str, dict[str, Any]]) -> str:
    if a not in rows or b not in rows:
        return f"{table}.{column}: partition {a if a not in rows else b} has no rows"
    moved = []
    for key in ("row_count", "null_rate", "distinct_values", "mean", "p50", "p95", "max"):
        x, y = rows[a].get(key), rows[b].get(key)
        if isinstance(x, int | float) and isinstance(y, int | float) and x != y:
            change = f"{(y - x) / abs(x):+.0%}" if x else "from 0"
            shown = pct if key == "null_rate" else number
            moved.append((abs((y - x) / x) if x else float("inf"),
                          f"{key} {shown(x)} -> {shown(y)} ({change})"))
    top = [text for _, text in sorted(moved, reverse=True)[:3]]
    return f"{table}.{column} {a} vs {b}: " + ("; ".join(top) if top else "no change")


__all__ = ["data_tools"]

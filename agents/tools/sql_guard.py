"""The gate every model-written SQL query passes before it reaches a warehouse.

`guard_sql` parses with sqlglot and accepts exactly one read-only query: a SELECT, a
WITH … SELECT, or set operations of them. It refuses statements that write or change the
session, functions and table references that reach files, URLs or the host, and caps the row
count. What runs is sqlglot's regeneration of the tree it checked (comments dropped), never the
model's text: if sqlglot and the warehouse tokenize a trick differently, the warehouse still
executes only what was checked.

`run_guarded` runs a guarded query on a read-only DuckDB connection with a timeout. The
connection `connect_readonly` opens is a second wall: file system access, extension loading
and Python replacement scans are off and locked, so a function this list misses still fails.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp
from sqlglot.errors import ParseError

MAX_SQL_CHARS = 20_000

# DuckDB functions that read files or URLs, reach other databases, run SQL given as a
# string (which would skip this guard), or disclose the host or session. Matched on the
# lower-cased name; `_FORBIDDEN_FAMILIES` catches the variants of each family.
FORBIDDEN_FUNCTIONS = frozenset({
    # files and URLs
    "read_csv", "read_csv_auto", "read_json", "read_json_auto", "read_json_objects",
    "read_json_objects_auto", "read_ndjson", "read_ndjson_auto", "read_ndjson_objects",
    "read_parquet", "read_text", "read_blob", "read_xlsx", "read_duckdb", "glob",
    "parquet_scan", "parquet_metadata", "parquet_schema", "parquet_file_metadata",
    "parquet_kv_metadata", "parquet_bloom_probe", "csv_scan", "sniff_csv", "json_scan",
    "iceberg_scan", "iceberg_metadata", "iceberg_snapshots", "delta_scan", "arrow_scan",
    "st_read", "st_read_meta", "st_readosm", "st_readshp", "http_get", "http_post",
    # other databases
    "sqlite_scan", "sqlite_attach", "sqlite_query", "postgres_scan", "postgres_scan_pushdown",
    "postgres_attach", "postgres_query", "postgres_execute", "mysql_scan", "mysql_query",
    "mysql_execute",
    # SQL from a string or a plan: would run unchecked
    "query", "query_table", "json_execute_serialized_sql", "from_substrait",
    "from_substrait_json",
    # host, session, secrets and extensions
    "getenv", "current_setting", "duckdb_settings", "duckdb_secrets", "which_secret",
    "duckdb_extensions", "duckdb_databases", "duckdb_temporary_files", "duckdb_memory",
    "load_aws_credentials", "checkpoint", "force_checkpoint",
})
_FORBIDDEN_FAMILIES = ("read_", "sqlite_", "postgres_", "mysql_", "iceberg_", "delta_",
                       "parquet_", "http_", "from_substrait")
_ALLOWED_PRAGMA_FUNCTIONS = frozenset({"pragma_table_info", "pragma_storage_info"})

# Statements that are not a read, at the root or nested (a CTE holding a DELETE).
_WRITE_OR_SESSION = tuple(
    cls for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable",
        "Copy", "Export", "Command", "Set", "Use", "Attach", "Detach", "Pragma", "Install",
        "Transaction", "Commit", "Rollback", "Describe", "Summarize", "Show", "Into",
        "Grant", "Revoke", "Cache", "Uncache", "Refresh", "Analyze", "Comment", "LoadData",
        "Kill",
    ) if (cls := getattr(exp, name, None)) is not None
)
# A table name holding one of these is a path or URL to DuckDB (`FROM 'x.csv'`, `FROM "s3://…"`).
_PATH_CHARS = frozenset("/\\:.*?~")


class SqlRefused(Exception):
    """The query is not allowed; `reason` is one line the model can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SqlFailed(Exception):
    """The warehouse rejected or interrupted a guarded query; the text says why, in one line."""


class SqlTimeout(SqlFailed):
    """The query ran past its time limit and was interrupted."""


class GuardedQuery(BaseModel):
    """A query that passed `guard_sql`, rewritten to respect the row limit."""

    model_config = ConfigDict(frozen=True)

    sql: str = Field(description="The normalized SQL, with LIMIT min(existing, row_limit).")
    limit: int = Field(description="At most this many rows come back.")
    capped: bool = Field(description="True when the guard's row limit set the LIMIT.")
    probe_sql: str = Field(description="What runs: `sql` asking one row more when capped, "
                                       "so that truncation is known, not guessed.")
    tables: list[str] = Field(default_factory=list, description="Tables read (CTEs excluded).")


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]] = Field(description="At most `limit` rows, in query order.")
    row_count: int = Field(description="len(rows).")
    truncated: bool = Field(description="More rows existed beyond the guard's row limit.")


def guard_sql(sql: str, dialect: str = "duckdb", row_limit: int = 1000) -> GuardedQuery:
    """Check `sql` and return it rewritten; raises SqlRefused with a one-line reason."""
    if len(sql) > MAX_SQL_CHARS:
        raise SqlRefused(f"query is {len(sql)} characters, over {MAX_SQL_CHARS}; "
                         "write a shorter query")
    root = _parse_one(sql, dialect)
    _check_tree(root, dialect)
    return _limited(root, dialect, row_limit)


def _parse_one(sql: str, dialect: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        where = f" at line {error.get('line')}, column {error.get('col')}" if error else ""
        what = _TOKEN_REPR.sub(_token_text, error.get("description") or str(exc).splitlines()[0])
        raise SqlRefused(f"could not parse as {dialect} SQL{where}: {what}") from None
    except RecursionError:
        raise SqlRefused("query nests too deeply to check; flatten it with CTEs") from None
    if len(statements) != 1:
        raise SqlRefused(f"send exactly one statement, got {len(statements)}")
    return statements[0]


_TOKEN_REPR = re.compile(r"<Token token_type: TokenType\.\w+, text: (.*?), line: .*?>")


def _token_text(m: re.Match[str]) -> str:
    return "the end of the query" if m[1] == "SENTINEL" else repr(m[1])


def _check_tree(root: exp.Expression, dialect: str) -> None:
    inner = root.unnest() if isinstance(root, exp.Subquery) else root
    if not isinstance(inner, (exp.Select, exp.SetOperation)):
        hint = ("; for a table's columns query information_schema.columns"
                if isinstance(inner, (exp.Describe, exp.Summarize, exp.Show, exp.Pragma)) else
                "; queries are read-only")
        raise SqlRefused(f"only SELECT (or WITH … SELECT) is allowed, got {_kind(inner)}{hint}")
    for node in root.walk():
        if isinstance(node, _WRITE_OR_SESSION):
            raise SqlRefused(f"{_kind(node)} is not allowed: queries are read-only")
        if isinstance(node, exp.Func):
            name = next((n for n in _function_names(node, dialect) if _forbidden_function(n)), "")
            if name:
                raise SqlRefused(f"function {name}() reaches files, URLs, other databases or "
                                 "the host; query warehouse tables only")
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            parts = [unicodedata.normalize("NFKC", p.name) for p in node.parts]
            if any(_PATH_CHARS & set(p) for p in parts):
                raise SqlRefused(f"table reference {'.'.join(parts)!r} looks like a file path "
                                 "or URL; query warehouse tables by name (schema.table)")


def _kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Condition):  # a bare word such as CHECKPOINT parses as a column
        return node.sql()[:40].upper()
    return type(node).__name__.upper()


def _function_names(node: exp.Func, dialect: str) -> tuple[str, ...]:
    """The name sqlglot knows the function by and the name it will send to the warehouse
    (they differ where a dialect renames), lower-cased and NFKC-folded: `ＲＥＡＤ_ＣＳＶ` is
    no way around the list."""
    name = str(node.this) if isinstance(node, exp.Anonymous) else node.sql_name()
    sent = node.sql(dialect=dialect, comments=False).split("(", 1)[0]
    return tuple(unicodedata.normalize("NFKC", n).strip().casefold() for n in (name, sent))


def _forbidden_function(name: str) -> bool:
    if name.startswith("pragma_"):
        return name not in _ALLOWED_PRAGMA_FUNCTIONS
    return name in FORBIDDEN_FUNCTIONS or name.startswith(_FORBIDDEN_FAMILIES) or (
        name.endswith("_scan"))


def _limited(root: exp.Expression, dialect: str, row_limit: int) -> GuardedQuery:
    plain, existing = _own_limit(root)
    limit = row_limit if existing is None else min(existing, row_limit)
    capped = existing is None or existing > row_limit
    ctes = {cte.alias_or_name for cte in root.find_all(exp.CTE)}
    tables = sorted({".".join(p.name for p in t.parts) for t in root.find_all(exp.Table)
                     if t.name and t.name not in ctes})
    return GuardedQuery(
        sql=_with_limit(root, limit, wrap=not plain, dialect=dialect),
        limit=limit,
        capped=capped,
        probe_sql=_with_limit(root, limit + 1 if capped else limit, wrap=not plain,
                              dialect=dialect),
        tables=tables,
    )


def _own_limit(root: exp.Expression) -> tuple[bool, int | None]:
    """(whether the query's LIMIT can be rewritten in place, its value when a plain number)."""
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        return False, None
    limit = root.args.get("limit")
    if limit is None:
        return True, None
    value = limit.expression if isinstance(limit, exp.Limit) else None
    if isinstance(value, exp.Literal) and value.is_int and not limit.args.get("limit_options"):
        return True, int(value.this)
    return False, None  # an expression, a percentage, FETCH … WITH TIES: wrapped instead


def _with_limit(root: exp.Expression, limit: int, *, wrap: bool, dialect: str) -> str:
    query = exp.select("*").from_(root.subquery("guarded", copy=True)) if wrap else root.copy()
    query.set("limit", exp.Limit(expression=exp.Literal.number(limit)))
    return query.sql(dialect=dialect, comments=False)


# ---------------------------------------------------------------------------- running on DuckDB

READONLY_CONFIG: dict[str, Any] = {
    "enable_external_access": False,      # no files, URLs, ATTACH, INSTALL
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,  # `FROM df` must not read the caller's variables
    "lock_configuration": True,           # and SET cannot undo the above
}


def connect_readonly(path: str | Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `path` that can read its tables and nothing else."""
    return duckdb.connect(str(path), read_only=True, config=READONLY_CONFIG)


def run_guarded(connection: duckdb.DuckDBPyConnection, guarded: GuardedQuery,
                timeout_s: float) -> QueryResult:
    """Run `guarded` on a read-only `connection`, interrupting it after `timeout_s` seconds."""
    if not _is_readonly(connection):
        raise ValueError("run_guarded needs a read-only connection (see connect_readonly)")
    lock, finished = threading.Lock(), threading.Event()

    def interrupt() -> None:
        with lock:  # never interrupt a later query on this connection
            if not finished.is_set():
                connection.interrupt()

    timer = threading.Timer(timeout_s, interrupt)
    timer.start()
    try:
        cursor = connection.execute(guarded.probe_sql)
        columns = [d[0] for d in cursor.description or []]
        rows = [list(r) for r in cursor.fetchmany(guarded.limit + 1)]
    except duckdb.InterruptException:
        raise SqlTimeout(f"query interrupted after {timeout_s:g} s; filter earlier, aggregate, "
                         "or sample (USING SAMPLE)") from None
    except duckdb.Error as exc:
        raise SqlFailed(str(exc).splitlines()[0]) from None
    finally:
        with lock:
            finished.set()
        timer.cancel()
    truncated = len(rows) > guarded.limit
    rows = rows[: guarded.limit]
    return QueryResult(columns=columns, rows=rows, row_count=len(rows), truncated=truncated)


def _is_readonly(connection: duckdb.DuckDBPyConnection) -> bool:
    row = connection.execute(
        "SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return bool(row and row[0])

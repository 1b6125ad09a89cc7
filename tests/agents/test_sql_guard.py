from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from agents.tools.sql_guard import (
    FORBIDDEN_FUNCTIONS,
    MAX_SQL_CHARS,
    SqlFailed,
    SqlRefused,
    SqlTimeout,
    connect_readonly,
    guard_sql,
    run_guarded,
)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.fct_orders AS SELECT range AS order_id, "
                    "range % 7 AS customer_id, range * 1.5 AS amount FROM range(2500)")
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    return path


@pytest.fixture
def con(warehouse: Path):
    connection = connect_readonly(warehouse)
    yield connection
    connection.close()


def refused(sql: str) -> str:
    with pytest.raises(SqlRefused) as info:
        guard_sql(sql)
    assert "\n" not in info.value.reason
    return info.value.reason


# --- what is allowed, and how it is rewritten

@pytest.mark.parametrize(("sql", "expected"), [
    ("select * from marts.fct_orders", "SELECT * FROM marts.fct_orders LIMIT 1000"),
    ("FROM marts.fct_orders", "SELECT * FROM marts.fct_orders LIMIT 1000"),
    ("SELECT * FROM marts.fct_orders LIMIT 5000", "SELECT * FROM marts.fct_orders LIMIT 1000"),
    ("SELECT * FROM marts.fct_orders LIMIT 10 OFFSET 5",
     "SELECT * FROM marts.fct_orders LIMIT 10 OFFSET 5"),
    ("WITH a AS (SELECT 1 AS x) SELECT x FROM a",
     "WITH a AS (SELECT 1 AS x) SELECT x FROM a LIMIT 1000"),
    ("SELECT 1 UNION ALL SELECT 2 LIMIT 5", "SELECT 1 UNION ALL SELECT 2 LIMIT 5"),
    ("SELECT 'x; DROP TABLE t' AS s", "SELECT 'x; DROP TABLE t' AS s LIMIT 1000"),
    ("SELECT 1 -- ; DROP TABLE t", "SELECT 1 LIMIT 1000"),
    ("SELECT 1 -- */ DROP TABLE t", "SELECT 1 LIMIT 1000"),
    ("SELECT $$a'; DROP TABLE t; --$$ AS s", "SELECT 'a''; DROP TABLE t; --' AS s LIMIT 1000"),
    ("SELECT 1;", "SELECT 1 LIMIT 1000"),
])
def test_reads_pass_with_the_row_limit_enforced(sql: str, expected: str):
    assert guard_sql(sql).sql == expected


def test_a_limit_that_is_not_a_plain_number_is_wrapped():
    guarded = guard_sql("SELECT * FROM t LIMIT 10%", row_limit=50)
    assert guarded.sql == "SELECT * FROM (SELECT * FROM t LIMIT 10 PERCENT) AS guarded LIMIT 50"


def test_the_guard_records_the_tables_read_without_ctes():
    guarded = guard_sql("WITH a AS (SELECT * FROM marts.fct_orders) "
                        "SELECT * FROM a JOIN staging.stg_orders USING (order_id)")
    assert guarded.tables == ["marts.fct_orders", "staging.stg_orders"]


def test_catalog_functions_for_schema_discovery_stay_allowed():
    for sql in ("SELECT * FROM information_schema.columns", "SELECT * FROM duckdb_tables()",
                "SELECT * FROM pragma_table_info('marts.fct_orders')"):
        guard_sql(sql)


# --- what is refused

@pytest.mark.parametrize("sql", [
    "CREATE TABLE x AS SELECT 1", "INSERT INTO t VALUES (1)", "UPDATE t SET id = 1",
    "DELETE FROM t", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "DROP TABLE t", "ALTER TABLE t ADD COLUMN x INT", "TRUNCATE t",
    "ATTACH 'other.db' AS o", "DETACH o", "COPY t TO 'out.csv'", "PRAGMA database_list",
    "SET threads = 1", "INSTALL httpfs", "LOAD httpfs", "CALL pragma_version()", "USE memory",
    "BEGIN", "CHECKPOINT", "DESCRIBE t", "VALUES (1)",
])
def test_statements_that_are_not_reads_are_refused(sql: str):
    assert "only SELECT" in refused(sql)


@pytest.mark.parametrize("sql", ["EXPORT DATABASE 'dump'", "IMPORT DATABASE 'dump'"])
def test_statements_sqlglot_cannot_parse_are_refused(sql: str):
    assert "could not parse" in refused(sql)


def test_dml_inside_a_cte_is_refused():
    assert "DELETE is not allowed" in refused(
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d")


def test_select_into_is_refused():
    assert "INTO is not allowed" in refused("SELECT * INTO x FROM t")


@pytest.mark.parametrize("sql", [
    "SELECT 1; DROP TABLE t",
    "SELECT 1 /* ; */; DROP TABLE t",
    "SELECT 1 -- comment\n; DROP TABLE t",
    "SELECT 1; SELECT 2",
    "",
])
def test_anything_but_one_statement_is_refused(sql: str):
    assert "exactly one statement" in refused(sql)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SeLeCt * FrOm ReAd_CsV_AuTo('/etc/passwd')",
    "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
    "SELECT * FROM read_json('x.json')", "SELECT * FROM read_ndjson_objects('x')",
    "SELECT * FROM read_text('/etc/hosts')", "SELECT * FROM read_blob('/etc/hosts')",
    "SELECT * FROM glob('/etc/*')", "SELECT * FROM parquet_scan('x')",
    "SELECT * FROM sqlite_scan('x.db', 't')", "SELECT * FROM postgres_scan('dsn', 'public', 't')",
    "SELECT getenv('HOME')", "SELECT current_setting('threads')",
    "SELECT * FROM query('SELECT 1')", "SELECT * FROM query_table('t')",
    "SELECT * FROM duckdb_secrets()", "SELECT * FROM pragma_database_list()",
    "SELECT * FROM json_execute_serialized_sql('x')",
    "SELECT * FROM some_new_scan('x')",
    "SELECT * FROM t WHERE id IN (SELECT id FROM read_csv('x.csv'))",
    "SELECT * FROM ｒｅａｄ_ｃｓｖ('/etc/passwd')",
])
def test_functions_reaching_files_urls_or_the_host_are_refused(sql: str):
    assert "reaches files" in refused(sql)


def test_the_forbidden_list_covers_the_brief():
    for name in ("read_csv", "read_csv_auto", "read_parquet", "read_json", "read_json_auto",
                 "read_text", "read_blob", "glob", "parquet_scan", "csv_scan", "sqlite_scan",
                 "sqlite_attach", "postgres_scan", "getenv", "current_setting", "query",
                 "query_table"):
        assert name in FORBIDDEN_FUNCTIONS


@pytest.mark.parametrize("sql", [
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'orders.csv'",
    "SELECT * FROM \"s3://bucket/orders.parquet\"",
    "SELECT * FROM 'https://example.com/x.csv'",
    "SELECT * FROM main.\"../secret.csv\"",
    "SELECT * FROM 'ｓｅｃｒｅｔ．csv'",
])
def test_string_and_path_table_references_are_refused(sql: str):
    assert "file path or URL" in refused(sql)


def test_very_long_queries_are_refused():
    long_sql = "SELECT " + ", ".join(f"{i} AS c{i}" for i in range(3000))
    assert len(long_sql) > MAX_SQL_CHARS
    assert "characters" in refused(long_sql)


def test_deep_nesting_is_refused_not_crashed():
    assert "nests too deeply" in refused("SELECT " + "(" * 3000 + "1" + ")" * 3000)


def test_parse_errors_name_where():
    assert "line 1, column 13" in refused("SELECT * FROM")


# --- running on a real, read-only DuckDB file

def test_run_returns_columns_rows_and_truncation(con):
    result = run_guarded(con, guard_sql("SELECT order_id, amount FROM marts.fct_orders "
                                        "ORDER BY order_id", row_limit=100), timeout_s=30)
    assert result.columns == ["order_id", "amount"]
    assert result.row_count == 100 and len(result.rows) == 100
    assert result.rows[1] == [1, 1.5]
    assert result.truncated


def test_a_result_within_the_limit_is_not_truncated(con):
    exact = run_guarded(con, guard_sql("SELECT * FROM marts.fct_orders LIMIT 100",
                                       row_limit=100), timeout_s=30)
    assert exact.row_count == 100 and not exact.truncated
    small = run_guarded(con, guard_sql("SELECT DISTINCT customer_id FROM marts.fct_orders"),
                        timeout_s=30)
    assert small.row_count == 7 and not small.truncated


def test_a_slow_query_is_interrupted_and_the_connection_survives(con):
    slow = guard_sql("SELECT count(*) FROM range(100000000) a, range(100000000) b")
    with pytest.raises(SqlTimeout, match="interrupted"):
        run_guarded(con, slow, timeout_s=0.3)
    assert run_guarded(con, guard_sql("SELECT 42 AS x"), timeout_s=30).rows == [[42]]


def test_warehouse_errors_become_one_line(con):
    with pytest.raises(SqlFailed) as info:
        run_guarded(con, guard_sql("SELECT no_such_column FROM marts.fct_orders"), timeout_s=30)
    assert "no_such_column" in str(info.value) and "\n" not in str(info.value)


def test_a_writable_connection_is_not_accepted(warehouse: Path):
    with duckdb.connect(str(warehouse)) as writable, pytest.raises(ValueError, match="read-only"):
        run_guarded(writable, guard_sql("SELECT 1"), timeout_s=30)


def test_the_connection_itself_refuses_files_and_writes(con, warehouse: Path):
    """The second wall: what the guard would miss still fails on the connection."""
    secret = warehouse.parent / "secret.csv"
    for sql in (f"SELECT * FROM read_csv('{secret}')", "CREATE TABLE x (a INT)",
                "SET enable_external_access = true", "INSTALL httpfs"):
        with pytest.raises(duckdb.Error):
            con.execute(sql)

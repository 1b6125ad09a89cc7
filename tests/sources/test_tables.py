"""Table monitors: each check fires on its change and is quiet on healthy repeats.

Fast tests build small warehouses in tmp (DuckDB and SQLite), one partition a "day", and poll
after each with the clock set to that day. The slow ones poll the demo platform after each
healthy day, then after scenario faults, and look for the checks each fault should break.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy import event

from bot.config import ConfigError, Settings, TableMonitorConfig, TablesConfig, load_settings
from bot.errors import SleuthError
from bot.intake.baseline import BaselineConfig
from bot.intake.signals import RawSignal
from bot.sources.base import SourceBusy
from bot.sources.table_stats import Plan, Relation, scope_sql
from bot.sources.tables import TableMonitorSource, TablesCursor

START = date(2025, 3, 3)  # a Monday
EMAIL = "private.person@example.com"  # a raw value that must never leave the warehouse
SENSITIVE = BaselineConfig(min_history=3)
ORDERS = 'raw."or ders"'  # a name that needs quoting


# --------------------------------------------------------------------------- a small warehouse


@dataclass
class Day:
    """One partition of orders; the keyword arguments are faults."""

    day: date
    rows: int = 200
    null_customers: float = 0.0
    duplicates: int = 0
    scale: float = 1.0


def order_rows(d: Day, seed: int) -> list[tuple[Any, ...]]:
    rng = random.Random(seed * 1000 + d.day.toordinal())
    loaded = datetime.combine(d.day + timedelta(days=1), datetime.min.time()) + timedelta(hours=2)
    rows = []
    for i in range(d.rows + rng.randint(-8, 8)):
        order_id = d.day.toordinal() * 10_000 + i
        customer = None if rng.random() < d.null_customers else rng.randint(1, 500)
        amount = round(rng.uniform(10, 300) * d.scale, 2)
        rows.append((order_id, customer, amount, EMAIL, loaded, d.day))
    return rows + rows[: d.duplicates]


class DuckWarehouse:
    """A DuckDB file with `raw."or ders"` (partitioned) and `raw.customers` (rewritten)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with duckdb.connect(str(path)) as con:
            con.execute("create schema raw")
            con.execute('create table raw."or ders" (order_id bigint, "customer id" bigint, '
                        "amount decimal(12, 2), email varchar, _loaded_at timestamp, "
                        "_partition_date date)")
            con.execute("create table raw.customers (customer_id bigint, country varchar)")

    @property
    def url(self) -> str:
        return f"duckdb:///{self.path}"

    def load(self, d: Day, seed: int = 1) -> None:
        rows = order_rows(d, seed)
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(rows))  # one statement: executemany is slow
        with duckdb.connect(str(self.path)) as con:
            con.execute(f'insert into raw."or ders" values {values}', [v for r in rows for v in r])
            con.execute("create or replace table raw.customers as select range as customer_id,"
                        " 'NL' as country from range(300)")

    def sql(self, statement: str) -> None:
        with duckdb.connect(str(self.path)) as con:
            con.execute(statement)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.combine(START, datetime.min.time(), UTC)

    def at_day(self, d: date, hours: float = 3) -> None:
        self.now = datetime.combine(d + timedelta(days=1), datetime.min.time(), UTC) \
            + timedelta(hours=hours)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Poller:
    """A source over a warehouse, polled with a stored (JSON) cursor like the scheduler does."""

    source: TableMonitorSource
    clock: Clock
    cursor: Any = None
    polls: list[list[RawSignal]] = field(default_factory=list)

    def poll(self) -> list[RawSignal]:
        signals, cursor = self.source.poll(self.cursor)
        self.cursor = json.loads(json.dumps(cursor.model_dump(mode="json")))
        self.polls.append(signals)
        return signals

    def day(self, warehouse: DuckWarehouse, d: Day) -> list[RawSignal]:
        warehouse.load(d)
        self.clock.at_day(d.day)
        return self.poll()


def orders_monitor(**overrides: Any) -> TableMonitorConfig:
    fields = {"table": ORDERS, "key_columns": ["order_id"], "null_columns": ["customer id"],
              "numeric_columns": ["amount"], **overrides}
    return TableMonitorConfig(**fields)


def make_source(url: str, clock: Clock, *monitors: TableMonitorConfig,
                **config: Any) -> TableMonitorSource:
    tables = TablesConfig(auto=False, monitors=list(monitors) or [orders_monitor()],
                          **{"sensitivity": SENSITIVE, **config})
    return TableMonitorSource("tables", url, tables, clock=clock)


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckWarehouse:
    return DuckWarehouse(tmp_path / "w.duckdb")


@pytest.fixture
def healthy(warehouse: DuckWarehouse) -> Poller:
    """Six healthy days polled one by one: every poll quiet."""
    clock = Clock()
    poller = Poller(make_source(warehouse.url, clock), clock)
    for n in range(6):
        assert poller.day(warehouse, Day(START + timedelta(days=n))) == []
    return poller


FAULT_DAY = START + timedelta(days=6)


def checks(signals: list[RawSignal]) -> dict[tuple[str, str | None], RawSignal]:
    return {(s.detail["check"], s.detail["column"]): s for s in signals}


# --------------------------------------------------------------------------- each check


def test_healthy_repeats_stay_quiet_and_add_no_points(healthy: Poller) -> None:
    before = healthy.cursor
    assert healthy.poll() == []  # same data polled again
    assert healthy.cursor["tables"]["raw.or ders"]["series"] == before["tables"]["raw.or ders"][
        "series"]
    healthy.clock.now += timedelta(hours=25)  # resampled: the same partition replaces its point
    assert healthy.poll() == []
    points = healthy.cursor["tables"]["raw.or ders"]["series"]["volume.period_rows"]["points"]
    assert len(points) == 6


def test_volume_drop_fires_on_the_latest_period(healthy: Poller,
                                                warehouse: DuckWarehouse) -> None:
    got = checks(healthy.day(warehouse, Day(FAULT_DAY, rows=80)))
    assert list(got) == [("volume", None)]
    signal = got["volume", None]
    assert signal.kind == "table_check" and signal.asset == "table:raw.or ders"
    assert signal.detail["statistic"] == "period_rows" and signal.detail["observed"] < 100
    assert signal.title.startswith("raw.or ders rows in latest period ")
    assert signal.dedup_key == f"tables:raw.or ders:volume:*:{FAULT_DAY}"
    assert 'WHERE "_partition_date" = (SELECT MAX("_partition_date")' in signal.detail["sql"]
    assert len(signal.detail["history"]) == 7


def test_null_rate_fires_with_usual_rate_in_title(healthy: Poller,
                                                  warehouse: DuckWarehouse) -> None:
    got = checks(healthy.day(warehouse, Day(FAULT_DAY, null_customers=0.3)))
    signal = got["null_rate", "customer id"]
    assert 0.2 < signal.detail["observed"] < 0.4
    assert signal.title.startswith("raw.or ders.customer id null rate ")
    assert signal.title.endswith("(usual 0.0%)")
    assert 'COUNT("customer id")' in signal.detail["sql"]


def test_small_null_moves_stay_quiet_but_a_ceiling_fires(warehouse: DuckWarehouse) -> None:
    clock = Clock()
    poller = Poller(make_source(warehouse.url, clock, orders_monitor(max_null_rate=0.2)), clock)
    for n in range(6):
        assert poller.day(warehouse, Day(START + timedelta(days=n), null_customers=0.05)) == []
    assert poller.day(warehouse, Day(FAULT_DAY, null_customers=0.06)) == []
    got = checks(poller.day(warehouse, Day(FAULT_DAY + timedelta(days=1), null_customers=0.5)))
    assert got["null_rate", "customer id"].detail["ceiling"] == 0.2


def test_duplicates_fire_with_a_bounded_sample(healthy: Poller,
                                               warehouse: DuckWarehouse) -> None:
    got = checks(healthy.day(warehouse, Day(FAULT_DAY, duplicates=40)))
    signal = got["uniqueness", "order_id"]
    assert signal.detail["observed"] == 40
    assert signal.title == "raw.or ders.order_id has 40 duplicate keys (usual 0)"
    sample = signal.detail["sample"]
    assert len(sample) == 5 and all(s["copies"] == 2 for s in sample)
    assert 'COUNT(DISTINCT "order_id")' in signal.detail["sql"]
    assert "LIMIT 5" in signal.detail["sample_sql"]


def test_amounts_in_cents_move_the_distribution(healthy: Poller,
                                                warehouse: DuckWarehouse) -> None:
    got = checks(healthy.day(warehouse, Day(FAULT_DAY, scale=100)))
    assert list(got) == [("distribution", "amount")]
    signal = got["distribution", "amount"]
    assert signal.title.startswith("raw.or ders.amount mean ")
    moved = signal.detail["moved"]
    assert {"mean", "p50", "p95"} <= set(moved)
    assert signal.detail["observed"]["mean"] > 50 * signal.detail["expected"]["mean"]
    assert "APPROX_QUANTILE" in signal.detail["sql"]


def test_schema_drift_fires_once_then_is_the_snapshot(healthy: Poller,
                                                      warehouse: DuckWarehouse) -> None:
    warehouse.sql('alter table raw."or ders" add column channel varchar')
    warehouse.sql('alter table raw."or ders" alter amount type double')
    got = checks(healthy.poll())
    signal = got["schema", None]
    assert signal.detail["added"] == ["channel"] and signal.detail["removed"] == []
    assert signal.detail["type_changed"] == {"amount": ["DECIMAL(12,2)", "DOUBLE"]}
    assert "added channel" in signal.title and "amount DECIMAL(12,2) → DOUBLE" in signal.title
    assert ("schema", None) not in checks(healthy.poll())
    warehouse.sql('alter table raw."or ders" drop column channel')
    assert checks(healthy.poll())["schema", None].detail["removed"] == ["channel"]


def test_freshness_fires_past_max_age_and_against_history(warehouse: DuckWarehouse) -> None:
    clock = Clock()
    poller = Poller(make_source(warehouse.url, clock, orders_monitor(max_age=timedelta(hours=30))),
                    clock)
    for n in range(6):
        assert poller.day(warehouse, Day(START + timedelta(days=n))) == []
    clock.now += timedelta(hours=20)  # 21h after the last load: within its usual interval
    assert poller.poll() == []
    clock.now += timedelta(hours=10)  # 31h: over max_age
    (signal,) = poller.poll()
    assert signal.detail["check"] == "freshness" and signal.detail["column"] == "_loaded_at"
    assert signal.detail["expected"] == "at most 30.0h"
    assert "last updated 31.0h ago" in signal.title
    clock.now += timedelta(hours=1)
    (again,) = poller.poll()
    assert again.dedup_key == signal.dedup_key  # the same stale data: stored once


def test_freshness_against_history_without_a_limit(tmp_path: Path) -> None:
    warehouse = DuckWarehouse(tmp_path / "f.duckdb")
    clock = Clock()
    poller = Poller(make_source(warehouse.url, clock), clock)
    for n in range(6):
        assert poller.day(warehouse, Day(START + timedelta(days=n))) == []
    clock.now += timedelta(hours=26)  # 29h since the last load; usual interval 24h
    assert poller.poll() == []
    clock.now += timedelta(hours=24)
    (signal,) = poller.poll()
    assert signal.detail["expected"] == "updates every 24.0h"
    assert [p["value"] for p in signal.detail["history"]] == [24.0] * 5


# --------------------------------------------------------------------------- the first poll

HISTORY = [Day(START + timedelta(days=n)) for n in range(6)]


def first_poll(warehouse: DuckWarehouse, days: list[Day], *monitors: TableMonitorConfig,
               **config: Any) -> tuple[list[RawSignal], Poller]:
    """Days loaded with no poll in between, then one poll of a fresh source the next night."""
    for d in days:
        warehouse.load(d)
    clock = Clock()
    clock.at_day(days[-1].day)
    poller = Poller(make_source(warehouse.url, clock, *monitors, **config), clock)
    return poller.poll(), poller


def partition_dates(points: list[dict[str, Any]]) -> list[str]:
    return [p["at"][:10] for p in points]


@pytest.mark.parametrize(("fault", "check"), [
    (Day(FAULT_DAY, rows=80), ("volume", None)),
    (Day(FAULT_DAY, null_customers=0.3), ("null_rate", "customer id")),
    (Day(FAULT_DAY, duplicates=30), ("uniqueness", "order_id")),
    (Day(FAULT_DAY, scale=100), ("distribution", "amount")),
])
def test_first_poll_judges_the_latest_partition_by_the_tables_history(
        warehouse: DuckWarehouse, fault: Day, check: tuple[str, str | None]) -> None:
    signals, _ = first_poll(warehouse, [*HISTORY, fault])
    signal = checks(signals)[check]
    assert signal.dedup_key.endswith(f":{FAULT_DAY}")
    assert partition_dates(signal.detail["history"]) == [
        str(START + timedelta(days=n)) for n in range(7)]  # six partitions, then the judged one
    assert 'GROUP BY "_partition_date" ORDER BY "_partition_date" DESC LIMIT 29' in \
        signal.detail["sql"]


def test_first_poll_duplicates_lead_with_the_partition_that_has_a_history(
        warehouse: DuckWarehouse) -> None:
    signals, _ = first_poll(warehouse, [*HISTORY, Day(FAULT_DAY, duplicates=30)])
    signal = checks(signals)["uniqueness", "order_id"]
    assert signal.title == "raw.or ders.order_id has 30 duplicate keys in its latest period " \
                           "(usual 0)"
    assert signal.detail["scope"] == "period" and signal.detail["table_duplicates"] == 30
    assert '"_partition_date" = (SELECT MAX(' in signal.detail["sample_sql"]
    assert len(signal.detail["sample"]) == 5


def test_first_poll_of_a_healthy_table_is_quiet_and_later_polls_go_on(
        warehouse: DuckWarehouse) -> None:
    signals, poller = first_poll(warehouse, [*HISTORY, Day(FAULT_DAY)])
    assert signals == []
    series = poller.cursor["tables"]["raw.or ders"]["series"]
    assert partition_dates(series["volume.period_rows"]["points"]) == [
        str(START + timedelta(days=n)) for n in range(7)]
    for name in ("null_rate.customer id", "uniqueness_in_period.order_id",
                 "distribution.amount.p95"):
        assert len(series[name]["points"]) == 7, name
    assert [p["value"] for p in series["freshness.interval_hours"]["points"]] == [24.0] * 6
    # The whole table's count and duplicates have no past per partition: learned from polls.
    assert len(series["volume.rows"]["points"]) == len(series["uniqueness.order_id"]["points"]) == 1
    assert poller.poll() == []  # the same data again: nothing new
    got = checks(poller.day(warehouse, Day(FAULT_DAY + timedelta(days=1), null_customers=0.3)))
    assert list(got) == [("null_rate", "customer id")]


def test_history_is_read_in_one_grouped_query(warehouse: DuckWarehouse) -> None:
    for d in [*HISTORY, Day(FAULT_DAY)]:
        warehouse.load(d)
    clock = Clock()
    clock.at_day(FAULT_DAY)
    poller = Poller(make_source(warehouse.url, clock, backfill_periods=3), clock)
    statements: list[str] = []
    event.listen(poller.source._get_engine(), "before_cursor_execute",
                 lambda conn, cursor, sql, *rest: statements.append(sql))
    assert poller.poll() == []
    assert len(statements) == 4  # schema, fingerprint, periods, whole-table keys: as a live poll
    (grouped,) = [s for s in statements if "GROUP BY" in s]
    assert grouped.endswith("LIMIT 4") and "COUNT(DISTINCT" in grouped
    series = poller.cursor["tables"]["raw.or ders"]["series"]
    assert partition_dates(series["volume.period_rows"]["points"]) == [
        str(FAULT_DAY - timedelta(days=n)) for n in (3, 2, 1, 0)]


def test_the_latest_partition_is_not_its_own_history(tmp_path: Path) -> None:
    """With `min_history` 3, three earlier partitions judge the fourth; two do not, though the
    table has three partitions counting the one judged."""
    short = DuckWarehouse(tmp_path / "short.duckdb")
    signals, _ = first_poll(short, [*HISTORY[:2], Day(FAULT_DAY, rows=80)])
    assert signals == []
    signals, _ = first_poll(DuckWarehouse(tmp_path / "long.duckdb"),
                            [*HISTORY[:3], Day(FAULT_DAY, rows=80)])
    assert list(checks(signals)) == [("volume", None)]


def test_a_weekend_surge_is_no_volume_change_before_weekdays_are_learned(
        tmp_path: Path) -> None:
    """Monday to Friday, then a Saturday with a quarter more rows: with no Saturday in the
    history, a count needs `count_min_change_any_day` (40%) to fire."""
    week = [*HISTORY[:5], Day(START + timedelta(days=5), rows=255)]
    signals, _ = first_poll(DuckWarehouse(tmp_path / "a.duckdb"), week)
    assert signals == []
    signals, _ = first_poll(DuckWarehouse(tmp_path / "b.duckdb"), week,
                            count_min_change_any_day=None)
    assert [s.detail["check"] for s in signals] == ["volume"]


BUSY_WEEKENDS = {5: 265, 6: 285}  # Saturday and Sunday rows: a shop's busy days (weekdays 200)


def busy_weekends(days: int, **faults: Any) -> list[Day]:
    """`days` partitions from START with busy weekends; the last one gets `faults`."""
    dates = [START + timedelta(days=n) for n in range(days)]
    return [Day(d, rows=BUSY_WEEKENDS.get(d.weekday(), 200)) for d in dates[:-1]] + \
        [Day(dates[-1], **{"rows": BUSY_WEEKENDS.get(dates[-1].weekday(), 200), **faults})]


def test_busy_weekends_are_the_weeks_shape_and_a_real_drop_still_fires(
        tmp_path: Path) -> None:
    """Two weeks whose weekends carry 30-45% more rows than weekdays, then the third Sunday:
    with two Sundays in the history (fewer than `same_weekday_min`) the baseline mixes every
    day, and the Sunday is 40%+ over that median; it is within the week's own range, so no
    issue. The same Sunday with half a weekday's rows is below anything the week has: it fires."""
    week_and_more = busy_weekends(14)
    assert week_and_more[-1].day.weekday() == 6
    signals, poller = first_poll(DuckWarehouse(tmp_path / "a.duckdb"), week_and_more,
                                 sensitivity=BaselineConfig())
    assert signals == []
    points = poller.cursor["tables"]["raw.or ders"]["series"]["volume.period_rows"]["points"]
    sunday = points[-1]
    assert sunday["value"] > 1.4 * sorted(p["value"] for p in points)[7]  # 40%+ over median
    assert not sunday["anomalous"]  # and a normal point of later baselines

    signals, _ = first_poll(DuckWarehouse(tmp_path / "b.duckdb"), busy_weekends(14, rows=100),
                            sensitivity=BaselineConfig())
    (drop,) = signals
    assert drop.detail["check"] == "volume" and drop.detail["baseline"] == "all recent runs"
    assert drop.detail["change"] < -0.4


@pytest.mark.parametrize(("saturday", "fires"), [(300, False), (400, True)])
def test_a_first_busiest_day_needs_the_any_day_change_beyond_the_week(
        tmp_path: Path, saturday: int, fires: bool) -> None:
    """A week whose busiest day so far is a Sunday at 240 rows, then its first Saturday: at
    300 it is half again the weekday median but a quarter over that Sunday, the week's shape
    (it fired when the week's range stretched only `min_change`, 20%); at 400 it is beyond
    anything the week has by more than `count_min_change_any_day`, and fires."""
    days = [Day(START - timedelta(days=1), rows=240), *HISTORY[:5],
            Day(START + timedelta(days=5), rows=saturday)]
    assert days[0].day.weekday() == 6 and days[-1].day.weekday() == 5
    signals, _ = first_poll(DuckWarehouse(tmp_path / "w.duckdb"), days,
                            sensitivity=BaselineConfig())
    assert [s.detail["check"] for s in signals] == (["volume"] if fires else [])


def test_a_past_outage_does_not_widen_the_weeks_range(tmp_path: Path) -> None:
    """A day the table nearly emptied, two weeks ago, is no part of the week's shape: a
    weekday with a third of its rows still fires."""
    days = busy_weekends(10, rows=70)
    days[2] = Day(days[2].day, rows=15)
    signals, _ = first_poll(DuckWarehouse(tmp_path / "w.duckdb"), days,
                            sensitivity=BaselineConfig())
    assert [s.detail["check"] for s in signals] == ["volume"]


def test_todays_partition_is_still_filling(warehouse: DuckWarehouse) -> None:
    """Today's partition at noon has a morning's rows: no drop until its day is over, when the
    same data is judged again; a spike fires at once."""
    for d in [*HISTORY, Day(FAULT_DAY, rows=60)]:
        warehouse.load(d)
    noon = datetime.combine(FAULT_DAY, datetime.min.time(), UTC) + timedelta(hours=12)
    clock = Clock()
    clock.now = noon
    poller = Poller(make_source(warehouse.url, clock), clock)
    assert poller.poll() == []
    clock.now += timedelta(minutes=5)
    assert poller.poll() == []  # still today, data unchanged: not sampled again
    clock.at_day(FAULT_DAY)  # past midnight
    (signal,) = poller.poll()
    assert signal.detail["statistic"] == "period_rows" and signal.detail["change"] < -0.5

    spike = DuckWarehouse(warehouse.path.with_name("spike.duckdb"))
    for d in [*HISTORY, Day(FAULT_DAY, rows=600)]:
        spike.load(d)
    at_noon = Clock()
    at_noon.now = noon
    signals, _ = make_source(spike.url, at_noon).poll()
    assert [s.detail["check"] for s in signals] == ["volume"]


def test_duplicates_across_the_table_and_within_a_period_are_kept_apart() -> None:
    """A daily snapshot repeats yesterday's keys across the table every day, by design: that
    count is steady. A key twice within one day's partition is the delivery loaded twice."""
    from bot.sources.table_stats import ScopeStats, duplicates_sql
    from bot.sources.tables import Sample, TableState, WatchedTable, uniqueness

    table = WatchedTable(relation=Relation("snap", "raw"), asset="table:raw.snap",
                         display="raw.snap")
    state, config = TableState(), TablesConfig(sensitivity=SENSITIVE)

    def judge(n: int, whole: int, in_period: int) -> Any:
        at = datetime.combine(START + timedelta(days=n), datetime.min.time(), UTC)
        sample = Sample(at=at, token=str(at.date()), duplicates={"id": whole},
                        duplicates_sql="whole", scope=ScopeStats(
                            rows=300, duplicates={"id": in_period}, sql="period"))
        return uniqueness(table, state, sample, "id", config)

    assert judge(0, 500, 0).extra["scope"] == "table"  # first sight of a duplicated key
    assert [judge(n, 500, 0) for n in range(1, 5)] == [None] * 4
    in_period = judge(5, 510, 10)
    assert in_period.title == "raw.snap.id has 10 duplicate keys in its latest period (usual 0)"
    assert in_period.sql == "period"
    assert (in_period.extra["table_duplicates"], in_period.extra["period_duplicates"]) == (510, 10)
    whole = judge(6, 1500, 0)
    assert whole.extra["scope"] == "table" and whole.observed == 1500 and whole.sql == "whole"

    plan = Plan(Relation("snap", "raw"), partition_column="ds", keys=("id",))
    assert 'WHERE NOT "id" IS NULL AND "ds" = (SELECT MAX("ds") FROM "raw"."snap")' in \
        duplicates_sql(plan, "id", 5, "duckdb", latest_period=True)


def test_backfill_periods_config(tmp_path: Path, warehouse: DuckWarehouse) -> None:
    assert TablesConfig().backfill_periods == 28
    assert TablesConfig().count_min_change_any_day == 0.4
    config = tmp_path / "sleuth.yaml"
    config.write_text("sources: {tables: {backfill_periods: -1}}")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert {p.key for p in err.value.problems} == {"sources.tables.backfill_periods"}
    config.write_text("sources: {tables: {backfill_periods: 0}}")
    assert load_settings(config).sources.tables.backfill_periods == 0
    signals, poller = first_poll(warehouse, [*HISTORY, Day(FAULT_DAY, rows=80)],
                                 backfill_periods=0)  # off: learn from polls, as before
    assert signals == []
    assert len(poller.cursor["tables"]["raw.or ders"]["series"]["volume.period_rows"][
        "points"]) == 1


# --------------------------------------------------------------------------- safety


def test_identifiers_with_quotes_and_spaces_are_quoted(tmp_path: Path) -> None:
    path = tmp_path / "odd.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute('create schema "my schema"')
        con.execute('create table "my schema"."t""; drop table x; --" ("we""ird col" bigint, '
                    '"a b" double)')
        con.execute("create table x (n int)")
        con.execute('insert into "my schema"."t""; drop table x; --" '
                    "select range, range * 1.5 from range(150)")
    clock = Clock()
    monitor = TableMonitorConfig(table='"my schema"."t""; drop table x; --"',
                                 key_columns=['we"ird col'], null_columns=["a b"],
                                 numeric_columns=["a b"])
    source = make_source(f"duckdb:///{path}", clock, monitor)
    signals, cursor = source.poll()
    assert signals == [] and list(cursor.tables) == ['my schema.t"; drop table x; --']
    state = cursor.tables['my schema.t"; drop table x; --']
    assert state.fingerprint == {"rows": "150", "max_timestamp": None, "period": None}
    assert set(state.series) >= {"uniqueness.we\"ird col", "null_rate.a b",
                                 "distribution.a b.mean"}
    plan = Plan(Relation.parse(monitor.table), keys=('we"ird col',),
                null_columns=("a b",))
    assert '"my schema"."t""; drop table x; --"' in scope_sql(plan, "duckdb")
    assert '`my schema`.`t"; drop table x; --`' in scope_sql(plan, "mysql")
    with duckdb.connect(str(path)) as con:
        assert con.execute("select count(*) from x").fetchone() == (0,)  # still there


def test_bad_table_reference_is_a_user_error(tmp_path: Path) -> None:
    for bad in ("a.b.c.d", "raw..orders", 'raw."open'):
        with pytest.raises(SleuthError, match=r"sources.tables.monitors.0.table: not a table"):
            make_source(f"duckdb:///{tmp_path}/w.duckdb", Clock(), TableMonitorConfig(table=bad))
    assert Relation.parse('db."my.schema"."t ""x"""') == Relation('t "x"', "my.schema", "db")


def test_missing_table_warns_and_the_others_are_checked(
        warehouse: DuckWarehouse, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    warehouse.load(Day(START))
    source = make_source(warehouse.url, clock, orders_monitor(),
                         TableMonitorConfig(table="raw.gone"),
                         TableMonitorConfig(table="raw.customers"))
    with caplog.at_level(logging.WARNING):
        signals, cursor = source.poll()
    assert signals == []
    assert set(cursor.tables) == {"raw.or ders", "raw.customers"}
    assert "table raw.gone not found" in caplog.text


def test_failing_query_skips_that_table_only(warehouse: DuckWarehouse,
                                             caplog: pytest.LogCaptureFixture) -> None:
    warehouse.load(Day(START))
    warehouse.sql("create view raw.broken as select * from raw.customers")
    source = make_source(warehouse.url, Clock(), TableMonitorConfig(table="raw.broken"),
                         orders_monitor())
    source.poll()  # fine while the view's table exists
    warehouse.sql("drop table raw.customers")
    with caplog.at_level(logging.WARNING):
        _, cursor = source.poll()
    assert "raw.broken" in caplog.text
    assert cursor.tables["raw.or ders"].fingerprint is not None


def test_locked_warehouse_skips_the_poll_then_reads(warehouse: DuckWarehouse) -> None:
    """The pipeline writing the file: the poll is skipped whole, saying who holds the lock,
    and nothing is judged from a read that did not happen; once it is done, the poll reads."""
    warehouse.load(Day(START))
    source = make_source(warehouse.url, Clock())
    _, cursor = source.poll()
    before = cursor.model_dump(mode="json")
    warehouse.sql("alter table raw.\"or ders\" add column note varchar")  # drift to be found
    with writer_holding(warehouse.path) as pid:
        with pytest.raises(SourceBusy) as busy:
            source.poll(before)
        assert source.check() == []  # a lock is not a misconfiguration
    assert str(busy.value) == (f"warehouse {warehouse.path} is locked by another process "
                               f"(pid {pid}); tables not checked this poll")
    signals, _ = source.poll(before)  # the same cursor: the skipped poll moved nothing
    assert [s.detail["check"] for s in signals] == ["schema"]


def test_a_connection_of_this_process_with_another_configuration_is_a_lock(
        warehouse: DuckWarehouse) -> None:
    """DuckDB refuses a second configuration of one file in a process (a loader's writer
    beside the monitor's read-only reader): the same passing lock, not a failure."""
    warehouse.load(Day(START))
    source = make_source(warehouse.url, Clock())
    held = "locked by a connection of this process with another configuration"
    with duckdb.connect(str(warehouse.path)), pytest.raises(SourceBusy, match=held):
        source.poll()
    signals, cursor = source.poll()
    assert signals == [] and cursor.tables["raw.or ders"].fingerprint is not None


def test_an_unreachable_warehouse_fails_the_poll(tmp_path: Path) -> None:
    """Not a lock: the scheduler reports the source failing (once) and backs off."""
    (tmp_path / "not-a-db.duckdb").write_text("not a database")
    source = make_source(f"duckdb:///{tmp_path / 'not-a-db.duckdb'}", Clock())
    with pytest.raises(ConnectionError, match="not-a-db.duckdb unavailable: "):
        source.poll()


@contextmanager
def writer_holding(path: Path) -> Iterator[int]:
    """Another process with the warehouse open for writing, as the pipeline would; its pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                                "print('ready', flush=True); sys.stdin.read()"), str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def test_no_raw_rows_leave_beyond_the_sample(healthy: Poller, warehouse: DuckWarehouse) -> None:
    signals = healthy.day(warehouse, Day(FAULT_DAY, duplicates=40, null_customers=0.3,
                                         scale=100, rows=60))
    assert {s.detail["check"] for s in signals} >= {"uniqueness", "null_rate", "volume"}
    text = json.dumps([s.model_dump(mode="json") for s in signals]) + json.dumps(healthy.cursor)
    assert EMAIL not in text
    (unique,) = [s for s in signals if s.detail["check"] == "uniqueness"]
    assert len(unique.detail["sample"]) <= 5
    assert set(unique.detail["sample"][0]) == {"value", "copies"}


def test_queries_per_poll(healthy: Poller, warehouse: DuckWarehouse) -> None:
    """Unchanged data costs the schema and a fingerprint; changed data three more."""
    engine = healthy.source._get_engine()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *rest: statements.append(sql))
    healthy.poll()
    assert len(statements) == 2
    statements.clear()
    healthy.day(warehouse, Day(FAULT_DAY))
    assert len(statements) == 4


# --------------------------------------------------------------------------- cursor, config


def test_cursor_round_trips_through_json(healthy: Poller, warehouse: DuckWarehouse) -> None:
    restored = TablesCursor.model_validate(healthy.cursor)
    assert restored.model_dump(mode="json") == healthy.cursor
    signals, _ = healthy.source.poll(restored)
    assert signals == []
    fresh = make_source(warehouse.url, healthy.clock)  # a new process: only the cursor is kept
    warehouse.load(Day(FAULT_DAY, rows=60))
    healthy.clock.at_day(FAULT_DAY)
    got, _ = fresh.poll(healthy.cursor)
    assert [s.detail["check"] for s in got] == ["volume"]
    assert len(json.dumps(healthy.cursor)) < 40_000  # bounded: points per series are capped


def test_max_tables_per_poll_rotates(warehouse: DuckWarehouse) -> None:
    warehouse.load(Day(START))
    clock = Clock()
    source = make_source(warehouse.url, clock, orders_monitor(),
                         TableMonitorConfig(table="raw.customers"), max_tables_per_poll=1)
    _, first = source.poll()
    clock.now += timedelta(minutes=5)
    _, second = source.poll(first)
    assert len(first.tables) == 1 and len(second.tables) == 2


def test_sqlite_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    with sqlite3.connect(path) as con:
        con.execute('create table "or ders" (order_id integer, "customer id" integer, '
                    "amount real, email text, _loaded_at text, _partition_date text)")
    clock = Clock()

    def load(d: Day) -> list[RawSignal]:
        with sqlite3.connect(path) as con:
            con.executemany('insert into "or ders" values (?, ?, ?, ?, ?, ?)',
                            [(*r[:4], r[4].isoformat(sep=" "), r[5].isoformat())
                             for r in order_rows(d, 2)])
        clock.at_day(d.day)
        return poller.poll()

    poller = Poller(make_source(f"sqlite:///{path}", clock, orders_monitor(table='"or ders"')),
                    clock)
    for n in range(6):
        assert load(Day(START + timedelta(days=n))) == []
    got = checks(load(Day(FAULT_DAY, null_customers=0.3, duplicates=30, scale=100)))
    assert set(got) == {("null_rate", "customer id"), ("uniqueness", "order_id"),
                        ("distribution", "amount")}
    assert "APPROX_QUANTILE" not in got["distribution", "amount"].detail["sql"]
    assert set(got["distribution", "amount"].detail["moved"]) >= {"mean", "stddev", "max"}
    fresh = make_source(f"sqlite:///{path}", clock, orders_monitor(table='"or ders"'))
    first, _ = fresh.poll()  # text partitions: the table's history read from the table too
    assert set(checks(first)) == set(got)


def test_tables_config_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "sleuth.yaml"
    config.write_text("""
sources:
  warehouse: {url: "sqlite:///w.sqlite"}
  tables:
    auto: false
    exclude: ["raw_marketing.*"]
    sensitivity: {min_history: 3, threshold: 5}
    resample_after: PT6H
    monitors:
      - table: raw.orders
        timestamp_column: _loaded_at
        key_columns: [order_id]
        max_age: PT18H
        max_null_rate: 0.1
""")
    tables = load_settings(config).with_defaults().sources.tables
    assert tables.auto is False and tables.exclude == ["raw_marketing.*"]
    assert tables.sensitivity.threshold == 5 and tables.resample_after == timedelta(hours=6)
    (monitor,) = tables.monitors
    assert monitor.max_age == timedelta(hours=18) and monitor.null_columns is None
    assert Settings().with_defaults().sources.tables == TablesConfig()

    config.write_text("sources: {tables: {monitors: [{table: t, max_null_rate: 2}], bogus: 1}}")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert {p.key for p in err.value.problems} == {"sources.tables.monitors.0.max_null_rate",
                                                  "sources.tables.bogus"}


# --------------------------------------------------------------------------- auto from dbt


def write_manifest(path: Path) -> Path:
    """A small dbt manifest: a source with freshness, a model with unique/not_null/fk tests."""

    def test(name: str, column: str, **kwargs: Any) -> dict[str, Any]:
        return {"unique_id": f"test.shop.{name}_stg_orders_{column}.1", "resource_type": "test",
                "name": f"{name}_stg_orders_{column}", "column_name": column,
                "attached_node": "model.shop.stg_orders",
                "test_metadata": {"name": name, "kwargs": {"column_name": column, **kwargs}}}

    tests = [test("unique", "order_id"), test("not_null", "order_id"),
             test("relationships", "customer id", to="ref('customers')", field="customer_id")]
    manifest = {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                     "dbt_version": "1.9.0", "project_name": "shop"},
        "nodes": {
            "model.shop.stg_orders": {
                "unique_id": "model.shop.stg_orders", "resource_type": "model",
                "name": "stg_orders", "schema": "staging", "database": "w",
                "alias": "stg_orders", "config": {"materialized": "view"}},
            "model.shop.eph": {"unique_id": "model.shop.eph", "resource_type": "model",
                               "name": "eph", "schema": "staging",
                               "config": {"materialized": "ephemeral"}},
            **{t["unique_id"]: t for t in tests}},
        "sources": {"source.shop.raw.orders": {
            "unique_id": "source.shop.raw.orders", "resource_type": "source", "name": "orders",
            "source_name": "raw", "schema": "raw", "identifier": "or ders", "database": "w",
            "loaded_at_field": "_loaded_at",
            "freshness": {"warn_after": {"count": 12, "period": "hour"},
                          "error_after": {"count": 1, "period": "day"}}}},
    }
    path.write_text(json.dumps(manifest))
    return path


def test_auto_monitors_from_the_dbt_manifest(warehouse: DuckWarehouse, tmp_path: Path) -> None:
    warehouse.sql('create schema staging; create view staging.stg_orders as '
                  'select * from raw."or ders"')
    manifest = write_manifest(tmp_path / "manifest.json")
    clock = Clock()
    source = TableMonitorSource("tables", warehouse.url, TablesConfig(sensitivity=SENSITIVE),
                                manifest_path=manifest, clock=clock)
    tables = {t.asset: t for t in _watched(source)}
    assert set(tables) == {"model.shop.stg_orders", "source.shop.raw.orders"}
    model, raw = tables["model.shop.stg_orders"], tables["source.shop.raw.orders"]
    assert model.keys == ("order_id",)
    assert model.null_columns == ("order_id", "customer id")
    assert model.display == "stg_orders" and raw.display == "raw.orders"
    assert raw.timestamp_column == "_loaded_at" and raw.max_age == timedelta(days=1)

    poller = Poller(source, clock)
    for n in range(6):
        assert poller.day(warehouse, Day(START + timedelta(days=n))) == []
    got = poller.day(warehouse, Day(FAULT_DAY, null_customers=0.3, duplicates=20))
    assert {(s.asset, s.detail["check"], s.detail["column"]) for s in got} == {
        ("model.shop.stg_orders", "null_rate", "customer id"),
        ("model.shop.stg_orders", "uniqueness", "order_id")}
    assert got[0].title.startswith("stg_orders.")

    excluded = TableMonitorSource("tables", warehouse.url,
                                  TablesConfig(exclude=["raw.*"], monitors=[
                                      TableMonitorConfig(table="staging.stg_orders",
                                                         key_columns=[])]),
                                  manifest_path=manifest)
    (only,) = _watched(excluded)
    assert only.asset == "model.shop.stg_orders" and only.keys == ()
    assert only.null_columns == ("order_id", "customer id")  # the rest still from dbt


def test_check_names_what_is_missing(tmp_path: Path) -> None:
    source = TableMonitorSource("tables", f"duckdb:///{tmp_path}/none.duckdb",
                                manifest_path=tmp_path / "manifest.json")
    problems = source.check()
    assert any("does not exist yet" in p for p in problems)
    assert any("no dbt manifest" in p for p in problems)


def test_the_demo_platform_is_judged_by_its_own_clock(tmp_path: Path) -> None:
    """The demo's nightly DAG ran once, a day or more ago, and never runs again: by the wall
    clock its sources are past their 18h limit, at every poll of a scheduler that goes on;
    by the demo's clock (its last run's end) they are as fresh as when it ran."""
    from bot.config import SourcesConfig
    from bot.demo import runs

    monitor = orders_monitor(timestamp_column="_loaded_at", max_age="18h")
    settings = Settings(home=tmp_path / "home", sources=SourcesConfig(
        tables=TablesConfig(auto=False, monitors=[monitor])))
    platform = settings.demo_platform
    platform.root.mkdir(parents=True)
    day = (datetime.now(UTC) - timedelta(days=2)).date()
    DuckWarehouse(platform.warehouse).load(Day(day))  # loaded at 02:00 the day after
    ended = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) \
        + timedelta(hours=2, minutes=10)
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    runs.save_run(platform.runs_db, runs.DagRun(
        dag_id="daily_warehouse", run_id=f"scheduled__{day}", logical_date=midnight,
        data_interval_start=midnight, data_interval_end=midnight + timedelta(days=1),
        state="success", start_date=ended - timedelta(minutes=10), end_date=ended), [])

    demo = TableMonitorSource.from_settings(settings)
    assert [demo.poll()[0] for _ in range(2)] == [[], []]
    wall = TableMonitorSource.from_settings(settings, clock=lambda: datetime.now(UTC))
    (stale,) = wall.poll()[0]
    assert stale.detail["check"] == "freshness" and stale.detail["expected"] == "at most 18.0h"


def _watched(source: TableMonitorSource) -> list[Any]:
    from bot.sources.tables import watched_tables

    return watched_tables(source.config, source.project(), source.dialect)


# --------------------------------------------------------------------------- the demo platform

DEMO_FAULTS = ("null_customer_ids", "schema_change", "duplicate_delivery", "amounts_in_cents",
               "loader_filter_change")


@dataclass
class DemoPolls:
    healthy: list[list[RawSignal]]  # one poll after each healthy day
    faults: dict[str, list[RawSignal]]  # one poll after each scenario's fault day
    first: dict[str, list[RawSignal]]  # one poll of a fresh source: "healthy", each scenario
    lineage: Any


@pytest.fixture(scope="module")
def demo_polls(demo_platform: tuple[Any, Path]) -> DemoPolls:
    """Build the shared healthy history polling after each day, then run each fault on it.

    The healthy history is the session's (DEMO_DAYS days, saved to its cache so the other demo
    tests restore it); three days are too few for the default `min_history` of 5, so the
    baseline here learns from 2. Each scenario starts from the cursor of the last healthy day,
    and is also polled once by a fresh source (no cursor), as is the healthy history alone.
    flaky_network's fault day is healthy data: its fresh poll is a healthy first poll.
    """
    from rich.console import Console
    from rich.progress import Progress

    from bot.demo.platform import NIGHTLY, build_history, run_scenario, save_history, timeline
    from bot.demo.scenarios import get_scenario
    from tests.conftest import DEMO_DAYS, DEMO_SEED

    paths, cache = demo_platform
    clock = Clock()
    config = TablesConfig(sensitivity=BaselineConfig(min_history=2))

    def make(clock: Clock) -> TableMonitorSource:
        return TableMonitorSource("tables", f"duckdb:///{paths.warehouse}", config,
                                  manifest_path=paths.dbt_target / "manifest.json", clock=clock)

    def fresh_poll(now: datetime) -> list[RawSignal]:
        fresh_clock = Clock()
        fresh_clock.now = now
        signals, _ = make(fresh_clock).poll()
        return signals

    source = make(clock)
    poller = Poller(source, clock)

    def after_day(day: Any) -> None:  # as if polled an hour after each nightly run
        clock.now = datetime.combine(day.day, datetime.min.time(), UTC) + NIGHTLY \
            + timedelta(hours=1)
        poller.poll()

    history_days, fault_day = timeline(DEMO_DAYS)
    faults, first = {}, {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
        quiet = Progress(console=Console(quiet=True))
        history = build_history(paths, history_days, DEMO_SEED, quiet, after_day=after_day)
        save_history(paths, cache, history_days, DEMO_SEED, history)
        healthy_cursor = poller.cursor
        first["healthy"] = fresh_poll(clock.now)  # as of just after the last healthy run
        for name in (*DEMO_FAULTS, "flaky_network"):
            run_scenario(get_scenario(name), paths=paths, days=DEMO_DAYS, seed=DEMO_SEED,
                         cache=cache)
            # An hour after the fault day's nightly run, as after each healthy day: ages
            # measured from the wall clock would depend on the hour the tests run at.
            clock.now = datetime.combine(fault_day, datetime.min.time(), UTC) + NIGHTLY \
                + timedelta(hours=1)
            faults[name], _ = source.poll(healthy_cursor)
            first[name] = fresh_poll(clock.now)
    return DemoPolls(healthy=poller.polls, faults=faults, first=first,
                     lineage=source.project().lineage)


def demo_checks(polls: DemoPolls, scenario: str) -> set[tuple[str, str, str | None]]:
    return {(s.detail["check"], s.asset, s.detail["column"]) for s in polls.faults[scenario]}


def model(name: str) -> str:
    return f"model.sleuth_demo.{name}"


def source_id(name: str) -> str:
    return f"source.sleuth_demo.{name}"


@pytest.mark.slow
def test_demo_healthy_days_give_no_signal(demo_polls: DemoPolls) -> None:
    from tests.conftest import DEMO_DAYS

    assert demo_polls.healthy == [[]] * DEMO_DAYS


@pytest.mark.slow
@pytest.mark.parametrize("scenario", DEMO_FAULTS)
def test_demo_faults_fire_only_on_the_root_and_downstream(demo_polls: DemoPolls,
                                                          scenario: str) -> None:
    from bot.demo.scenarios import get_scenario

    (cause,) = get_scenario(scenario).truth.root_causes
    # The loader's config is the cause there; the table it stopped filling is where it shows.
    root = source_id("shop.orders") if scenario == "loader_filter_change" else cause.node
    allowed = {root, *demo_polls.lineage.downstream(root)}
    assert demo_polls.faults[scenario]
    assert {s.asset for s in demo_polls.faults[scenario]} <= allowed


@pytest.mark.slow
def test_demo_null_customer_ids_is_a_null_rate_on_stg_shop_orders(demo_polls: DemoPolls) -> None:
    assert demo_checks(demo_polls, "null_customer_ids") == {
        ("null_rate", model("stg_shop__orders"), "customer_id")}
    (signal,) = demo_polls.faults["null_customer_ids"]
    assert 0.25 < signal.detail["observed"] < 0.35
    assert signal.title.startswith("stg_shop__orders.customer_id null rate ")
    assert signal.title.endswith("(usual 0.0%)")


@pytest.mark.slow
def test_demo_schema_change_leaves_the_raw_table_stale(demo_polls: DemoPolls) -> None:
    # The loader selects the columns its config lists and fails on the renamed one, so no
    # table's schema changes: what the warehouse shows is a raw table that stopped loading.
    # Its staging view stops with it, and is late too once the day is far enough along.
    got = demo_checks(demo_polls, "schema_change")
    assert ("freshness", source_id("shop.orders"), "_loaded_at") in got
    assert got <= {("freshness", source_id("shop.orders"), "_loaded_at"),
                   ("freshness", model("stg_shop__orders"), "_loaded_at")}
    signal = next(s for s in demo_polls.faults["schema_change"]
                  if s.asset == source_id("shop.orders"))
    assert signal.detail["expected"] == "at most 18.0h"  # the source's dbt error_after


@pytest.mark.slow
def test_demo_duplicate_delivery_is_duplicate_keys_and_double_volume(
        demo_polls: DemoPolls) -> None:
    assert demo_checks(demo_polls, "duplicate_delivery") == {
        ("uniqueness", model("stg_marketing__events"), "event_id"),
        ("volume", model("stg_marketing__events"), None),
        ("volume", source_id("marketing.events"), None)}
    volume = next(s for s in demo_polls.faults["duplicate_delivery"]
                  if s.asset == source_id("marketing.events"))
    assert volume.detail["change"] > 0.5 and volume.detail["statistic"] == "period_rows"


@pytest.mark.slow
def test_demo_amounts_in_cents_move_the_amount_distribution(demo_polls: DemoPolls) -> None:
    got = demo_checks(demo_polls, "amounts_in_cents")
    assert {("distribution", source_id("payments.payments"), "amount"),
            ("distribution", model("stg_payments__payments"), "amount"),
            ("distribution", model("fct_payments"), "amount")} <= got
    assert {check for check, _, _ in got} == {"distribution"}
    raw = next(s for s in demo_polls.faults["amounts_in_cents"]
               if s.asset == source_id("payments.payments"))
    assert raw.detail["observed"]["p50"] > 50 * raw.detail["expected"]["p50"]


@pytest.mark.slow
def test_demo_loader_filter_change_drops_the_orders_volume(demo_polls: DemoPolls) -> None:
    assert demo_checks(demo_polls, "loader_filter_change") == {
        ("volume", source_id("shop.orders"), None), ("volume", model("stg_shop__orders"), None)}
    for signal in demo_polls.faults["loader_filter_change"]:
        assert signal.detail["change"] < -0.3 and "rows in latest period" in signal.title


# The first poll of a fresh source, with no cursor: each fault is found from the tables' own
# history, as a source polled after every healthy day finds it; only the marts, which have no
# partition or timestamp column, still have their history to learn.
FIRST_POLL_FINDS = {
    "null_customer_ids": ("null_rate", model("stg_shop__orders"), "customer_id"),
    "duplicate_delivery": ("uniqueness", model("stg_marketing__events"), "event_id"),
    "amounts_in_cents": ("distribution", source_id("payments.payments"), "amount"),
    "loader_filter_change": ("volume", source_id("shop.orders"), None),
}


def first_checks(polls: DemoPolls, when: str) -> set[tuple[str, str, str | None]]:
    return {(s.detail["check"], s.asset, s.detail["column"]) for s in polls.first[when]}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", FIRST_POLL_FINDS)
def test_demo_first_poll_finds_the_fault_from_the_tables_history(demo_polls: DemoPolls,
                                                                 scenario: str) -> None:
    from tests.conftest import DEMO_DAYS

    got = first_checks(demo_polls, scenario)
    assert FIRST_POLL_FINDS[scenario] in got
    polled_daily = demo_checks(demo_polls, scenario)
    marts = tuple(model(prefix) for prefix in ("int_", "fct_", "dim_"))
    assert got == {c for c in polled_daily if not c[1].startswith(marts)}
    for signal in demo_polls.first[scenario]:
        if signal.detail["check"] != "freshness":  # judged against the earlier partitions
            assert len(signal.detail["history"]) == DEMO_DAYS + 1


@pytest.mark.slow
def test_demo_first_poll_sees_both_sides_of_the_duplicate_delivery(demo_polls: DemoPolls) -> None:
    signals = {(s.detail["check"], s.asset): s for s in demo_polls.first["duplicate_delivery"]}
    unique = signals["uniqueness", model("stg_marketing__events")]
    assert unique.detail["scope"] == "period"  # the partition has a history; the table none yet
    assert unique.detail["period_duplicates"] == unique.detail["table_duplicates"] > 0
    volume = signals["volume", source_id("marketing.events")]
    assert volume.detail["statistic"] == "period_rows" and volume.detail["change"] > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("when", ["healthy", "flaky_network"])
def test_demo_first_poll_of_a_healthy_day_is_quiet(demo_polls: DemoPolls, when: str) -> None:
    """Weekends included: with no same weekday in three days of history, a weekend's surge of
    rows stays under `count_min_change_any_day`."""
    assert [s.title for s in demo_polls.first[when]] == []

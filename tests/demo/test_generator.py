"""Upstream deliveries: deterministic, realistic in shape, consistent, and faulted on demand."""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

from bot.demo.generator import TABLES, UpstreamFault, deliver_day, partition_dir

SEED = 5
WED, SAT, SUN = date(2026, 11, 18), date(2026, 11, 21), date(2026, 11, 22)

FAULTS = [
    UpstreamFault(kind="rename_column", source="shop", table="order_items", column="quantity",
                  new_name="qty"),
    UpstreamFault(kind="drop_column", source="payments", table="refunds", column="reason"),
    UpstreamFault(kind="scale_column", source="payments", table="payments", column="amount",
                  factor=100),
    UpstreamFault(kind="null_fraction", source="shop", table="orders", column="customer_id",
                  fraction=0.3),
    UpstreamFault(kind="duplicate_file", source="marketing", table="events"),
    UpstreamFault(kind="missing_partition", source="marketing", table="ad_spend"),
    UpstreamFault(kind="bad_date_format", source="shop", table="customers", column="signup_date"),
]


def _files(landing: Path, day: date) -> dict[str, bytes]:
    found = landing.glob(f"*/*/dt={day.isoformat()}/*")
    return {str(p.relative_to(landing)): p.read_bytes() for p in sorted(found)}


def _read(landing: Path, source: str, table: str, day: date, sql: str) -> list[tuple]:
    """Run `sql` over one delivered partition, as view `t`."""
    files = [str(p) for p in sorted(partition_dir(landing, source, table, day).iterdir())]
    if TABLES[(source, table)] == "csv":
        reader = f"read_csv({files}, header = true, all_varchar = true)"
    else:
        reader = f"read_json({files}, format = 'newline_delimited')"
    with duckdb.connect() as con:
        con.execute(f"create view t as select * from {reader}")
        return con.execute(sql).fetchall()


def _records(landing: Path, source: str, table: str, day: date) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for path in sorted(partition_dir(landing, source, table, day).iterdir()):
        with path.open(newline="") as f:
            rows += csv.DictReader(f) if path.suffix == ".csv" else map(json.loads, f)
    return rows


def _count(landing: Path, source: str, table: str, day: date) -> int:
    """Rows delivered (lines, less the CSV header)."""
    header = TABLES[(source, table)] == "csv"
    return sum(p.read_bytes().count(b"\n") - header
               for p in partition_dir(landing, source, table, day).iterdir())


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    landing = tmp_path_factory.mktemp("landing")
    for day in (WED, SAT, SUN):
        deliver_day(landing, day, seed=SEED)
    return landing


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    landing = tmp_path_factory.mktemp("faulty")
    deliver_day(landing, SUN, seed=SEED, faults=FAULTS)
    return landing


def test_same_seed_and_day_give_byte_identical_files(week: Path, tmp_path: Path) -> None:
    deliver_day(tmp_path / "again", SUN, seed=SEED)
    deliver_day(tmp_path / "other", SUN, seed=SEED + 1)

    healthy = _files(week, SUN)
    assert _files(tmp_path / "again", SUN) == healthy
    other = _files(tmp_path / "other", SUN)
    assert other.keys() == healthy.keys()
    orders = "shop/orders/dt=2026-11-22/part-0000.csv"
    assert other[orders] != healthy[orders]


def test_every_table_lands_in_its_partition_with_realistic_volume(week: Path) -> None:
    names = {f"{s}/{t}/dt={SUN}/part-0000.{fmt}" for (s, t), fmt in TABLES.items()}
    assert set(_files(week, SUN)) == names

    orders = _count(week, "shop", "orders", SUN)
    assert 4000 < orders < 8000
    assert 2.1 < _count(week, "shop", "order_items", SUN) / orders < 2.7
    assert 1.04 < _count(week, "payments", "payments", SUN) / orders < 1.15
    assert 20_000 < _count(week, "marketing", "events", SUN) < 40_000
    assert _count(week, "shop", "products", SUN) == 400
    assert _count(week, "marketing", "ad_spend", SUN) == 15  # campaign x channel
    total = sum(_count(week, s, t, SUN) for s, t in TABLES)
    assert total > 40_000


def test_weekends_differ_from_weekdays_and_volume_grows(week: Path, tmp_path: Path) -> None:
    orders = {d: _count(week, "shop", "orders", d) for d in (WED, SAT, SUN)}
    assert min(orders[SAT], orders[SUN]) > 1.12 * orders[WED]

    def spend(day: date) -> float:
        return _read(week, "marketing", "ad_spend", day, "select sum(spend) from t")[0][0]

    assert max(spend(SAT), spend(SUN)) < spend(WED)

    year_later = date(2027, 11, 21)  # also a Sunday
    deliver_day(tmp_path, year_later, seed=SEED)
    assert 1.04 < _count(tmp_path, "shop", "orders", year_later) / orders[SUN] < 1.3


def test_references_hold_within_a_day(week: Path) -> None:
    def ids(source: str, table: str, column: str) -> set[str]:
        return {str(row[column]) for row in _records(week, source, table, SUN)}

    orders = ids("shop", "orders", "order_id")
    assert ids("shop", "orders", "customer_id") <= ids("shop", "customers", "customer_id")
    assert ids("shop", "order_items", "order_id") == orders
    assert ids("shop", "order_items", "product_id") <= ids("shop", "products", "product_id")
    assert ids("payments", "payments", "order_id") == orders
    customers = _records(week, "shop", "customers", SUN)
    assert max(str(row["signup_date"]) for row in customers) == str(SUN)


def test_failed_attempts_precede_one_succeeded_payment(week: Path) -> None:
    per_order = _read(week, "payments", "payments", SUN, """
        select
            order_id,
            count(*) filter (where status = 'succeeded') as succeeded,
            count(*) filter (where status = 'failed') as failed,
            max(created_at) filter (where status = 'failed')
                <= min(created_at) filter (where status = 'succeeded') as failed_first
        from t group by order_id""")
    assert all(succeeded <= 1 for _, succeeded, _, _ in per_order)
    retried = [row for row in per_order if row[1] == 1 and row[2] > 0]
    assert 0.05 < len(retried) / len(per_order) < 0.10
    assert all(row[3] for row in retried)
    pending = sum(row["status"] == "pending" for row in _records(week, "shop", "orders", SUN))
    assert sum(1 for row in per_order if row[1] == 0) == pending


def test_customers_keep_their_attributes_across_days(week: Path) -> None:
    def profiles(day: date) -> dict[object, tuple[object, ...]]:
        return {r["customer_id"]: (r["email"], r["first_name"], r["country_code"], r["signup_date"])
                for r in _records(week, "shop", "customers", day)}

    saturday, sunday = profiles(SAT), profiles(SUN)
    both = saturday.keys() & sunday.keys()
    assert len(both) > 50
    assert all(saturday[c] == sunday[c] for c in both)


def test_refunds_never_exceed_the_charge(week: Path) -> None:
    with duckdb.connect() as con:
        folder = partition_dir(week, "payments", "payments", SUN)
        con.execute(f"create view p as select * from read_json('{folder}/*.jsonl')")
        folder = partition_dir(week, "payments", "refunds", SUN)
        con.execute(f"create view r as select * from read_json('{folder}/*.jsonl')")
        same_day, over, not_succeeded = con.execute("""
            select count(*), count(*) filter (where r.amount > p.amount),
                   count(*) filter (where p.status <> 'succeeded')
            from r join p using (payment_id)""").fetchone()
    assert same_day > 0 and over == 0 and not_succeeded == 0


def test_rename_and_drop_column_change_the_header(faulty: Path, week: Path) -> None:
    items = partition_dir(faulty, "shop", "order_items", SUN) / "part-0000.csv"
    header = items.read_text().split("\n")[0].split(",")
    assert "qty" in header and "quantity" not in header
    refunds = (partition_dir(faulty, "payments", "refunds", SUN) / "part-0000.jsonl").read_text()
    assert '"reason"' not in refunds and '"refund_id"' in refunds
    assert _count(faulty, "payments", "refunds", SUN) == _count(week, "payments", "refunds", SUN)


def test_scale_column_multiplies_every_amount(faulty: Path, week: Path) -> None:
    sql = "select payment_id, amount from t order by payment_id"
    scaled = _read(faulty, "payments", "payments", SUN, sql)
    healthy = _read(week, "payments", "payments", SUN, sql)
    assert [p for p, _ in scaled] == [p for p, _ in healthy]
    assert all(abs(s - h * 100) < 0.01 for (_, s), (_, h) in zip(scaled, healthy, strict=True))


def test_null_fraction_blanks_that_share_of_the_column(faulty: Path) -> None:
    nulls, total = _read(faulty, "shop", "orders", SUN,
                         "select count(*) filter (where customer_id is null), count(*) from t")[0]
    assert 0.27 < nulls / total < 0.33


def test_duplicate_file_delivers_the_same_bytes_twice(faulty: Path, week: Path) -> None:
    folder = partition_dir(faulty, "marketing", "events", SUN)
    assert sorted(p.name for p in folder.iterdir()) == ["part-0000 (1).jsonl", "part-0000.jsonl"]
    original = partition_dir(week, "marketing", "events", SUN) / "part-0000.jsonl"
    assert (folder / "part-0000 (1).jsonl").read_bytes() == original.read_bytes()


def test_missing_partition_delivers_nothing_for_that_table_only(faulty: Path) -> None:
    assert not partition_dir(faulty, "marketing", "ad_spend", SUN).exists()
    assert partition_dir(faulty, "marketing", "events", SUN).exists()


def test_bad_date_format_writes_day_first_dates(faulty: Path) -> None:
    dates = [r[0] for r in _read(faulty, "shop", "customers", SUN, "select signup_date from t")]
    assert all(re.fullmatch(r"\d{2}/\d{2}/\d{4}", d) for d in dates)
    assert "22/11/2026" in dates
    with duckdb.connect() as con, pytest.raises(duckdb.ConversionException):
        con.execute("select cast(? as date)", [dates[0]])


def test_faults_apply_only_to_the_delivery_they_are_passed_to(
    faulty: Path, week: Path, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(faulty, landing)
    deliver_day(landing, SUN, seed=SEED)  # upstream re-sends the day, fixed
    assert _files(landing, SUN) == _files(week, SUN)


def test_invalid_faults_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="new_name"):
        UpstreamFault(kind="rename_column", source="shop", table="orders", column="status")
    with pytest.raises(ValidationError, match="unknown upstream table"):
        UpstreamFault(kind="missing_partition", source="shop", table="invoices")
    typo = UpstreamFault(kind="drop_column", source="payments", table="payments",
                         column="amount_usd")
    with pytest.raises(ValueError, match="has no column 'amount_usd'"):
        deliver_day(tmp_path, SUN, seed=SEED, faults=[typo])
    not_a_date = UpstreamFault(kind="bad_date_format", source="shop", table="customers",
                               column="email")
    with pytest.raises(ValueError, match="shop.customers.email is not a"):
        deliver_day(tmp_path, SUN, seed=SEED, faults=[not_a_date])

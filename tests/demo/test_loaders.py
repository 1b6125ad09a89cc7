"""Loaders against real deliveries and a real DuckDB file."""

from __future__ import annotations

import logging
import shutil
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from bot.demo.generator import UpstreamFault, deliver_day, partition_dir
from bot.demo.loaders import LoadResult, loader_names, run_loader
from bot.demo.paths import shipped_project

SEED = 3
SAT, SUN = date(2026, 11, 21), date(2026, 11, 22)
LOADED_AT = datetime(2026, 11, 23, 1, 30)
LOG = logging.getLogger("test.loaders")


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("landing")
    for day in (SAT, SUN):
        deliver_day(path, day, seed=SEED)
    return path


@pytest.fixture(scope="module")
def faulty_landing(tmp_path_factory: pytest.TempPathFactory, landing: Path) -> Path:
    """Saturday as delivered, then a bad Sunday."""
    path = tmp_path_factory.mktemp("faulty")
    shutil.copytree(landing, path, dirs_exist_ok=True)
    deliver_day(path, SUN, seed=SEED, faults=[
        UpstreamFault(kind="missing_partition", source="shop", table="orders"),
        UpstreamFault(kind="rename_column", source="payments", table="payments", column="amount",
                      new_name="amount_cents"),
        UpstreamFault(kind="bad_date_format", source="payments", table="refunds",
                      column="created_at"),
        UpstreamFault(kind="duplicate_file", source="marketing", table="ad_spend"),
    ])
    return path


def _load(
    name: str, day: date, landing: Path, warehouse: Path, repo: Path | None = None
) -> LoadResult:
    return run_loader(name, day, repo=repo or shipped_project(), landing=landing,
                      warehouse=warehouse, loaded_at=LOADED_AT, log=LOG)


def _query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def _csv_rows(landing: Path, table: str, day: date) -> int:
    path = partition_dir(landing, "shop", table, day) / "part-0000.csv"
    return path.read_text().count("\n") - 1  # less the header


def test_every_upstream_table_has_a_loader() -> None:
    assert loader_names(shipped_project()) == [
        "marketing_ad_spend", "marketing_events", "payments_payments", "payments_refunds",
        "shop_customers", "shop_order_items", "shop_orders", "shop_products",
    ]


def test_load_types_columns_filters_and_stamps_the_partition(landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    result = _load("shop_orders", SUN, landing, warehouse)

    orders_csv = partition_dir(landing, "shop", "orders", SUN) / "part-0000.csv"
    test_orders = orders_csv.read_text().count(",true,")  # is_test is the only boolean
    assert test_orders > 0
    assert result.rows == _csv_rows(landing, "orders", SUN) - test_orders
    assert result.target == "raw_shop.orders"
    assert [p.name for p in result.files] == ["part-0000.csv"]
    ((rows, loaded_at, partition, created_type),) = _query(warehouse, """
        select count(*), max(_loaded_at), max(_partition_date), any_value(typeof(created_at))
        from raw_shop.orders""")
    assert (rows, loaded_at, partition, created_type) == (result.rows, LOADED_AT, SUN, "TIMESTAMP")


def test_rerunning_a_day_replaces_its_partition(landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    saturday = _load("shop_order_items", SAT, landing, warehouse).rows
    first = _load("shop_order_items", SUN, landing, warehouse).rows
    again = _load("shop_order_items", SUN, landing, warehouse).rows

    assert first == again == _csv_rows(landing, "order_items", SUN)
    per_day = _query(warehouse, "select _partition_date, count(*) from raw_shop.order_items"
                                " group by 1 order by 1")
    assert per_day == [(SAT, saturday), (SUN, first)]


def test_snapshot_loader_replaces_the_table(landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    _load("shop_products", SAT, landing, warehouse)
    _load("shop_products", SUN, landing, warehouse)
    loaded = _query(warehouse, "select count(*), max(_partition_date) from raw_shop.products")
    assert loaded == [(400, SUN)]


def test_window_days_reloads_earlier_partitions(landing: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(shipped_project() / "loaders", repo / "loaders")
    config_path = repo / "loaders" / "marketing_ad_spend.yml"
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "window_days": 2}))

    result = _load("marketing_ad_spend", SUN, landing, tmp_path / "warehouse.duckdb", repo)

    assert len(result.files) == 2 and result.rows == 30
    assert _query(tmp_path / "warehouse.duckdb",
                  "select count(distinct _partition_date) from raw_marketing.ad_spend") == [(2,)]


def test_missing_partition_loads_nothing_and_warns(
    faulty_landing: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    saturday = _load("shop_orders", SAT, faulty_landing, warehouse).rows

    with caplog.at_level(logging.INFO, logger=LOG.name):
        result = _load("shop_orders", SUN, faulty_landing, warehouse)

    assert result.rows == 0 and result.files == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"dt={SUN}: no files matched shop/orders/dt={SUN}/*.csv; "
                        "nothing loaded for this partition"]
    assert _query(warehouse, "select count(*) from raw_shop.orders") == [(saturday,)]


def test_renamed_column_fails_with_duckdbs_binder_error(
    faulty_landing: Path, tmp_path: Path
) -> None:
    missing = 'does not have a column named "amount"'
    with pytest.raises(duckdb.BinderException, match=missing) as failure:
        _load("payments_payments", SUN, faulty_landing, tmp_path / "warehouse.duckdb")
    assert "amount_cents" in str(failure.value)  # DuckDB suggests the candidate
    context = "loader payments_payments, partition dt=2026-11-22"
    assert any(context in note for note in failure.value.__notes__)


def test_unparseable_timestamp_fails_with_conversion_error(
    faulty_landing: Path, tmp_path: Path
) -> None:
    with pytest.raises(duckdb.ConversionException, match="timestamp"):
        _load("payments_refunds", SUN, faulty_landing, tmp_path / "warehouse.duckdb")


def test_duplicate_file_is_loaded_twice(faulty_landing: Path, tmp_path: Path) -> None:
    result = _load("marketing_ad_spend", SUN, faulty_landing, tmp_path / "warehouse.duckdb")
    assert len(result.files) == 2 and result.rows == 30

"""The demo warehouse end to end: real deliveries, real loaders, real `dbt build` on DuckDB.

Two healthy days are delivered, loaded and built once per module; every scenario then works
on its own copy of that platform and checks what breaks, in dbt's own run_results.json.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pytest
from dbt.adapters.duckdb.connections import DuckDBConnectionManager
from dbt.cli.main import dbtRunner

from bot.demo.edits import CONFIG_EDIT, FANOUT_EDIT
from bot.demo.generator import UpstreamFault, deliver_day
from bot.demo.loaders import loader_names, run_loader
from bot.demo.paths import PlatformPaths, shipped_project

SEED = 11
DAYS = (date(2026, 11, 20), date(2026, 11, 21))  # a Friday and a Saturday
LAST = DAYS[-1]

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Build:
    """What one `dbt build` left behind."""

    statuses: dict[str, str]  # node name (tests without dbt's hash) -> status
    messages: dict[str, str]
    failures: dict[str, int]  # tests: rows returned
    warnings: list[str] = field(default_factory=list)  # warn-level log events

    def count(self, status: str) -> int:
        return Counter(self.statuses.values())[status]


def _node_name(unique_id: str) -> str:
    return unique_id.split(".")[2]


def _release_warehouse() -> None:
    """Close the DuckDB instance dbt-duckdb keeps open after `invoke` for the next one: the
    file is then checkpointed and free, and the next build opens its own platform's file."""
    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()
    DuckDBConnectionManager.close_all_connections()


class Platform(PlatformPaths):
    def write_profile(self) -> None:
        # Relative to the root (builds run there): every copy then has the same profile, and
        # dbt keeps partial parsing across copies instead of parsing the project again.
        self.profiles_dir.mkdir(parents=True, exist_ok=True)
        (self.profiles_dir / "profiles.yml").write_text(
            "sleuth_demo:\n  target: prod\n  outputs:\n    prod:\n      type: duckdb\n"
            f"      path: {self.warehouse.name}\n      threads: 2\n"
        )

    def load(self, day: date, names: list[str] | None = None) -> dict[str, int]:
        log = logging.getLogger("test.loader")
        loaded_at = datetime.combine(day + timedelta(days=1), time(1, 0))  # the nightly run
        return {
            name: run_loader(name, day, repo=self.repo, landing=self.landing,
                             warehouse=self.warehouse, loaded_at=loaded_at, log=log).rows
            for name in names or loader_names(self.repo)
        }

    def build(self, *select: str) -> Build:
        args = ["build", "--project-dir", str(self.repo), "--profiles-dir", str(self.profiles_dir),
                "--target", "prod", "--quiet"]
        if select:
            args += ["--select", *select]
        warnings: list[str] = []

        def on_event(event: object) -> None:
            info = event.info  # type: ignore[attr-defined]
            if info.level == "warn":
                warnings.append(info.msg)

        with contextlib.chdir(self.root):
            try:
                result = dbtRunner(callbacks=[on_event]).invoke(args)
            finally:
                _release_warehouse()
        assert result.exception is None, result.exception
        run = json.loads((self.dbt_target / "run_results.json").read_text())
        return Build(
            statuses={_node_name(r["unique_id"]): r["status"] for r in run["results"]},
            messages={_node_name(r["unique_id"]): r["message"] or "" for r in run["results"]},
            failures={_node_name(r["unique_id"]): r["failures"] or 0 for r in run["results"]},
            warnings=warnings,
        )

    def scalar(self, sql: str) -> int:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            row = con.execute(sql).fetchone()
        assert row is not None
        return int(row[0])

    def copy_to(self, root: Path) -> Platform:
        other = Platform(root)
        shutil.copytree(self.repo, other.repo, ignore=shutil.ignore_patterns("logs"))
        shutil.copytree(self.landing, other.landing)
        shutil.copyfile(self.warehouse, other.warehouse)
        other.write_profile()
        return other


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Platform, Build]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
        platform = Platform(tmp_path_factory.mktemp("platform"))
        shutil.copytree(shipped_project(), platform.repo,
                        ignore=shutil.ignore_patterns("dags", "target", "logs", "__pycache__"))
        platform.write_profile()
        for day in DAYS:
            deliver_day(platform.landing, day, seed=SEED)
            platform.load(day)
        return platform, platform.build()


@pytest.fixture
def scenario(healthy: tuple[Platform, Build], tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Platform:
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    return healthy[0].copy_to(tmp_path / "scenario")


def _orders_on(platform: Platform, table: str, day: date) -> int:
    return platform.scalar(f"select count(*) from {table} where order_date = '{day}'")


def test_healthy_days_build_fully_green(healthy: tuple[Platform, Build]) -> None:
    platform, build = healthy
    assert build.count("error") == build.count("fail") == build.count("warn") == 0
    assert build.count("skipped") == 0
    assert set(build.statuses.values()) <= {"success", "pass", "no-op"}
    assert not build.warnings, build.warnings
    assert build.count("success") >= 16 and build.count("pass") >= 60
    raw_orders = platform.scalar("select count(*) from raw_shop.orders")
    assert platform.scalar("select count(*) from marts.fct_orders") == raw_orders
    assert platform.scalar("select count(*) from marts.fct_daily_revenue") == len(DAYS)


def test_fanout_edit_duplicates_orders(scenario: Platform, healthy: tuple[Platform, Build]) -> None:
    before = scenario.scalar("select count(*) from marts.fct_orders")
    FANOUT_EDIT.apply(scenario.repo)

    build = scenario.build("int_orders_enriched+")

    assert build.statuses["unique_fct_orders_order_id"] == "fail"
    assert build.statuses["fct_orders"] == "success"
    after = scenario.scalar("select count(*) from marts.fct_orders")
    assert 1.04 < after / before < 1.15  # orders with a declined card before the charge
    assert scenario.scalar("select count(distinct order_id) from marts.fct_orders") == before


def test_config_edit_silently_drops_app_orders(scenario: Platform) -> None:
    before = _orders_on(scenario, "marts.fct_orders", LAST)
    CONFIG_EDIT.apply(scenario.repo)

    rows = scenario.load(LAST, ["shop_orders"])["shop_orders"]
    build = scenario.build("stg_shop__orders+")

    after = _orders_on(scenario, "marts.fct_orders", LAST)
    assert rows == after
    assert 0.3 < 1 - after / before < 0.6
    assert build.count("error") == build.count("fail") == build.count("skipped") == 0


def test_null_customer_ids_fail_not_null_test(scenario: Platform) -> None:
    fault = UpstreamFault(kind="null_fraction", source="shop", table="orders",
                          column="customer_id", fraction=0.3)
    deliver_day(scenario.landing, LAST, seed=SEED, faults=[fault])
    scenario.load(LAST, ["shop_orders"])

    build = scenario.build("stg_shop__orders+")

    assert build.statuses["not_null_stg_shop__orders_customer_id"] == "fail"
    failures = build.failures["not_null_stg_shop__orders_customer_id"]
    assert 0.25 < failures / _orders_on(scenario, "staging.stg_shop__orders", LAST) < 0.35


def test_bad_date_format_errors_customers_and_skips_downstream(scenario: Platform) -> None:
    fault = UpstreamFault(kind="bad_date_format", source="shop", table="customers",
                          column="signup_date")
    deliver_day(scenario.landing, LAST, seed=SEED, faults=[fault])
    scenario.load(LAST, ["shop_customers"])

    build = scenario.build("stg_shop__customers+")

    assert build.statuses["stg_shop__customers"] == "error"
    assert "Conversion Error" in build.messages["stg_shop__customers"]
    assert build.count("skipped") >= 5
    for node in ("dim_customers", "fct_orders", "fct_daily_revenue"):
        assert build.statuses[node] == "skipped"

"""The metrics source over the demo metric store: synthetic series, then the demo's own runs.

Fast tests write series into a real SQLite metric store (`bot.demo.metrics`); the slow ones
run demo scenarios for real (one shared healthy history, see tests/conftest.py) and poll what
the platform recorded with the default demo watches.
"""

from __future__ import annotations

import json
import logging
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import (
    DEMO_WATCHES,
    ConfigError,
    DbtConfig,
    DemoMetricsConfig,
    MetricWatch,
    Settings,
    SourcesConfig,
    load_settings,
)
from bot.demo.metrics import MetricsStore, Sample
from bot.demo.paths import DAG_ID, PlatformPaths
from bot.demo.platform import run_scenario
from bot.demo.runs import get_run
from bot.demo.scenarios import get_scenario
from bot.intake.baseline import BaselineConfig
from bot.intake.signals import RawSignal
from bot.sources.metrics import (
    DemoStoreBackend,
    MetricsCursor,
    MetricsSource,
    parse_demo_query,
)
from tests.conftest import DEMO_DAYS, DEMO_SEED

DAY0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 02:00: the nightly run
LENIENT = BaselineConfig(min_history=3)


def source(path: Path, *watches: MetricWatch, project: str | None = "shop") -> MetricsSource:
    config = DemoMetricsConfig(path=path, watches=list(watches))
    return MetricsSource(config, DemoStoreBackend(path), dbt_project=project)


def batch(name: str, query: str, **extra: object) -> MetricWatch:
    return MetricWatch.model_validate({"name": name, "query": query, "sensitivity": LENIENT,
                                       **extra})


def nightly(store: MetricsStore, name: str, labels: dict[str, str], values: list[float],
            offset: timedelta = timedelta(0)) -> None:
    store.record_many(Sample(name=name, labels=labels, ts=DAY0 + timedelta(days=i) + offset,
                             value=v) for i, v in enumerate(values))


def roundtrip(cursor: MetricsCursor) -> dict:
    """What the scheduler stores and hands back: plain JSON."""
    return json.loads(json.dumps(cursor.model_dump(mode="json")))


# ------------------------------------------------------------------------------- queries


def test_demo_queries_parse_selectors_and_ratios() -> None:
    top, bottom = parse_demo_query('rows_loaded{source="shop", table=\'orders\'}')
    assert (top.name, top.matchers, bottom) == ("rows_loaded", {"source": "shop",
                                                                "table": "orders"}, None)
    top, bottom = parse_demo_query('a{m="x"} / b')
    assert (top.name, top.matchers, bottom and bottom.name) == ("a", {"m": "x"}, "b")


@pytest.mark.parametrize("query", ['a{m!="x"}', "a / b / c", "rate(a[5m])", "", 'a{m=x}'])
def test_demo_queries_refuse_what_the_store_cannot_answer(query: str) -> None:
    with pytest.raises(ValueError, match="query"):
        parse_demo_query(query)


# ------------------------------------------------------------------------------- batch


def test_a_batch_drop_is_one_signal_and_the_cursor_remembers(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "m.sqlite")
    orders = [5000, 4800, 4900, 5100, 6100, 6300, 5050, 4850, 2400]
    nightly(store, "rows_loaded", {"source": "shop", "table": "orders"}, orders)
    nightly(store, "rows_loaded", {"source": "shop", "table": "items"}, [12_000] * 9)
    metrics = source(store.path, batch("rows", "rows_loaded", sensitivity=BaselineConfig(
        min_history=3, min_change=0.4)))
    now = DAY0 + timedelta(days=9)

    (signal,), cursor = metrics.poll(now=now)
    assert signal.kind == "metric_anomaly" and signal.source == "metrics:demo"
    assert signal.asset == "source.shop.shop.orders"
    assert signal.title == "rows_loaded{source=shop,table=orders} dropped 52% below its usual 5,025"
    assert signal.observed_at == DAY0 + timedelta(days=8)
    assert signal.detail["observed"] == 2400 and signal.detail["expected"] == 5025
    assert signal.detail["direction"] == "drop" and signal.detail["z"] < -4
    assert signal.detail["points"][-1] == [signal.observed_at.isoformat(), 2400.0]
    assert len(signal.detail["points"]) == 9
    assert signal.detail["window"]["end"] == now.isoformat()

    assert metrics.poll(roundtrip(cursor), now=now)[0] == []
    nightly(store, "rows_loaded", {"source": "shop", "table": "orders"}, [4950],
            offset=timedelta(days=9))
    assert metrics.poll(roundtrip(cursor), now=now + timedelta(days=1))[0] == []


def test_a_ratio_shows_what_each_metric_hides(tmp_path: Path) -> None:
    """Orders per order item: both swing with the weekday, their ratio only with the fault."""
    store = MetricsStore(tmp_path / "m.sqlite")
    weekly = [1.0, 0.95, 0.93, 0.96, 1.02, 1.18, 1.24, 1.0, 0.95]
    items = [12_000 * w for w in weekly]
    orders = [i * 0.415 for i in items[:-1]] + [items[-1] * 0.25]
    nightly(store, "rows_loaded", {"table": "orders"}, orders)
    nightly(store, "rows_loaded", {"table": "items"}, items, offset=timedelta(seconds=40))
    ratio = batch("orders_per_item", 'rows_loaded{table="orders"} / rows_loaded{table="items"}')
    strict = batch("rows_strict", "rows_loaded")  # min_change 20%: weekends break it
    demo_like = batch("rows", "rows_loaded", sensitivity=BaselineConfig(min_history=3,
                                                                        min_change=0.5))
    signals, _ = source(store.path, ratio, strict, demo_like).poll(now=DAY0 + timedelta(days=9))
    (signal,) = [s for s in signals if s.detail["watch"] == "orders_per_item"]
    assert signal.title == "orders_per_item{table=orders} dropped 40% below its usual 0.415"
    assert signal.detail["observed"] == pytest.approx(0.25)
    assert signal.observed_at == DAY0 + timedelta(days=8)  # the numerator's time
    strict_days = {s.observed_at.date() for s in signals if s.detail["watch"] == "rows_strict"}
    assert strict_days == {(DAY0 + timedelta(days=d)).date() for d in (5, 6, 8)}  # + weekend
    assert not [s for s in signals if s.detail["watch"] == "rows"]


def test_a_series_with_a_broken_asset_template_falls_back(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    store = MetricsStore(tmp_path / "m.sqlite")
    nightly(store, "task_duration_seconds", {"dag_id": "etl", "task_id": "load"},
            [10, 11, 10, 12, 10, 60])
    nightly(store, "kpi", {"name": "revenue"}, [100, 101, 99, 100, 98, 400])
    metrics = source(store.path, batch("durations", "task_duration_seconds"),
                     batch("kpi", "kpi", asset="exposure.shop.{dashboard}"),
                     batch("kpi_named", "kpi", asset="exposure.shop.{name}"))
    with caplog.at_level(logging.WARNING):
        signals, _ = metrics.poll(now=DAY0 + timedelta(days=6))
    assert {s.detail["watch"]: s.asset for s in signals} == {
        "durations": "task.etl.load", "kpi": "metric:kpi{name=revenue}",
        "kpi_named": "exposure.shop.revenue"}
    assert "{dashboard}" in caplog.text
    assert next(s for s in signals if s.detail["watch"] == "kpi").title == \
        "kpi{name=revenue} rose to 4.0x its usual 100"


def test_a_bad_query_skips_its_watch_only(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "m.sqlite")
    nightly(store, "kpi", {"name": "orders"}, [100, 101, 99, 100, 300])
    metrics = source(store.path, batch("bad", 'kpi{name!="x"}'), batch("kpi", "kpi"))
    signals, cursor = metrics.poll(now=DAY0 + timedelta(days=5))
    assert [s.detail["watch"] for s in signals] == ["kpi"] and "bad" not in cursor.watches
    (problem,) = metrics.check()
    assert "kpi{name!=\"x\"}" in problem and str(store.path) in problem


def test_changing_a_watch_query_starts_its_series_afresh(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "m.sqlite")
    nightly(store, "kpi", {"name": "orders"}, [100, 101, 99, 100, 300])
    now = DAY0 + timedelta(days=5)
    _, cursor = source(store.path, batch("kpi", "kpi")).poll(now=now)
    again, _ = source(store.path, batch("kpi", 'kpi{name="orders"}')).poll(roundtrip(cursor),
                                                                           now=now)
    assert len(again) == 1  # judged again from scratch, not remembered as seen


# ------------------------------------------------------------------------------- stream


def dense(store: MetricsStore, spike_at: int, n: int = 3 * 288) -> list[datetime]:
    rng = random.Random(3)
    times = [DAY0 + timedelta(minutes=5 * i) for i in range(n)]
    values = [200 + 80 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 6) for i in range(n)]
    values[spike_at] *= 2.2
    store.record_many(Sample(name="orders_5m", labels={"shop": "eu"}, ts=t, value=v)
                      for t, v in zip(times, values, strict=True))
    return times


def test_a_stream_spike_is_one_signal_whether_polled_once_or_often(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "m.sqlite")
    times = dense(store, spike_at=700)
    watch = MetricWatch(name="orders", query="orders_5m", mode="stream", step="5m")
    metrics = source(store.path, watch)
    end = times[-1] + timedelta(minutes=1)

    (signal,), cursor = metrics.poll(now=end)
    assert signal.observed_at == times[700] and signal.detail["direction"] == "spike"
    assert signal.detail["score"] >= 0.5 and "rose" in signal.title
    assert signal.asset == "metric:orders_5m{shop=eu}"
    assert len(json.dumps(cursor.model_dump(mode="json"))) < 100_000

    stepwise: list[RawSignal] = []
    state: MetricsCursor | dict | None = None
    for cut in range(100, len(times) + 100, 100):
        found, new_state = metrics.poll(state, now=times[min(cut, len(times) - 1)])
        stepwise += found
        state = roundtrip(new_state)
    assert [s.dedup_key for s in stepwise] == [signal.dedup_key]


# ------------------------------------------------------------------------------- config


def test_demo_defaults_fill_the_watches_and_keep_the_users(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path).with_defaults()
    metrics = settings.sources.metrics
    assert isinstance(metrics, DemoMetricsConfig)
    assert metrics.path == settings.demo_platform.metrics_db
    assert [w.name for w in metrics.watches or []] == [w.name for w in DEMO_WATCHES]
    own = Settings(home=tmp_path, sources=SourcesConfig(metrics=DemoMetricsConfig(
        watches=[batch("kpi", "kpi")]))).with_defaults()
    assert [w.name for w in own.sources.metrics.watches or []] == ["kpi"]


def test_watches_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sleuth.yaml"
    path.write_text("""
sources:
  metrics:
    kind: prometheus
    url: http://prom:9090
    bearer_token_env: PROM_TOKEN
    watches:
      - name: orders
        query: sum by (shop) (rate(orders_total[5m]))
        mode: stream
        step: 1m
        lookback: 3d
        sensitivity: {sensitivity: 0.3}
      - name: rows
        query: last_over_time(rows_loaded[1d])
        step: 1d
        asset: "source.shop.{source}.{table}"
        sensitivity: {min_change: 0.3}
""")
    metrics = load_settings(path).sources.metrics
    stream, rows = metrics.watches or []
    assert stream.step == timedelta(minutes=1) and stream.window == timedelta(days=3)
    assert stream.detector.sensitivity == 0.3
    assert rows.mode == "batch" and rows.baseline.min_change == 0.3
    assert rows.window == timedelta(days=62)


def test_a_watch_sensitivity_must_fit_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "sleuth.yaml"
    path.write_text("sources:\n  metrics:\n    watches:\n"
                    "      - {name: a, query: kpi, mode: stream, sensitivity: {min_change: 1}}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "DetectorConfig settings for a stream watch (min_change: Extra" in str(err.value)
    path.write_text("sources:\n  metrics:\n    watches:\n"
                    "      - {name: a, query: kpi}\n      - {name: a, query: rows_loaded}\n")
    with pytest.raises(ConfigError, match="distinct names"):
        load_settings(path)


# ------------------------------------------------------------------------------- the demo

# What the default demo watches must say of each scenario's fault day: required signals,
# and the assets any other signal may have (a fault moves more than one number).
P = "sleuth_demo"
DEMO_EXPECT: dict[str, tuple[set[tuple[str, str]], set[str]]] = {
    "flaky_network": (set(), set()),
    "fanout_commit": ({("orders_enriched_per_order", f"model.{P}.int_orders_enriched")}, set()),
    "loader_filter_change": ({("orders_per_order_item", f"source.{P}.shop.orders")},
                             {f"source.{P}.shop.orders", f"exposure.{P}.revenue_dashboard"}),
    "duplicate_delivery": ({("rows_loaded", f"source.{P}.marketing.events")}, set()),
    "amounts_in_cents": ({("kpi", f"exposure.{P}.revenue_dashboard")}, set()),
    "late_partition": ({("rows_loaded", f"source.{P}.payments.payments")},
                       {f"exposure.{P}.revenue_dashboard"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DEMO_EXPECT))
def test_the_demo_watches_catch_the_scenarios_metric_symptoms(
        name: str, demo_platform: tuple[PlatformPaths, Path]) -> None:
    paths, cache = demo_platform
    outcome = run_scenario(get_scenario(name), paths=paths, days=DEMO_DAYS, seed=DEMO_SEED,
                           cache=cache)
    settings = Settings(home=paths.root.parent, sources=SourcesConfig(
        dbt=DbtConfig(project_dir=paths.repo), metrics=DemoMetricsConfig(path=paths.metrics_db)))
    metrics = MetricsSource.from_settings(settings)
    assert metrics.check() == []

    signals, cursor = metrics.poll()
    required, allowed = DEMO_EXPECT[name]
    found = {(s.detail["watch"], s.asset) for s in signals}
    assert required <= found, [s.title for s in signals]
    assert {asset for _, asset in found - required} <= allowed, [s.title for s in signals]
    fault_run = get_run(paths.runs_db, outcome.fault.run_id, dag_id=DAG_ID)
    assert fault_run is not None
    assert all(s.observed_at >= fault_run.start_date for s in signals)  # the history is quiet

    stored = roundtrip(cursor)
    assert metrics.poll(stored)[0] == []
    assert MetricsCursor.model_validate(stored) == cursor

"""Metric tools over a real demo metric store (SQLite) filled here."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.report import REFERENCE_FORMATS
from agents.tools.base import Tool
from agents.tools.metrics import judge_points, level_shift, metric_tools
from bot.demo.metrics import MetricsStore
from bot.sources.metrics import DemoStoreBackend
from bot.world.metrics import Metrics

DAY0 = datetime(2026, 11, 1, 2, tzinfo=UTC)
FAILURE = DAY0 + timedelta(days=20, minutes=30)


@pytest.fixture
def metrics(tmp_path: Path) -> Metrics:
    store = MetricsStore(tmp_path / "metrics.sqlite")
    for day in range(22):
        at = DAY0 + timedelta(days=day)
        orders = 5000 + 37 * (day % 5) + (2600 if day == 20 else 0)  # a spike on day 20
        store.record("rows_loaded", {"source": "shop", "table": "orders"}, at, orders)
        store.record("rows_loaded", {"source": "shop", "table": "items"}, at, 12000 + day % 3)
        store.record("model_row_count", {"model": "fct"}, at, 100 if day < 14 else 160)
    return Metrics(DemoStoreBackend(store.path))


def tools(metrics: Metrics) -> dict[str, Tool]:
    return {t.name: t for t in metric_tools(metrics)}


def refs_ok(out) -> bool:
    return bool(out.citations) and all(
        re.fullmatch(REFERENCE_FORMATS["metric"][0], c.reference) for c in out.citations)


def test_query_metric_reads_the_series_with_a_cited_window(metrics) -> None:
    out = tools(metrics)["query_metric"].call({
        "query": 'rows_loaded{table="orders"}', "since": DAY0.isoformat(),
        "until": (DAY0 + timedelta(days=30)).isoformat()})
    assert out.status == "ok" and len(out.data["series"]) == 1
    assert out.data["series"][0]["points"] == 22 and refs_ok(out)
    reference = out.citations[0].reference
    assert reference.startswith('metric:rows_loaded{source="shop",table="orders"}@')


def test_find_changes_finds_the_spike_and_the_level_shift(metrics) -> None:
    t = tools(metrics)
    window = {"since": DAY0.isoformat(), "until": (DAY0 + timedelta(days=30)).isoformat()}
    spikes = t["find_changes"].call({"query": "rows_loaded", **window})
    assert "rows_loaded{source=shop,table=orders}: spike" in spikes.summary
    orders = next(s for s in spikes.data["series"] if "orders" in s["series"])
    assert [s["at"][:10] for s in orders["spikes"]] == ["2026-11-21"]
    items = next(s for s in spikes.data["series"] if "items" in s["series"])
    assert not items["spikes"] and items["level_shift"] is None
    shift = t["find_changes"].call({"query": "model_row_count", **window})
    assert shift.data["series"][0]["level_shift"]["at"].startswith("2026-11-15")


def test_align_with_says_when_the_metric_moved_against_the_failure(metrics) -> None:
    out = tools(metrics)["align_with"].call({"time": FAILURE.isoformat(),
                                             "query": 'rows_loaded{table="orders"}',
                                             "before_days": 14})
    row = out.data["series"][0]
    assert row["hours_from_failure"] == -0.5 and "moved 0.5 h before the failure" in out.summary
    assert refs_ok(out)


def test_a_query_the_store_cannot_read_says_what_it_holds(metrics) -> None:
    out = tools(metrics)["query_metric"].call({"query": 'rows_loaded{table=~"o.*"}'})
    assert out.status == "error" and "model_row_count" in (out.error or "")
    none = tools(metrics)["query_metric"].call({"query": "nope"})
    assert none.status == "no_data" and "rows_loaded" in none.summary


def test_the_robust_judge_ignores_noise_and_keeps_faults_out_of_the_baseline() -> None:
    pts = [(DAY0 + timedelta(days=i), v) for i, v in enumerate([10, 12, 11, 10, 11, 40, 41, 11])]
    judged = judge_points(pts)
    assert [p["anomalous"] for p in judged] == [False] * 5 + [True, True, False]
    assert level_shift([(DAY0 + timedelta(days=i), 10.0 + (i % 2)) for i in range(12)]) is None

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.demo.metrics import MetricsStore, Sample, canonical_labels

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> MetricsStore:
    store = MetricsStore(tmp_path / "metrics.sqlite")
    for day in range(5):
        ts = T0 + timedelta(days=day)
        store.record("rows_loaded", {"source": "shop", "table": "orders"}, ts, 1000 + day)
        store.record("rows_loaded", {"table": "payments", "source": "payments"}, ts, 900 + day)
        store.record("kpi", {"name": "revenue"}, ts, 50_000.5 + day)
    return store


def test_query_by_name_returns_one_series_per_label_set_in_time_order(store: MetricsStore) -> None:
    series = store.query("rows_loaded")
    assert sorted(s.labels["table"] for s in series) == ["orders", "payments"]
    orders = next(s for s in series if s.labels["table"] == "orders")
    assert [p.value for p in orders.points] == [1000, 1001, 1002, 1003, 1004]
    assert [p.ts for p in orders.points] == [T0 + timedelta(days=d) for d in range(5)]
    assert all(s.name == "rows_loaded" for s in series)


def test_label_matchers_select_series(store: MetricsStore) -> None:
    (series,) = store.query("rows_loaded", {"source": "payments"})
    assert series.labels == {"source": "payments", "table": "payments"}
    assert store.query("rows_loaded", {"source": "payments", "table": "orders"}) == []
    assert store.query("rows_loaded", {"nope": "x"}) == []


def test_time_range_is_inclusive(store: MetricsStore) -> None:
    (series,) = store.query(
        "kpi", {"name": "revenue"}, start=T0 + timedelta(days=1), end=T0 + timedelta(days=3)
    )
    assert [p.value for p in series.points] == [50_001.5, 50_002.5, 50_003.5]
    assert store.query("kpi", start=T0 + timedelta(days=10)) == []


def test_same_sample_again_replaces_instead_of_doubling(store: MetricsStore) -> None:
    store.record("kpi", {"name": "revenue"}, T0, 1.0)
    (series,) = store.query("kpi")
    assert len(series.points) == 5
    assert series.points[0].value == 1.0


def test_labels_are_canonical_json(store: MetricsStore) -> None:
    assert canonical_labels({"table": "t", "source": "s"}) == '{"source":"s","table":"t"}'
    with sqlite3.connect(store.path) as con:
        stored = {
            r[0] for r in con.execute("select labels from samples where name = 'rows_loaded'")
        }
    assert stored == {
        '{"source":"shop","table":"orders"}',
        '{"source":"payments","table":"payments"}',
    }


def test_record_many_and_names(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "m.sqlite")
    assert store.query("anything") == [] and store.names() == []
    store.record_many(
        [Sample(name="b", labels={}, ts=T0, value=1), Sample(name="a", labels={}, ts=T0, value=2)]
    )
    assert store.names() == ["a", "b"]
    assert store.query("a")[0].points[0].value == 2


def test_naive_timestamps_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        MetricsStore(tmp_path / "m.sqlite").record("x", {}, datetime(2026, 1, 1), 1.0)

"""MetricsSource over a real Prometheus: the planted spike and drop are signals, nothing else is.

With SLEUTH_RECORD=1 this also records the server's raw answers into
tests/sources/recordings/prometheus/, which `tests/sources/test_prometheus.py` replays.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest

from bot.config import MetricWatch, PrometheusMetricsConfig
from bot.sources.metrics import MetricsCursor, MetricsSource, PrometheusBackend
from bot.sources.prometheus import PrometheusClient, PrometheusError
from tests.integration.prometheus.conftest import METRIC, STEP, Planted

pytestmark = pytest.mark.integration

RECORDINGS = Path(__file__).parents[2] / "sources" / "recordings" / "prometheus"


def source(url: str) -> MetricsSource:
    config = PrometheusMetricsConfig(kind="prometheus", url=url, watches=[
        MetricWatch(name="orders", query=METRIC, mode="stream", step="5m", lookback="5d")])
    return MetricsSource(config, PrometheusBackend(PrometheusClient.from_config(config)))


def test_planted_spike_and_drop_are_the_only_signals(prometheus: Planted) -> None:
    metrics = source(prometheus.url)
    assert metrics.check() == []
    now = prometheus.end + timedelta(minutes=30)
    signals, cursor = metrics.poll(now=now)
    by_direction = {s.detail["direction"]: s for s in signals}
    assert len(signals) == 2 and set(by_direction) == {"spike", "drop"}
    spike, drop = by_direction["spike"], by_direction["drop"]
    assert spike.observed_at == prometheus.spike
    assert prometheus.drop[0] <= drop.observed_at <= prometheus.drop[1]
    for signal in signals:
        assert signal.kind == "metric_anomaly" and signal.source == "metrics:prometheus"
        assert signal.asset == f"metric:{METRIC}{{shop=eu}}"
        assert signal.detail["labels"] == {"shop": "eu"}
        assert signal.detail["points"][-1][0] == signal.observed_at.isoformat()
    assert "rose" in spike.title and "dropped" in drop.title

    again, _ = metrics.poll(json.loads(cursor.model_dump_json()), now=now + STEP)
    assert again == []


def test_polling_in_two_steps_finds_what_one_poll_finds(prometheus: Planted) -> None:
    metrics = source(prometheus.url)
    now = prometheus.end + timedelta(minutes=30)
    once, _ = metrics.poll(now=now)
    first, cursor = metrics.poll(now=prometheus.spike - timedelta(hours=2))
    assert first == []
    second, _ = metrics.poll(MetricsCursor.model_validate_json(cursor.model_dump_json()),
                             now=now)
    assert sorted(s.dedup_key for s in second) == sorted(s.dedup_key for s in once)


def test_long_ranges_are_split_and_joined(prometheus: Planted) -> None:
    with PrometheusClient(prometheus.url) as whole, \
            PrometheusClient(prometheus.url, max_points=100) as pieces:
        args = (METRIC, prometheus.start, prometheus.end, STEP)
        assert pieces.query_range(*args) == whole.query_range(*args)
        (eu, _) = sorted(whole.query_range(*args).series, key=lambda s: s.labels["shop"])
        assert len(eu.points) == 4 * 288


def test_a_syntax_error_names_the_query(prometheus: Planted) -> None:
    with PrometheusClient(prometheus.url) as client, pytest.raises(PrometheusError) as err:
        client.query_range("sum(", prometheus.start, prometheus.end, STEP)
    assert "'sum('" in str(err.value) and "bad_data" in str(err.value)
    assert prometheus.url in str(err.value)


@pytest.mark.skipif(not os.environ.get("SLEUTH_RECORD"), reason="set SLEUTH_RECORD=1 to record")
def test_record_answers(prometheus: Planted) -> None:
    """The server's raw answers, replayed by tests/sources/test_prometheus.py."""
    start, end = prometheus.end - 5 * STEP, prometheus.end
    params = {"start": f"{start.timestamp():.0f}", "end": f"{end.timestamp():.0f}",
              "step": f"{STEP.total_seconds():.0f}"}
    calls = {
        "query_range": ("/api/v1/query_range", {"query": METRIC, **params}),
        "syntax_error": ("/api/v1/query_range", {"query": "sum(", **params}),
        "empty": ("/api/v1/query_range", {"query": "no_such_metric", **params}),
        "buildinfo": ("/api/v1/status/buildinfo", {}),
    }
    RECORDINGS.mkdir(parents=True, exist_ok=True)
    for name, (path, query) in calls.items():
        response = httpx2.get(prometheus.url + path, params=query, timeout=10)
        record = {"request": {"path": path, "params": query}, "status": response.status_code,
                  "content_type": response.headers.get("content-type"), "body": response.json()}
        (RECORDINGS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")

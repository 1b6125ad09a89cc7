"""The streaming anomaly detector: spikes, shifts, seasonality, state, events."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from bot.intake.anomaly import (
    Detector,
    DetectorConfig,
    Score,
    SeriesDetector,
    SeriesState,
    anomaly_events,
)

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def steady(n: int, level: float = 100.0, noise: float = 2.0, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0.0, noise) for _ in range(n)]


def weekly(n: int, seed: int = 2) -> list[float]:
    """Hourly values of a busy business metric: a daytime bump on weekdays, quiet weekends."""
    rng = random.Random(seed)
    values = []
    for i in range(n):
        moment = MONDAY + i * HOUR
        daytime = math.sin(math.pi * (moment.hour - 6) / 12) if 6 <= moment.hour <= 18 else 0.0
        business = 1.0 if moment.weekday() < 5 else 0.25
        values.append(100.0 + 60.0 * daytime * business + rng.gauss(0.0, 2.0))
    return values


def run(
    values: Sequence[float | None],
    times: Sequence[datetime | float] | None = None,
    config: DetectorConfig | None = None,
) -> list[Score]:
    detector = SeriesDetector(config)
    times = times or [MONDAY + i * HOUR for i in range(len(values))]
    return [detector.update(ts, value) for ts, value in zip(times, values, strict=True)]


def alerts(scores: Sequence[Score], start: int = 0) -> list[int]:
    return [i for i, s in enumerate(scores) if s.alert and i >= start]


def test_a_level_shift_alerts_within_a_few_points_and_once() -> None:
    values = steady(400) + steady(60, level=120.0, seed=3)

    scores = run(values)

    assert alerts(scores, start=40) and 400 <= alerts(scores, start=40)[0] <= 403
    assert len(alerts(scores, start=40)) == 1, "a lasting shift is one anomaly, not sixty"
    assert scores[alerts(scores, start=40)[0]].direction == "spike"


def test_a_spike_and_a_drop_alert_with_their_direction_and_expectation() -> None:
    values = steady(500)
    values[300] += 25.0
    values[420] -= 25.0

    scores = run(values)

    assert alerts(scores, start=40) == [300, 420]
    assert scores[300].direction == "spike" and scores[420].direction == "drop"
    assert scores[300].expected == pytest.approx(100.0, abs=3.0)


def test_a_young_daily_metric_that_halves_alerts() -> None:
    days = [MONDAY + timedelta(days=i) for i in range(61)]
    rows_loaded = steady(60, level=1000.0, noise=50.0, seed=4) + [500.0]

    scores = run(rows_loaded, days)

    assert alerts(scores) == [60] and scores[60].direction == "drop"


def test_noise_alone_does_not_alert_after_warm_up() -> None:
    scores = run(steady(3000, seed=5))

    assert alerts(scores, start=DetectorConfig().warmup) == []


def test_a_weekly_seasonal_series_does_not_alert_once_a_week_is_learned() -> None:
    values = weekly(24 * 7 * 6)

    scores = run(values)

    # the first week shows every hour of the week for the first time: it is the warm-up
    assert alerts(scores, start=24 * 7) == []
    assert max(s.raw for s in scores[24 * 8 :]) < 0.5


def test_a_normal_value_at_an_unusual_time_of_week_is_an_anomaly() -> None:
    values = weekly(24 * 7 * 6)
    sunday_3am = 24 * 7 * 5 - 21  # week 5, Sunday 03:00, when the metric sleeps
    values[sunday_3am] = 158.0  # an ordinary weekday-noon value, within the usual range
    assert min(values) < 158.0 < max(values)

    scores = run(values)

    assert alerts(scores, start=24 * 7) == [sunday_3am]
    assert scores[sunday_3am].expected == pytest.approx(100.0, abs=6.0)


def test_a_long_anomaly_is_kept_out_of_training_until_it_lasts() -> None:
    outage = steady(400) + [40.0 + v - 100.0 for v in steady(20, seed=7)] + steady(100, seed=8)
    detector = SeriesDetector(DetectorConfig(max_anomaly_run=30))

    scores = [detector.update(MONDAY + i * HOUR, value) for i, value in enumerate(outage[:425])]
    # five points after the outage, none of its values is among those the baselines learned
    assert min(detector.state.recent) > 90.0
    scores += [detector.update(MONDAY + i * HOUR, outage[i]) for i in range(425, len(outage))]

    # twenty points in, the baseline still expects the old level, not the outage
    assert scores[419].expected == pytest.approx(100.0, abs=3.0)
    assert scores[419].raw > 0.5 and scores[419].anomalous
    # and the return to normal is not an anomaly of its own
    assert alerts(scores, start=420) == []


def test_a_shift_that_lasts_becomes_the_new_normal() -> None:
    config = DetectorConfig(max_anomaly_run=30)
    values = steady(400) + steady(300, level=60.0, seed=9)

    scores = run(values, config=config)

    assert scores[400].alert
    assert scores[500].expected == pytest.approx(60.0, abs=3.0)
    assert max(s.raw for s in scores[520:]) < 0.5


def test_restored_state_continues_exactly_like_the_original() -> None:
    values = weekly(24 * 7 * 3)
    anomaly, cut = range(24 * 7 * 2 + 58, 24 * 7 * 2 + 64), 24 * 7 * 2 + 60  # Wednesday
    for i in anomaly:
        values[i] += 40.0
    times = [MONDAY + i * HOUR for i in range(len(values))]
    whole = run(values, times)
    assert whole[anomaly[0]].alert and whole[cut].anomalous

    first = SeriesDetector()
    for ts, value in zip(times[:cut], values[:cut], strict=True):
        first.update(ts, value)
    # stored in the middle of the anomaly: held points and suppression must survive
    assert first.state.pending and first.state.reported > 0
    stored = json.loads(json.dumps(first.to_dict()))
    second = SeriesDetector.from_dict(stored)
    resumed = [
        second.update(ts, value) for ts, value in zip(times[cut:], values[cut:], strict=True)
    ]

    assert [s.model_dump() for s in resumed] == [s.model_dump() for s in whole[cut:]]


def test_the_stored_state_does_not_grow_with_the_series() -> None:
    detector = SeriesDetector()
    sizes = []
    for i, value in enumerate(weekly(24 * 7 * 8)):
        detector.update(MONDAY + i * HOUR, value)
        if i + 1 in (24 * 7 * 4, 24 * 7 * 8):
            sizes.append(len(json.dumps(detector.to_dict())))

    assert sizes[1] < 1.1 * sizes[0]


def test_missing_values_and_untidy_timestamps_do_not_break_scoring() -> None:
    detector = Detector()
    state = detector.new_state()
    start = 1_700_000_000.0
    untidy: list[tuple[datetime | float, float | None]] = [
        (start + 60.0 * i + (17.0 if i % 7 == 0 else 0.0), 10.0 + (i % 5)) for i in range(200)
    ]
    untidy += [
        (start + 60.0 * 199, 11.0),  # repeated timestamp
        (start + 60.0 * 150, 12.0),  # out of order
        (start + 60.0 * 400, 13.0),  # long gap
        (start + 60.0 * 401, float("nan")),
        (start + 60.0 * 402, None),
        (start + 60.0 * 403, float("inf")),
        (datetime(2023, 11, 14, 23, 0), 12.0),  # naive datetime: read as UTC
    ]

    scores = []
    for ts, value in untidy:
        score, state = detector.update(state, ts, value)
        scores.append(score)

    assert all(0.0 <= s.score <= 1.0 and 0.0 <= s.raw <= 1.0 for s in scores)
    assert [s.note for s in scores[-4:-1]] == ["missing value"] * 3
    assert all(s.score == 0.0 and s.value is None for s in scores[-4:-1])
    assert scores[-1].ts.tzinfo is not None
    assert state.missing == 3
    SeriesState.from_dict(json.loads(json.dumps(state.to_dict())))


def test_events_group_anomalous_points_with_peak_direction_and_expectation() -> None:
    values = steady(600)
    values[300:304] = [150.0, 170.0, 160.0, 140.0]
    values[500] = 40.0

    events = anomaly_events(run(values))

    assert [(e.direction, e.points) for e in events] == [("spike", 4), ("drop", 1)]
    spike, drop = events
    assert spike.start == MONDAY + 300 * HOUR and spike.end == MONDAY + 303 * HOUR
    assert spike.peak == MONDAY + 301 * HOUR and spike.observed == 170.0
    assert spike.expected == pytest.approx(100.0, abs=3.0)
    assert drop.observed == 40.0 and drop.peak_score > 0.5


@pytest.mark.parametrize("make", [lambda: steady(500, seed=11), lambda: weekly(500)])
def test_higher_sensitivity_never_lowers_a_score(make: Callable[[], list[float]]) -> None:
    values = make()
    values[450] += 12.0

    calm = run(values, config=DetectorConfig(sensitivity=0.2))
    keen = run(values, config=DetectorConfig(sensitivity=0.8))

    assert all(k.raw >= c.raw for k, c in zip(keen, calm, strict=True))
    assert keen[450].raw > calm[450].raw


def test_the_config_rejects_meaningless_settings() -> None:
    with pytest.raises(ValidationError):
        DetectorConfig(time_scales=())
    with pytest.raises(ValidationError):
        DetectorConfig(sensitivity=1.5)
    with pytest.raises(ValidationError):
        DetectorConfig(unknown_setting=1)  # type: ignore[call-arg]

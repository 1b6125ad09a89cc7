from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.intake.baseline import BaselineConfig, BatchSeries

START = datetime(2026, 10, 5, 2, tzinfo=UTC)  # a Monday
CONFIG = BaselineConfig()


def _feed(series: BatchSeries, values: list[float], start: datetime = START) -> list:
    return [series.update(start + timedelta(days=i), v, CONFIG) for i, v in enumerate(values)]


def test_learns_before_judging() -> None:
    verdicts = _feed(BatchSeries(), [100, 5000, 100, 100])
    assert not any(v.anomalous for v in verdicts)
    assert verdicts[-1].note.startswith("learning")


def test_a_drop_after_stable_history_is_anomalous_and_says_so() -> None:
    series = BatchSeries()
    _feed(series, [1000, 1010, 990, 1005, 995, 1002, 998])
    verdict = series.update(START + timedelta(days=7), 500, CONFIG)
    assert verdict.anomalous and verdict.direction == "drop"
    assert verdict.expected is not None and 990 <= verdict.expected <= 1010
    assert verdict.change is not None and verdict.change < -0.4


def test_small_moves_of_a_flat_series_stay_quiet() -> None:
    series = BatchSeries()
    _feed(series, [1000.0] * 8)
    assert not series.update(START + timedelta(days=8), 1001, CONFIG).anomalous
    assert series.update(START + timedelta(days=9), 1300, CONFIG).anomalous


def test_weekly_seasonality_does_not_fire() -> None:
    # weekends carry half the volume; after three weeks a Saturday is judged against Saturdays
    week = [1000, 1000, 1000, 1000, 1000, 500, 500]
    series = BatchSeries()
    verdicts = _feed(series, week * 4)
    assert not any(v.anomalous for v in verdicts[21:])


def test_a_persisting_fault_keeps_firing() -> None:
    series = BatchSeries()
    _feed(series, [1000, 1010, 990, 1005, 995, 1002, 998])
    later = [series.update(START + timedelta(days=7 + i), 400, CONFIG) for i in range(6)]
    assert all(v.anomalous for v in later)


def test_state_round_trips_through_json() -> None:
    series = BatchSeries()
    _feed(series, [1000, 1010, 990, 1005, 995, 1002])
    again = BatchSeries.model_validate_json(series.model_dump_json())
    assert again.update(START + timedelta(days=6), 10, CONFIG).anomalous


def test_before_weekdays_are_learned_a_raw_count_needs_a_bigger_move() -> None:
    config = BaselineConfig(min_change_any_day=0.5)
    series = BatchSeries()
    for i, v in enumerate([1000, 1000, 1000, 1000, 1000, 1400, 1400]):  # one week, busy weekend
        series.update(START + timedelta(days=i), v, config)
    monday = START + timedelta(days=7)
    assert not series.update(monday, 1400, config).anomalous  # +40%: could be the weekly shape
    assert series.update(monday + timedelta(days=1), 300, config).anomalous  # -70%: no shape does that

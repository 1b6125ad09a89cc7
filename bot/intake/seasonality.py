"""Seasonal baselines for the anomaly detector: time-of-day and time-of-week profiles.

A pipeline metric often follows the clock: loads run at night, traffic peaks on weekdays, a
weekly job doubles Monday's row count. A baseline that ignores this calls every morning a
spike. `SeasonalBaseline` learns, per bucket of the period (a slot of the day or of the
week), how far the series usually sits from its slow level, and forecasts
`level + profile[bucket] + recent correction`.

Buckets are keyed by the timestamp, not by the sample's position, so missing samples and
irregular timestamps do not shift the profile. Timestamps are epoch seconds; the buckets
follow the clock they are given in (UTC for aware datetimes, the wall clock for naive ones).
"""

from __future__ import annotations

import math
from collections import deque

from pydantic import BaseModel

DAY = 86_400.0
WEEK = 7 * DAY
# 1970-01-01 was a Thursday: shift so that weekly bucket 0 starts on a Monday, which keeps
# bucket numbers readable when a stored state is inspected.
_WEEK_ORIGIN = 3 * DAY


def median(values: list[float] | deque[float]) -> float:
    """Median of a short sequence; sorting a few dozen floats beats numpy's call overhead."""
    ordered = sorted(values)
    half = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[half]
    return 0.5 * (ordered[half - 1] + ordered[half])


def bucket_width(period: float, step: float, max_buckets: int) -> float | None:
    """Width of a bucket for `period` given the sampling interval, or None if the series is
    too coarse for that period (fewer than 4 samples per period say nothing of its shape)."""
    if step <= 0 or not math.isfinite(step) or period < 4 * step:
        return None
    return max(step, period / max_buckets)


class SeasonalData(BaseModel):
    """JSON form of a `SeasonalBaseline`."""

    period: float
    width: float
    rate: float
    correction_window: int
    level: float | None
    profile: dict[int, float]
    visits: dict[int, int]
    residuals: list[float]
    first_ts: float | None


class SeasonalBaseline:
    """Additive level + seasonal profile over one period, learned online (Holt-Winters-like).

    - `level` is a slow exponential average of the de-seasonalized values (time constant a
      quarter of the period), so that one odd hour does not move it;
    - `profile[bucket]` is an exponential average of `value - level` for that bucket, with a
      rate of 1/visits at first so that the first periods are plain averages;
    - the correction is the median of the last few residuals: it lets the forecast follow a
      genuine shift within a few points while the slow level catches up.
    """

    __slots__ = ("first_ts", "level", "period", "profile", "rate", "residuals", "visits", "width")

    def __init__(self, period: float, width: float, rate: float, correction_window: int) -> None:
        self.period = period
        self.width = width
        self.rate = rate
        self.level: float | None = None
        self.profile: dict[int, float] = {}
        self.visits: dict[int, int] = {}
        self.residuals: deque[float] = deque(maxlen=correction_window)
        self.first_ts: float | None = None

    def bucket(self, ts: float) -> int:
        phase = (ts - _WEEK_ORIGIN) % self.period if self.period == WEEK else ts % self.period
        return int(phase // self.width)

    def ready(self, ts: float) -> bool:
        """True once a whole period has been seen: before that the profile is half empty."""
        return self.first_ts is not None and ts - self.first_ts >= self.period

    def forecast(self, ts: float) -> float | None:
        if self.level is None or not self.ready(ts):
            return None
        seasonal = self.profile.get(self.bucket(ts))
        if seasonal is None:
            return None
        correction = median(self.residuals) if self.residuals else 0.0
        return self.level + seasonal + correction

    def learn(self, ts: float, value: float, step: float) -> None:
        """Learn an accepted (not anomalous) value; `step` is the sampling interval."""
        if self.first_ts is None:
            self.first_ts = ts
        key = self.bucket(ts)
        seasonal = self.profile.get(key)
        if self.level is not None and seasonal is not None:
            self.residuals.append(value - self.level - seasonal)
        deseasonalized = value - (seasonal or 0.0)
        # time constant of a quarter period, whatever the sampling interval
        alpha = min(1.0, 4.0 * step / self.period)
        if self.level is None:
            self.level = deseasonalized
        else:
            self.level += alpha * (deseasonalized - self.level)
        visits = self.visits.get(key, 0) + 1
        self.visits[key] = visits
        target = value - self.level
        gain = max(1.0 / visits, self.rate)
        self.profile[key] = target if seasonal is None else seasonal + gain * (target - seasonal)

    def to_data(self) -> SeasonalData:
        return SeasonalData(
            period=self.period,
            width=self.width,
            rate=self.rate,
            correction_window=self.residuals.maxlen or 1,
            level=self.level,
            profile=dict(self.profile),
            visits=dict(self.visits),
            residuals=list(self.residuals),
            first_ts=self.first_ts,
        )

    @classmethod
    def from_data(cls, data: SeasonalData) -> SeasonalBaseline:
        model = cls(data.period, data.width, data.rate, data.correction_window)
        model.level = data.level
        model.profile = dict(data.profile)
        model.visits = dict(data.visits)
        model.residuals.extend(data.residuals)
        model.first_ts = data.first_ts
        return model

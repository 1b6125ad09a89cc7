"""Streaming detector of spikes, drops and shifts in one metric series.

Each series (a task's duration, rows loaded, freshness lag, a null rate...) keeps a small
state that is updated with every new point and can be stored as JSON between polls:

    detector = Detector(DetectorConfig())
    state = detector.new_state()
    for ts, value in points:
        score, state = detector.update(state, ts, value)
        if score.alert: ...
    store.save(series_id, state.to_dict())      # later: SeriesState.from_dict(...)

How a point is scored, in order:

1. Forecast it with a few baselines learned from earlier *accepted* points: medians of the
   last k values (several k, so both steady and random-walk series are served) and, once a
   whole period has been seen, daily and weekly seasonal profiles (`seasonality.py`). The
   baseline with the smallest recent error is used.
2. Standardize the forecast error by that baseline's robust error scale, and average the
   standardized errors over a few time scales: one point (spikes), and the last few and
   last many points (shifts too small to see in one point).
3. Calibrate each statistic against its own history in this series: the tail probability
   of the new value under a generalized Pareto tail fitted to the largest past values. A
   noisy series thus needs a bigger deviation than a quiet one to look as unlikely.
4. A value beyond the whole range seen so far (by a margin of that range) is evidence too:
   "never this high before" is what an on-call engineer checks first.
5. The evidence, in -log10(probability), becomes a score in [0, 1]. Points that look
   anomalous are kept out of training, so a long outage does not become the new normal
   at once; if it lasts longer than `max_anomaly_run` points it is accepted as a new level.
6. Repeated evidence for the same anomaly is suppressed: `score` rises again only when the
   evidence is clearly stronger than what was already reported, and decays otherwise.

Everything is online: a point is scored before it is learned, and nothing looks ahead.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.intake.seasonality import DAY, WEEK, SeasonalBaseline, bucket_width, median

Timestamp = datetime | float | int
ANY_TRACK = False
BONF_TRACKS = 5
Direction = Literal["spike", "drop"]


class DetectorConfig(BaseModel):
    """Settings of the detector; one configuration serves all series."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sensitivity: float = Field(default=0.5, ge=0.0, le=1.0)
    """How readily a deviation counts as an anomaly, from 0 (only the most extreme) to 1.
    It sets the evidence (-log10 of the probability under the learned behaviour) that maps
    to a score of 0.5: 10 at sensitivity 0, 6 at the default 0.5, 2 at 1."""

    alert_score: float = Field(default=0.5, gt=0.0, lt=1.0)
    """A point whose (suppressed) score reaches this raises `Score.alert`."""

    warmup: int = Field(default=30, ge=3)
    """Points to learn from before any score is given. Seasonal baselines additionally wait
    for one whole period of data before they take part."""

    level_windows: tuple[int, ...] = (1, 5, 20)
    """Baselines that forecast the median of the last k accepted values, one per k. k=1
    serves series that wander (temperatures), larger k serve noisy but steady series."""

    seasonal_periods: tuple[float, ...] = (DAY, WEEK)
    """Seasonal periods to consider, in seconds. A period is used only when the series has
    at least 4 samples per period; it wins only if it forecasts better than the others."""

    max_buckets: int = Field(default=288, ge=4)
    """Most buckets per seasonal period (288 = 5-minute slots over a day, 30 minutes over a
    week). Coarser buckets learn faster and keep the stored state small."""

    seasonal_rate: float = Field(default=0.2, gt=0.0, le=1.0)
    """How fast a seasonal bucket follows change, per visit, once it has a few visits."""

    correction_window: int = Field(default=5, ge=1)
    """Recent residuals whose median corrects a seasonal forecast (follows genuine shifts)."""

    error_halflife: float = Field(default=200.0, gt=1.0)
    """Half-life, in points, of each baseline's error scale; also how quickly the choice of
    baseline follows a change in the series' behaviour."""

    time_scales: tuple[int, ...] = (1, 4, 16)
    """Numbers of points over which standardized errors are averaged: 1 catches spikes,
    larger ones catch shifts that are small per point but persistent."""

    calibration_halflife: float = Field(default=1500.0, gt=10.0)
    """Half-life, in points, of the history against which each statistic is calibrated."""

    tail_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    """Share of the history above the threshold of the fitted generalized Pareto tail."""

    record_margin: float = Field(default=0.0075, gt=0.0)
    """A value beyond the whole range seen so far by this fraction of that range earns the
    full `record_evidence` bonus; less beyond earns a proportional part."""

    record_evidence: float = Field(default=3.0, ge=0.0)
    """Evidence added for a value beyond the range seen so far (3 = a thousand times less
    likely); 0 disables."""

    exclude_evidence: float = Field(default=4.0, gt=0.0)
    """Points with at least this evidence are kept out of training (p < 1e-4)."""

    max_anomaly_run: int = Field(default=30, ge=1)
    """After this many consecutive excluded points the new behaviour is accepted: the points
    are learned and the baselines move to it (a level shift becomes the new normal)."""

    suppression_factor: float = Field(default=3.0, ge=1.0)
    """While an anomaly was just reported, new evidence must exceed this multiple of the
    (decaying) reported evidence to raise the score again."""

    suppression_halflife: float = Field(default=70.0, gt=0.0)
    """Half-life, in points, of the reported evidence that suppresses repeats."""

    @field_validator("level_windows", "time_scales")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError("needs at least one window, each of at least 1 point")
        return tuple(sorted(set(value)))

    @property
    def half_evidence(self) -> float:
        """Evidence that maps to a score of 0.5."""
        return 10.0 - 8.0 * self.sensitivity


class Score(BaseModel):
    """The detector's verdict on one point."""

    ts: datetime
    value: float | None
    score: float = Field(ge=0.0, le=1.0)
    """Anomaly score in [0, 1]; repeats of an anomaly already reported are suppressed."""
    raw: float = Field(ge=0.0, le=1.0)
    """The same before suppression: how anomalous this point is on its own."""
    expected: float | None = None
    """What the chosen baseline forecast for this point."""
    direction: Direction | None = None
    alert: bool = False
    """True when `score` reaches the configured alert score: a new (or stronger) anomaly."""
    note: str | None = None
    """Why the point was not scored (warm-up, missing value) or what drove the score."""


class AnomalyEvent(BaseModel):
    """A stretch of anomalous points, for an intake signal."""

    start: datetime
    end: datetime
    peak: datetime
    peak_score: float
    direction: Direction
    expected: float | None
    observed: float | None
    points: int


# --- internals -------------------------------------------------------------------------

_LOG10 = math.log(10.0)


def _decay(halflife: float) -> float:
    return 0.5 ** (1.0 / halflife)


class _ErrorScale:
    """Robust running scale of a baseline's forecast errors.

    An exponential average of |error|, each error winsorized at a few times the current
    average so that a burst of outliers cannot inflate it; x 1.2533 turns a mean absolute
    deviation into a Gaussian sigma. Its value also ranks the baselines.
    """

    __slots__ = ("mean_abs", "count")

    def __init__(self, mean_abs: float = 0.0, count: int = 0) -> None:
        self.mean_abs = mean_abs
        self.count = count

    def add(self, error: float, halflife: float) -> None:
        size = abs(error)
        if self.count >= 10:
            size = min(size, 6.0 * self.mean_abs) if self.mean_abs > 0 else size
        self.count += 1
        rate = max(1.0 / self.count, 1.0 - _decay(halflife))
        self.mean_abs += rate * (size - self.mean_abs)

    def sigma(self, reference: float) -> float:
        # a floor relative to the forecast keeps a flat series from dividing by zero while
        # still treating any change of a flat line as very surprising
        return max(1.2533 * self.mean_abs, 1e-9 * (abs(reference) + 1e-9))


class _TailCalibrator:
    """History of a non-negative statistic, and the tail probability of a new value.

    The history is an exponentially decaying histogram on a log scale (fixed size, so the
    state stays small whatever the series' length). Above the (1 - tail_fraction) quantile
    a generalized Pareto distribution is fitted by the method of moments, as in
    peaks-over-threshold methods: light-tailed series get an exponential tail, heavy-tailed
    ones a power law, so a spike in a bursty series needs to be much larger to count.
    """

    BIN = 0.1  # bin width in log1p(value)
    BINS = 180  # covers values up to e^18 ~ 6.6e7 standard deviations; beyond: last bin
    REFIT = 10  # refit the tail every so many additions
    MIN_WEIGHT = 20.0

    __slots__ = ("bins", "weight", "increment", "added", "fit")

    def __init__(self) -> None:
        self.bins = np.zeros(self.BINS)
        self.weight = 0.0
        self.increment = 1.0
        self.added = 0
        self.fit: tuple[float, float, float, float] | None = None  # u, tail share, sigma, xi

    def add(self, value: float, decay: float, tail_fraction: float) -> None:
        index = min(self.BINS - 1, int(math.log1p(value) / self.BIN))
        self.bins[index] += self.increment
        # instead of decaying every bin, make each new addition weigh more; rescale rarely
        self.weight = self.weight * decay + 1.0
        self.increment /= decay
        if self.increment > 1e150:
            self.bins /= self.increment
            self.increment = 1.0
        self.added += 1
        if self.added % self.REFIT == 0 or self.fit is None:
            self.fit = self._fit(tail_fraction)

    def _fit(self, tail_fraction: float) -> tuple[float, float, float, float] | None:
        if self.weight < self.MIN_WEIGHT:
            return None
        mass = self.bins / self.bins.sum()
        above = np.cumsum(mass[::-1])[::-1]  # mass at or above each bin
        start = int(np.argmax(above <= tail_fraction))
        if above[start] > tail_fraction or above[start] <= 0:
            return None
        threshold = math.expm1(start * self.BIN)
        share = float(above[start])
        centers = np.expm1((np.arange(start, self.BINS) + 0.5) * self.BIN) - threshold
        weights = mass[start:] / share
        mean = float(weights @ centers)
        var = float(weights @ (centers - mean) ** 2)
        if mean <= 0:
            return None
        ratio = mean * mean / var if var > 0 else math.inf
        xi = min(max(0.5 * (1.0 - ratio), 0.0), 0.45)
        sigma = mean * (1.0 - xi)
        return threshold, share, sigma, xi

    def evidence(self, value: float) -> float:
        """-log10 of the probability of a value at least this large; 0 until calibrated."""
        if self.fit is None:
            return 0.0
        threshold, share, sigma, xi = self.fit
        if value <= threshold:
            # the body of the distribution does not matter for alerting: a monotone ramp
            # up to the tail's share keeps scores ordered without another histogram pass
            return -math.log10(share) * value / threshold if threshold > 0 else 0.0
        excess = (value - threshold) / sigma
        if xi < 1e-6:
            return -math.log10(share) + excess / _LOG10
        return -math.log10(share) + math.log1p(xi * excess) / (xi * _LOG10)

    def to_dict(self) -> dict[str, Any]:
        # raw bins and the running increment, so that a restored calibrator continues
        # bit-for-bit like the original one
        return {
            "bins": self.bins.tolist(),
            "weight": self.weight,
            "increment": self.increment,
            "added": self.added,
            "fit": list(self.fit) if self.fit else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _TailCalibrator:
        calibrator = cls()
        calibrator.bins = np.asarray(data["bins"], dtype=float)
        calibrator.weight = float(data["weight"])
        calibrator.increment = float(data["increment"])
        calibrator.added = int(data["added"])
        fit = data.get("fit")
        calibrator.fit = (fit[0], fit[1], fit[2], fit[3]) if fit else None
        return calibrator


# --- per-series state --------------------------------------------------------------------

_STATE_VERSION = 1


class _Track:
    """What one baseline has learned about its own forecast errors in this series.

    Each baseline is calibrated against its own history: a seasonal baseline that forecasts
    the morning ramp well must not inherit the large errors a flat baseline made there.
    """

    __slots__ = ("scale", "miss", "zs", "calibrators")

    def __init__(self) -> None:
        self.scale = _ErrorScale()  # robust, from accepted points: standardizes errors
        self.miss = 0.0  # average |error| over all points, failures included: ranks baselines
        self.zs: deque[float] = deque()  # recent standardized errors, newest last
        self.calibrators: dict[int, _TailCalibrator] = {}  # per time scale

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": [self.scale.mean_abs, self.scale.count],
            "miss": self.miss,
            "zs": list(self.zs),
            "calibrators": {str(m): c.to_dict() for m, c in self.calibrators.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Track:
        track = cls()
        track.scale = _ErrorScale(float(data["scale"][0]), int(data["scale"][1]))
        track.miss = float(data["miss"])
        track.zs.extend(data["zs"])
        track.calibrators = {
            int(m): _TailCalibrator.from_dict(c) for m, c in data["calibrators"].items()
        }
        return track


class SeriesState:
    """Everything the detector remembers about one series; `to_dict()` is plain JSON.

    It is updated in place by `Detector.update`. Its size does not grow with the series:
    a few dozen recent values, per baseline a histogram per time scale, and a profile per
    seasonal period.
    """

    __slots__ = (
        "seen", "missing", "last_ts", "steps", "recent", "seasonal", "tracks", "low", "high",
        "reported", "pending",
    )

    def __init__(self) -> None:
        self.seen = 0
        self.missing = 0
        self.last_ts: float | None = None
        self.steps: deque[float] = deque(maxlen=15)  # recent positive sampling intervals
        self.recent: deque[float] = deque()  # accepted values, newest last
        self.seasonal: dict[float, SeasonalBaseline] = {}  # by period
        self.tracks: dict[str, _Track] = {}  # by baseline name, "level:5" or "season:86400"
        self.low: float | None = None  # range of all values seen
        self.high: float | None = None
        self.reported = 0.0  # decaying evidence already reported, for suppression
        self.pending: list[tuple[float, float]] = []  # excluded points of the current run

    @property
    def step(self) -> float | None:
        """Typical sampling interval in seconds, once a few intervals have been seen."""
        return median(self.steps) if len(self.steps) >= 3 else None

    def track(self, name: str) -> _Track:
        track = self.tracks.get(name)
        if track is None:
            track = self.tracks[name] = _Track()
        return track

    def to_dict(self) -> dict[str, Any]:
        return SeriesStateData(
            version=_STATE_VERSION,
            seen=self.seen,
            missing=self.missing,
            last_ts=self.last_ts,
            steps=list(self.steps),
            recent=list(self.recent),
            seasonal=[model.to_dict() for model in self.seasonal.values()],
            tracks={name: track.to_dict() for name, track in self.tracks.items()},
            low=self.low,
            high=self.high,
            reported=self.reported,
            pending=list(self.pending),
        ).model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesState:
        parsed = SeriesStateData.model_validate(data)
        state = cls()
        state.seen, state.missing, state.last_ts = parsed.seen, parsed.missing, parsed.last_ts
        state.steps.extend(parsed.steps)
        state.recent.extend(parsed.recent)
        for item in parsed.seasonal:
            model = SeasonalBaseline.from_dict(item)
            state.seasonal[model.period] = model
        state.tracks = {name: _Track.from_dict(t) for name, t in parsed.tracks.items()}
        state.low, state.high, state.reported = parsed.low, parsed.high, parsed.reported
        state.pending = list(parsed.pending)
        return state


class SeriesStateData(BaseModel):
    """The JSON form of a `SeriesState`, validated when a stored state is loaded."""

    version: Literal[1]
    seen: int
    missing: int
    last_ts: float | None
    steps: list[float]
    recent: list[float]
    seasonal: list[dict[str, Any]]
    tracks: dict[str, dict[str, Any]]
    low: float | None
    high: float | None
    reported: float
    pending: list[tuple[float, float]]


# --- the detector ------------------------------------------------------------------------


class Detector:
    """Scores points of a series one at a time; see the module docstring for the method."""

    MIN_ERRORS = 20  # errors a baseline must have made before it can be chosen

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self._calibration_decay = _decay(self.config.calibration_halflife)
        self._suppression_decay = _decay(self.config.suppression_halflife)
        self._miss_rate = 1.0 - _decay(self.config.error_halflife)
        self._longest = max(self.config.time_scales)
        self._bonferroni = math.log10(len(self.config.time_scales) * (BONF_TRACKS if ANY_TRACK else 1))

    def new_state(self) -> SeriesState:
        return SeriesState()

    def update(
        self, state: SeriesState, ts: Timestamp, value: float | None
    ) -> tuple[Score, SeriesState]:
        """Score `value` at `ts`, then learn from it. The state is updated in place and
        returned too, so that `score, state = detector.update(state, ts, value)` reads well."""
        moment, t = _as_datetime(ts), _epoch(ts)
        if value is None or not math.isfinite(value):
            state.missing += 1
            return Score(ts=moment, value=None, score=0.0, raw=0.0, note="missing value"), state
        value = float(value)
        self._observe_time(state, t)
        forecasts = self._forecasts(state, t)
        chosen = self._choose(state, forecasts)
        warm = state.seen >= self.config.warmup
        evidence, note = self._calibrate(state, forecasts, chosen, value, warm)
        record = self._record_evidence(state, value)
        if warm and record > 0:
            # "never this far out before" is a second, independent hint: a bounded bonus,
            # so that a mild new maximum of plain noise does not alert by itself
            evidence += record
            note = "outside the range seen so far"
        expected = forecasts.get(chosen) if chosen else None
        score = self._report(state, evidence if warm else 0.0, moment, value, expected, note)
        if not warm:
            score.note = "warm-up"
        anomalous = warm and evidence >= self.config.exclude_evidence
        self._learn_or_hold(state, t, value, forecasts, anomalous)
        state.seen += 1
        return score, state

    # scoring ------------------------------------------------------------------------------

    def _calibrate(
        self,
        state: SeriesState,
        forecasts: dict[str, float],
        chosen: str | None,
        value: float,
        warm: bool,
    ) -> tuple[float, str | None]:
        """Feed every baseline's standardized error to its calibrators; return the evidence
        (-log10 probability) from the chosen baseline, and what drove it."""
        evidence, note = 0.0, None
        for name, forecast in forecasts.items():
            track = state.track(name)
            if track.scale.count == 0:
                continue
            # ranking uses every error: a baseline that is exact except when the series
            # jumps every morning must lose to one that expects the jump
            error = value - forecast
            track.miss += max(1.0 / track.scale.count, self._miss_rate) * (abs(error) - track.miss)
            track.zs.append(error / track.scale.sigma(forecast))
            if len(track.zs) > self._longest:
                track.zs.popleft()
            recent = list(track.zs)
            for m in self.config.time_scales:
                if len(recent) < m:
                    continue
                stat = abs(sum(recent[-m:]) / m)
                calibrator = track.calibrators.get(m)
                if calibrator is None:
                    calibrator = track.calibrators[m] = _TailCalibrator()
                if warm and (name == chosen or ANY_TRACK and track.scale.count >= self.MIN_ERRORS):
                    found = calibrator.evidence(stat)
                    if found > evidence:
                        evidence = found
                        note = "spike" if m == 1 else f"sustained over {m} points"
                calibrator.add(stat, self._calibration_decay, self.config.tail_fraction)
        # several time scales were looked at: a Bonferroni penalty keeps chance hits in check
        return max(0.0, evidence - self._bonferroni), note

    def _record_evidence(self, state: SeriesState, value: float) -> float:
        low, high = state.low, state.high
        state.low = value if low is None else min(low, value)
        state.high = value if high is None else max(high, value)
        if low is None or high is None or high <= low:
            return 0.0
        excess = max(value - high, low - value) / (high - low)
        if excess <= 0:
            return 0.0
        full = self.config.record_evidence
        return min(full, full * excess / self.config.record_margin)

    def _report(
        self,
        state: SeriesState,
        evidence: float,
        moment: datetime,
        value: float,
        expected: float | None,
        note: str | None,
    ) -> Score:
        half = self.config.half_evidence
        # suppression: report only evidence clearly beyond what was reported recently
        reported = evidence if evidence > self.config.suppression_factor * state.reported else 0.0
        state.reported = max(state.reported, reported) * self._suppression_decay
        score = reported / (reported + half)
        direction: Direction | None = None
        if evidence > 0:
            reference = expected if expected is not None else state.high
            direction = "spike" if reference is None or value >= reference else "drop"
        return Score(
            ts=moment,
            value=value,
            score=score,
            raw=evidence / (evidence + half),
            expected=expected,
            direction=direction,
            alert=score >= self.config.alert_score,
            note=note if evidence > 0 else None,
        )

    # baselines ----------------------------------------------------------------------------

    def _observe_time(self, state: SeriesState, t: float) -> None:
        if state.last_ts is not None and t > state.last_ts:
            state.steps.append(t - state.last_ts)
        # out-of-order or repeated timestamps are scored but do not move the clock back
        state.last_ts = t if state.last_ts is None else max(state.last_ts, t)
        if state.seasonal or state.step is None:
            return
        # the bucket width is fixed once, from the first estimate of the sampling interval
        for period in self.config.seasonal_periods:
            width = bucket_width(period, state.step, self.config.max_buckets)
            if width is not None:
                state.seasonal[period] = SeasonalBaseline(
                    period, width, self.config.seasonal_rate, self.config.correction_window
                )

    def _forecasts(self, state: SeriesState, t: float) -> dict[str, float]:
        forecasts: dict[str, float] = {}
        if state.recent:
            recent = list(state.recent)
            for k in self.config.level_windows:
                if len(recent) >= k:
                    forecasts[f"level:{k}"] = median(recent[-k:])
        for period, model in state.seasonal.items():
            forecast = model.forecast(t)
            if forecast is not None:
                forecasts[f"season:{period:g}"] = forecast
        return forecasts

    def _choose(self, state: SeriesState, forecasts: dict[str, float]) -> str | None:
        """The baseline with the smallest recent error among those with enough history."""
        best, best_error = None, math.inf
        for name in forecasts:
            track = state.tracks.get(name)
            if track is None or track.scale.count < self.MIN_ERRORS:
                continue
            if track.miss < best_error:
                best, best_error = name, track.miss
        return best

    # learning -----------------------------------------------------------------------------

    def _learn_or_hold(
        self,
        state: SeriesState,
        t: float,
        value: float,
        forecasts: dict[str, float],
        anomalous: bool,
    ) -> None:
        """Learn from normal points; hold anomalous ones back unless the anomaly lasts."""
        if not anomalous:
            state.pending.clear()
            self._learn(state, t, value, forecasts)
            return
        state.pending.append((t, value))
        if len(state.pending) > self.config.max_anomaly_run:
            # the "anomaly" has lasted: it is the new normal, learn it in order
            for held_t, held_value in state.pending:
                self._learn(state, held_t, held_value, self._forecasts(state, held_t))
            state.pending.clear()

    def _learn(
        self, state: SeriesState, t: float, value: float, forecasts: dict[str, float]
    ) -> None:
        for name, forecast in forecasts.items():
            state.track(name).scale.add(value - forecast, self.config.error_halflife)
        state.recent.append(value)
        while len(state.recent) > max(self.config.level_windows):
            state.recent.popleft()
        step = state.step
        for model in state.seasonal.values():
            model.learn(t, value, step or model.width)


class SeriesDetector:
    """One series' detector and state together: `update(ts, value) -> Score`."""

    def __init__(self, config: DetectorConfig | None = None, state: SeriesState | None = None) -> None:
        self.detector = Detector(config)
        self.state = state or self.detector.new_state()

    def update(self, ts: Timestamp, value: float | None) -> Score:
        score, self.state = self.detector.update(self.state, ts, value)
        return score

    def to_dict(self) -> dict[str, Any]:
        return self.state.to_dict()

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: DetectorConfig | None = None) -> SeriesDetector:
        return cls(config, SeriesState.from_dict(data))


# --- events ------------------------------------------------------------------------------


def anomaly_events(scores: Iterable[Score], threshold: float = 0.5, max_gap: int = 2) -> list[AnomalyEvent]:
    """Group scored points into anomaly events for intake signals.

    A point belongs to an event when its unsuppressed score (`raw`) reaches `threshold`;
    events separated by at most `max_gap` normal points are merged. Each event reports its
    peak point: its score, direction, and what was expected against what was observed.
    """
    events: list[AnomalyEvent] = []
    run: list[Score] = []
    gap = 0
    for score in scores:
        if score.raw >= threshold and score.value is not None:
            run.append(score)
            gap = 0
        elif run:
            gap += 1
            if gap > max_gap:
                events.append(_event(run))
                run, gap = [], 0
    if run:
        events.append(_event(run))
    return events


def _event(run: Sequence[Score]) -> AnomalyEvent:
    peak = max(run, key=lambda s: s.raw)
    return AnomalyEvent(
        start=run[0].ts,
        end=run[-1].ts,
        peak=peak.ts,
        peak_score=peak.raw,
        direction=peak.direction or "spike",
        expected=peak.expected,
        observed=peak.value,
        points=len(run),
    )


def _as_datetime(ts: Timestamp) -> datetime:
    if isinstance(ts, datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(ts), tz=UTC)


def _epoch(ts: Timestamp) -> float:
    """Seconds since the epoch; naive datetimes are read as UTC."""
    if isinstance(ts, datetime):
        return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    return float(ts)

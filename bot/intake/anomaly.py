"""Streaming detector of spikes, drops and shifts in one metric series.

Each series (a task's duration, rows loaded, freshness lag, a null rate...) keeps a small
state that is updated with every new point and can be stored as JSON between polls:

    detector = Detector(DetectorConfig())
    state = SeriesState.from_dict(stored) if stored else detector.new_state()
    for ts, value in new_points:
        score, state = detector.update(state, ts, value)
        if score.alert: ...
    stored = state.to_dict()

How a point is scored, in order:

1. Forecast it with a few baselines learned from earlier *accepted* points: medians of the
   last k values (several k, so that both steady and wandering series are served) and,
   once a whole period has been seen, daily and weekly seasonal profiles
   (`seasonality.py`). The baseline with the smallest average error is used.
2. Standardize the forecast error by that baseline's robust error scale and average it over
   a few time scales: one point (spikes), and the last few and last many points (shifts
   too small to see in one point, counted only while they last).
3. Calibrate each statistic against its own history in this series, rises and falls
   apart: the tail probability of the new value under a generalized Pareto tail fitted to
   the largest past values (`calibration.py`). A bursty series thus needs a bigger
   deviation than a quiet one to look as unlikely. A young series, with too little
   history for that, is judged against a heavy-tailed reference distribution instead.
4. A value beyond the whole range seen so far adds a bounded bonus: "never this high
   before" is what an on-call engineer checks first.
5. The evidence, about -log10(probability), becomes a score in [0, 1]. Points that look
   anomalous are kept out of training, so a long outage does not become the new normal at
   once; if it lasts more than `max_anomaly_run` points it is accepted as a new level.
6. Repeats are suppressed: while an anomaly goes on, `score` rises again only when the
   evidence is clearly stronger than what was already reported; `raw` is not suppressed.

Everything is online: a point is scored before it is learned, and nothing looks ahead.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.intake.calibration import (
    CalibratorData,
    ErrorScale,
    TailCalibrator,
    decay_per_step,
    reference_evidence,
)
from bot.intake.seasonality import (
    DAY,
    WEEK,
    SeasonalBaseline,
    SeasonalData,
    bucket_width,
    median,
)

Timestamp = datetime | float | int
Direction = Literal["spike", "drop"]


class DetectorConfig(BaseModel):
    """Settings of the detector; one configuration serves all series."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sensitivity: float = Field(default=0.5, ge=0.0, le=1.0)
    """How readily a deviation counts as an anomaly, from 0 (only the most extreme) to 1.
    It sets the evidence (about -log10 of the probability of the point under the learned
    behaviour) that maps to a score of 0.5: 14 at sensitivity 0, 9 at the default 0.5, 4
    at 1. Plain noise stays below 3 to 4, plus `record_evidence` when it sets a record."""

    alert_score: float = Field(default=0.5, gt=0.0, lt=1.0)
    """A point whose (suppressed) score reaches this raises `Score.alert`."""

    warmup: int = Field(default=30, ge=3)
    """Points to learn from before any score is given. Seasonal baselines additionally wait
    for one whole period of data before they take part."""

    level_windows: tuple[int, ...] = (1, 5, 20)
    """Baselines that forecast the median of the last k accepted values, one per k: k=1
    serves series that wander (temperatures, backlogs), larger k noisy but steady ones."""

    seasonal_periods: tuple[float, ...] = (DAY, WEEK)
    """Seasonal periods to consider, in seconds. A period is used only when the series has
    at least 4 samples per period, and chosen only when it forecasts better than the rest."""

    max_buckets: int = Field(default=288, ge=4)
    """Most buckets per seasonal period (288 = 5-minute slots over a day, 35 minutes over a
    week). Coarser buckets learn faster and keep the stored state smaller."""

    seasonal_rate: float = Field(default=0.2, gt=0.0, le=1.0)
    """How fast a seasonal bucket follows change, per visit, once it has had a few visits."""

    correction_window: int = Field(default=5, ge=1)
    """Recent residuals whose median corrects a seasonal forecast (follows genuine shifts)."""

    error_halflife: float = Field(default=3000.0, gt=1.0)
    """Half-life, in points, of each baseline's error scale and of the average error that
    ranks the baselines. Long, so that a standardized error means the same all along."""

    time_scales: tuple[int, ...] = (1, 4, 16)
    """Numbers of points over which standardized errors are averaged: 1 catches spikes,
    larger ones catch shifts that are small per point but persistent."""

    shift_confirmation: float = Field(default=1.5, ge=0.0)
    """A shift seen over several points counts only while the newest point itself deviates
    by this many standard deviations in the same direction: an anomaly that is over must
    not linger in the averages."""

    calibration_halflife: float = Field(default=1500.0, gt=10.0)
    """Half-life, in points, of the history against which each statistic is calibrated."""

    tail_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    """Share of that history above the threshold of the fitted generalized Pareto tail."""

    record_evidence: float = Field(default=5.0, ge=0.0)
    """Evidence added for a value beyond the whole range seen so far; 0 disables it. Large,
    because a never-seen value is what people call an anomaly (it is also what NAB's labels
    mark most); it cannot alert alone at the default sensitivity."""

    record_margin: float = Field(default=0.0125, gt=0.0)
    """A value beyond that range by this fraction of the range earns the full bonus; one
    less far beyond earns a proportional part."""

    exclude_evidence: float = Field(default=4.0, gt=0.0)
    """Points with at least this evidence are anomalous: kept out of training (and of the
    calibration until their anomaly is over), and grouped into events."""

    max_anomaly_run: int = Field(default=30, ge=1)
    """After this many consecutive anomalous points the new behaviour is accepted: the
    points are learned and the baselines move to it (a level shift becomes the new normal)."""

    suppression_factor: float = Field(default=3.0, ge=1.0)
    """While an anomaly goes on, new evidence must exceed this multiple of the evidence
    already reported to raise `score` again."""

    suppression_halflife: float = Field(default=5.0, gt=0.0)
    """Half-life, in normal points, of the reported evidence that suppresses repeats."""

    @field_validator("level_windows", "time_scales")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError("needs at least one window, each of at least 1 point")
        return tuple(sorted(set(value)))

    @property
    def half_evidence(self) -> float:
        """Evidence that maps to a score of 0.5."""
        return 14.0 - 10.0 * self.sensitivity


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
    anomalous: bool = False
    """True when the point is held out of training as anomalous, whether or not it alerts."""
    note: str | None = None
    """What drove the score, or why the point was not scored (warm-up, missing value)."""


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


# --- per-series state --------------------------------------------------------------------

Statistic = tuple[str, int, float]  # (baseline, signed time scale, value) for a calibrator
Held = tuple[float, float, list[Statistic]]  # (ts, value, statistics) of an anomalous point


class TrackData(BaseModel):
    """JSON form of a `_Track`."""

    scale: tuple[float, int]
    miss: float
    zs: list[float]
    calibrators: dict[int, CalibratorData]


class _Track:
    """What one baseline has learned about its own forecast errors in this series.

    Each baseline is calibrated against its own history: a seasonal baseline that forecasts
    the morning ramp well must not inherit the large errors a flat baseline made there.
    """

    __slots__ = ("calibrators", "miss", "scale", "zs")

    def __init__(self) -> None:
        self.scale = ErrorScale()  # robust, from accepted points: standardizes errors
        self.miss = 0.0  # average |error| over all points, failures included: ranks baselines
        self.zs: deque[float] = deque()  # recent standardized errors, newest last
        self.calibrators: dict[int, TailCalibrator] = {}  # by signed time scale

    def to_data(self) -> TrackData:
        return TrackData(
            scale=(self.scale.mean_abs, self.scale.count),
            miss=self.miss,
            zs=list(self.zs),
            calibrators={key: c.to_data() for key, c in self.calibrators.items()},
        )

    @classmethod
    def from_data(cls, data: TrackData) -> _Track:
        track = cls()
        track.scale = ErrorScale(*data.scale)
        track.miss = data.miss
        track.zs.extend(data.zs)
        track.calibrators = {k: TailCalibrator.from_data(c) for k, c in data.calibrators.items()}
        return track


class SeriesStateData(BaseModel):
    """JSON form of a `SeriesState`, validated when a stored state is loaded."""

    version: Literal[1] = 1
    seen: int
    missing: int
    last_ts: float | None
    steps: list[float]
    recent: list[float]
    seasonal: list[SeasonalData]
    tracks: dict[str, TrackData]
    low: float | None
    high: float | None
    reported: float
    pending: list[tuple[float, float, list[tuple[str, int, float]]]]


class SeriesState:
    """Everything the detector remembers about one series; `to_dict()` is plain JSON.

    It is updated in place by `Detector.update`. Its size does not grow with the series: a
    few dozen recent values, per baseline a small histogram per time scale and direction,
    and a profile per seasonal period.
    """

    __slots__ = (
        "high",
        "last_ts",
        "low",
        "missing",
        "pending",
        "recent",
        "reported",
        "seasonal",
        "seen",
        "steps",
        "tracks",
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
        self.reported = 0.0  # evidence already reported, fading: suppresses repeats
        self.pending: list[Held] = []  # the anomaly under way, held out of training

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
            seen=self.seen,
            missing=self.missing,
            last_ts=self.last_ts,
            steps=list(self.steps),
            recent=list(self.recent),
            seasonal=[model.to_data() for model in self.seasonal.values()],
            tracks={name: track.to_data() for name, track in self.tracks.items()},
            low=self.low,
            high=self.high,
            reported=self.reported,
            pending=self.pending,
        ).model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesState:
        parsed = SeriesStateData.model_validate(data)
        state = cls()
        state.seen, state.missing, state.last_ts = parsed.seen, parsed.missing, parsed.last_ts
        state.steps.extend(parsed.steps)
        state.recent.extend(parsed.recent)
        for item in parsed.seasonal:
            state.seasonal[item.period] = SeasonalBaseline.from_data(item)
        state.tracks = {name: _Track.from_data(t) for name, t in parsed.tracks.items()}
        state.low, state.high, state.reported = parsed.low, parsed.high, parsed.reported
        state.pending = [(t, v, list(stats)) for t, v, stats in parsed.pending]
        return state


# --- the detector ------------------------------------------------------------------------


class Detector:
    """Scores points of a series one at a time; see the module docstring for the method."""

    MIN_ERRORS = 20  # errors a baseline must have made before it can be chosen
    MAX_STAT = 1e12  # standardized errors are capped: a flat line's first change is huge

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self._error_rate = 1.0 - decay_per_step(self.config.error_halflife)
        self._calibration_decay = decay_per_step(self.config.calibration_halflife)
        self._suppression_decay = decay_per_step(self.config.suppression_halflife)
        self._longest = max(self.config.time_scales)
        self._memory = max(self.config.level_windows)
        # several time scales are looked at: a Bonferroni penalty keeps chance hits in check
        self._bonferroni = math.log10(len(self.config.time_scales))

    def new_state(self) -> SeriesState:
        return SeriesState()

    def update(
        self, state: SeriesState, ts: Timestamp, value: float | None
    ) -> tuple[Score, SeriesState]:
        """Score `value` at `ts`, then learn from it. The state is updated in place and
        returned too, so that `score, state = detector.update(state, ts, value)` reads well.
        A missing value (None, NaN, infinite) is counted and scores 0."""
        moment, t = _as_datetime(ts), _epoch(ts)
        if value is None or not math.isfinite(value):
            state.missing += 1
            return Score(ts=moment, value=None, score=0.0, raw=0.0, note="missing value"), state
        value = float(value)
        self._observe_time(state, t)
        forecasts = self._forecasts(state, t)
        chosen = self._choose(state, forecasts)
        warm = state.seen >= self.config.warmup
        evidence, note, stats = self._calibrate(state, forecasts, chosen, value, warm)
        record = self._record_evidence(state, value)
        if not warm:
            evidence, note = 0.0, "warm-up"
        elif record > 0:
            evidence += record
            note = "outside the range seen so far"
        anomalous = evidence >= self.config.exclude_evidence
        expected = forecasts.get(chosen) if chosen else None
        score = self._report(state, evidence, anomalous, moment, value, expected, note)
        self._learn_or_hold(state, (t, value, stats), forecasts, anomalous)
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
    ) -> tuple[float, str | None, list[Statistic]]:
        """Evidence (-log10 probability) of the point under the chosen baseline, what drove
        it, and every baseline's statistics, for the calibrators to learn afterwards."""
        evidence, note = 0.0, None
        stats: list[Statistic] = []
        for name, forecast in forecasts.items():
            track = state.track(name)
            if track.scale.count == 0:
                continue
            error = value - forecast
            # ranking uses every error: a baseline that is exact except when the series
            # jumps every morning must lose to one that expects the jump
            track.miss += max(1.0 / track.scale.count, self._error_rate) * (abs(error) - track.miss)
            if track.scale.count < self.MIN_ERRORS:
                continue  # its error scale is not settled: its standardized errors would lie
            for key, stat in self._statistics(track, error / track.scale.sigma(forecast)):
                stats.append((name, key, stat))
                calibrator = track.calibrators.get(key)
                if warm and name == chosen:
                    found = calibrator.evidence(stat) if calibrator else reference_evidence(stat)
                    if found > evidence:
                        evidence = found
                        note = "this point" if key in (1, -1) else f"over {abs(key)} points"
        return max(0.0, evidence - self._bonferroni), note, stats

    def _statistics(self, track: _Track, z: float) -> list[tuple[int, float]]:
        """(signed time scale, value) of the average standardized error per time scale."""
        track.zs.append(max(-self.MAX_STAT, min(self.MAX_STAT, z)))
        if len(track.zs) > self._longest:
            track.zs.popleft()
        recent = list(track.zs)
        now = recent[-1]
        out = []
        for m in self.config.time_scales:
            if len(recent) < m:
                continue
            mean = sum(recent[-m:]) / m
            # a shift counts only while it lasts: once the series is back, the anomalous
            # points still inside the window must not keep it "anomalous"
            along = now if mean >= 0 else -now
            lasting = m == 1 or along >= self.config.shift_confirmation
            # rises and falls are calibrated apart: counts and durations have a long upper
            # tail and a short lower one
            out.append((m if mean >= 0 else -m, abs(mean) if lasting else 0.0))
        return out

    def _record_evidence(self, state: SeriesState, value: float) -> float:
        low, high = state.low, state.high
        state.low = value if low is None else min(low, value)
        state.high = value if high is None else max(high, value)
        if low is None or high is None or high <= low:
            return 0.0
        beyond = max(value - high, low - value)
        if beyond <= 0:
            return 0.0
        share = min(1.0, beyond / (high - low) / self.config.record_margin)
        return self.config.record_evidence * share

    def _report(
        self,
        state: SeriesState,
        evidence: float,
        anomalous: bool,
        moment: datetime,
        value: float,
        expected: float | None,
        note: str | None,
    ) -> Score:
        half = self.config.half_evidence
        # suppression: report only evidence clearly beyond what was reported recently
        reported = evidence if evidence > self.config.suppression_factor * state.reported else 0.0
        state.reported = max(state.reported, reported)
        # while the anomaly goes on, what was reported stays reported; it fades only over
        # normal points, so that the next, separate anomaly is reported in full
        if not anomalous:
            state.reported *= self._suppression_decay
        direction: Direction | None = None
        if evidence > 0:
            reference = expected if expected is not None else state.high
            direction = "spike" if reference is None or value >= reference else "drop"
        score = reported / (reported + half)
        return Score(
            ts=moment,
            value=value,
            score=score,
            raw=evidence / (evidence + half),
            expected=expected,
            direction=direction,
            alert=score >= self.config.alert_score,
            anomalous=anomalous,
            note=note if evidence > 0 or note == "warm-up" else None,
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
        """The baseline with the smallest average error among those with enough history."""
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
        self, state: SeriesState, point: Held, forecasts: dict[str, float], anomalous: bool
    ) -> None:
        """Learn from normal points; hold anomalous ones back unless the anomaly lasts.

        The calibrators learn held points only once their anomaly is over, so that an
        anomaly does not make itself look normal while it goes on, yet a spike that comes
        back every day ends up expected.
        """
        if anomalous:
            state.pending.append(point)
            if len(state.pending) > self.config.max_anomaly_run:
                # the "anomaly" has lasted: it is the new normal, learn it in order
                self._release(state, learn=True)
            return
        self._release(state, learn=False)
        t, value, stats = point
        self._feed(state, stats)
        self._learn(state, t, value, forecasts)

    def _release(self, state: SeriesState, learn: bool) -> None:
        for t, value, stats in state.pending:
            self._feed(state, stats)
            if learn:
                self._learn(state, t, value, self._forecasts(state, t))
        state.pending.clear()

    def _feed(self, state: SeriesState, stats: list[Statistic]) -> None:
        for name, key, stat in stats:
            calibrators = state.track(name).calibrators
            calibrator = calibrators.get(key)
            if calibrator is None:
                calibrator = calibrators[key] = TailCalibrator()
            calibrator.add(stat, self._calibration_decay, self.config.tail_fraction)

    def _learn(
        self, state: SeriesState, t: float, value: float, forecasts: dict[str, float]
    ) -> None:
        for name, forecast in forecasts.items():
            state.track(name).scale.add(value - forecast, self._error_rate)
        state.recent.append(value)
        while len(state.recent) > self._memory:
            state.recent.popleft()
        step = state.step
        for model in state.seasonal.values():
            model.learn(t, value, step or model.width)


class SeriesDetector:
    """One series' detector and state together: `update(ts, value) -> Score`."""

    def __init__(
        self, config: DetectorConfig | None = None, state: SeriesState | None = None
    ) -> None:
        self.detector = Detector(config)
        self.state = state or self.detector.new_state()

    def update(self, ts: Timestamp, value: float | None) -> Score:
        score, self.state = self.detector.update(self.state, ts, value)
        return score

    def to_dict(self) -> dict[str, Any]:
        return self.state.to_dict()

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], config: DetectorConfig | None = None
    ) -> SeriesDetector:
        return cls(config, SeriesState.from_dict(data))


# --- events ------------------------------------------------------------------------------


def anomaly_events(
    scores: Iterable[Score], threshold: float = 0.5, max_gap: int = 2
) -> list[AnomalyEvent]:
    """Group scored points into anomaly events for intake signals.

    An event is a run of points the detector held out as anomalous (`Score.anomalous`),
    runs separated by at most `max_gap` normal points being merged; it is kept when its
    peak unsuppressed score (`raw`) reaches `threshold`. Each event reports its peak point:
    its score, direction, and what was expected against what was observed.
    """
    runs: list[list[Score]] = []
    gap = max_gap + 1
    for score in scores:
        if score.anomalous and score.value is not None:
            if gap > max_gap:
                runs.append([])
            runs[-1].append(score)
            gap = 0
        else:
            gap += 1
    return [_event(run) for run in runs if max(s.raw for s in run) >= threshold]


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

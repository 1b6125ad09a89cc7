"""Error statistics for the anomaly detector: a robust error scale and tail calibration.

`ErrorScale` turns a baseline's forecast error into a standardized one. `TailCalibrator`
answers "how rare is a standardized error this large, in this series?" from the series' own
history, so that one threshold fits quiet and bursty series alike.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel

_LOG10 = math.log(10.0)


def reference_evidence(value: float) -> float:
    """-log10 P(X >= value) for X Laplace with unit variance: a stand-in, deliberately
    heavier-tailed than a Gaussian, for a standardized error whose series is too young to
    say how its own errors are spread."""
    return max(0.0, (math.sqrt(2.0) * value + math.log(2.0)) / _LOG10)


def decay_per_step(halflife: float) -> float:
    """The factor that halves a weight after `halflife` steps."""
    return 0.5 ** (1.0 / halflife)


class ErrorScale:
    """Robust running scale of a baseline's forecast errors.

    An exponential average of |error| (a plain average over the first points), each error
    winsorized at a few times the current average so that a burst of outliers cannot inflate
    it; x 1.2533 turns a mean absolute deviation into a Gaussian sigma.
    """

    __slots__ = ("count", "mean_abs")

    def __init__(self, mean_abs: float = 0.0, count: int = 0) -> None:
        self.mean_abs = mean_abs
        self.count = count

    def add(self, error: float, rate: float) -> None:
        """Learn one error; `rate` is the weight of a new error once the start is over."""
        size = abs(error)
        if self.count >= 10 and self.mean_abs > 0:
            size = min(size, 6.0 * self.mean_abs)
        self.count += 1
        self.mean_abs += max(1.0 / self.count, rate) * (size - self.mean_abs)

    def sigma(self, reference: float) -> float:
        # a floor relative to the forecast keeps a flat series from dividing by zero while
        # still treating any change of a flat line as very surprising
        return max(1.2533 * self.mean_abs, 1e-9 * (abs(reference) + 1e-9))


class CalibratorData(BaseModel):
    """JSON form of a `TailCalibrator`: its non-empty bins and running weights, exactly."""

    bins: dict[int, float]
    weight: float
    increment: float
    added: int
    fit: tuple[float, float, float, float] | None


class TailCalibrator:
    """History of a non-negative statistic, and the tail probability of a new value.

    The history is an exponentially decaying histogram on a log scale (fixed size, so the
    state stays small whatever the series' length). Above the (1 - tail_fraction) quantile
    a generalized Pareto distribution is fitted by the method of moments, as in
    peaks-over-threshold methods: light-tailed series get an exponential tail, heavy-tailed
    ones a power law, so that a spike in a bursty series has to be much larger to count.
    """

    BIN = 0.1  # bin width in log1p(value)
    BINS = 180  # covers values up to e^18 ~ 6.6e7; larger ones land in the last bin
    REFIT = 10  # refit the tail every so many additions
    MIN_WEIGHT = 20.0  # history needed before the series' own tail is fitted
    # A prior on the tail, worth this many points of it: a moderately heavy shape, and a
    # mean excess of this share of the threshold. It keeps a tail fitted on a handful of
    # points from promising more than they can tell.
    PRIOR_POINTS = 10.0
    PRIOR_SHAPE = 0.25
    PRIOR_EXCESS = 0.3

    __slots__ = ("added", "bins", "fit", "increment", "weight")

    def __init__(self) -> None:
        self.bins = np.zeros(self.BINS)
        self.weight = 0.0
        self.increment = 1.0
        self.added = 0
        # threshold, share of the history above it, GPD scale, GPD shape; None while the
        # history is too short, a share of 0 when it has no tail (a statistic always 0)
        self.fit: tuple[float, float, float, float] | None = None

    def add(self, value: float, decay: float, tail_fraction: float) -> None:
        self.bins[self._bin(value)] += self.increment
        # instead of decaying every bin, make each new addition weigh more; rescale rarely
        self.weight = self.weight * decay + 1.0
        self.increment /= decay
        if self.increment > 1e150:
            self.bins /= self.increment
            self.increment = 1.0
        self.added += 1
        if self.added % self.REFIT == 0 or self.fit is None:
            self.fit = self._fit(tail_fraction)

    def evidence(self, value: float) -> float:
        """-log10 of the probability of a value at least this large; until the series has
        enough history of its own, that of a reference distribution."""
        if self.fit is None:
            return reference_evidence(value)
        threshold, share, sigma, xi = self.fit
        if share <= 0:
            return 0.0
        base = -math.log10(share)
        if value <= threshold:
            # the body of the distribution does not matter for alerting: a monotone ramp
            # up to the tail's share keeps scores ordered without another histogram pass
            return base * value / threshold if threshold > 0 else 0.0
        excess = (value - threshold) / sigma
        if xi < 1e-6:
            return base + excess / _LOG10
        return base + math.log1p(xi * excess) / (xi * _LOG10)

    def _bin(self, value: float) -> int:
        return min(self.BINS - 1, int(math.log1p(value) / self.BIN))

    def _fit(self, tail_fraction: float) -> tuple[float, float, float, float] | None:
        if self.weight < self.MIN_WEIGHT:
            return None
        mass = self.bins / self.bins.sum()
        above = np.cumsum(mass[::-1])[::-1]  # mass at or above each bin
        start = int(np.argmax(above <= tail_fraction))
        share = float(above[start])
        threshold = math.expm1(start * self.BIN)
        if share > tail_fraction or share <= 0:
            return threshold, 0.0, 0.0, 0.0  # no tail to fit
        excesses = np.expm1((np.arange(start, self.BINS) + 0.5) * self.BIN) - threshold
        weights = mass[start:] / share
        mean = float(weights @ excesses)
        var = float(weights @ (excesses - mean) ** 2)
        ratio = mean * mean / var if var > 0 else math.inf
        xi = min(max(0.5 * (1.0 - ratio), 0.0), 0.45)  # method of moments, kept finite
        # with few points in the tail, shrink towards the prior: a young series must not be
        # trusted to be as tame as its first days look
        points, prior = self.weight * share, self.PRIOR_POINTS
        xi = (points * xi + prior * self.PRIOR_SHAPE) / (points + prior)
        excess = self.PRIOR_EXCESS * max(threshold, 0.5)
        mean = (points * mean + prior * excess) / (points + prior)
        return threshold, share, mean * (1.0 - xi), xi

    def to_data(self) -> CalibratorData:
        # raw bins and the running increment, so that a restored calibrator continues
        # bit for bit like the original one
        return CalibratorData(
            bins={int(i): float(self.bins[i]) for i in np.flatnonzero(self.bins)},
            weight=self.weight,
            increment=self.increment,
            added=self.added,
            fit=self.fit,
        )

    @classmethod
    def from_data(cls, data: CalibratorData) -> TailCalibrator:
        calibrator = cls()
        for index, value in data.bins.items():
            calibrator.bins[index] = value
        calibrator.weight = data.weight
        calibrator.increment = data.increment
        calibrator.added = data.added
        calibrator.fit = data.fit
        return calibrator

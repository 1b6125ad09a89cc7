"""Judging one value per run against that series' own history: for batch metrics.

A daily pipeline yields one row count, one duration, one null rate per run: a week of
history is seven points, far too few for the streaming detector (`anomaly.py`), which needs
hundreds. Here a value is compared with the median of earlier runs (the same weekday's when
enough of them exist, so weekly seasonality does not fire), scaled by their median absolute
deviation. A value must be both far in robust units and a real relative change: a flat series
that moves by 0.1% is not an incident. Anomalous values are kept out of later baselines, so a
fault that persists keeps firing instead of becoming the new normal.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


class BaselineConfig(BaseModel):
    """How sensitive the batch check is; one instance per series family, in config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_history: int = Field(5, ge=2, description="Earlier normal runs needed before judging.")
    window: int = Field(28, ge=2, description="How many recent normal runs form the baseline.")
    threshold: float = Field(
        4.0, gt=0, description="Robust z-score (deviations from the median in MAD-sigmas) "
                               "at or above which a value is anomalous.")
    min_change: float = Field(
        0.2, ge=0, description="Smallest relative change from the median that counts "
                               "(0.2 = 20%); keeps tiny moves of a flat series quiet.")
    same_weekday_min: int = Field(
        3, ge=1, description="Same-weekday runs needed to compare with those alone.")
    min_change_any_day: float | None = Field(
        None, ge=0, description="Smallest relative change that counts while the baseline mixes "
                                "weekdays (too few same-weekday runs yet): a weekly pattern "
                                "not yet learned moves a raw count by tens of percent. None: "
                                "`min_change`; keep it so for series that cancel seasonality "
                                "(ratios).")


class Verdict(BaseModel):
    """What the check said of one value."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    observed: float
    anomalous: bool
    direction: Literal["spike", "drop"] | None = None
    expected: float | None = Field(None, description="The baseline's median.")
    z: float | None = Field(None, description="Robust z-score; None with no spread in history.")
    change: float | None = Field(None, description="Relative change from the median.")
    history: int = Field(0, description="Runs the baseline was made of.")
    note: str = ""


class BatchPoint(BaseModel):
    at: datetime
    value: float
    anomalous: bool = False


class BatchSeries(BaseModel):
    """One series' recent runs; persisted (as JSON) between polls."""

    points: list[BatchPoint] = Field(default_factory=list)

    def update(self, at: datetime, value: float, config: BaselineConfig) -> Verdict:
        """Judge `value` against the normal runs before it, then remember it."""
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        earlier = [p for p in self.points if p.at < at]
        verdict = judge(earlier[-2 * config.window:], at, value, config)
        self.points = [p for p in self.points if p.at != at]  # a re-run replaces its point
        self.points.append(BatchPoint(at=at, value=value, anomalous=verdict.anomalous))
        self.points.sort(key=lambda p: p.at)
        keep = 2 * config.window  # anomalous points are kept a while, for the record
        self.points = self.points[-keep:]
        return verdict


def judge(
    history: Sequence[BatchPoint], at: datetime, value: float, config: BaselineConfig
) -> Verdict:
    """The verdict on `value` at `at` given earlier runs (see the module docstring).

    The baseline is the same weekday's runs when there are enough of them, anomalous ones
    included: a weekend dip flagged before the pattern was known is the pattern, and a
    fault that held for `same_weekday_min` weeks has become the normal. Otherwise it is the
    recent normal runs of every day.
    """
    if not math.isfinite(value):
        return Verdict(at=at, observed=value, anomalous=False, note="not a number")
    same_day = [p.value for p in history if p.at.weekday() == at.weekday()]
    normal = [p.value for p in history if not p.anomalous][-config.window:]
    basis = same_day if len(same_day) >= config.same_weekday_min else normal
    if len(basis) < config.min_history and basis is normal:
        return Verdict(at=at, observed=value, anomalous=False, history=len(normal),
                       note=f"learning ({len(normal)} of {config.min_history} runs)")
    median = statistics.median(basis)
    spread = _MAD_TO_SIGMA * statistics.median(abs(v - median) for v in basis)
    z = (value - median) / spread if spread > 0 else None
    change = (value - median) / abs(median) if median else (math.inf if value else 0.0)
    far = z is None or abs(z) >= config.threshold
    floor = config.min_change if basis is same_day or config.min_change_any_day is None \
        else config.min_change_any_day
    anomalous = far and abs(change) >= floor and value != median
    return Verdict(
        at=at, observed=value, anomalous=anomalous,
        direction=("spike" if value > median else "drop") if anomalous else None,
        expected=median, z=z, change=change, history=len(basis),
        note="same weekday" if basis is same_day else "all recent runs",
    )


def within_weekly_range(history: Sequence[BatchPoint], verdict: Verdict,
                        config: BaselineConfig) -> bool:
    """Whether `verdict`'s value lies within the range the recent week spans, while its
    weekday is not learned yet (fewer than `same_weekday_min` runs of it in `history`).

    Until then `judge` compares a value with every recent day, and a weekly pattern it has not
    learned looks like a move: a week's median is a weekday's, and a count's busy weekend sits
    tens of percent above it (the robust spread takes those two days for outliers). The week's
    range is made of the recent normal runs that `judge` accepts against the others, so a past
    incident widens nothing; a value within it, or beyond it by less than the smallest change
    that counts while weekdays mix (`min_change_any_day`, else `min_change`), is the week, not
    an incident: a week shows each weekday once, and its busiest day is one run, no bound.
    Once the weekday is learned, the same-weekday baseline says so.
    """
    weekday = verdict.at.weekday()
    if sum(p.at.weekday() == weekday for p in history) >= config.same_weekday_min:
        return False
    normal = [p for p in history if not p.anomalous][-config.window:]
    usual = [p.value for i, p in enumerate(normal)
             if not judge([*normal[:i], *normal[i + 1:]], p.at, p.value, config).anomalous]
    if len(usual) < config.min_history:
        return False
    low, high = min(usual), max(usual)
    margin = config.min_change if config.min_change_any_day is None else config.min_change_any_day
    return low - abs(low) * margin <= verdict.observed <= high + abs(high) * margin

"""Metric tools: read series, find spikes and level shifts, and line a series up with the time
of a failure. Citations are `metric:<name>{labels}@<from>..<to>`.

Spikes are judged as the intake's batch baseline judges a run (`bot/intake/baseline.py`,
ported: agents cannot import bot): each point against the median of the points before it,
in units of their median absolute deviation, and only when the relative change is real too.
A level shift is the split of the series that best separates two medians.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

from agents.tools.base import Tool, ToolOutput
from agents.tools.common import cite, fail, iso, make_tool, number, utc
from agents.world import MetricSeries, MetricStore

MAD_TO_SIGMA = 1.4826
MAX_SERIES = 10
MAX_POINTS = 120  # per series in an answer: the newest
_NAME = re.compile(r"[A-Za-z_:][\w:]*")

Query = Annotated[str, Field(max_length=500, description=(
    "The metric query: PromQL for Prometheus; for the demo store `name{label=\"v\"}` or "
    "`a{…} / b{…}` (a ratio per run)."))]


def metric_tools(metrics: MetricStore, *, default_days: int = 14, threshold: float = 4.0,
                 min_change: float = 0.2, known_secrets: Iterable[str] = ()) -> list[Tool]:
    """The metrics subagent's tools over `metrics`."""

    def window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
        end = utc(until) or datetime.now(UTC)
        return utc(since) or end - timedelta(days=default_days), end

    def fetch(query: str, start: datetime, end: datetime, step_s: float
              ) -> list[Any] | ToolOutput:
        """The query's series, or the output that says why there are none."""
        try:
            found = metrics.series(query, start, end, step_s)
        except ValueError as exc:
            return _bad_query(query, exc, metrics)
        return found or _nothing(query, start, end, metrics)

    def query_metric(query: Query, since: datetime | None = None, until: datetime | None = None,
                     step_s: Annotated[float, Field(gt=0, description="Resolution, seconds "
                                                    "(Prometheus).")] = 3600) -> ToolOutput:
        """Read the series a metric query returns over a time window (default the last 14
        days): their points, newest last, with the latest value against the window's median."""
        start, end = window(since, until)
        found = fetch(query, start, end, step_s)
        if isinstance(found, ToolOutput):
            return found
        rows = [_describe(s) for s in found[:MAX_SERIES]]
        first = rows[0]
        summary = (f"{_shown(query, found[0])}: latest {number(first['latest'])} vs median "
                   f"{number(first['median'])} over {first['points']} points"
                   + (f" (+{len(found) - 1} more series)" if len(found) > 1 else ""))
        return ToolOutput(status="ok", summary=summary,
                          data={"series": [{**r, "values": _points(s)}
                                           for r, s in zip(rows, found, strict=False)],
                                "more_series": max(len(found) - MAX_SERIES, 0)},
                          citations=[_cite(query, s, start, end, known_secrets)
                                     for s in found[:3]])

    def find_changes(query: Query, since: datetime | None = None,
                     until: datetime | None = None, step_s: float = 3600,
                     min_change: Annotated[float, Field(ge=0, description=(
                         "Smallest relative change that counts (0.2 = 20%); lower it for "
                         "steady ratios."))] = min_change) -> ToolOutput:
        """Find spikes and drops (robust z-score against earlier points) and the largest
        level shift in each series of a query over a window (default 14 days)."""
        start, end = window(since, until)
        found = fetch(query, start, end, step_s)
        if isinstance(found, ToolOutput):
            return found
        results = []
        for s in found[:MAX_SERIES]:
            spikes = [p for p in judge_points(s.points, threshold, min_change) if p["anomalous"]]
            results.append({"series": _shown(query, s), "spikes": spikes[-10:],
                            "level_shift": level_shift(s.points)})
        flagged = [r for r in results if r["spikes"] or r["level_shift"]]
        if not flagged:
            return ToolOutput(status="ok", summary=f"{query}: no spike or shift in "
                              f"{len(results)} series", data={"series": results})
        top = flagged[0]
        what = (f"{top['spikes'][-1]['direction']} to {number(top['spikes'][-1]['value'])} at "
                f"{top['spikes'][-1]['at']} (usual {number(top['spikes'][-1]['expected'])})"
                if top["spikes"] else
                f"level shift at {top['level_shift']['at']} from "
                f"{number(top['level_shift']['before'])} to {number(top['level_shift']['after'])}")
        return ToolOutput(status="ok",
                          summary=f"{top['series']}: {what}; {len(flagged)} of {len(results)} "
                                  "series changed",
                          data={"series": results},
                          citations=[_cite(query, s, start, end, known_secrets)
                                     for s, r in zip(found, results, strict=False)
                                     if r["spikes"] or r["level_shift"]][:3])

    def align_with(time: Annotated[datetime, Field(description="The failure's time (ISO).")],
                   query: Query, before_days: Annotated[float, Field(gt=0, le=60)] = 7,
                   step_s: float = 3600) -> ToolOutput:
        """Line a metric up with a failure time: its value at that time against the days
        before, and when it first moved (before or after the failure)."""
        at = utc(time)
        assert at is not None
        start, end = at - timedelta(days=before_days), at + timedelta(days=1)
        found = fetch(query, start, end, step_s)
        if isinstance(found, ToolOutput):
            return found
        rows = []
        for s in found[:MAX_SERIES]:
            judged = judge_points(s.points, threshold, min_change)
            near = min(judged, key=lambda p: abs(datetime.fromisoformat(p["at"]) - at))
            moved = next((p for p in judged if p["anomalous"]), None)
            lead = None
            if moved is not None:
                lead = (datetime.fromisoformat(moved["at"]) - at).total_seconds() / 3600
            rows.append({"series": _shown(query, s), "at_failure": near, "first_moved": moved,
                         "hours_from_failure": None if lead is None else round(lead, 2)})
        top = next((r for r in rows if r["first_moved"]), rows[0])
        if top["first_moved"] is None:
            summary = (f"{top['series']}: no move around {iso(at)}; "
                       f"{number(top['at_failure']['value'])} at the failure")
        else:
            hours = top["hours_from_failure"]
            when = "at the failure" if abs(hours) < 0.5 else \
                f"{abs(hours):.1f} h {'before' if hours < 0 else 'after'} the failure"
            moved = top["first_moved"]
            summary = (f"{top['series']}: moved {when} ({moved['direction']} to "
                       f"{number(moved['value'])}, usual {number(moved['expected'])})")
        return ToolOutput(status="ok", summary=summary, data={"time": iso(at), "series": rows},
                          citations=[_cite(query, s, start, end, known_secrets)
                                     for s in found[:3]])

    tools = [query_metric, find_changes, align_with]
    return [make_tool(fn, known_secrets) for fn in tools]


def judge_points(points: list[tuple[datetime, float]], threshold: float = 4.0,
                 min_change: float = 0.2, min_history: int = 3,
                 window: int = 28) -> list[dict[str, Any]]:
    """Each point against the median and MAD of the normal points before it."""
    out: list[dict[str, Any]] = []
    normal: list[float] = []
    for at, value in points:
        verdict: dict[str, Any] = {"at": iso(at), "value": value, "anomalous": False}
        basis = normal[-window:]
        if len(basis) >= min_history and math.isfinite(value):
            median = statistics.median(basis)
            spread = MAD_TO_SIGMA * statistics.median(abs(v - median) for v in basis)
            z = (value - median) / spread if spread > 0 else None
            change = (value - median) / abs(median) if median else (math.inf if value else 0.0)
            far = z is None or abs(z) >= threshold
            anomalous = far and abs(change) >= min_change and value != median
            verdict |= {"expected": median, "z": None if z is None else round(z, 2),
                        "change": None if not math.isfinite(change) else round(change, 4),
                        "anomalous": anomalous,
                        "direction": ("spike" if value > median else "drop") if anomalous
                        else None}
        out.append(verdict)
        if not verdict["anomalous"] and math.isfinite(value):
            normal.append(value)
    return out


def level_shift(points: list[tuple[datetime, float]], min_side: int = 3,
                min_score: float = 4.0, min_change: float = 0.2) -> dict[str, Any] | None:
    """The one split that best explains the series as two levels (least absolute deviation
    from each side's median), if it is clear: the gap between the medians at least
    `min_score` pooled robust deviations, and a real relative change."""
    kept = [(t, v) for t, v in points if math.isfinite(v)][-500:]  # O(n² log n): bounded
    values, times = [v for _, v in kept], [t for t, _ in kept]
    best: tuple[float, int] | None = None
    for k in range(min_side, len(values) - min_side + 1):
        mb, ma = statistics.median(values[:k]), statistics.median(values[k:])
        cost = sum(abs(v - mb) for v in values[:k]) + sum(abs(v - ma) for v in values[k:])
        if best is None or cost < best[0]:
            best = (cost, k)
    if best is None:
        return None
    k = best[1]
    before, after = values[:k], values[k:]
    mb, ma = statistics.median(before), statistics.median(after)
    spread = MAD_TO_SIGMA * statistics.median([abs(v - mb) for v in before]
                                              + [abs(v - ma) for v in after])
    gap = abs(ma - mb)
    score = gap / spread if spread > 0 else (math.inf if gap else 0.0)
    change = gap / abs(mb) if mb else (math.inf if gap else 0.0)
    if score < min_score or change < min_change:
        return None
    return {"at": iso(times[k]), "before": mb, "after": ma,
            "change": round((ma - mb) / abs(mb), 4) if mb else None,
            "score": None if math.isinf(score) else round(score, 2)}


def _describe(s: MetricSeries) -> dict[str, Any]:
    values = [v for _, v in s.points if math.isfinite(v)]
    return {"name": s.name, "labels": s.labels, "points": len(s.points),
            "latest": values[-1] if values else None,
            "latest_at": iso(s.points[-1][0]) if s.points else None,
            "median": statistics.median(values) if values else None,
            "min": min(values, default=None), "max": max(values, default=None)}


def _points(s: MetricSeries) -> list[list[Any]]:
    return [[iso(t), v] for t, v in s.points[-MAX_POINTS:]]


def _shown(query: str, s: MetricSeries) -> str:
    name = s.name or _metric_name(query)
    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
    return f"{name}{{{labels}}}" if labels else name


def _metric_name(query: str) -> str:
    found = _NAME.search(query)
    return found.group(0) if found else "metric"


def _cite(query: str, s: MetricSeries, start: datetime, end: datetime, known: Iterable[str]):
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())
                      if "}" not in v and " " not in v)
    name = s.name or _metric_name(query)
    ref = f"metric:{name}{{{labels}}}@{iso(start)}..{iso(end)}"
    tail = ", ".join(f"{iso(t)}={number(v)}" for t, v in s.points[-5:])
    return cite("metric", ref, f"{query}: {tail}", known)


def _bad_query(query: str, exc: Exception, metrics: MetricStore) -> ToolOutput:
    names = metrics.names()
    hint = f"; metrics: {', '.join(names[:30])}" if names else ""
    return fail(f"metric query {query!r} refused", f"{exc}{hint}")


def _nothing(query: str, start: datetime, end: datetime, metrics: MetricStore) -> ToolOutput:
    names = metrics.names()
    hint = f"; known metrics: {', '.join(names[:30])}" if names else ""
    return ToolOutput(status="no_data",
                      summary=f"{query}: no series from {iso(start)} to {iso(end)}{hint}")


__all__ = ["judge_points", "level_shift", "metric_tools"]

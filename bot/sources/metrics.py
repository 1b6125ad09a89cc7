"""The metrics source: series that move against their own history become `metric_anomaly` signals.

A `MetricsSource` polls the watches of one metrics config (`bot.config.MetricWatch`) through a
small backend: Prometheus (the query is PromQL) or the demo platform's metric store (the query
is `name{label="v",…}`, or `a{…} / b{…}`, the ratio of two metrics at the same run: the demo's
faults show most clearly per order or per order item, where the weekly rhythm cancels out).

Each series a watch returns is judged point by point, only points newer than those judged
before: `stream` watches by the streaming detector (`bot.intake.anomaly`), which groups
anomalous points into events and reports an event once, when its score first reaches the
alert score; `batch` watches, one point per run, by the baseline of earlier runs
(`bot.intake.baseline`), every anomalous run being its own event. The detectors' state rides
in the cursor (JSON), bounded: a few hundred series per watch, the least recently seen
forgotten first.

Signals: asset from the watch's `asset` template, else from the labels (`dag_id`+`task_id` →
`task.<dag>.<task>`, `model` → the dbt model's unique id, `source`+`table` → the dbt source's),
else `metric:<series>`; dedup key stable per (watch, series labels, time of the event's peak),
so a poll repeated from the same cursor yields the same keys.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bot.config import (
    DemoMetricsConfig,
    MetricWatch,
    PrometheusMetricsConfig,
    Settings,
)
from bot.demo.metrics import MetricsStore, canonical_labels
from bot.demo.paths import DBT_PROJECT_NAME
from bot.intake.anomaly import Score, SeriesDetector, SeriesState
from bot.intake.baseline import BatchSeries, Verdict
from bot.intake.signals import RawSignal
from bot.sources.base import as_cursor
from bot.sources.prometheus import PrometheusClient, PrometheusError

log = logging.getLogger(__name__)

MAX_SERIES = 200  # per watch, in the cursor (a stream state is ~30 KB); least recent go first
EVENT_GAP = 2  # normal points that may separate two anomalous ones of one event
TAIL = 12  # points of the series kept in a signal, for citations
_STREAM_REREAD = timedelta(minutes=5)  # at least this much before the last window is re-read


# ----------------------------------------------------------------------------- backends


class MetricSeries(BaseModel):
    """One series a query returned."""

    model_config = ConfigDict(frozen=True)

    name: str | None = Field(description="The metric's name; None for a computed series.")
    labels: dict[str, str]
    points: list[tuple[datetime, float]] = Field(description="(time, value), oldest first.")


class MetricsBackend(Protocol):
    """Where series come from: a family of series by query, over a time window."""

    where: str  # the server or file, for messages and signal details

    def query(self, query: str, start: datetime, end: datetime,
              step: timedelta) -> list[MetricSeries]: ...

    def check(self, queries: list[str]) -> list[str]: ...


class PrometheusBackend:
    """Queries are PromQL, evaluated with `query_range` at the watch's step."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client
        self.where = client.url

    def query(self, query: str, start: datetime, end: datetime,
              step: timedelta) -> list[MetricSeries]:
        result = self.client.query_range(query, start, end, step)
        return [MetricSeries(name=s.labels.get("__name__"),
                             labels={k: v for k, v in s.labels.items() if k != "__name__"},
                             points=s.points)
                for s in result.series]

    def check(self, queries: list[str]) -> list[str]:
        return self.client.check()


_SELECTOR = re.compile(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{([^}]*)\})?\s*")
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)')\s*")


class Selector(BaseModel):
    """`name{label="value",…}`: the series of `name` whose labels include these."""

    model_config = ConfigDict(frozen=True)

    name: str
    matchers: dict[str, str] = Field(default_factory=dict)


def parse_demo_query(query: str) -> tuple[Selector, Selector | None]:
    """`a{…}` or `a{…} / b{…}`; only `=` matchers (the demo store matches labels exactly)."""
    parts = query.split("/")
    if len(parts) > 2 or not query.strip():
        raise ValueError(f"query {query!r}: expected `name{{label=\"v\"}}` "
                         "or `a{…} / b{…}`")
    selectors = [_parse_selector(part, query) for part in parts]
    return selectors[0], selectors[1] if len(selectors) == 2 else None


def _parse_selector(text: str, query: str) -> Selector:
    match = _SELECTOR.fullmatch(text)
    if not match:
        raise ValueError(f"query {query!r}: {text.strip()!r} is not `name{{label=\"v\",…}}`")
    matchers: dict[str, str] = {}
    for item in (match.group(2) or "").split(","):
        if not item.strip():
            continue
        found = _MATCHER.fullmatch(item)
        if not found:
            raise ValueError(f"query {query!r}: {item.strip()!r} is not `label=\"value\"` "
                             "(the demo store knows only exact matches)")
        matchers[found.group(1)] = found.group(2) if found.group(2) is not None else found.group(3)
    return Selector(name=match.group(1), matchers=matchers)


class DemoStoreBackend:
    """The demo platform's SQLite metric store; every sample is a point (no step)."""

    def __init__(self, path: Path, pair_within: timedelta = timedelta(hours=1)) -> None:
        self.store = MetricsStore(path)
        self.where = str(path)
        self.pair_within = pair_within

    def query(self, query: str, start: datetime, end: datetime,
              step: timedelta) -> list[MetricSeries]:
        top, bottom = parse_demo_query(query)
        numerators = self._select(top, start, end)
        if bottom is None:
            return numerators
        # The denominator is read a little wider: its point of a run may precede the window.
        denominators = self._select(bottom, start - self.pair_within, end + self.pair_within)
        return [ratio for n in numerators
                if (d := _partner(n, denominators)) is not None
                for ratio in [self._ratio(n, d)]]

    def _select(self, sel: Selector, start: datetime, end: datetime) -> list[MetricSeries]:
        return [MetricSeries(name=s.name, labels=s.labels,
                             points=[(p.ts, p.value) for p in s.points])
                for s in self.store.query(sel.name, sel.matchers, start, end)]

    def _ratio(self, top: MetricSeries, bottom: MetricSeries) -> MetricSeries:
        """Each point of `top` over `bottom`'s nearest point in time (one run's), if near."""
        points = []
        for ts, value in top.points:
            near = min(bottom.points, key=lambda p: abs(p[0] - ts), default=None)
            if near is not None and abs(near[0] - ts) <= self.pair_within and near[1]:
                points.append((ts, value / near[1]))
        return MetricSeries(name=None, labels=top.labels, points=points)

    def check(self, queries: list[str]) -> list[str]:
        problems = []
        for query in queries:
            try:
                parse_demo_query(query)
            except ValueError as exc:
                problems.append(f"{self.where}: {exc}")
        if not self.store.path.is_file():
            problems.append(f"{self.where}: no metrics store yet (run `sleuth demo run`)")
        return problems


def _partner(top: MetricSeries, bottoms: list[MetricSeries]) -> MetricSeries | None:
    """The denominator of `top`: the one with the same labels, else the only one."""
    same = [b for b in bottoms if b.labels == top.labels]
    return same[0] if same else bottoms[0] if len(bottoms) == 1 else None


# ----------------------------------------------------------------------------- cursor


class OpenEvent(BaseModel):
    """A stream anomaly still going on at the end of the last poll."""

    start: datetime
    peak: datetime
    peak_score: float
    gap: int = 0
    reported: bool = False


class SeriesCursor(BaseModel):
    """One series' progress and detector state."""

    last: datetime = Field(description="Newest point judged.")
    stream: dict[str, Any] | None = Field(None, description="The streaming detector's state.")
    batch: BatchSeries | None = Field(None, description="The batch baseline's recent runs.")
    event: OpenEvent | None = None


class WatchCursor(BaseModel):
    basis: str = Field(description="Query and mode the state was learned with; a change resets it.")
    until: datetime | None = Field(None, description="End of the last window read.")
    series: dict[str, SeriesCursor] = Field(default_factory=dict,
                                            description="By the series' canonical labels.")


class MetricsCursor(BaseModel):
    watches: dict[str, WatchCursor] = Field(default_factory=dict)


# ----------------------------------------------------------------------------- source


class MetricsSource:
    """The watches of one metrics config, judged series by series at each poll."""

    def __init__(self, config: DemoMetricsConfig | PrometheusMetricsConfig,
                 backend: MetricsBackend, *, dbt_project: str | None = None) -> None:
        self.config = config
        self.backend = backend
        self.watches = list(config.watches or [])
        self.dbt_project = dbt_project
        self.name = f"metrics:{config.kind}"

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsSource:
        """The source the settings describe (demo defaults filled in)."""
        settings = settings.with_defaults()
        config = settings.sources.metrics
        if isinstance(config, PrometheusMetricsConfig):
            backend: MetricsBackend = PrometheusBackend(PrometheusClient.from_config(config))
        else:
            assert config.path is not None  # filled by with_defaults
            backend = DemoStoreBackend(config.path)
        return cls(config, backend, dbt_project=_dbt_project(settings))

    def check(self) -> list[str]:
        problems = [] if self.watches else [f"{self.name}: no watches configured"]
        return problems + self.backend.check([w.query for w in self.watches])

    def poll(self, cursor: MetricsCursor | Mapping[str, Any] | None = None, *,
             now: datetime | None = None) -> tuple[list[RawSignal], MetricsCursor]:
        """New anomalies since `cursor` (None: the first poll), and the cursor to keep."""
        state = as_cursor(MetricsCursor, cursor)
        now = now or datetime.now(UTC)
        signals: list[RawSignal] = []
        watches: dict[str, WatchCursor] = {}
        for watch in self.watches:
            previous = state.watches.get(watch.name)
            try:
                found, watches[watch.name] = self._poll_watch(watch, previous, now)
            except (PrometheusError, ValueError) as exc:
                log.warning("%s: watch %s skipped this poll: %s", self.name, watch.name, exc)
                if previous is not None:
                    watches[watch.name] = previous
                continue
            signals += found
        return signals, MetricsCursor(watches=watches)

    def _poll_watch(self, watch: MetricWatch, previous: WatchCursor | None,
                    now: datetime) -> tuple[list[RawSignal], WatchCursor]:
        basis = f"{watch.mode}:{watch.query}"
        if previous is None or previous.basis != basis:
            previous = WatchCursor(basis=basis)
        start = now - watch.window
        if watch.mode == "stream" and previous.until is not None:
            start = max(start, previous.until - max(2 * watch.step, _STREAM_REREAD))
        start = _align(start, watch.step)
        series = self.backend.query(watch.query, start, now, watch.step)
        kept = dict(previous.series)
        signals: list[RawSignal] = []
        for s in series:
            key = canonical_labels(s.labels)
            found, judged = self._judge(watch, s, kept.get(key))
            if judged is not None:
                kept[key] = judged
            signals += found
        if len(kept) > MAX_SERIES:
            kept = dict(sorted(kept.items(), key=lambda kv: kv[1].last)[-MAX_SERIES:])
        window = {"start": start.isoformat(), "end": now.isoformat(),
                  "step_seconds": watch.step.total_seconds()}  # to run the query again
        signals = [s.model_copy(update={"detail": {**s.detail, "window": window}})
                   for s in signals]
        return signals, WatchCursor(basis=basis, until=now, series=kept)

    def _judge(self, watch: MetricWatch, series: MetricSeries,
               cursor: SeriesCursor | None) -> tuple[list[RawSignal], SeriesCursor | None]:
        new = [(ts, v) for ts, v in series.points
               if math.isfinite(v) and (cursor is None or ts > cursor.last)]
        if not new:
            return [], cursor
        if watch.mode == "batch":
            return self._judge_batch(watch, series, new, cursor)
        return self._judge_stream(watch, series, new, cursor)

    def _judge_batch(self, watch: MetricWatch, series: MetricSeries,
                     new: list[tuple[datetime, float]],
                     cursor: SeriesCursor | None) -> tuple[list[RawSignal], SeriesCursor]:
        runs = cursor.batch if cursor is not None and cursor.batch is not None else BatchSeries()
        runs = runs.model_copy(deep=True)
        signals = []
        for ts, value in new:
            verdict = runs.update(ts, value, watch.baseline)
            if verdict.anomalous:
                signals.append(self._batch_signal(watch, series, verdict))
        return signals, SeriesCursor(last=new[-1][0], batch=runs)

    def _judge_stream(self, watch: MetricWatch, series: MetricSeries,
                      new: list[tuple[datetime, float]],
                      cursor: SeriesCursor | None) -> tuple[list[RawSignal], SeriesCursor]:
        state = SeriesState.from_dict(cursor.stream) if cursor and cursor.stream else None
        detector = SeriesDetector(watch.detector, state)
        event = cursor.event if cursor is not None else None
        signals = []
        for ts, value in new:
            score = detector.update(ts, value)
            event, report = _follow(event, score, watch.detector.alert_score)
            if report:
                signals.append(self._stream_signal(watch, series, score, event))
        return signals, SeriesCursor(last=new[-1][0], stream=detector.to_dict(), event=event)

    # ------------------------------------------------------------------------- signals

    def _batch_signal(self, watch: MetricWatch, series: MetricSeries,
                      verdict: Verdict) -> RawSignal:
        shown = _display(watch, series)
        return self._signal(watch, series, verdict.at, _title(shown, verdict.observed,
                                                              verdict.expected), {
            "observed": verdict.observed, "expected": verdict.expected, "z": verdict.z,
            "change": verdict.change, "direction": verdict.direction,
            "history_runs": verdict.history, "baseline": verdict.note,
        })

    def _stream_signal(self, watch: MetricWatch, series: MetricSeries, score: Score,
                       event: OpenEvent) -> RawSignal:
        shown = _display(watch, series)
        expected = score.expected
        change = (score.value - expected) / abs(expected) if expected and score.value is not None \
            else None
        return self._signal(watch, series, score.ts, _title(shown, score.value, expected), {
            "observed": score.value, "expected": expected, "score": round(score.raw, 4),
            "change": change, "direction": score.direction, "event_start": event.start,
            "note": score.note,
        })

    def _signal(self, watch: MetricWatch, series: MetricSeries, at: datetime, title: str,
                facts: dict[str, Any]) -> RawSignal:
        labels = series.labels
        tail = [[ts.isoformat(), v] for ts, v in series.points if ts <= at and math.isfinite(v)]
        detail = {
            "watch": watch.name, "query": watch.query, "mode": watch.mode,
            "metric": _display(watch, series), "labels": labels, "backend": self.backend.where,
            **{k: _plain(v) for k, v in facts.items() if v is not None},
            "points": tail[-TAIL:],
        }
        digest = hashlib.sha256(canonical_labels(labels).encode()).hexdigest()[:12]
        return RawSignal(
            source=self.name, kind="metric_anomaly", asset=self._asset(watch, series),
            title=title, observed_at=at, detail=detail,
            dedup_key=f"metric:{watch.name}:{digest}:{at.astimezone(UTC).isoformat()}",
        )

    def _asset(self, watch: MetricWatch, series: MetricSeries) -> str:
        labels = series.labels
        if watch.asset:
            try:
                return watch.asset.format_map(labels)
            except (KeyError, ValueError, IndexError):
                log.warning("%s: watch %s: asset %r needs labels the series lacks (%s)",
                            self.name, watch.name, watch.asset, labels)
        project = self.dbt_project
        if labels.get("dag_id") and labels.get("task_id"):
            return f"task.{labels['dag_id']}.{labels['task_id']}"
        if project and labels.get("model"):
            return f"model.{project}.{labels['model']}"
        if project and labels.get("source") and labels.get("table"):
            return f"source.{project}.{labels['source']}.{labels['table']}"
        return f"metric:{_display(watch, series)}"


def _follow(event: OpenEvent | None, score: Score,
            threshold: float) -> tuple[OpenEvent | None, bool]:
    """The open event after `score`, and whether to report it now (once, when it qualifies).

    As `bot.intake.anomaly.anomaly_events` groups them, across polls: anomalous points
    separated by at most `EVENT_GAP` normal ones are one event, kept once its peak reaches
    `threshold`.
    """
    if not (score.anomalous and score.value is not None):
        if event is None:
            return None, False
        event = event.model_copy(update={"gap": event.gap + 1})
        return (None if event.gap > EVENT_GAP else event), False
    if event is None:
        event = OpenEvent(start=score.ts, peak=score.ts, peak_score=score.raw)
    elif score.raw > event.peak_score:
        event = event.model_copy(update={"peak": score.ts, "peak_score": score.raw, "gap": 0})
    else:
        event = event.model_copy(update={"gap": 0})
    report = not event.reported and event.peak_score >= threshold
    if report:
        event = event.model_copy(update={"reported": True})
    return event, report


def _title(shown: str, observed: float | None, expected: float | None) -> str:
    """`rows_loaded{table=orders} dropped 48% below its usual 51,200`."""
    if observed is None or expected is None:
        return f"{shown} is anomalous at {_fmt(observed)}"
    if expected == 0:
        return f"{shown} rose to {_fmt(observed)} from its usual 0"
    change = (observed - expected) / abs(expected)
    if observed == 0:
        return f"{shown} dropped to 0 from its usual {_fmt(expected)}"
    if change >= 1:
        return f"{shown} rose to {observed / expected:,.1f}x its usual {_fmt(expected)}"
    verb, where = ("rose", "above") if change > 0 else ("dropped", "below")
    return f"{shown} {verb} {abs(change):.0%} {where} its usual {_fmt(expected)}"


def _display(watch: MetricWatch, series: MetricSeries) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sorted(series.labels.items()) if k != "dag_id")
    name = series.name or watch.name
    return f"{name}{{{labels}}}" if labels else name


def _fmt(value: float | None) -> str:
    if value is None:
        return "nothing"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _plain(value: Any) -> Any:
    """JSON-able: times as ISO text, non-finite floats as None."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _align(moment: datetime, step: timedelta) -> datetime:
    """Down to a multiple of `step` since the epoch: every poll evaluates on one grid."""
    seconds = step.total_seconds()
    return datetime.fromtimestamp(math.floor(moment.timestamp() / seconds) * seconds, UTC)


def _dbt_project(settings: Settings) -> str | None:
    """The dbt project's name (for model and source asset ids), from dbt_project.yml."""
    project_dir = settings.sources.dbt.project_dir
    path = project_dir / "dbt_project.yml" if project_dir else None
    if path is not None and path.is_file():
        try:
            name = (yaml.safe_load(path.read_text()) or {}).get("name")
            return str(name) if name else None
        except (yaml.YAMLError, AttributeError, OSError):
            return None
    return DBT_PROJECT_NAME if isinstance(settings.sources.metrics, DemoMetricsConfig) else None


__all__ = [
    "DemoStoreBackend", "MetricSeries", "MetricsBackend", "MetricsCursor", "MetricsSource",
    "PrometheusBackend", "parse_demo_query",
]

"""Metric series for the investigation, over the intake's `MetricsBackend` (Prometheus, or the
demo platform's metric store)."""

from __future__ import annotations

from datetime import datetime, timedelta

from agents.world import MetricSeries
from bot.sources.metrics import DemoStoreBackend, MetricsBackend
from bot.sources.prometheus import PrometheusError


class Metrics:
    """The `MetricStore` of a metrics backend."""

    def __init__(self, backend: MetricsBackend) -> None:
        self.backend = backend

    def series(self, query: str, start: datetime, end: datetime,
               step_s: float) -> list[MetricSeries]:
        try:
            found = self.backend.query(query, start, end, timedelta(seconds=step_s))
        except PrometheusError as exc:  # a query Prometheus rejects is the model's to fix
            raise ValueError(str(exc)) from exc
        return [MetricSeries(name=s.name, labels=s.labels, points=s.points) for s in found]

    def names(self) -> list[str]:
        if isinstance(self.backend, DemoStoreBackend):
            return self.backend.store.names()
        return []

"""A small client of Prometheus's HTTP API: range queries and a readiness check.

`query_range` returns typed series. What it takes care of, so callers do not:

- Prometheus refuses a range query of more than 11,000 points per series; a longer range is
  split into consecutive requests on the same step grid and the pieces are joined.
- Sample values are strings; `NaN`, `+Inf` and `-Inf` become the floats they name.
- A body with `status: error` becomes a `PrometheusError` naming the server, the query and
  Prometheus's `errorType: error`; `warnings` are logged and returned.
- 429, 5xx, timeouts and refused connections are retried with exponential backoff.
- Credentials (a bearer token, or basic auth) come from environment variables whose names
  the config gives; they are sent in headers only and never appear in logs or errors.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from pydantic import BaseModel, ConfigDict, Field

from bot.config import PrometheusMetricsConfig
from bot.errors import SleuthError

log = logging.getLogger(__name__)

MAX_POINTS = 11_000  # Prometheus's limit of points per series in one range query
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_TEXT_VALUES = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf}


class PrometheusError(SleuthError):
    """Prometheus refused a request or could not be reached; the text says which and why."""


class PromSeries(BaseModel):
    """One series of a range query: its labels (with `__name__` if it has one) and points."""

    model_config = ConfigDict(frozen=True)

    labels: dict[str, str]
    points: list[tuple[datetime, float]] = Field(description="(time, value), oldest first.")


class RangeResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    query: str
    series: list[PromSeries]
    warnings: list[str] = Field(default_factory=list)


class PrometheusClient:
    """Prometheus's HTTP API at `url` (the base, e.g. `http://prom:9090`)."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_points: int = MAX_POINTS,
    ) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.max_points = max_points
        self._http = httpx2.Client(
            base_url=self.url, headers=dict(headers or {}), timeout=timeout,
            auth=httpx2.BasicAuth(*auth) if auth else None,
        )

    @classmethod
    def from_config(
        cls, config: PrometheusMetricsConfig, environ: Mapping[str, str] | None = None
    ) -> PrometheusClient:
        """The client `config` describes, credentials read from the variables it names."""
        env = os.environ if environ is None else environ

        def secret(var: str) -> str:
            if not env.get(var):
                raise SleuthError(f"sources.metrics: environment variable {var} is not set "
                                  f"(Prometheus credentials for {config.url})")
            return env[var]

        headers = {}
        if config.bearer_token_env:
            headers["Authorization"] = f"Bearer {secret(config.bearer_token_env)}"
        auth = None
        if config.username_env and config.password_env:
            auth = (secret(config.username_env), secret(config.password_env))
        return cls(config.url, headers=headers, auth=auth, timeout=config.timeout_seconds)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ API

    def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> RangeResult:
        """Evaluate `query` at every `step` from `start` to `end` (inclusive)."""
        seconds = step.total_seconds()
        if seconds <= 0:
            raise ValueError(f"step must be positive, got {step}")
        series: dict[tuple[tuple[str, str], ...], dict[float, float]] = {}
        warnings: list[str] = []
        for lo, hi in split_range(start.timestamp(), end.timestamp(), seconds, self.max_points):
            data = self._get("/api/v1/query_range", query,
                             {"query": query, "start": _num(lo), "end": _num(hi),
                              "step": _num(seconds)})
            warnings += [w for w in data.get("warnings") or [] if w not in warnings]
            result = data.get("data") or {}
            if result.get("resultType") != "matrix":
                raise PrometheusError(f"Prometheus at {self.url}: query {query!r} returned "
                                      f"{result.get('resultType')!r}, expected a matrix")
            for item in result.get("result") or []:
                key = tuple(sorted((item.get("metric") or {}).items()))
                points = series.setdefault(key, {})
                for ts, value in item.get("values") or []:
                    points[float(ts)] = parse_value(value)
        for warning in warnings:
            log.warning("Prometheus at %s warns about query %r: %s", self.url, query, warning)
        return RangeResult(query=query, warnings=warnings, series=[
            PromSeries(labels=dict(key),
                       points=[(datetime.fromtimestamp(ts, UTC), v) for ts, v in sorted(p.items())])
            for key, p in series.items()
        ])

    def buildinfo(self) -> dict[str, Any]:
        """The server's version and build facts (`/api/v1/status/buildinfo`)."""
        return dict(self._get("/api/v1/status/buildinfo", None, {}).get("data") or {})

    def check(self) -> list[str]:
        """What keeps this server from answering, one sentence each; empty if nothing."""
        try:
            self.buildinfo()
        except PrometheusError as exc:
            return [str(exc)]
        return []

    # ------------------------------------------------------------------ HTTP

    def _get(self, path: str, query: str | None, params: dict[str, str]) -> dict[str, Any]:
        what = f"query {query!r}" if query is not None else path
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.get(path, params=params)
            except (httpx2.TimeoutException, httpx2.NetworkError) as exc:
                if last:
                    raise PrometheusError(f"Prometheus at {self.url} did not answer {what} "
                                          f"after {attempt + 1} tries: "
                                          f"{type(exc).__name__}") from None
                self._wait(attempt, None, exc)
                continue
            if response.status_code in _RETRY_STATUS and not last:
                self._wait(attempt, response, None)
                continue
            return self._body(response, what)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _body(self, response: httpx2.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            raise PrometheusError(f"Prometheus at {self.url} refused {what}: "
                                  f"{body.get('errorType') or 'error'}: {body.get('error')}")
        if response.status_code in (401, 403):
            raise PrometheusError(f"Prometheus at {self.url} answered {response.status_code} "
                                  f"to {what}: check the credentials its config names")
        if response.status_code >= 400 or not isinstance(body, dict):
            snippet = " ".join(response.text.split())[:200]
            raise PrometheusError(f"Prometheus at {self.url} answered {what} with HTTP "
                                  f"{response.status_code}: {snippet or '(empty body)'}")
        return body

    def _wait(self, attempt: int, response: httpx2.Response | None,
              exc: Exception | None) -> None:
        delay = self.backoff * 2 ** attempt
        if response is not None:
            delay = max(delay, _retry_after(response))
        reason = f"HTTP {response.status_code}" if response is not None else type(exc).__name__
        log.info("Prometheus at %s: %s, retrying in %.1fs", self.url, reason, delay)
        time.sleep(min(delay, 30.0))


def split_range(start: float, end: float, step: float,
                max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
    """[start, end] cut into pieces of at most `max_points` evaluation times, on one grid."""
    if end < start:
        return []
    pieces = []
    span = (max_points - 1) * step
    lo = start
    while lo <= end:
        hi = min(lo + span, end)
        pieces.append((lo, hi))
        lo = lo + span + step
    return pieces


def parse_value(value: Any) -> float:
    """A sample value as Prometheus writes it: a decimal string, `NaN`, `+Inf` or `-Inf`."""
    if isinstance(value, str) and value in _TEXT_VALUES:
        return _TEXT_VALUES[value]
    return float(value)


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _retry_after(response: httpx2.Response) -> float:
    try:
        return float(response.headers.get("Retry-After", 0))
    except ValueError:
        return 0.0

"""A small metrics store: Prometheus-like samples (name, labels, timestamp, value) in SQLite.

Labels are stored as canonical JSON (sorted keys), so one label set is one series. A sample
recorded again at the same timestamp replaces the old one: re-running a day overwrites its
points instead of doubling them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    ts REAL NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (name, labels, ts)
);
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (name, ts);
"""


class Point(BaseModel):
    ts: datetime
    value: float


class Series(BaseModel):
    name: str
    labels: dict[str, str]
    points: list[Point]


class Sample(BaseModel):
    name: str
    labels: dict[str, str]
    ts: datetime
    value: float


def canonical_labels(labels: Mapping[str, str]) -> str:
    return json.dumps({k: str(v) for k, v in labels.items()}, sort_keys=True, separators=(",", ":"))


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError(f"metric timestamps must be timezone-aware, got {moment!r}")
    return moment.timestamp()


class MetricsStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path)) as con:
            con.executescript(_SCHEMA)
            with con:
                yield con

    def record(self, name: str, labels: Mapping[str, str], ts: datetime, value: float) -> None:
        self.record_many([Sample(name=name, labels=dict(labels), ts=ts, value=value)])

    def record_many(self, samples: Iterable[Sample]) -> None:
        rows = [(s.name, canonical_labels(s.labels), _epoch(s.ts), float(s.value)) for s in samples]
        with self._connect() as con:
            con.executemany("INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?)", rows)

    def query(
        self,
        name: str,
        matchers: Mapping[str, str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Series]:
        """Series of `name` whose labels include `matchers`, points in [start, end], by time."""
        sql, args = "SELECT labels, ts, value FROM samples WHERE name = ?", [name]
        if start is not None:
            sql, args = sql + " AND ts >= ?", [*args, _epoch(start)]
        if end is not None:
            sql, args = sql + " AND ts <= ?", [*args, _epoch(end)]
        for key, value in (matchers or {}).items():
            sql, args = sql + " AND json_extract(labels, ?) = ?", [*args, f'$."{key}"', str(value)]
        if not self.path.exists():
            return []
        with self._connect() as con:
            rows = con.execute(sql + " ORDER BY labels, ts", args).fetchall()
        series: dict[str, Series] = {}
        for labels, ts, value in rows:
            if labels not in series:
                series[labels] = Series(name=name, labels=json.loads(labels), points=[])
            series[labels].points.append(
                Point(ts=datetime.fromtimestamp(ts, UTC), value=value)
            )
        return list(series.values())

    def names(self) -> list[str]:
        if not self.path.exists():
            return []
        with self._connect() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT name FROM samples ORDER BY name")]

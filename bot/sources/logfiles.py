"""The log-file source: error events in log files become `log_error` signals.

`LogFileSource.poll(cursor)` follows the files of one `LogSourceConfig` (`bot.sources.tail`),
groups their lines into events (`bot.sources.logevents`) and turns each event at level
ERROR or worse, or carrying a Python traceback, into a `RawSignal`:

- asset: `task.<dag_id>.<task_id>` when the path is Airflow's
  (`…/dag_id=…/run_id=…/task_id=…[/map_index=…]/attempt=N.log`), else `file:<path>`;
- title: the traceback's exception line (the outermost of a chain), else the message;
- detail: file, first line number, byte offset, level, logger, message, exception, the
  event's text (bounded), the template of the title from the `Templater`, and the try;
- dedup key: a hash of the file's first path, its inode, the event's byte offset and its
  first line, so that lines read again after a crash (before the cursor was saved) give
  the same keys and are stored once.

The last event of a file is held back until the file has been quiet for `settle_seconds`
(or was rotated away): a traceback may still be being written under its ERROR line.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import PurePath
from typing import Any

from pydantic import Field

from bot.config import LogSourceConfig
from bot.intake.logformats import (
    AIRFLOW,
    JSON_LINES,
    TRUNCATION_MARKER,
    LogFormat,
    LogRecord,
    stall_risk,
)
from bot.intake.signals import RawSignal
from bot.intake.templates import Templater
from bot.sources.base import as_cursor
from bot.sources.logevents import (
    TRACEBACK_START,
    Event,
    HeaderParser,
    TracebackScan,
    group_events,
    header_parser,
    is_error_level,
    scan_traceback,
)
from bot.sources.tail import (
    FileRead,
    LogCursor,
    PollStats,
    Position,
    Progress,
    Tailer,
    TailLimits,
    discover,
)

__all__ = ["AirflowTry", "LogCursor", "LogFileSource", "LogLimits", "PollStats", "airflow_try"]

_TS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:,\s*|T|\s+)(\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?"
)
_HEADER_SAMPLE_FILES = 5
_HEADER_SAMPLE_BYTES = 8192


class LogLimits(TailLimits):
    """Bounds of the files' reading (see `TailLimits`) and of the events made from them."""

    max_event_chars: int = Field(
        16_000, ge=256, description="An event's text in a signal: its head and tail, cut here."
    )
    max_event_lines: int = Field(
        5_000,
        ge=2,
        description="An event grows no longer: further unheaded lines start another, so a "
        "file without a single header line cannot become one endless event.",
    )
    max_held_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description="A file's last event is held back (it may still grow) only up to this "
        "size; every poll reads a held event again.",
    )
    title_chars: int = Field(200, ge=20, description="A longer title is cut, with an ellipsis.")


@dataclass(frozen=True)
class AirflowTry:
    """The task try an Airflow log file belongs to, from its path."""

    dag_id: str
    task_id: str
    run_id: str | None
    try_number: int | None
    map_index: int | None

    @property
    def asset(self) -> str:
        return f"task.{self.dag_id}.{self.task_id}"


def airflow_try(path: str) -> AirflowTry | None:
    """`…/dag_id=d/run_id=r/task_id=t[/map_index=i]/attempt=n.log`, Airflow 2's layout."""
    parts: dict[str, str] = {}
    for part in PurePath(path).parts:
        key, sep, value = part.partition("=")
        if sep:
            parts[key] = value
    if not parts.get("dag_id") or not parts.get("task_id"):
        return None
    attempt = parts.get("attempt", "").split(".")[0]
    index = parts.get("map_index", "")
    return AirflowTry(
        dag_id=parts["dag_id"],
        task_id=parts["task_id"],
        run_id=parts.get("run_id") or None,
        try_number=int(attempt) if attempt.isdigit() else None,
        map_index=int(index) if index.lstrip("-").isdigit() else None,
    )


class LogFileSource:
    """Error events of the log files one `LogSourceConfig` names, as `log_error` signals.

    `templater`: the one intake shares, so that template ids agree across sources; by
    default the source mines its own.
    """

    def __init__(
        self,
        config: LogSourceConfig,
        templater: Templater | None = None,
        *,
        limits: LogLimits | None = None,
    ) -> None:
        self.config = config
        self.name = f"logs:{config.name}"
        self.limits = limits or LogLimits()
        self.templater = templater if templater is not None else Templater()
        self.format = log_format(config)
        self.header: HeaderParser = header_parser(
            self.format, self.limits.max_line_bytes + len(TRUNCATION_MARKER)
        )
        self._tailer = Tailer(config.paths, self.limits)
        self.last_stats = PollStats()

    def poll(
        self,
        cursor: LogCursor | Mapping[str, Any] | None = None,
        *,
        progress: Progress | None = None,
    ) -> tuple[list[RawSignal], LogCursor]:
        """New signals since `cursor` (None: the first poll), and the cursor to keep.

        `progress` is called with the running stats after each file read; the poll's
        final stats are in `last_stats`.
        """
        state = as_cursor(LogCursor, cursor)
        collector = _Collector(self)
        new_cursor, stats = self._tailer.poll(state, collector.consume, collector.stats, progress)
        self.last_stats = stats
        return collector.signals, new_cursor

    def check(self) -> list[str]:
        """What keeps this source from working, one sentence each; empty if nothing."""
        problems: list[str] = []
        for pattern in self.config.paths:
            problems += _check_pattern(pattern)
        problems += self._check_header()
        risk = stall_risk(self.format)  # a pattern only Python's `re` runs
        return problems if risk is None else [*problems, risk]

    def _check_header(self) -> list[str]:
        """A wrong `format` makes every file one headerless event: say so up front."""
        found = discover(self.config.paths)
        recent = sorted(found, key=lambda p: found[p].st_mtime_ns, reverse=True)
        samples = [s for s in (_first_lines(p) for p in recent[:_HEADER_SAMPLE_FILES]) if s]
        if not samples or any(self.header(line) for lines in samples for line in lines):
            return []
        return [
            (
                f"no line in the first {_HEADER_SAMPLE_BYTES} bytes of "
                f"{len(samples)} recent file(s) starts with a {self.config.format!r} header; "
                "is `format` (or `header_pattern`) right?"
            )
        ]

    def signal(self, event: Event, read: FileRead) -> RawSignal | None:
        """The signal an event makes, or None if it is no error."""
        found = self._error(event)
        if found is None:
            return None
        traceback, traceback_text = found
        record = event.record
        message = record.content if record is not None else event.first.strip()
        basis = traceback.exception or _first_line(message) or "(empty message)"
        template = self.templater.add(basis)
        task = airflow_try(read.label)
        detail = {
            **_where(event, read),
            "level": record.level if record is not None else None,
            "logger": record.logger if record is not None else None,
            "message": message[: self.limits.max_event_chars],
            "exception": traceback.exception,
            "traceback": traceback_text[: self.limits.max_event_chars] if traceback_text else None,
            "text": event.text.render(),
            "template_id": template.id,
            "template_text": template.text,
            **(_try_detail(task) if task is not None else {}),
        }
        return RawSignal(
            source=self.name,
            kind="log_error",
            asset=task.asset if task is not None else f"file:{read.label}",
            title=_title(basis, self.limits.title_chars),
            observed_at=_observed_at(record, read.mtime),
            dedup_key=dedup_key(read.label, read.inode, event.start, event.first),
            run_id=task.run_id if task is not None else None,
            detail={key: value for key, value in detail.items() if value is not None},
        )

    def _error(self, event: Event) -> tuple[TracebackScan, str | None] | None:
        """(its traceback, the traceback's text if from a JSON field) if the event is an
        error: ERROR or worse, or a traceback in it; None if it is not."""
        if event.traceback.seen:
            return event.traceback, None
        record = event.record
        if record is None:
            return None
        if self.format.kind == "json":
            for value in record.fields.values():
                if value and TRACEBACK_START in value:  # `exc_info`, `exception`, `stack`…
                    return scan_traceback(value), value
        return (event.traceback, None) if is_error_level(record.level) else None


def _where(event: Event, read: FileRead) -> dict[str, Any]:
    return {
        "file": read.label,
        "path": read.path if read.path != read.label else None,  # renamed since first seen
        "line": event.line,
        "offset": event.start,
        "lines": event.lines,
    }


def _try_detail(task: AirflowTry) -> dict[str, Any]:
    return {
        "dag_id": task.dag_id,
        "task_id": task.task_id,
        "run_id": task.run_id,
        "try_number": task.try_number,
        "map_index": task.map_index,
    }


def log_format(config: LogSourceConfig) -> LogFormat:
    """The `LogFormat` a source's `format` names."""
    if config.format == "airflow":
        return AIRFLOW
    if config.format == "jsonl":
        return JSON_LINES
    return LogFormat(name="text", pattern=config.header_pattern)


def dedup_key(label: str, inode: int, offset: int, first_line: str) -> str:
    """Same file, same place, same line: the same observation, however often it is read.

    The first line is in it so that a file truncated and written again (copytruncate),
    whose events start at offsets already seen, does not collide with what it held before.
    """
    joined = f"{label}\x1f{inode}\x1f{offset}\x1f{first_line}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(joined, digest_size=16).hexdigest()


class _Collector:
    """One poll's consumer: groups each file's lines into events and keeps the errors."""

    def __init__(self, source: LogFileSource) -> None:
        self.source = source
        self.stats = PollStats()
        self.signals: list[RawSignal] = []

    def consume(self, read: FileRead) -> Position:
        limits = self.source.limits
        position, held = read.start, None
        lines = size = decided = 0  # counted here: a pydantic attribute per line costs
        for event in group_events(
            read.lines,
            self.source.header,
            max_lines=limits.max_event_lines,
            max_chars=limits.max_event_chars,
        ):
            lines += event.lines
            size += event.end - event.start
            if held is not None:
                self._decide(held, read)
                decided += 1
                position = Position(event.start, event.line)
            held = event
        # The last event may still grow (a traceback being written under its ERROR line):
        # it is read again next poll unless the file has settled or it is already huge.
        if held is not None and (read.settled or held.end - held.start > limits.max_held_bytes):
            self._decide(held, read)
            decided += 1
            position = Position(held.end, held.line + held.lines)
        self.stats.lines += lines
        self.stats.bytes += size
        self.stats.events += decided
        self.stats.signals = len(self.signals)
        return position

    def _decide(self, event: Event, read: FileRead) -> None:
        signal = self.source.signal(event, read)
        if signal is not None:
            self.signals.append(signal)


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def _title(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _observed_at(record: LogRecord | None, mtime: float) -> datetime:
    """The record's own time; the file's modification time if it has none we can read."""
    parsed = parse_timestamp(record.ts) if record is not None and record.ts else None
    return parsed or datetime.fromtimestamp(mtime, UTC)


def parse_timestamp(text: str) -> datetime | None:
    """A log's timestamp as an aware datetime; one without a zone is taken as UTC.

    Airflow's `2026-11-20, 02:00:01 UTC`, `2026-11-20 02:00:01,123`, `…T02:00:01.123+0000`,
    ISO 8601, and epoch seconds or milliseconds (JSON loggers).
    """
    match = _TS.search(text)
    if match is None:
        return _epoch(text)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=_zone(zone))
    except ValueError:  # a day or an offset out of range: not a time after all
        return None


def _zone(text: str | None) -> timezone:
    if text is None or text in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def _epoch(text: str) -> datetime | None:
    try:
        number = float(text)
    except ValueError:
        return None
    if number > 1e11:  # milliseconds: seconds this large are thousands of years away
        number /= 1000
    if not 1e8 < number < 1e11:
        return None
    return datetime.fromtimestamp(number, UTC)


def _check_pattern(pattern: str) -> list[str]:
    """A pattern that matches nothing, and matches that cannot be read."""
    hits = glob.glob(os.path.abspath(os.path.expanduser(pattern)), recursive=True)
    problems: list[str] = []
    files = 0
    for path in sorted(hits):
        if os.path.isdir(path):
            continue
        files += 1
        try:
            with open(path, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            problems.append(f"cannot read {path} ({exc.strerror or exc})")
    if not files:
        root = literal_root(pattern)
        why = "" if os.path.isdir(root) else f" (folder {root} does not exist)"
        problems.append(f"no file matches {pattern}{why}")
    return problems


def literal_root(pattern: str) -> str:
    """The folder a glob starts from: its path up to the first part with a wildcard."""
    parts = PurePath(os.path.abspath(os.path.expanduser(pattern))).parts
    literal: list[str] = []
    for part in parts[:-1]:
        if any(char in part for char in "*?["):
            break
        literal.append(part)
    return str(PurePath(*literal)) if literal else os.sep


def _first_lines(path: str) -> list[str]:
    """The non-blank lines in the first block of a file; empty if it cannot be read."""
    try:
        with open(path, "rb") as fh:
            block = fh.read(_HEADER_SAMPLE_BYTES)
    except OSError:
        return []
    lines = block.decode("utf-8", errors="replace").splitlines()
    return [line for line in lines if line.strip()]

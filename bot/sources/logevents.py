"""Log lines grouped into events: a record's first line and everything that belongs to it.

A record starts at a line that carries the format's header (`[ts] {file.py:12} LEVEL - …` for
Airflow, a JSON object for JSON lines, the declared pattern for text). Lines that do not —
indented lines, blank lines, a traceback, the rest of a multi-line message — belong to the
record before. A Python traceback is followed line by line, chained exceptions ("During
handling of the above exception…", "The above exception was the direct cause…") and
exception groups included, so that the exception line ending it is known even when a loose
header pattern would match it, and so that it can be the event's title.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from bot.intake.logformats import TRUNCATION_MARKER, LogFormat, LogRecord, parse_line
from bot.sources.tail import Line

HeaderParser = Callable[[str], LogRecord | None]

TRACEBACK_START = "Traceback (most recent call last):"
_CHAIN = frozenset(
    {
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    }
)
# What ends a traceback: `KeyError: 'x'`, `requests.exceptions.ConnectionError: …`, `StopIteration`.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?::|$)")
# Exception groups draw their nested tracebacks behind bars: `  | ValueError: 1`.
_BARRED = re.compile(r"^( *)\| ?")
# A JSON line too long to parse whole (cut) still names its level near the front.
_JSON_LEVEL = re.compile(r'"(?:level|levelname|severity|lvl|log_level)"\s*:\s*"([A-Za-z]+)"')
_ERROR_LEVELS = frozenset(
    {"ERROR", "ERR", "CRITICAL", "CRIT", "FATAL", "SEVERE", "ALERT", "EMERG", "EMERGENCY", "PANIC"}
)

_NONE, _FRAMES, _EXCEPTION, _CHAINED = range(4)


def is_error_level(level: str | None) -> bool:
    """ERROR and worse, by name, or by number as pino and bunyan write it (50, 60)."""
    if not level:
        return False
    level = level.strip().upper()
    if level.isdigit():
        # Python's ERROR is 40, but 40 is pino's WARN: only 50 and above are unambiguous.
        return int(level) >= 50
    return level in _ERROR_LEVELS


def header_parser(fmt: LogFormat, max_chars: int) -> HeaderParser:
    """The header of a line in `fmt`, or None if the line continues the previous record."""

    def parse(text: str) -> LogRecord | None:
        record = parse_line(text, fmt, max_chars=max_chars)
        if record.format == fmt.name:
            return record
        if fmt.kind == "json" and text.startswith("{"):
            # An object without a message key, or one cut for length: a record all the same.
            level = _JSON_LEVEL.search(text[:2_000])
            return LogRecord(text, text, fmt.name, level=level.group(1) if level else None)
        return None

    return parse


class TracebackScan:
    """Follows a Python traceback through the lines of an event, one `feed` at a time."""

    __slots__ = ("_column", "_state", "exception", "seen")

    def __init__(self) -> None:
        self._state = _NONE
        self._column = 0
        self.seen = False  # a traceback started
        self.exception: str | None = None  # the outermost exception line: printed last

    @property
    def expects_exception(self) -> bool:
        """Inside a traceback's frames or between chained ones: the next unindented line
        is an exception line, not a new record."""
        return self._state in (_FRAMES, _CHAINED)

    def feed(self, text: str) -> None:
        if self._state == _NONE and "Traceback" not in text:
            return  # most lines of most logs: no regex for them
        column, body = _unbar(text)
        stripped = body.strip()
        if stripped.endswith(TRACEBACK_START):  # also `+ Exception Group Traceback (…):`
            self._state, self.seen = _FRAMES, True
        elif self._state == _NONE:
            return  # "Traceback" in a message, not a traceback's start
        elif stripped in _CHAIN:
            self._state = _CHAINED
        elif self.expects_exception and stripped and body[:1] not in (" ", "\t", "+"):
            # Within a group, the group's own line comes first and sub-exceptions, deeper
            # behind bars, must not replace it; in a plain chain the last one wins.
            if self.exception is None or column <= self._column:
                self.exception, self._column = stripped, column
            self._state = _EXCEPTION


def _unbar(text: str) -> tuple[int, str]:
    """(column of the bar, text behind it) for an exception group's line; (0, text) else."""
    match = _BARRED.match(text)
    return (len(match.group(1)) + 1, text[match.end() :]) if match else (0, text)


class EventText:
    """An event's text, bounded: its head, and its last lines (where a traceback's
    exception is), with a note of how many lines between them were left out."""

    __slots__ = (
        "_head",
        "_head_budget",
        "_limit",
        "_omitted",
        "_size",
        "_tail",
        "_tail_budget",
        "_tail_size",
    )

    def __init__(self, first: str, limit: int) -> None:
        # A quarter for the tail, less room for the note; the last `_cut` is a safety net.
        self._limit = limit
        self._head_budget = limit * 3 // 4
        self._tail_budget = limit // 4 - 64
        self._head = [_cut(first, self._head_budget)]
        self._size = len(self._head[0])
        self._tail: deque[str] = deque()
        self._tail_size = 0
        self._omitted = 0

    def add(self, text: str) -> None:
        if not self._tail and self._size + len(text) < self._head_budget:
            self._head.append(text)
            self._size += len(text) + 1
            return
        line = _cut(text, self._tail_budget)
        self._tail.append(line)
        self._tail_size += len(line) + 1
        while self._tail_size > self._tail_budget and len(self._tail) > 1:
            self._tail_size -= len(self._tail.popleft()) + 1
            self._omitted += 1

    def render(self) -> str:
        parts = list(self._head)
        if self._omitted:
            parts.append(f"[… {self._omitted} lines omitted …]")
        parts.extend(self._tail)
        return _cut("\n".join(parts), self._limit)


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters, and the marker if any were cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATION_MARKER


@dataclass(slots=True)
class Event:
    """One record with its continuation lines. Built per record: a plain dataclass."""

    start: int  # byte offset of its first line
    end: int  # byte offset after its last line
    line: int  # number of its first line
    lines: int  # how many lines it spans
    first: str  # its first line as read
    record: LogRecord | None  # the header of its first line; None if it has none
    text: EventText
    traceback: TracebackScan

    @classmethod
    def begin(cls, line: Line, record: LogRecord | None, max_chars: int) -> Event:
        scan = TracebackScan()
        scan.feed(line.text)
        text = EventText(line.text, max_chars)
        return cls(line.offset, line.end, line.number, 1, line.text, record, text, scan)

    def add(self, line: Line) -> None:
        self.end = line.end
        self.lines += 1
        self.text.add(line.text)
        self.traceback.feed(line.text)


def group_events(
    lines: Iterable[Line], header: HeaderParser, *, max_lines: int, max_chars: int
) -> Iterator[Event]:
    """The events the lines make, in order; the last one as far as the lines go."""
    event: Event | None = None
    for line in lines:
        record = _record_start(line.text, event, header)
        if event is not None and record is None and event.lines < max_lines:
            event.add(line)
            continue
        if event is not None:
            yield event
        event = Event.begin(line, record, max_chars)
    if event is not None:
        yield event


def _record_start(text: str, event: Event | None, header: HeaderParser) -> LogRecord | None:
    """The header if `text` starts a record; None if it belongs to the event before."""
    if not text or text[0] in " \t":
        return None  # indented or blank: a continuation, whatever the pattern would say
    if event is not None and event.traceback.expects_exception and _EXCEPTION_LINE.match(text):
        return None  # the line ending a traceback, even where a loose header would match it
    return header(text)


def scan_traceback(text: str) -> TracebackScan:
    """A traceback held in one string (a JSON record's `exc_info`), scanned."""
    scan = TracebackScan()
    for line in text.splitlines():
        scan.feed(line)
    return scan

"""Log line formats: strip the header (time, level, logger…) and keep the message.

A template miner must see the message alone: fed whole lines, the changing timestamp in
front of every message defeats it. A format is declared by a header pattern, a regex whose
named groups are the header fields and whose `content` group is the message, or, for JSON
lines, by the keys that hold each field. `auto` tries the built-in formats in turn and falls
back to the whole line.

Input is untrusted: bytes are decoded with replacement, control characters are dropped, and
lines longer than a limit are cut with a marker, so that one binary blob or a megabyte of
base64 cannot stall or poison the miner. Nor can a line that does not fit the header: a
pattern with several lazy fields (`(?P<date>.*?) (?P<time>.*?) …`) makes a backtracking
engine try every split of such a line, seconds for a few hundred characters and never
ending for a few thousand; those patterns run on RE2, whose time is linear in the line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.intake.layouts import layout_to_regex
from bot.intake.re2_match import Match, Matcher, on_re2

TRUNCATION_MARKER = " <TRUNCATED>"
DEFAULT_MAX_CHARS = 8_192

# C0 controls except tab and newline, DEL, and C1 controls: never part of a message.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]+")
_REPLACEMENT_RUN = re.compile("\ufffd{2,}")

# Header groups that feed LogRecord's own attributes (`level2`: an alternative spelling in
# the same pattern, since a regex cannot repeat a group name).
_TS_FIELDS = ("ts", "timestamp", "datetime", "date", "day", "month", "time")
_LEVEL_FIELDS = ("level", "level2", "severity", "type")
_LOGGER_FIELDS = ("logger", "logger2", "component", "name", "program", "process")


def clean_text(text: str | bytes, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Untrusted text made safe to mine: decoded, without control characters, bounded.

    The cut happens before any regex sees the text: masking cost grows with length, and a
    template of a megabyte is no template.
    """
    if text.__class__ is not str and isinstance(text, bytes | bytearray):
        text = bytes(text[: max_chars * 4]).decode("utf-8", errors="replace")
    if len(text) > max_chars:
        text = text[:max_chars] + TRUNCATION_MARKER
    if not text.isprintable():
        text = _CONTROL.sub("", text.replace("\t", " "))
        text = _REPLACEMENT_RUN.sub("\ufffd", text)
    return text.strip()


class LogRecord:
    """One log line, split into its header fields and its message. Read-only by convention.

    A plain class, neither pydantic nor a frozen dataclass: one is built per line on the
    intake's hot path (validation, or a frozen `__init__`, costs 3-7x the construction),
    and every field is a string this module cut out of the line itself. A record parsed by
    a header regex works out `ts`, `level`, `logger` and `fields` from its match on first
    read: many lines are read only for their message.
    """

    __slots__ = (
        "_fields",
        "_level",
        "_logger",
        "_match",
        "_plan",
        "_ts",
        "content",
        "format",
        "raw",
    )

    def __init__(
        self,
        content: str,
        raw: str,
        format: str,
        ts: str | None = None,
        level: str | None = None,
        logger: str | None = None,
        fields: dict[str, str | None] | None = None,
    ) -> None:
        self.content = content  # the message without the header
        self.raw = raw  # the cleaned line as read
        self.format = format  # name of the format that parsed it; `raw` if none did
        self._ts = ts
        self._level = level
        self._logger = logger
        self._fields = fields
        self._plan: _Plan | None = None  # with `_match`: how the lazy attributes are read
        self._match: Match | None = None

    @classmethod
    def _matched(cls, plan: _Plan, match: Match, text: str, name: str) -> LogRecord:
        # Slot by slot, without `__init__`'s argument binding: half the cost, once per line.
        record = _new_object(cls)
        record.content = match["content"].strip()
        record.raw = text
        record.format = name
        record._ts = record._level = record._logger = _LAZY
        record._fields = None
        record._plan = plan
        record._match = match
        return record

    @property
    def ts(self) -> str | None:
        """Timestamp as written in the line."""
        if self._ts is _LAZY:
            self._ts = self._plan.ts_of(self._match)  # type: ignore[union-attr, arg-type]
        return self._ts

    @property
    def level(self) -> str | None:
        if self._level is _LAZY:
            self._level = _first_group(self._match, self._plan.level)  # type: ignore[arg-type, union-attr]
        return self._level

    @property
    def logger(self) -> str | None:
        """Logger, component or source file."""
        if self._logger is _LAZY:
            self._logger = _first_group(self._match, self._plan.logger)  # type: ignore[arg-type, union-attr]
        return self._logger

    @property
    def fields(self) -> dict[str, str | None]:
        """Header fields by name; None: absent."""
        if self._fields is None:
            self._fields = {} if self._match is None else self._match.groupdict()
            self._fields.pop("content", None)
        return self._fields

    def _key(self) -> tuple[object, ...]:
        return (self.content, self.raw, self.format, self.ts, self.level, self.logger, self.fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LogRecord) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable by its lazy fields

    def __repr__(self) -> str:
        return (
            f"LogRecord(content={self.content!r}, raw={self.raw!r}, format={self.format!r}, "
            f"ts={self.ts!r}, level={self.level!r}, logger={self.logger!r}, "
            f"fields={self.fields!r})"
        )


_LAZY: Any = object()  # a header attribute not worked out yet
_new_object = object.__new__


class _Plan:
    """A regex format compiled: the regex and which groups feed which record attribute.

    A line's match is `fast(line) or exact(line)`. A layout's `fast` is a quicker `re`
    variant of its regex (see `layout_to_regex`) that finds the same match or none, and
    `exact` the regex itself on RE2 for the lines the variant gives up on. Any other
    pattern is `fast` alone: on RE2, or on `re` if RE2 cannot run it (lookaround,
    backreferences: see `stall_risk`) or if this module vouches that `re` runs it in linear
    time (`linear`: the builtin formats, quicker on `re` by 5-9x a line).
    """

    __slots__ = ("exact", "fast", "level", "logger", "regex", "stalls", "ts")

    def __init__(self, pattern: str, fast: str | None = None, linear: bool = False) -> None:
        self.regex = re.compile(pattern)
        safe = self.regex.match if linear else on_re2(pattern)
        self.stalls = safe is None  # on a backtracking engine that may not end in time
        self.fast: Matcher = safe or self.regex.match
        self.exact: Matcher = _no_match
        if fast is not None:
            self.fast, self.exact = re.compile(fast).match, self.fast
        names = sorted(self.regex.groupindex, key=self.regex.groupindex.__getitem__)
        # One `ts` group, else the pieces (`date`, `time`…) joined in header order.
        self.ts = ("ts",) if "ts" in names else tuple(n for n in names if n in _TS_FIELDS)
        self.level = tuple(n for n in _LEVEL_FIELDS if n in names)
        self.logger = tuple(n for n in _LOGGER_FIELDS if n in names)

    def ts_of(self, match: Match) -> str | None:
        if len(self.ts) == 1:
            return _first_group(match, self.ts)
        if not self.ts:
            return None
        return " ".join([v.strip() for v in match.group(*self.ts) if v]) or None


_matched = LogRecord._matched  # bound once: read per line


def _no_match(text: str) -> None:
    return None


def stall_risk(fmt: LogFormat) -> str | None:
    """Why a line that does not fit `fmt`'s header pattern may stall its parse; None if
    it cannot."""
    plan = _PLANS.get(fmt.pattern) if fmt.pattern is not None else None
    if plan is None or not plan.stalls:
        return None
    return (
        f"format {fmt.name!r}: RE2 cannot run its header pattern (lookaround, backreference "
        "or a flag it lacks), so Python's backtracking `re` does, and a line that does not "
        "fit a pattern with several `.*?` or nested repeats can take minutes; without those "
        "constructs the pattern runs on RE2, in time linear in the line"
    )


def _first_group(match: Match, names: Sequence[str]) -> str | None:
    """The first non-empty header field among `names` (`level`, else `level2`…)."""
    for name in names:
        value = match.group(name)
        if value:
            return value.strip() or None
    return None


_PLANS: dict[str, _Plan] = {}  # header pattern -> its compiled plan


class LogFormat(BaseModel):
    """How the lines of one log source are laid out.

    `kind="regex"`: `pattern` matches a whole line; named groups are header fields and the
    group `content` is the message (`ts`, `level`, `logger` fill the record's attributes).
    `kind="json"`: each line is a JSON object; the first present key of each list is used.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["regex", "json"] = "regex"
    pattern: str | None = Field(default=None, description="Header regex with a `content` group.")
    message_keys: tuple[str, ...] = ("message", "msg", "log", "event", "text")
    ts_keys: tuple[str, ...] = ("timestamp", "@timestamp", "time", "ts", "asctime", "date")
    level_keys: tuple[str, ...] = ("level", "levelname", "severity", "lvl", "log_level")
    logger_keys: tuple[str, ...] = ("logger", "logger_name", "name", "module", "component")

    @field_validator("pattern")
    @classmethod
    def _has_content_group(cls, pattern: str | None) -> str | None:
        if pattern is not None and "content" not in re.compile(pattern).groupindex:
            raise ValueError("a header pattern needs a named group `content`")
        return pattern

    @model_validator(mode="after")
    def _regex_needs_pattern(self) -> LogFormat:
        if self.kind == "regex" and self.pattern is None:
            raise ValueError(f"format {self.name!r}: a regex format needs a pattern")
        return self

    def model_post_init(self, context: Any) -> None:
        # Compiled once per pattern, kept in a plain dict: a pydantic private attribute
        # costs microseconds per read, and this is read for every line.
        if self.pattern is not None and self.pattern not in _PLANS:
            _PLANS[self.pattern] = _Plan(self.pattern)

    @classmethod
    def from_layout(cls, name: str, layout: str) -> LogFormat:
        """A regex format from a layout such as `<Date> <Time> <Level> <Component>: <Content>`.

        This is the notation of Loghub's `log_format` strings: `<Field>` is a field, runs of
        spaces match any whitespace, and everything else is regex (`\\[` is a bracket,
        `(\\[<PID>\\])?` an optional part).
        """
        pattern = layout_to_regex(layout)
        if pattern not in _PLANS:
            _PLANS[pattern] = _Plan(pattern, fast=layout_to_regex(layout, fast=True))
        return cls(name=name, pattern=pattern)


def _linear(name: str, pattern: str) -> LogFormat:
    """A builtin format whose pattern runs on `re` in time linear in the line: each of its
    unbounded repeats is followed by something it cannot match, or is possessive (`\\s++`
    before the message: giving back a space could not help `.*` end the line)."""
    _PLANS[pattern] = _Plan(pattern, linear=True)
    return LogFormat(name=name, pattern=pattern)


AIRFLOW = _linear(
    "airflow",
    # `[2026-11-20, 02:00:01 UTC] {taskinstance.py:1157} INFO - msg`; Airflow 2.0–2.5 wrote
    # `[2026-11-20 02:00:01,123]`, later versions `[2026-11-20T02:00:01.123+0000]`.
    (
        r"^\[(?P<ts>\d{4}-\d{2}-\d{2}(?:,\s*|T|\s+)\d{2}:\d{2}:\d{2}(?:[.,]\d+)?"
        r"(?:\s*[A-Z]{2,5}|[+-]\d{2}:?\d{2}|Z)?)\]\s+"
        r"\{(?P<logger>[^}]*)\}\s+(?P<level>[A-Z]+)\s+-\s++(?P<content>.*)$"
    ),
)
JSON_LINES = LogFormat(name="json", kind="json")
PYTHON_LOGGING = _linear(
    "python",
    # logging's classic `%(asctime)s - %(name)s - %(levelname)s - %(message)s`, and the
    # common `%(asctime)s %(levelname)s %(name)s: %(message)s`.
    (
        r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\s+"
        r"(?:-\s+(?P<logger>\S+)\s+-\s+(?P<level>[A-Z]+)\s+-\s++"
        r"|(?P<level2>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\s++(?:(?P<logger2>[\w.$\[\]-]+):\s++)?)"
        r"(?P<content>.*)$"
    ),
)
RAW = _linear("raw", r"^(?P<content>.*)$")

BUILTIN_FORMATS: dict[str, LogFormat] = {
    fmt.name: fmt for fmt in (AIRFLOW, JSON_LINES, PYTHON_LOGGING, RAW)
}
# What `auto` tries, in order; raw always matches, so it comes last.
AUTO_ORDER: tuple[LogFormat, ...] = (JSON_LINES, AIRFLOW, PYTHON_LOGGING)


def parse_line(
    line: str | bytes,
    fmt: LogFormat | str = "auto",
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> LogRecord:
    """Split one line into header fields and message; the whole line if the format fails."""
    # Intake's hot path, kept flat on purpose: every Python call here costs a few percent
    # of a line's whole way through intake (see bench/throughput.py).
    if line.__class__ is str and len(line) <= max_chars and line.isprintable():
        text = line.strip()  # all `clean_text` would do to it
    else:
        text = clean_text(line, max_chars)
    if isinstance(fmt, str):
        candidates = _resolve(fmt)
    else:
        plan = _PLANS.get(fmt.pattern)  # type: ignore[arg-type]  # None for JSON formats
        if plan is not None:  # a declared regex format: the common case
            match = plan.fast(text) or plan.exact(text)
            if match is None:
                return LogRecord(text, text, "raw")
            return _matched(plan, match, text, fmt.name)
        candidates = (fmt,)
    for candidate in candidates:
        record = _parse_with(candidate, text)
        if record is not None:
            return record
    return LogRecord(text, text, "raw")


def _resolve(name: str) -> Sequence[LogFormat]:
    if name == "auto":
        return AUTO_ORDER
    try:
        return (BUILTIN_FORMATS[name],)
    except KeyError:
        known = ", ".join(BUILTIN_FORMATS)
        raise ValueError(f"unknown log format {name!r}; known: auto, {known}") from None


def _parse_with(fmt: LogFormat, text: str) -> LogRecord | None:
    """The record, or None if the line is not in this format. Runs for every line."""
    plan = _PLANS.get(fmt.pattern) if fmt.pattern is not None else None
    if plan is None:
        return _parse_json(fmt, text)
    match = plan.fast(text) or plan.exact(text)
    return None if match is None else _matched(plan, match, text, fmt.name)


def _parse_json(fmt: LogFormat, text: str) -> LogRecord | None:
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    content = _first_key(obj, fmt.message_keys)
    if content is None:
        return None
    return LogRecord(
        content=clean_text(content),
        raw=text,
        format=fmt.name,
        ts=_first_key(obj, fmt.ts_keys),
        level=_first_key(obj, fmt.level_keys),
        logger=_first_key(obj, fmt.logger_keys),
        fields={key: _as_text(value) for key, value in obj.items() if key not in fmt.message_keys},
    )


def _first_key(obj: dict[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        if obj.get(key) not in (None, ""):
            return _as_text(obj[key])
    return None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)

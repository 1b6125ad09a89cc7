"""Log line formats: strip the header (time, level, logger…) and keep the message.

A template miner must see the message alone: fed whole lines, the changing timestamp in
front of every message defeats it. A format is declared by a header pattern, a regex whose
named groups are the header fields and whose `content` group is the message, or, for JSON
lines, by the keys that hold each field. `auto` tries the built-in formats in turn and falls
back to the whole line.

Input is untrusted: bytes are decoded with replacement, control characters are dropped, and
lines longer than a limit are cut with a marker, so that one binary blob or a megabyte of
base64 cannot stall or poison the miner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    if isinstance(text, bytes | bytearray):
        text = bytes(text[: max_chars * 4]).decode("utf-8", errors="replace")
    if len(text) > max_chars:
        text = text[:max_chars] + TRUNCATION_MARKER
    if not text.isprintable():
        text = _CONTROL.sub("", text.replace("\t", " "))
        text = _REPLACEMENT_RUN.sub("\ufffd", text)
    return text.strip()


@dataclass(slots=True)
class LogRecord:
    """One log line, split into its header fields and its message. Read-only by convention.

    A plain dataclass, neither pydantic nor frozen: one is built per line on the intake's
    hot path (validation, or a frozen `__init__`, costs 3-7x the construction), and every
    field is a string this module cut out of the line itself.
    """

    content: str  # the message without the header
    raw: str  # the cleaned line as read
    format: str  # name of the format that parsed it; `raw` if none did
    ts: str | None = None  # timestamp as written in the line
    level: str | None = None
    logger: str | None = None  # logger, component or source file
    fields: dict[str, str | None] = field(default_factory=dict)  # header fields; None: absent


class _Plan(NamedTuple):
    """A regex format compiled: the regex and which groups feed which record attribute."""

    regex: re.Pattern[str]
    ts: tuple[str, ...]
    level: tuple[str, ...]
    logger: tuple[str, ...]


_PLANS: dict[str, _Plan] = {}  # header pattern -> its compiled plan


def _compile(pattern: str) -> _Plan:
    regex = re.compile(pattern)
    names = sorted(regex.groupindex, key=regex.groupindex.__getitem__)  # header order
    return _Plan(
        regex=regex,
        ts=("ts",) if "ts" in names else tuple(n for n in names if n in _TS_FIELDS),
        level=tuple(n for n in _LEVEL_FIELDS if n in names),
        logger=tuple(n for n in _LOGGER_FIELDS if n in names),
    )


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
            _PLANS[self.pattern] = _compile(self.pattern)

    @classmethod
    def from_layout(cls, name: str, layout: str) -> LogFormat:
        """A regex format from a layout such as `<Date> <Time> <Level> <Component>: <Content>`.

        This is the notation of Loghub's `log_format` strings: `<Field>` is a field, runs of
        spaces match any whitespace, and everything else is regex (`\\[` is a bracket,
        `(\\[<PID>\\])?` an optional part).
        """
        return cls(name=name, pattern=_layout_to_regex(layout))


def _layout_to_regex(layout: str) -> str:
    parts = re.split(r"(<[A-Za-z_]\w*>)", layout)
    regex = []
    for part in parts:
        field = re.fullmatch(r"<([A-Za-z_]\w*)>", part)
        if field:
            group = field.group(1).lower()
            regex.append(f"(?P<{group}>.*)" if group == "content" else f"(?P<{group}>.*?)")
        else:
            regex.append(re.sub(r" +", r"\\s+", part))
    return "^" + "".join(regex) + "$"


AIRFLOW = LogFormat(
    name="airflow",
    # `[2026-11-20, 02:00:01 UTC] {taskinstance.py:1157} INFO - msg`; Airflow 2.0–2.5 wrote
    # `[2026-11-20 02:00:01,123]`, later versions `[2026-11-20T02:00:01.123+0000]`.
    pattern=(
        r"^\[(?P<ts>\d{4}-\d{2}-\d{2}(?:,\s*|T|\s+)\d{2}:\d{2}:\d{2}(?:[.,]\d+)?"
        r"(?:\s*[A-Z]{2,5}|[+-]\d{2}:?\d{2}|Z)?)\]\s+"
        r"\{(?P<logger>[^}]*)\}\s+(?P<level>[A-Z]+)\s+-\s+(?P<content>.*)$"
    ),
)
JSON_LINES = LogFormat(name="json", kind="json")
PYTHON_LOGGING = LogFormat(
    name="python",
    # logging's classic `%(asctime)s - %(name)s - %(levelname)s - %(message)s`, and the
    # common `%(asctime)s %(levelname)s %(name)s: %(message)s`.
    pattern=(
        r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\s+"
        r"(?:-\s+(?P<logger>\S+)\s+-\s+(?P<level>[A-Z]+)\s+-\s+"
        r"|(?P<level2>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\s+(?:(?P<logger2>[\w.$\[\]-]+):\s+)?)"
        r"(?P<content>.*)$"
    ),
)
RAW = LogFormat(name="raw", pattern=r"^(?P<content>.*)$")

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
    text = clean_text(line, max_chars)
    for candidate in (fmt,) if isinstance(fmt, LogFormat) else _resolve(fmt):
        record = _parse_with(candidate, text)
        if record is not None:
            return record
    return LogRecord(content=text, raw=text, format="raw")


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
    if fmt.pattern is None:
        return _parse_json(fmt, text)
    plan = _PLANS[fmt.pattern]
    match = plan.regex.match(text)
    if match is None:
        return None
    fields = match.groupdict()
    content = fields.pop("content")
    return LogRecord(
        content.strip(),
        text,
        fmt.name,
        _first(fields, plan.ts) if len(plan.ts) == 1 else _joined(fields, plan.ts),
        _first(fields, plan.level),
        _first(fields, plan.logger),
        fields,
    )


def _first(fields: dict[str, str | None], names: Sequence[str]) -> str | None:
    """The first non-empty header field among `names` (`level`, else `level2`…)."""
    for name in names:
        value = fields[name]
        if value:
            return value.strip() or None
    return None


def _joined(fields: dict[str, str | None], names: Sequence[str]) -> str | None:
    """Timestamp pieces (`date`, `time`…) joined in header order."""
    return " ".join(value.strip() for name in names if (value := fields[name])) or None


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

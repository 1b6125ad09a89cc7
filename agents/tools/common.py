"""What every tool file shares: redaction of every output, bounded text, citations, times.

`make_tool(fn, known)` is how a tool file turns a function into a `Tool`: whatever the
function returns, or raises, leaves as a `ToolOutput` with every secret redacted (summary,
data, citations, error), since a log line or a table value may hold one and the output goes
to a model, the trace and the case file.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from agents.redact import redact, redact_data
from agents.report import MAX_EXCERPT, Citation
from agents.tools.base import Tool, ToolOutput

CUT = "…[cut]"


def make_tool(fn: Callable[..., ToolOutput], known: Iterable[str] = ()) -> Tool:
    """`fn` as a tool whose output (or failure) is redacted; the schema is `fn`'s."""
    secrets = frozenset(known)

    @functools.wraps(fn)
    def run(**arguments: Any) -> ToolOutput:
        try:
            out = fn(**arguments)
        except Exception as exc:  # a tool's bug must not end the investigation, nor leak
            out = ToolOutput.fail(f"{fn.__name__} failed", f"{type(exc).__name__}: {exc}")
        return redact_data(out, secrets)

    return Tool(run, name=fn.__name__)


def fail(summary: str, error: str) -> ToolOutput:
    return ToolOutput.fail(summary, error)


def clip(text: str, limit: int) -> tuple[str, bool]:
    """At most `limit` characters, with a marker when cut; and whether it was."""
    if len(text) <= limit:
        return text, False
    return text[: max(limit - len(CUT), 0)] + CUT, True


def excerpt(text: str) -> str:
    """Text short enough for a citation's excerpt."""
    return clip(text, MAX_EXCERPT)[0]


def cite(kind: str, reference: str, text: str = "", known: Iterable[str] = ()) -> Citation:
    return Citation(kind=kind, reference=reference,  # type: ignore[arg-type]
                    excerpt=excerpt(redact(text, known) if text else ""))


def query_id(sql: str) -> str:
    """A stable id for a query's text: `sql:<id>` cites it in the report and the case file."""
    return hashlib.sha256(sql.encode()).hexdigest()[:12]


def utc(moment: datetime | None) -> datetime | None:
    """A time as aware UTC; a naive one is taken as UTC (what logs and runs mostly mean)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def plain(value: Any) -> Any:
    """A warehouse value as JSON: numbers stay numbers, times become ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def number(value: float | None) -> str:
    if value is None:
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"

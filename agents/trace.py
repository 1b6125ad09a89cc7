"""What an investigation shows while it runs: one event per plan change, tool call, finding….

The bot stores each event before it shows it (the Slack thread, the terminal), so the trace is
also the record of what ran. Events leave through a `TraceSink`; `Tracer` numbers them, redacts
them (a tool's arguments or a one-line summary can hold what a log line held) and keeps a copy
for the investigation's result.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agents.redact import redact, redact_data

log = logging.getLogger(__name__)

TraceKind = Literal[
    "plan",            # the orchestrator's plan changed
    "scratchpad",      # a hypothesis was added or changed, a map node was checked
    "tool_call",       # an agent called a tool (before it runs)
    "tool_result",     # what came back (status ok / error / no_data / refused)
    "subagent_start",  # the orchestrator dispatched a subagent with a task
    "subagent_end",    # the subagent returned findings, or stopped
    "finding",         # one claim a subagent returned, with its citations
    "model_call",      # one model call: tokens, cost, latency
    "error",           # a model failed, a call was malformed
    "limit",           # a guardrail stopped an agent or the investigation
    "report",          # the final report
]
SUMMARY_CHARS = 300


class TraceEvent(BaseModel):
    """One line of the live trace, with what a case file or a dashboard needs beside it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(description="Order within the investigation, from 1.")
    kind: TraceKind
    agent: str = Field(description="orchestrator, or the subagent's name (data, logs…).")
    summary: str = Field(description="The one line a human reads.")
    tool: str | None = None
    arguments: dict[str, Any] | None = Field(None, description="The call's arguments, redacted.")
    status: str | None = Field(None, description="ok, error, no_data, refused, stopped…")
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0
    data: Any = Field(None, description="Structured detail: the scratchpad, a finding's claim.")
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


@runtime_checkable
class TraceSink(Protocol):
    """Where events go; `emit` is called from several threads when subagents run side by side."""

    def emit(self, event: TraceEvent) -> None: ...


class ListSink:
    """Keeps the events in a list: tests, and a caller that shows them after the fact."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def emit(self, event: TraceEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class Tracer:
    """Numbers, redacts and forwards events; keeps them all for the result.

    A sink that fails (Slack down, a full disk) is logged and skipped: showing the trace must
    not end the investigation it shows.
    """

    def __init__(self, sink: TraceSink | None = None, *, known_secrets: Iterable[str] = ()):
        self.sink = sink
        self.known = tuple(known_secrets)
        self.events: list[TraceEvent] = []
        self._lock = threading.Lock()

    def emit(self, kind: TraceKind, agent: str, summary: str, **fields: Any) -> TraceEvent:
        summary = " ".join(redact(summary, self.known).split())
        if len(summary) > SUMMARY_CHARS:
            summary = summary[:SUMMARY_CHARS - 1] + "…"
        for key in ("arguments", "data"):
            if fields.get(key) is not None:
                fields[key] = redact_data(fields[key], self.known)
        with self._lock:  # seq order is emit order, also across subagent threads
            event = TraceEvent(seq=len(self.events) + 1, kind=kind, agent=agent,
                               summary=summary, **fields)
            self.events.append(event)
            if self.sink is not None:
                try:
                    self.sink.emit(event)
                except Exception:
                    log.exception("trace sink %s failed on event %d", type(self.sink).__name__,
                                  event.seq)
        return event

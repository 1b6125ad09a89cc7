"""One investigation in its Slack thread: a summary at the top, the live trace, the report, the
case file.

The summary message is edited in place (status, plan, leading hypothesis, confidence). The trace
is Slack's streaming message when someone asked for the investigation (a stream goes to one
person), else one message edited with chat.update that shows the newest lines. Either way
Slack sees at most one write per `interval`: subagents emit from several threads and many
events arrive within a second. Lines buffered before a quiet spell (a slow query) are shown by a
thread at most `interval` later, not held until the next event; that thread is joined when the
trace closes, so nothing is written after the report. Every post goes through the `Poster`
under a key, so a restart that rebuilds the trace for the same investigation finds its messages
instead of reposting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from slack_sdk.errors import SlackApiError

from agents.trace import TraceEvent
from bot.slack.blocks import (
    ThreadSummary,
    report_blocks,
    thread_summary,
    trace_markdown,
    trace_message,
)
from bot.slack.messages import Poster

if TYPE_CHECKING:
    from agents.report import Report
    from bot.investigate import Investigated

log = logging.getLogger(__name__)

Mode = Literal["auto", "stream", "update"]
# Slack refuses a message over 40,000 characters; the stream stops growing well before that.
STREAM_BUDGET = 35_000
APPEND_CHARS = 12_000  # markdown_text of one append: Slack's limit
STREAM_FULL = "_…the rest of the trace is in the case file, posted below at the end._\n"
MAX_PLAN = 10  # plan steps shown; with the cuts below the summary stays one short message
_refusals_logged: set[str] = set()  # a startStream refusal is logged once per process and error


class ThreadTrace:
    """An `agents.trace.TraceSink` that shows one investigation in a Slack thread."""

    def __init__(self, poster: Poster, *, channel: str, thread_ts: str, investigation_id: int,
                 title: str, issue_id: int | None = None, requester: str | None = None,
                 team_id: str | None = None, mode: Mode = "auto", interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.poster, self.channel, self.thread_ts = poster, channel, thread_ts
        self.id, self.issue_id = investigation_id, issue_id
        self.requester, self.team_id = requester, team_id
        self.interval, self.clock = interval, clock
        self.streaming = mode == "stream" or (mode == "auto" and requester is not None)
        self.summary = ThreadSummary(
            investigation_id=investigation_id, title=title or f"Investigation {investigation_id}",
            status="running", note=f"asked by <@{requester}>" if requester else None)
        self._lock = threading.RLock()
        self._pending: list[str] = []   # lines not yet shown
        self._lines: list[str] = []     # every line shown (update mode redraws from them)
        self._stream: tuple[str, str] | None = None  # (channel, ts) of an open stream
        self._opened = False            # this trace opened the trace message (not a restart)
        self._streamed = 0              # characters in the stream so far
        self._stream_full = False
        self._summary_changed = False
        self._steps, self._cost = 0, 0.0  # tool results and model spend so far
        self._last_flush = clock()
        self._finished = False
        self._wake = threading.Condition(self._lock)  # an event was buffered, or the end
        self._flusher: threading.Thread | None = None  # shows what waits through a quiet spell

    # ------------------------------------------------------------------ keys

    @property
    def summary_key(self) -> str:
        return f"summary:{self.id}"

    @property
    def trace_key(self) -> str:
        return f"trace:{self.id}"

    # ------------------------------------------------------------------ the sink

    def start(self, policy: str = "") -> None:
        """Post the summary, then open the live trace (a stream, or a message to edit)."""
        with self._lock:
            self.summary = self.summary.model_copy(update={"policy": policy})
            _safely("post the summary", self._show_summary)
            _safely("open the trace", self._open_trace)
            self._last_flush = self.clock()

    def emit(self, event: TraceEvent) -> None:
        """Buffer the event's line; show what is buffered when `interval` has passed. Never
        raises: the investigation goes on when Slack does not answer."""
        try:
            with self._lock:
                if self._finished:
                    return
                line = trace_markdown(event)
                if line:
                    self._pending.append(line)
                self._steps += event.kind == "tool_result"
                self._cost += event.cost_usd
                if event.kind in ("plan", "scratchpad") and isinstance(event.data, dict):
                    self._note_scratchpad(event.data)
                if self.clock() - self._last_flush >= self.interval:
                    self._flush()
                else:
                    self._arm()
        except Exception:
            log.exception("investigation %d: could not show trace event %d in Slack", self.id,
                          event.seq)

    def finish(self, done: Investigated) -> None:
        """Show the end: the trace closed, the summary final, the report, the case file."""
        result = done.result
        self._stop_flusher()
        with self._lock:
            _safely("close the trace", self._close_trace)
            self.summary = self.summary.model_copy(update={
                "status": result.status, "confidence": result.report.confidence,
                "leading_hypothesis": _root_cause(result.report),
                "steps": len(result.case_file.steps), "cost_usd": result.spend.total.cost_usd,
                "seconds": done.seconds, "policy": done.policy or self.summary.policy})
            _safely("update the summary", self._show_summary)
            _safely("post the report", lambda: self._post_report(done))
            _safely("upload the case file", lambda: self._upload_case_file(done))

    def fail(self, message: str) -> None:
        """The investigation could not run to its end: say so in the summary (`message` is
        already redacted by the caller)."""
        self._stop_flusher()
        with self._lock:
            _safely("close the trace", self._close_trace)
            self.summary = self.summary.model_copy(update={
                "status": "failed", "note": message, "steps": self._steps, "cost_usd": self._cost})
            _safely("update the summary", self._show_summary)

    # ------------------------------------------------------------------ summary

    def _note_scratchpad(self, snapshot: dict[str, Any]) -> None:
        """Plan and leading hypothesis from a scratchpad snapshot: the supported hypothesis,
        else the newest open one."""
        plan = [_cut(str(s.get("text", "")), 200) for s in snapshot.get("plan") or []
                if isinstance(s, dict)]
        hypotheses = [h for h in snapshot.get("hypotheses") or [] if isinstance(h, dict)]
        leading = next((h for h in hypotheses if h.get("status") == "supported"), None) \
            or next((h for h in reversed(hypotheses) if h.get("status") == "open"), None)
        update = {"plan": plan[:MAX_PLAN] or self.summary.plan,
                  "leading_hypothesis": _cut(str(leading.get("text", "")), 300)
                  if leading else None, "steps": self._steps, "cost_usd": self._cost}
        if any(getattr(self.summary, k) != v for k, v in update.items()):
            self.summary = self.summary.model_copy(update=update)
            self._summary_changed = True

    def _show_summary(self) -> None:
        text, blocks = thread_summary(self.summary)
        if self.poster.recorded(self.summary_key) is None:
            self.poster.post(self.summary_key, self.channel, text, blocks, kind="summary",
                             thread_ts=self.thread_ts, issue_id=self.issue_id,
                             investigation_id=self.id)
        else:
            self.poster.update(self.summary_key, text, blocks)
        self._summary_changed = False

    # ------------------------------------------------------------------ trace

    def _open_trace(self) -> None:
        if self.poster.recorded(self.trace_key) is not None:
            # a restart: the trace message is there; edit it only with lines of this run
            self.streaming = False
            return
        self._opened = True
        if self.streaming:
            try:
                self._start_stream()
                return
            except SlackApiError as exc:
                self._fall_back(exc)
        text, blocks = trace_message([], running=True)
        self.poster.post(self.trace_key, self.channel, text, blocks, kind="trace",
                         thread_ts=self.thread_ts, issue_id=self.issue_id,
                         investigation_id=self.id)

    def _start_stream(self) -> None:
        channel = self.poster.channel_id(self.channel)
        response = self.poster.client.chat_startStream(
            channel=channel, thread_ts=self.thread_ts, recipient_user_id=self.requester,
            recipient_team_id=self.team_id)
        self._stream = (response["channel"], response["ts"])
        self.poster.record(self.trace_key, response["channel"], response["ts"], kind="trace",
                           thread_ts=self.thread_ts, issue_id=self.issue_id,
                           investigation_id=self.id)

    def _fall_back(self, exc: SlackApiError) -> None:
        """Streaming refused (an old workspace, a missing scope…): edit one message instead."""
        error = str(exc.response.get("error", "unknown"))
        if error not in _refusals_logged:
            _refusals_logged.add(error)
            log.warning("Slack refused a streaming message (%s); the trace is one message "
                        "edited in place instead", error)
        self.streaming = False

    def _flush(self) -> None:
        """Show the buffered lines and a changed summary; called under the lock."""
        self._last_flush = self.clock()
        if self._summary_changed:
            self._show_summary()
        if self._pending:
            self._show(running=True)

    def _arm(self) -> None:
        """Show what is buffered within `interval` even if no event follows (a slow tool): one
        thread per trace, started at the first quiet spell; called under the lock."""
        if self._finished or not (self._pending or self._summary_changed):
            return
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._show_quiet, name=f"trace-{self.id}",
                                             daemon=True)
            self._flusher.start()
        self._wake.notify()

    def _show_quiet(self) -> None:
        with self._wake:
            while not self._finished:
                if not (self._pending or self._summary_changed):
                    self._wake.wait()
                    continue
                left = self.interval - (self.clock() - self._last_flush)
                if left > 0:
                    self._wake.wait(min(left, self.interval))
                else:
                    _safely("show the trace", self._flush)

    def _stop_flusher(self) -> None:
        """No more writes from the quiet-spell thread: it ends before the trace closes."""
        with self._lock:
            self._finished = True
            self._wake.notify_all()
            flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()

    def _show(self, *, running: bool) -> None:
        """Append the buffered lines to the stream, or redraw the edited trace message."""
        lines, self._pending = self._pending, []
        self._lines += lines
        if self._stream is not None:
            self._append(self._stream, self._fit(lines))
        if self._stream is None and (self._opened or self._lines):
            # (a restart with nothing new of its own leaves the old trace as it was)
            text, blocks = trace_message(self._lines, running=running)
            self.poster.update(self.trace_key, text, blocks)

    def _fit(self, lines: list[str]) -> list[str]:
        """The part of `lines` the stream still has room for, in pieces Slack takes in one
        call; when the stream is full, one line saying the rest is in the case file."""
        pieces: list[str] = []
        piece = ""
        for line in lines:
            if self._stream_full:
                break
            if self._streamed + len(line) > STREAM_BUDGET:
                line, self._stream_full = STREAM_FULL, True
            if len(piece) + len(line) > APPEND_CHARS:
                pieces.append(piece)
                piece = ""
            piece += line
            self._streamed += len(line)
        return [*pieces, piece] if piece else pieces

    def _append(self, stream: tuple[str, str], pieces: list[str]) -> None:
        channel, ts = stream
        try:
            for piece in pieces:
                self.poster.client.chat_appendStream(channel=channel, ts=ts, markdown_text=piece)
        except SlackApiError as exc:  # the stream closed under us: edit the message instead
            log.warning("appending to the trace stream failed (%s); editing it instead",
                        exc.response.get("error"))
            self.streaming, self._stream = False, None

    def _close_trace(self) -> None:
        """The last lines, then the stream stopped or the message marked finished."""
        self._show(running=False)
        if self._stream is not None:
            (channel, ts), self._stream = self._stream, None
            self.poster.client.chat_stopStream(channel=channel, ts=ts)

    # ------------------------------------------------------------------ the end

    def _post_report(self, done: Investigated) -> None:
        text, blocks = report_blocks(done.result.report, report_id=done.report_id,
                                     issue_id=self.issue_id, case_name=done.case_paths[0].name)
        self.poster.post(f"report:{self.id}", self.channel, text, blocks, kind="report",
                         thread_ts=self.thread_ts, issue_id=self.issue_id,
                         investigation_id=self.id)

    def _upload_case_file(self, done: Investigated) -> None:
        key = f"casefile:{self.id}"
        if self.poster.recorded(key) is not None:
            return
        channel = self.poster.channel_id(self.channel)
        path = done.case_paths[0]
        uploaded = self.poster.client.files_upload_v2(
            channel=channel, thread_ts=self.thread_ts, file=str(path),
            filename=f"sleuth-case-{self.id}.md", title=f"Case file of investigation {self.id}",
            initial_comment="The case file: every step, query, log excerpt and citation.")
        ts = _shared_ts(uploaded.get("file") or {}, channel) or self.thread_ts
        self.poster.record(key, channel, ts, kind="casefile", thread_ts=self.thread_ts,
                           issue_id=self.issue_id, investigation_id=self.id)


def _root_cause(report: Report) -> str:
    cause = report.root_cause
    where = f"{cause.node} ({cause.category})" if cause.node else cause.category
    return _cut(f"{where}: {cause.explanation}", 300)


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _shared_ts(file: dict[str, Any], channel: str) -> str | None:
    """The ts of the message that shares `file` in `channel`, when Slack says already."""
    for scope in ("public", "private"):
        shares = (file.get("shares") or {}).get(scope, {}).get(channel) or []
        if shares and shares[0].get("ts"):
            return str(shares[0]["ts"])
    return None


def _safely(what: str, step: Callable[[], None]) -> None:
    """Run one Slack step; a failure is logged and the next step still runs."""
    try:
        step()
    except Exception:
        log.exception("could not %s in Slack", what)

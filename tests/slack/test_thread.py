"""The thread of an investigation against the local workspace: the summary edited in place, the
live trace (a stream, or one edited message), throttled writes, the report and the case file,
and no second post when a restarted trace finishes again."""

from __future__ import annotations

import itertools
import threading
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agents.casefile import CaseFile, CaseMeta, Step
from agents.models.pricing import SpendLine, SpendReport
from agents.orchestrator import InvestigationResult
from agents.report import Citation, Claim, CodeChange, Report, RootCause
from agents.trace import TraceEvent
from bot.config import DemoConfig, Settings, StoreConfig
from bot.investigate import Investigated, issue_inputs, run_investigation, scenario_issues
from bot.slack.blocks import ACTION_CREATE_PR
from bot.slack.messages import Poster
from bot.slack.thread import APPEND_CHARS, STREAM_BUDGET, STREAM_FULL, ThreadTrace
from bot.slack.workspace import APPROVER_USER_ID, RunningWorkspace
from bot.slack.workspace.state import TEAM_ID
from bot.slack.workspace.validation import MAX_TEXT, block_errors
from bot.store import open_store
from bot.store.models import Investigation
from tests.conftest import DEMO_DAYS, DEMO_SEED
from tests.slack.conftest import CountingClient, channel_id, wait_for


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def investigation_id(engine: Engine) -> int:
    with Session(engine) as session:
        row = Investigation(question="why did fct_orders fail?", trigger="button",
                            policy="offline")
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


@pytest.fixture
def root(client: WebClient) -> tuple[str, str]:
    """(channel id, ts) of the issue card the thread hangs under."""
    channel = channel_id(client, "data-alerts")
    return channel, client.chat_postMessage(channel=channel, text="🟠 fct_orders failed")["ts"]


def trace(poster: Poster, root: tuple[str, str], investigation_id: int, **kwargs: Any
          ) -> ThreadTrace:
    return ThreadTrace(poster, channel="#data-alerts", thread_ts=root[1],
                       investigation_id=investigation_id, title="fct_orders failed", **kwargs)


def event(seq: int, kind: str = "tool_result", summary: str | None = None, *,
          agent: str = "data", data: Any = None) -> TraceEvent:
    return TraceEvent(seq=seq, kind=kind, agent=agent, data=data, status="ok",
                      summary=summary or f"data → run_sql step {seq}: 12 rows")


SNAPSHOT = {"plan": [{"text": "Read the failed task's log", "done": True},
                     {"text": "Compare the staging schema with yesterday's", "done": False}],
            "hypotheses": [{"id": "H1", "text": "a column was renamed upstream",
                            "status": "open"},
                           {"id": "H2", "text": "the warehouse ran out of memory",
                            "status": "open"}],
            "checked": {}}


def investigated(tmp_path: Path, investigation_id: int, *, needed: bool = False,
                 status: str = "done") -> Investigated:
    """A finished investigation as run_investigation returns it, built by hand."""
    report = Report(
        title="fct_orders failed: `order_total` renamed upstream",
        summary="The shop renamed order_total to total_amount; stg_orders broke.",
        what_happened="The 02:00 load read the new column name and the model failed.",
        impacted_assets=["model.shop.stg_orders", "model.shop.fct_orders"], severity="SEV2",
        root_cause=RootCause(node="model.shop.stg_orders", category="schema_change",
                             explanation="stg_orders selects order_total, which is gone."),
        confidence=0.82,
        evidence=[Claim(text="The load failed on the missing column.", citations=[
            Citation(kind="log", reference="logs/shop/load_orders/attempt=1.log#L40-L42",
                     excerpt="column order_total does not exist")])],
        code_change=CodeChange(needed=needed, sketch="- order_total\n+ total_amount",
                               files=["models/stg_orders.sql"]) if needed
        else CodeChange(needed=False),
        produced_by="offline-policy")
    case = CaseFile(meta=CaseMeta(investigation_id=str(investigation_id), title=report.title,
                                  started_at=datetime.now(UTC), produced_by="offline-policy",
                                  status="done"),
                    steps=[Step(index=i, agent="data", tool="run_sql", result_digest="12 rows",
                                status="ok") for i in range(1, 4)], report=report)
    md = tmp_path / f"{investigation_id}.md"
    md.write_text("# Case file\n\n3 steps\n", encoding="utf-8")
    result = InvestigationResult(status=status, report=report, trace=[],
                                 spend=SpendReport(total=SpendLine(cost_usd=0.0123)),
                                 case_file=case)
    return Investigated(investigation_id, result, (md, md.with_suffix(".json")), 4.2, "offline",
                        report_id=7)


def replies(client: WebClient, root: tuple[str, str]) -> list[dict[str, Any]]:
    return client.conversations_replies(channel=root[0], ts=root[1])["messages"][1:]


def shown(message: dict[str, Any]) -> str:
    """What a message shows: its text and every text in its blocks."""
    texts = [message.get("text") or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(message.get("blocks") or [])
    return "\n".join(texts)


def internal(running: RunningWorkspace, channel: str, ts: str) -> dict[str, Any]:
    found = running.workspace.message(channel, ts, internal=True)
    assert found is not None
    return found


# ---------------------------------------------------------------- update mode

def test_update_mode_edits_one_trace_message_and_the_summary_ends_done(
        running: RunningWorkspace, client: WebClient, poster: Poster, root: tuple[str, str],
        investigation_id: int, tmp_path: Path) -> None:
    clock = Clock()
    thread = trace(poster, root, investigation_id, mode="update", clock=clock)
    thread.start("offline")
    summary = poster.recorded(f"summary:{investigation_id}")
    trace_row = poster.recorded(f"trace:{investigation_id}")
    assert summary is not None and trace_row is not None

    clock.now += 2
    thread.emit(event(1, "plan", "plan: 2 steps, 1 done", agent="orchestrator", data=SNAPSHOT))
    for seq in range(2, 60):
        clock.now += 2
        thread.emit(event(seq, summary=f"data → run_sql step {seq}: {'12 rows, ' * 12}"))
    live = internal(running, root[0], trace_row.ts)
    assert live["edited"] and live["stream"] is None
    assert "step 59" in shown(live) and "step 2:" not in shown(live)  # the newest that fit
    assert "earlier steps in the case file" in shown(live)
    heading = shown(internal(running, root[0], summary.ts))
    assert "Compare the staging schema" in heading
    assert "the warehouse ran out of memory" in heading  # the newest open hypothesis

    thread.finish(investigated(tmp_path, investigation_id))
    messages = replies(client, root)
    summaries = [m for m in messages if m["ts"] == summary.ts]
    assert len(summaries) == 1 and messages[0]["ts"] == summary.ts
    final = shown(summaries[0])
    assert "Investigated" in final and "confidence high (0.82)" in final and "3 steps" in final
    assert "finished" in shown(internal(running, root[0], trace_row.ts))


def test_fifty_events_within_one_interval_write_at_most_twice(
        counting: CountingClient, poster: Poster, root: tuple[str, str],
        investigation_id: int, running: RunningWorkspace) -> None:
    clock = Clock()
    thread = trace(poster, root, investigation_id, mode="update", interval=1.0, clock=clock)
    thread.start()
    before = counting.calls["chat.update"]
    for seq in range(1, 51):
        clock.now += 0.01
        thread.emit(event(seq, data=SNAPSHOT, kind="scratchpad" if seq % 5 == 0 else
                          "tool_result"))
    assert counting.calls["chat.update"] - before <= 2
    clock.now += 1.0
    thread.emit(event(51))  # the interval has passed: everything buffered shows
    trace_row = poster.recorded(f"trace:{investigation_id}")
    assert trace_row is not None
    assert "step 50" in shown(internal(running, root[0], trace_row.ts))


@pytest.mark.parametrize("mode", ["update", "stream"])
def test_a_line_before_a_quiet_spell_shows_without_a_further_event(
        running: RunningWorkspace, poster: Poster, root: tuple[str, str],
        investigation_id: int, tmp_path: Path, mode: str) -> None:
    """A slow tool: its call's line is buffered within the interval, then nothing comes for a
    while; the timer shows it, and is gone once the trace finished."""
    thread = trace(poster, root, investigation_id, mode=mode, interval=0.2,
                   requester=APPROVER_USER_ID, team_id=TEAM_ID)  # the real clock
    before = set(threading.enumerate())  # (traces of other tests that never finished)
    thread.start("offline")
    trace_row = poster.recorded(f"trace:{investigation_id}")
    assert trace_row is not None
    thread.emit(event(1, "tool_call", "data → run_sql: the slow query"))
    wait_for(lambda: "the slow query" in shown(internal(running, root[0], trace_row.ts)),
             "the buffered line in the thread")
    thread.emit(event(2, "tool_call", "data → run_sql: the next query"))  # buffered again
    thread.finish(investigated(tmp_path, investigation_id))
    final = internal(running, root[0], trace_row.ts)
    assert "the next query" in shown(final)  # shown by finish; the quiet-spell thread ended
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("trace-")]
    thread.emit(event(3, "tool_call", "data → run_sql: after the end"))
    assert internal(running, root[0], trace_row.ts) == final


# ---------------------------------------------------------------- stream mode

def test_stream_mode_grows_one_message_and_stops_it(
        running: RunningWorkspace, client: WebClient, poster: Poster, root: tuple[str, str],
        investigation_id: int, tmp_path: Path, counting: CountingClient) -> None:
    clock = Clock()
    thread = trace(poster, root, investigation_id, requester=APPROVER_USER_ID, team_id=TEAM_ID,
                   clock=clock)  # mode auto + a requester: a stream
    thread.start("offline")
    trace_row = poster.recorded(f"trace:{investigation_id}")
    assert trace_row is not None and trace_row.kind == "trace"
    sizes = []
    for seq in range(1, 6):
        clock.now += 2
        thread.emit(event(seq))
        live = internal(running, root[0], trace_row.ts)
        assert live["stream"] == "open"
        sizes.append(len(live["text"]))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    thread.emit(event(6))  # within the interval: shown by finish
    thread.finish(investigated(tmp_path, investigation_id))
    final = internal(running, root[0], trace_row.ts)
    assert final["stream"] == "done" and "step 6" in final["text"]
    assert counting.calls["chat.update"] <= 1  # only the summary; the trace streamed
    assert [m["ts"] for m in replies(client, root)].count(trace_row.ts) == 1
    summary = poster.recorded(f"summary:{investigation_id}")
    assert summary is not None
    assert f"<@{APPROVER_USER_ID}>" in shown(internal(running, root[0], summary.ts))


def test_a_full_stream_stops_growing_and_points_at_the_case_file(
        running: RunningWorkspace, poster: Poster, root: tuple[str, str],
        investigation_id: int, tmp_path: Path, counting: CountingClient) -> None:
    clock = Clock()
    thread = trace(poster, root, investigation_id, requester=APPROVER_USER_ID, team_id=TEAM_ID,
                   mode="stream", clock=clock)
    thread.start()
    long = "data → run_sql " + "x" * 280
    for seq in range(1, 201):  # ~60,000 characters of trace, ~18,000 a flush
        if seq % 60 == 0:
            clock.now += 2
        thread.emit(event(seq, summary=f"{long} {seq}"))
    thread.finish(investigated(tmp_path, investigation_id))
    trace_row = poster.recorded(f"trace:{investigation_id}")
    assert trace_row is not None
    final = internal(running, root[0], trace_row.ts)
    assert final["stream"] == "done"
    assert len(final["text"]) <= STREAM_BUDGET + len(STREAM_FULL) < MAX_TEXT
    assert final["text"].endswith(STREAM_FULL) and final["text"].count(STREAM_FULL) == 1
    assert "x 1\n" in final["text"] and "x 100\n" in final["text"]  # whole lines, in order
    assert counting.appended and max(counting.appended) <= APPEND_CHARS  # Slack's per call


def test_a_refused_stream_falls_back_to_an_edited_message(
        running: RunningWorkspace, poster: Poster, root: tuple[str, str],
        investigation_id: int, counting: CountingClient) -> None:
    clock = Clock()
    # a stream into a channel needs its recipient: the workspace refuses, as Slack does
    thread = trace(poster, root, investigation_id, mode="stream", clock=clock)
    thread.start()
    assert counting.calls["chat.startStream"] == 1
    trace_row = poster.recorded(f"trace:{investigation_id}")
    assert trace_row is not None
    clock.now += 2
    thread.emit(event(1))
    message = internal(running, root[0], trace_row.ts)
    assert message["stream"] is None and message["edited"] and "step 1" in shown(message)


def test_subagents_emitting_at_once_lose_and_repeat_no_line(
        running: RunningWorkspace, poster: Poster, root: tuple[str, str],
        investigation_id: int, tmp_path: Path) -> None:
    ticks = itertools.count()
    clock_lock = threading.Lock()

    def clock() -> float:
        with clock_lock:
            return next(ticks) * 0.05  # a flush every 20 or so readings

    thread = trace(poster, root, investigation_id, requester=APPROVER_USER_ID, team_id=TEAM_ID,
                   clock=clock)
    thread.start()
    seqs = itertools.count(1)

    def subagent(name: str) -> None:
        for _ in range(40):
            seq = next(seqs)
            thread.emit(event(seq, summary=f"{name} → read_log line {seq}.", agent=name))

    workers = [threading.Thread(target=subagent, args=(n,)) for n in ("data", "logs", "code")]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    thread.finish(investigated(tmp_path, investigation_id))
    trace_row = poster.recorded(f"trace:{investigation_id}")
    assert trace_row is not None
    text = internal(running, root[0], trace_row.ts)["text"]
    for seq in range(1, 121):
        assert text.count(f"line {seq}.") == 1, seq


# ---------------------------------------------------------------- the end

def test_the_report_carries_create_pr_only_when_code_must_change(
        client: WebClient, poster: Poster, root: tuple[str, str], investigation_id: int,
        tmp_path: Path, engine: Engine) -> None:
    thread = trace(poster, root, investigation_id, mode="update")
    thread.start()
    thread.finish(investigated(tmp_path, investigation_id, needed=True))
    report = poster.recorded(f"report:{investigation_id}")
    assert report is not None and report.kind == "report"
    posted = next(m for m in replies(client, root) if m["ts"] == report.ts)
    assert block_errors(posted["blocks"]) == []
    for block in posted["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
    actions = [e.get("action_id") for b in posted["blocks"] if b["type"] == "actions"
               for e in b["elements"]]
    assert ACTION_CREATE_PR in actions

    with Session(engine) as session:
        other = Investigation(question="q", trigger="button", policy="offline")
        session.add(other)
        session.commit()
        assert other.id is not None
        other_id = other.id
    second = trace(poster, root, other_id, mode="update")
    second.start()
    second.finish(investigated(tmp_path, other_id, needed=False))
    report = poster.recorded(f"report:{other_id}")
    assert report is not None
    posted = next(m for m in replies(client, root) if m["ts"] == report.ts)
    actions = [e.get("action_id") for b in posted["blocks"] if b["type"] == "actions"
               for e in b["elements"]]
    assert ACTION_CREATE_PR not in actions and actions


def test_the_case_file_is_a_file_in_the_thread(
        client: WebClient, poster: Poster, root: tuple[str, str], investigation_id: int,
        tmp_path: Path) -> None:
    thread = trace(poster, root, investigation_id, mode="update")
    thread.start()
    thread.finish(investigated(tmp_path, investigation_id))
    assert poster.recorded(f"casefile:{investigation_id}") is not None
    files = [f for m in replies(client, root) for f in m.get("files", [])]
    assert [f["name"] for f in files] == [f"sleuth-case-{investigation_id}.md"]
    with urllib.request.urlopen(files[0]["url_private"]) as response:
        assert response.read().decode() == "# Case file\n\n3 steps\n"


def test_finishing_again_after_a_restart_posts_nothing_twice(
        client: WebClient, poster: Poster, root: tuple[str, str], investigation_id: int,
        tmp_path: Path, engine: Engine, counting: CountingClient) -> None:
    done = investigated(tmp_path, investigation_id)
    first = trace(poster, root, investigation_id, requester=APPROVER_USER_ID, team_id=TEAM_ID)
    first.start()
    first.emit(event(1))
    first.finish(done)
    before = replies(client, root)

    restarted = trace(Poster(counting, engine), root, investigation_id,
                      requester=APPROVER_USER_ID, team_id=TEAM_ID)
    restarted.start()
    restarted.finish(done)
    restarted.finish(done)
    after = replies(client, root)
    assert [m["ts"] for m in after] == [m["ts"] for m in before]
    assert [shown(m) for m in after] == [shown(m) for m in before]  # the trace kept its lines
    assert counting.calls["chat.startStream"] == 1
    assert counting.calls["files.completeUploadExternal"] == 1


def test_fail_says_why_in_the_summary_and_closes_the_stream(
        running: RunningWorkspace, poster: Poster, root: tuple[str, str],
        investigation_id: int) -> None:
    thread = trace(poster, root, investigation_id, requester=APPROVER_USER_ID, team_id=TEAM_ID)
    thread.start()
    thread.emit(event(1))
    thread.fail("SleuthError: the warehouse is unreachable")
    summary = poster.recorded(f"summary:{investigation_id}")
    trace_row = poster.recorded(f"trace:{investigation_id}")
    assert summary is not None and trace_row is not None
    heading = shown(internal(running, root[0], summary.ts))
    assert "Failed" in heading and "the warehouse is unreachable" in heading
    assert internal(running, root[0], trace_row.ts)["stream"] == "done"
    assert poster.recorded(f"report:{investigation_id}") is None


def test_slack_errors_never_reach_the_investigation(
        running: RunningWorkspace, engine: Engine, root: tuple[str, str],
        investigation_id: int, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    refused = Poster(WebClient(token="xoxb-revoked", base_url=running.api_url), engine)
    thread = trace(refused, root, investigation_id, interval=0.0)
    thread.start()
    thread.emit(event(1))
    thread.finish(investigated(tmp_path, investigation_id))
    assert "invalid_auth" in caplog.text
    assert refused.recorded(f"report:{investigation_id}") is None


# ---------------------------------------------------------------- a real investigation

class Forward:
    """The sink run_investigation gets before the thread exists (as the Slack jobs do)."""

    def __init__(self) -> None:
        self.trace: ThreadTrace | None = None

    def emit(self, event: TraceEvent) -> None:
        if self.trace is not None:
            self.trace.emit(event)


@pytest.mark.slow
def test_an_offline_investigation_shows_live_in_its_thread(
        demo_platform: tuple[Any, Path], running: RunningWorkspace, client: WebClient,
        tmp_path: Path, root: tuple[str, str]) -> None:
    paths, _ = demo_platform
    url = f"sqlite:///{tmp_path / 'sleuth.db'}"
    settings = Settings(home=paths.root.parents[1], store=StoreConfig(url=url),
                        demo=DemoConfig(days=DEMO_DAYS, seed=DEMO_SEED))
    engine = open_store(url)
    issue_id = scenario_issues(settings, engine, "schema_change")[0]
    inputs = issue_inputs(engine, issue_id, trigger="button")
    poster = Poster(CountingClient(token=running.credentials.bot_token.get_secret_value(),
                                   base_url=running.api_url), engine)
    forward = Forward()

    def started(investigation_id: int, policy: str) -> None:
        forward.trace = ThreadTrace(
            poster, channel="#data-alerts", thread_ts=root[1], investigation_id=investigation_id,
            title=inputs.title, issue_id=issue_id, requester=APPROVER_USER_ID, team_id=TEAM_ID,
            interval=0.2)
        forward.trace.start(policy)

    done = run_investigation(settings, engine, inputs, policy="offline", sink=forward,
                             on_start=started)
    assert forward.trace is not None
    forward.trace.finish(done)

    assert done.result.status == "done"
    summary = poster.recorded(f"summary:{done.id}")
    trace_row = poster.recorded(f"trace:{done.id}")
    report = poster.recorded(f"report:{done.id}")
    assert summary is not None and trace_row is not None and report is not None
    heading = shown(internal(running, root[0], summary.ts))
    assert "Investigated" in heading and f"({done.result.report.confidence:.2f})" in heading
    streamed = internal(running, root[0], trace_row.ts)
    assert streamed["stream"] == "done"
    shown_lines = [e for e in done.result.trace if e.kind != "model_call"]
    assert streamed["text"].count("\n") == len(shown_lines)  # every step, once
    messages = replies(client, root)
    posted = next(m for m in messages if m["ts"] == report.ts)
    assert block_errors(posted["blocks"]) == []
    files = [f for m in messages for f in m.get("files", [])]
    assert [f["name"] for f in files] == [f"sleuth-case-{done.id}.md"]

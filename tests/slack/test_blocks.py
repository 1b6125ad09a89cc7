"""Block Kit builders: Slack accepts what they build, limits hold, data cannot ping anyone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block

from agents.report import Report
from agents.trace import TraceEvent
from bot.slack.blocks import (
    ACTION_CREATE_PR,
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_INVESTIGATE,
    ACTION_MUTE,
    ACTION_RESOLVE,
    ACTION_UNMUTE,
    VIEW_CONFIRM_PR,
    VIEW_RESOLVE,
    Blocks,
    EarlierRun,
    ThreadSummary,
    earlier_runs,
    investigate_help,
    issue_card,
    moved_card,
    pr_confirm_modal,
    report_blocks,
    resolution_prompt,
    resolve_modal,
    thread_summary,
    trace_markdown,
    trace_message,
)
from bot.slack.workspace.validation import block_errors, view_errors
from bot.store.models import Issue, IssueStatus
from tests.slack.conftest import channel_id

PING = "<!channel>"
ESCAPED_PING = "&lt;!channel&gt;"


def make_report(**changes: Any) -> Report:
    data: dict[str, Any] = {
        "title": "fct_orders revenue doubled after a join change",
        "summary": "A commit joined orders to payments on customer_id; revenue doubled.",
        "what_happened": "The 02:00 run built fct_orders with two rows per order.",
        "impacted_assets": ["model.shop.fct_orders", "model.shop.revenue_daily"],
        "severity": "SEV1",
        "root_cause": {"node": "model.shop.fct_orders", "category": "code_change",
                       "explanation": "The join key lost order_id, so each order fans out."},
        "confidence": 0.82,
        "evidence": [
            {"text": "fct_orders has 2 rows per order_id since the run",
             "citations": [{"kind": "sql", "reference": "sql:q1", "excerpt": "dupes=1000"},
                           {"kind": "code",
                            "reference": "models/marts/fct_orders.sql@1a2b3c4#L10-L12"}]},
            {"text": "dbt logged the fan-out warning",
             "citations": [{"kind": "log",
                            "reference": "logs/daily/run_dbt/attempt=1.log#L40-L52",
                            "excerpt": "WARN join produced 2x rows\nsecond line"}]},
            {"text": "orders_total doubled at 02:05",
             "citations": [{"kind": "metric", "reference":
                            'metric:orders_total{env="prod"}@2026-11-19..2026-11-20'}]},
        ],
        "rejected_hypotheses": [{"hypothesis": "duplicate delivery upstream",
                                 "why": "raw orders have unique ids"}],
        "ruled_out": ["source freshness"],
        "next_checks": ["revenue_daily after the backfill"],
        "fix_steps": ["Revert 1a2b3c4", "Rebuild fct_orders and downstream"],
        "prevention": ["a uniqueness test on fct_orders.order_id"],
        "code_change": {"needed": True, "files": ["models/marts/fct_orders.sql"],
                        "sketch": "- on o.customer_id = p.customer_id\n"
                                  "+ on o.order_id = p.order_id"},
        "produced_by": "offline policy",
    }
    data.update(changes)
    return Report.model_validate(data)


def make_issue(**changes: Any) -> Issue:
    """An issue row as intake stores it (not saved anywhere: the builders only read it)."""
    data: dict[str, Any] = {
        "id": 7, "fingerprint": "fp-7", "title": "fct_orders: unique test failed on order_id",
        "severity": "SEV2", "status": IssueStatus.open, "asset": "model.shop.fct_orders",
        "kind": "test_failed", "assets": ["model.shop.fct_orders", "model.shop.revenue_daily"],
        "channel": "#data-alerts", "occurrences": 3,
        "first_seen": datetime(2026, 11, 20, 2, 5, tzinfo=UTC),
        "last_seen": datetime(2026, 11, 20, 4, 5, tzinfo=UTC)}
    return Issue(**{**data, **changes})


def assert_valid(blocks: Blocks) -> None:
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()
    assert block_errors(blocks) == []


def texts(blocks: Blocks) -> list[str]:
    """Every mrkdwn text a person reads in `blocks`."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(blocks)
    return found


def buttons(blocks: Blocks) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions"
            for e in b["elements"]}


# ---------------------------------------------------------------- issue card

def test_an_open_issue_card_reads_at_a_glance_and_offers_every_action():
    text, blocks = issue_card(make_issue())
    assert_valid(blocks)
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == "🟠 fct_orders: unique test failed on order_id"
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    for shown in ("SEV2", "2026-11-20 02:05 UTC", "2026-11-20 04:05 UTC", "*Occurrences*\n3",
                  "#data-alerts", "open"):
        assert shown in fields
    assert "`model.shop.revenue_daily`" in blocks[2]["text"]["text"]
    assert buttons(blocks) == {ACTION_INVESTIGATE: "7", ACTION_MUTE: "7", ACTION_RESOLVE: "7"}
    assert "SEV2" in text and "3×" in text


def test_a_muted_issue_offers_unmute_instead_of_mute():
    _, blocks = issue_card(make_issue(status=IssueStatus.muted))
    assert_valid(blocks)
    assert set(buttons(blocks)) == {ACTION_INVESTIGATE, ACTION_UNMUTE, ACTION_RESOLVE}


def test_a_resolved_issue_shows_its_resolution_and_no_investigate_or_resolve():
    _, blocks = issue_card(make_issue(
        status=IssueStatus.resolved, resolution="reverted 1a2b3c4 & backfilled",
        resolved_at=datetime(2026, 11, 20, 6, 0, tzinfo=UTC)))
    assert_valid(blocks)
    assert set(buttons(blocks)) == set()  # nothing to do on a resolved card
    assert any("reverted 1a2b3c4 &amp; backfilled" in t for t in texts(blocks))
    assert any("resolved 2026-11-20 06:00 UTC" in t for t in texts(blocks))


def test_a_card_caps_its_assets_and_names_a_channel_id_as_a_link():
    assets = [f"model.shop.m{i}" for i in range(30)]
    _, blocks = issue_card(make_issue(assets=assets, channel="C0123ABC"))
    assert_valid(blocks)
    listed = blocks[2]["text"]["text"]
    assert "`model.shop.fct_orders`" in listed and "+23 more" in listed
    assert "<#C0123ABC>" in blocks[1]["fields"][5]["text"]


def test_a_card_escapes_a_title_from_the_data():
    text, blocks = issue_card(make_issue(title=f"log says {PING} & <https://x.y|click>"))
    assert_valid(blocks)
    assert PING not in text and ESCAPED_PING in text
    assert all(PING not in t and "<https" not in t for t in texts(blocks))


def test_a_moved_card_points_at_the_new_card_and_offers_no_buttons():
    issue = make_issue(title=f"log says {PING}")
    text, blocks = moved_card(issue, "C0COMMERCE", "http://127.0.0.1:9/#/C0COMMERCE/1.2")
    assert_valid(blocks)
    assert buttons(blocks) == {} and all(b["type"] != "actions" for b in blocks)
    assert "moved to <#C0COMMERCE>: <http://127.0.0.1:9/#/C0COMMERCE/1.2|the card>" in text
    assert all(PING not in t for t in [text, *texts(blocks)])
    # no permalink (a workspace without chat.getPermalink), or a strange one: the channel
    for link in (None, "javascript:alert(1)", "http://x.y/a|b>"):
        text, blocks = moved_card(issue, "C0COMMERCE", link)
        assert_valid(blocks)
        assert text == "Issue #7 moved to <#C0COMMERCE>"


def test_the_earlier_threads_of_a_moved_card_are_linked_or_named_by_channel():
    run = EarlierRun(investigation_id=4, running=False, channel="C0ALERTS",
                     permalink="http://127.0.0.1:9/#/C0ALERTS/1.3")
    running = EarlierRun(investigation_id=5, running=True, channel="C0ALERTS")
    assert earlier_runs([run, running]) == (
        "Investigation #4 ran in <http://127.0.0.1:9/#/C0ALERTS/1.3|the earlier thread>.\n"
        "Investigation #5 is running in the earlier thread in <#C0ALERTS>; its report will be "
        "there.")
    for link in ("javascript:alert(1)", "http://x.y/a|b>"):  # a strange one: the channel
        odd = run.model_copy(update={"permalink": link})
        assert earlier_runs([odd]) == "Investigation #4 ran in the earlier thread in <#C0ALERTS>."


# ---------------------------------------------------------------- thread summary and trace

def test_the_running_summary_shows_plan_and_hypothesis_and_keeps_the_requester_mention():
    text, blocks = thread_summary(ThreadSummary(
        investigation_id=4, title="fct_orders <b>", status="running", policy="offline",
        plan=["check the dbt run", "diff the join"], leading_hypothesis="a join fan-out",
        steps=12, note="asked by <@U123ABC> about <!here>"))
    assert_valid(blocks)
    shown = "\n".join(texts(blocks))
    assert "Investigating" in text and "fct_orders &lt;b&gt;" in shown
    assert "• diff the join" in shown and "a join fan-out" in shown and "12 steps" in shown
    assert "<@U123ABC>" in shown and "<!here>" not in shown and "&lt;!here&gt;" in shown


def test_a_finished_summary_shows_confidence_cost_and_time():
    _, blocks = thread_summary(ThreadSummary(
        investigation_id=4, title="t", status="done", confidence=0.82, steps=30,
        cost_usd=0.0123, seconds=41.26))
    assert_valid(blocks)
    shown = "\n".join(texts(blocks))
    assert "✅" in shown and "confidence high (0.82)" in shown
    assert "$0.0123" in shown and "41.3 s" in shown


def test_a_failed_summary_says_why():
    _, blocks = thread_summary(ThreadSummary(investigation_id=4, title="t", status="failed",
                                             note="the model provider refused the key"))
    assert_valid(blocks)
    assert any("Failed" in t for t in texts(blocks))
    assert any("refused the key" in t for t in texts(blocks))


def event(kind: str, summary: str, agent: str = "data", **fields: Any) -> TraceEvent:
    return TraceEvent(seq=1, kind=kind, agent=agent, summary=summary, **fields)


def test_a_trace_line_names_the_agent_marks_the_kind_and_escapes_the_summary():
    line = trace_markdown(event("tool_result", f"data ← 3 rows {PING} a&b", status="ok"))
    assert line.endswith("\n") and line.count("\n") == 1
    assert PING not in line and ESCAPED_PING in line and "a&amp;b" in line
    plan = trace_markdown(event("plan", "plan: check the run", agent="orchestrator"))
    assert "_orchestrator_" in plan and plan.startswith("🗺️")
    failed = trace_markdown(event("tool_result", "data ← timeout", status="error"))
    assert failed.startswith("❌")


def test_model_calls_stay_out_of_the_trace():
    assert trace_markdown(event("model_call", "claude: 1200 tokens", tokens_in=1200)) == ""


def test_the_trace_message_keeps_the_newest_lines_and_counts_the_cut_ones():
    lines = [f"🔧 data → run_sql step {i:03d} " + "x" * 80 + "\n" for i in range(200)]
    text, blocks = trace_message(lines, running=True)
    assert_valid(blocks)
    body = blocks[0]["text"]["text"]
    assert len(body) <= 3000
    assert "step 199" in body and "step 000" not in body
    kept = body.count("run_sql")
    assert f"_…{200 - kept} earlier steps in the case file_" in body.splitlines()[0]
    assert "live" in blocks[1]["elements"][0]["text"] and "live" in text
    _, done = trace_message(lines[:3], running=False)
    assert "earlier" not in done[0]["text"]["text"]
    assert done[1]["elements"][0]["text"] == "finished"


# ---------------------------------------------------------------- report

def test_a_report_leads_with_root_cause_then_evidence_and_fix():
    text, blocks = report_blocks(make_report(), report_id=9, issue_id=7, case_name="case-4.md")
    assert_valid(blocks)
    assert blocks[0]["text"]["text"] == "🔴 fct_orders revenue doubled after a join change"
    root = blocks[1]["text"]["text"]
    assert root.startswith("*Root cause:* code change at `model.shop.fct_orders`")
    assert "*high* (0.82)" in root and "fans out" in root
    shown = texts(blocks)
    order = [next(i for i, t in enumerate(shown) if t.startswith(h))
             for h in ("*Root cause", "*Evidence", "*Fix", "*What happened", "*Prevention")]
    assert order == sorted(order)
    evidence = next(t for t in shown if t.startswith("*Evidence"))
    assert "sql `sql:q1`" in evidence and "`models/marts/fct_orders.sql@1a2b3c4#L10-L12`" in evidence
    assert "> WARN join produced 2x rows" in evidence
    assert any("`case-4.md`" in t for t in shown)
    assert buttons(blocks) == {ACTION_CREATE_PR: "9", ACTION_RESOLVE: "7",
                               ACTION_FEEDBACK_UP: "9", ACTION_FEEDBACK_DOWN: "9"}
    assert "SEV1" in text and "code change" in text
    assert not any("Shortened" in t for t in shown)


def test_create_pr_only_when_code_must_change_and_resolve_only_with_an_issue():
    report = make_report(code_change={"needed": False})
    _, blocks = report_blocks(report, report_id=9, issue_id=None)
    assert_valid(blocks)
    assert set(buttons(blocks)) == {ACTION_FEEDBACK_UP, ACTION_FEEDBACK_DOWN}


def test_an_unknown_root_cause_puts_the_next_checks_first():
    report = make_report(root_cause={"node": None, "category": "unknown",
                                     "explanation": "Nothing settles it."},
                         confidence=0.3, evidence=[], code_change={"needed": False})
    _, blocks = report_blocks(report, report_id=9, issue_id=7)
    assert_valid(blocks)
    shown = texts(blocks)
    assert shown[0].startswith("*Root cause:* unknown · confidence *low*")
    assert shown.index(next(t for t in shown if t.startswith("*Check next"))) < \
        shown.index(next(t for t in shown if t.startswith("*What happened")))


def test_an_oversized_report_fits_50_blocks_and_points_at_the_case_file_first():
    long = "word " * 1000  # 5,000 characters
    claims = [{"text": f"claim {i} {long}", "citations": [
        {"kind": "log", "reference": f"logs/daily/t{i}/attempt=1.log#L{i + 1}",
         "excerpt": "E" * 600}]} for i in range(80)]
    report = make_report(
        summary=long, what_happened=long, evidence=claims, fix_steps=[long] * 5,
        prevention=[long] * 5, ruled_out=[long] * 5, next_checks=[long] * 5,
        root_cause={"node": "model.shop.fct_orders", "category": "code_change",
                    "explanation": long},
        code_change={"needed": True, "files": ["a.sql"] * 40, "sketch": "+ line\n" * 2000},
        limits_hit="step limit")
    _, blocks = report_blocks(report, report_id=9, issue_id=7, case_name="case-4.md")
    assert len(blocks) <= 50
    assert_valid(blocks)
    assert all(len(t) <= 3000 for t in texts(blocks))
    head = texts(blocks[:4])
    assert head[0].startswith("*Root cause:*") and head[0].endswith("…see the case file")
    assert any("stopped by step limit" in t for t in head)
    assert any("Shortened" in t and "`case-4.md`" in t for t in head)
    shown = "\n".join(texts(blocks))
    assert "claim 0 " in shown and "more claims …see the case file" in shown
    assert "`logs/daily/t0/attempt=1.log#L1`" in shown  # a cut claim keeps its citation
    assert buttons(blocks)[ACTION_CREATE_PR] == "9"  # the actions survive the cut


def test_model_text_cannot_ping_a_channel():
    claim = {"text": f"the log said {PING}", "citations": [
        {"kind": "log", "reference": "logs/a/b/attempt=1.log#L1", "excerpt": f"{PING} go"}]}
    report = make_report(
        title=f"{PING} alert", summary=f"see {PING}", what_happened=f"<@U999> and {PING}",
        evidence=[claim], fix_steps=[f"{PING} revert"],
        root_cause={"node": "model.shop.fct_orders", "category": "code_change",
                    "explanation": f"{PING} <https://evil.example|click>"})
    text, blocks = report_blocks(report, report_id=9, issue_id=7)
    assert_valid(blocks)
    for shown in [text, *texts(blocks)]:
        assert PING not in shown and "<@U999>" not in shown and "<https" not in shown
    assert sum(ESCAPED_PING in t for t in texts(blocks)) >= 5


def test_the_workspace_accepts_a_card_and_an_oversized_report(client: WebClient):
    channel = channel_id(client, "data-alerts")
    text, blocks = issue_card(make_issue())
    assert client.chat_postMessage(channel=channel, text=text, blocks=blocks)["ok"]
    claims = [{"text": "x " * 2500, "citations": [
        {"kind": "sql", "reference": f"sql:q{i}"}]} for i in range(80)]
    text, blocks = report_blocks(make_report(evidence=claims), report_id=1, issue_id=7)
    assert client.chat_postMessage(channel=channel, text=text, blocks=blocks)["ok"]


# ---------------------------------------------------------------- modals and help

def test_the_pr_modal_shows_the_change_and_says_what_approving_does():
    report = make_report(code_change={"needed": True, "files": ["models/a.sql", "models/b.sql"],
                                      "sketch": "+ x <> 1\n" * 1000})
    view = pr_confirm_modal(report, 9, channel="C1", thread_ts="1.2")
    assert view_errors(view) == []
    assert_valid(view["blocks"])
    assert view["callback_id"] == VIEW_CONFIRM_PR and view["submit"]["text"] == "Approve"
    assert json.loads(view["private_metadata"]) == {"report_id": 9, "channel": "C1",
                                                    "thread_ts": "1.2"}
    shown = "\n".join(texts(view["blocks"]))
    assert "`models/a.sql`, `models/b.sql`" in shown and "+ x &lt;&gt; 1" in shown
    assert "…see the case file" in shown  # the long sketch was cut, and says so
    assert "not built yet" in shown and "code change" in shown


def test_the_resolve_modal_asks_one_line_for_issue_memory():
    view = resolve_modal(make_issue(), channel="C1", ts="1.2")
    assert view_errors(view) == []
    assert_valid(view["blocks"])
    assert view["callback_id"] == VIEW_RESOLVE
    field = next(b for b in view["blocks"] if b["type"] == "input")
    assert field["block_id"] == "resolution"
    assert field["element"]["action_id"] == "text"
    assert field["element"]["max_length"] == 300
    assert json.loads(view["private_metadata"]) == {"issue_id": 7, "channel": "C1", "ts": "1.2"}


@pytest.mark.parametrize("problem", [None, "no issue 999 <!here>"])
def test_investigate_help_gives_usage_with_examples(problem: str | None):
    answer = investigate_help(problem)
    assert "/investigate 12" in answer and "/investigate why" in answer
    assert "<" not in answer  # the usage's placeholder is escaped too
    if problem:
        assert answer.startswith("no issue 999 &lt;!here&gt;")


def test_the_resolution_prompt_offers_the_resolve_modal() -> None:
    text, blocks = resolution_prompt(12)
    assert_valid(blocks)
    assert "#12" in text and buttons(blocks) == {ACTION_RESOLVE: "12"}

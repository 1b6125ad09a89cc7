"""The bot as its own process (`python -m bot run`, which is `sleuth run`) over HTTP against the
local workspace, as it runs against Slack: tokens in the environment, a sleuth.yaml, the
workspace pointed at its Request URL, the scheduler polling the demo platform on its own.

One process serves the tests that share a scenario (card, thread, refusal, signatures, retries,
restart); the Socket Mode and misconfiguration tests start their own.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.slack.blocks import (
    ACTION_CREATE_PR,
    ACTION_FEEDBACK_UP,
    ACTION_INVESTIGATE,
    ACTION_MUTE,
    ACTION_RESOLVE,
    ACTION_UNMUTE,
)
from bot.slack.workspace import (
    APPROVER_USER_ID,
    NON_APPROVER_USER_ID,
    RunningWorkspace,
    start_workspace,
)
from bot.slack.workspace.ratelimit import RateLimiter
from bot.slack.workspace.state import BOT_USER_ID, TEAM_ID
from bot.slack.workspace.validation import block_errors
from bot.store.models import (
    Approval,
    Investigation,
    Issue,
    Report,
    SlackEvent,
    SlackMessage,
    SourceState,
)
from tests.conftest import DEMO_DAYS, DEMO_SEED
from tests.slack.botproc import (
    BotProcess,
    bot_env,
    free_port,
    post_signed,
    run_once,
    start_process,
    store_engine,
    write_config,
)
from tests.slack.conftest import channel_id, wait_for

pytestmark = pytest.mark.slow

SCENARIO = "fanout_commit"  # one issue, caused by a commit: its report offers Create PR
CARD_ACTIONS = {ACTION_INVESTIGATE, ACTION_MUTE, ACTION_UNMUTE, ACTION_RESOLVE}
ASK = "Ask me a question"  # the bot's answer to a mention without a question
INVESTIGATION_TIMEOUT = 300.0


@dataclass
class Live:
    """The workspace in this process, the bot in its own, and the bot's store."""

    workspace: RunningWorkspace
    client: WebClient  # the bot's token: reads what the bot sees
    bot: BotProcess
    folder: Path
    config: Path
    store: Path
    env: dict[str, str]
    edits: Counter[str]  # message ts -> how often it was edited (chat.update, appendStream)

    @cached_property
    def engine(self) -> Engine:
        return store_engine(self.store)

    @property
    def secret(self) -> str:
        return self.workspace.credentials.signing_secret.get_secret_value()

    def rows(self, query: Any) -> list[Any]:
        with Session(self.engine) as session:
            return list(session.exec(query).all())

    def start(self, name: str) -> None:
        """Start `sleuth run` on a fresh port and point the workspace at it."""
        port = free_port()
        write_config(self.config, store=self.store, **_slack(self.workspace, port))
        self.bot = start_process(self.folder / name, self.env, port=port)
        self.workspace.set_request_url(self.bot.url)

    def stop(self) -> None:
        code = self.bot.stop()
        assert code == 0, self.bot.stderr
        assert "Traceback" not in self.bot.stderr, self.bot.stderr


def _slack(workspace: RunningWorkspace, port: int) -> dict[str, Any]:
    return {"port": port, "api_url": workspace.api_url, "approvers": [APPROVER_USER_ID],
            "auto_investigate": "SEV4", "update_interval": 0.2}


def _count_edits(workspace: RunningWorkspace) -> Counter[str]:
    """Count the workspace's message edits: its state only keeps the last one."""
    edits: Counter[str] = Counter()
    update = workspace.workspace.update_message

    def counted(channel: str, ts: str, **kwargs: Any) -> dict[str, Any]:
        edits[ts] += 1
        return update(channel, ts, **kwargs)

    workspace.workspace.update_message = counted  # type: ignore[method-assign]
    return edits


@pytest.fixture(scope="module")
def live(demo_platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The scenario has run on the platform; the bot polls it every 2 s from its own process."""
    from bot.demo.platform import run_scenario
    from bot.demo.scenarios import get_scenario

    paths, cache = demo_platform
    folder = tmp_path_factory.mktemp("live")
    workspace = start_workspace(folder, 0, request_url="", retry_delays=(0.0, 0.0, 0.0),
                               ack_timeout=3.0,
                               rate_limit=RateLimiter(per_second=50.0, burst=50))
    try:
        edits = _count_edits(workspace)
        run_scenario(get_scenario(SCENARIO), paths=paths, days=DEMO_DAYS, seed=DEMO_SEED,
                     cache=cache)
        creds = workspace.credentials
        # The platform's home: the defaults of every source point at the demo platform.
        env = bot_env(paths.root.parents[1], folder / "sleuth.yaml",
                      SLACK_BOT_TOKEN=creds.bot_token.get_secret_value(),
                      SLACK_SIGNING_SECRET=creds.signing_secret.get_secret_value())
        client = WebClient(token=creds.bot_token.get_secret_value(), base_url=creds.api_url)
        found = Live(workspace, client, None, folder, folder / "sleuth.yaml",  # type: ignore[arg-type]
                     folder / "sleuth.db", env, edits)
        found.start("run1")
        try:
            yield found
        finally:
            found.bot.stop()
    finally:
        workspace.stop()


@dataclass
class Finished:
    """The scenario's issue, its card, and its investigation's messages."""

    issue: Issue
    card: SlackMessage
    investigation: Investigation
    report: Report
    messages: dict[str, SlackMessage]  # kind -> the investigation's message

    @property
    def thread(self) -> tuple[str, str]:
        """(channel, ts) of the investigation's thread: the card's, or the card it started
        under when a later signal moved the issue to another channel (now a pointer)."""
        summary = self.messages["summary"]
        assert summary.thread_ts is not None
        return summary.channel, summary.thread_ts


def current_card(live: Live, issue_id: int) -> SlackMessage:
    """The issue's card (a card that moved left a pointer, kind "moved", behind)."""
    card, = live.rows(select(SlackMessage).where(SlackMessage.issue_id == issue_id,
                                                 SlackMessage.kind == "card"))
    return card


@pytest.fixture(scope="module")
def finished(live: Live) -> Finished:
    """Wait until the bot's own poll opened the issue and its investigation posted a report."""
    casefile = live.bot.wait_until(lambda: live.rows(select(SlackMessage).where(
        SlackMessage.kind == "casefile")), "the report and the case file",
        timeout=INVESTIGATION_TIMEOUT)[0]
    issue, = live.rows(select(Issue))
    card = current_card(live, issue.id)
    investigation, = live.rows(select(Investigation).where(Investigation.issue_id == issue.id))
    stored, = live.rows(select(Report).where(Report.investigation_id == investigation.id))
    messages = {m.kind: m for m in live.rows(select(SlackMessage).where(
        SlackMessage.investigation_id == casefile.investigation_id))}
    return Finished(issue, card, investigation, stored, messages)


def cards_of(messages: list[dict[str, Any]], issue_id: int) -> list[dict[str, Any]]:
    """The messages that are issue `issue_id`'s card (its buttons carry the issue id)."""
    return [m for m in messages if any(
        e.get("action_id") in CARD_ACTIONS and e.get("value") == str(issue_id)
        for b in m.get("blocks") or [] for e in b.get("elements") or [])]


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {e["action_id"]: e.get("value", "") for b in message.get("blocks") or []
            if b["type"] == "actions" for e in b["elements"]}


def history(live: Live, channel: str) -> list[dict[str, Any]]:
    return live.client.conversations_history(channel=channel, limit=200)["messages"]


def replies(live: Live, channel: str, ts: str) -> list[dict[str, Any]]:
    return live.client.conversations_replies(channel=channel, ts=ts, limit=200)["messages"]


def reports_in(thread: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in thread if ACTION_FEEDBACK_UP in buttons(m)]


# ---------------------------------------------------------------- the card, the thread, the report


def test_the_card_appears_once_and_its_thread_ends_in_a_report_and_a_case_file(
        live: Live, finished: Finished) -> None:
    issue, card = finished.issue, finished.card
    channels = [c["id"] for c in live.client.conversations_list()["channels"]]
    posted = {c: [m["ts"] for m in cards_of(history(live, c), issue.id)] for c in channels}
    assert {c: ts for c, ts in posted.items() if ts} == {card.channel: [card.ts]}

    roots = live.rows(select(SlackMessage).where(SlackMessage.issue_id == issue.id,
                                                 col(SlackMessage.kind).in_(["card", "moved"])))
    assert finished.thread in {(m.channel, m.ts) for m in roots}
    thread = replies(live, *finished.thread)
    by_ts = {m["ts"]: m for m in thread}
    trace, summary = finished.messages["trace"], finished.messages["summary"]
    assert trace.ts in by_ts and summary.ts in by_ts
    assert live.edits[trace.ts] >= 2, "the trace was not shown live"
    assert by_ts[summary.ts]["text"].startswith("Investigated")  # its final state
    assert "confidence" in json.dumps(by_ts[summary.ts]["blocks"])

    report, = reports_in(thread)
    assert report["ts"] == finished.messages["report"].ts
    blocks = report["blocks"]
    assert block_errors(blocks) == []
    assert all(Block.parse(b) is not None for b in blocks)
    assert buttons(report)[ACTION_CREATE_PR] == str(finished.report.id)
    files = [f for m in thread for f in m.get("files") or []]
    assert [f["name"] for f in files] == [f"sleuth-case-{finished.investigation.id}.md"]


def test_the_card_is_in_the_channel_that_owns_the_issue(live: Live, finished: Finished) -> None:
    """Sources are polled separately: a task failure (no owner) may open the issue in the
    default channel before the dbt test moves its root to a model #data-commerce owns; the card
    follows it there and leaves a pointer behind."""
    issue, = live.rows(select(Issue).where(Issue.id == finished.issue.id))
    owner = channel_id(live.client, issue.channel.lstrip("#"))
    card = current_card(live, issue.id)
    assert card.channel == owner, f"the card is not in {issue.channel}"
    for pointer in live.rows(select(SlackMessage).where(SlackMessage.issue_id == issue.id,
                                                        SlackMessage.kind == "moved")):
        shown, = [m for m in history(live, pointer.channel) if m["ts"] == pointer.ts]
        assert not buttons(shown) and f"<#{owner}>" in shown["text"]


# ---------------------------------------------------------------- approvals


def test_a_non_approvers_create_pr_click_is_refused_and_audited(live: Live,
                                                                finished: Finished) -> None:
    report = finished.messages["report"]
    reply = live.workspace.actions.click(NON_APPROVER_USER_ID, ACTION_CREATE_PR, None,
                                         channel_id=report.channel, ts=report.ts)
    assert reply.ok, reply.error
    refusal = wait_for(lambda: [m for m in live.workspace.workspace.channel_messages(
        report.channel, NON_APPROVER_USER_ID) if m["ephemeral"] and "approver" in m["text"]],
        "the ephemeral refusal", timeout=30)
    assert len(refusal) == 1
    assert refusal[0].get("thread_ts") == report.thread_ts
    audit = live.rows(select(Approval).where(Approval.report_id == finished.report.id))
    assert [(a.user_id, a.allowed, a.action) for a in audit] == \
        [(NON_APPROVER_USER_ID, False, "create_pr")]
    assert live.workspace.workspace.open_views(NON_APPROVER_USER_ID) == []


# ---------------------------------------------------------------- what reaches the Request URL


def mention(live: Live, channel: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A person's message that mentions the bot without a question (stored, not delivered),
    and the signed-ready Events API envelope Slack would send for it."""
    message = live.workspace.workspace.add_message(channel, user=APPROVER_USER_ID,
                                                   text=f"<@{BOT_USER_ID}>")
    event = {"type": "app_mention", "user": APPROVER_USER_ID, "text": message["text"],
             "ts": message["ts"], "channel": channel, "event_ts": message["ts"], "team": TEAM_ID}
    return message, live.workspace.delivery.event_envelope(event)


def answers(live: Live, channel: str, ts: str,
            at_least: int = 1) -> Callable[[], list[dict[str, Any]]]:
    """The bot's answers in the thread of `ts`, once there are `at_least` of them."""
    def found() -> list[dict[str, Any]]:
        got = [m for m in replies(live, channel, ts)[1:] if m["text"].startswith(ASK)]
        return got if len(got) >= at_least else []
    return found


def events(live: Live, envelope: dict[str, Any]) -> list[SlackEvent]:
    return live.rows(select(SlackEvent).where(SlackEvent.key == f"event:{envelope['event_id']}"))


def test_a_forged_or_stale_request_is_refused_and_does_nothing(live: Live) -> None:
    channel = channel_id(live.client, "data-alerts")
    message, envelope = mention(live, channel)
    forged = post_signed(live.bot.url, envelope, "0" * len(live.secret))
    assert forged.status_code == 401
    stale = post_signed(live.bot.url, envelope, live.secret, age=6 * 60)
    assert stale.status_code == 401
    assert events(live, envelope) == []
    # The same event, signed now with the right secret, is new to the bot: acted on once.
    assert post_signed(live.bot.url, envelope, live.secret).status_code == 200
    assert len(wait_for(answers(live, channel, message["ts"]), "the answer", 30)) == 1
    assert len(events(live, envelope)) == 1


def test_a_retried_event_is_acted_on_once(live: Live) -> None:
    channel = channel_id(live.client, "data-alerts")
    message, envelope = mention(live, channel)
    assert post_signed(live.bot.url, envelope, live.secret).status_code == 200
    retry = post_signed(live.bot.url, envelope, live.secret, headers={
        "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200  # Slack stops retrying on a 2xx
    assert len(events(live, envelope)) == 1
    # Another delivery of the same mention (a new event id) gets its own answer; by then a
    # twin answer of the retry would be there too.
    again = live.workspace.delivery.event_envelope(envelope["event"])
    assert post_signed(live.bot.url, again, live.secret).status_code == 200
    assert len(wait_for(answers(live, channel, message["ts"], 2), "the second answer", 30)) == 2


def test_a_slow_bot_is_retried_by_the_workspace_and_acts_once(live: Live) -> None:
    """The bot cannot write its store (another writer holds it) so it answers late; the
    workspace sends the event again with X-Slack-Retry-Num, and the bot acts on it once."""
    channel = channel_id(live.client, "data-alerts")
    delivery = live.workspace.delivery
    lock = sqlite3.connect(live.store, timeout=30)
    delivery.ack_timeout = 0.5  # the bot waits on the store far longer than that
    try:
        lock.execute("BEGIN IMMEDIATE")  # released long before the bot's 5 s busy timeout
        message = live.workspace.actions.post(APPROVER_USER_ID, channel, "@sleuth")
        entry = wait_for(lambda: [e for e in delivery.log if e["label"] == "event app_mention"
                                  and e["attempts"] >= 2], "the workspace's retry")[0]
    finally:
        lock.rollback()
        lock.close()
        delivery.ack_timeout = 3.0
    wait_for(lambda: entry["status"] == "delivered", "a delivery the bot answered in time")
    assert len(wait_for(answers(live, channel, message["ts"]), "the answer", 30)) == 1
    event = {k: message[k] for k in ("ts", "text", "user")} | {
        "type": "app_mention", "channel": channel, "event_ts": message["ts"], "team": TEAM_ID}
    again = delivery.event_envelope(event)  # a later event: a twin answer would be there by now
    assert post_signed(live.bot.url, again, live.secret).status_code == 200
    assert len(wait_for(answers(live, channel, message["ts"], 2), "the second answer", 30)) == 2
    assert len(live.rows(select(SlackEvent).where(
        SlackEvent.key == f"event:{entry['event_id']}"))) == 1


# ---------------------------------------------------------------- restart


def test_a_restart_on_the_same_store_does_not_repost(live: Live, finished: Finished) -> None:
    live.stop()
    before = _polls(live)
    live.start("run2")
    live.bot.wait_until(lambda: all(after != before.get(name)
                                    for name, after in _polls(live).items()),
                        "a poll of every source by the restarted bot")
    card = finished.card
    assert [m["ts"] for m in cards_of(history(live, card.channel), finished.issue.id)] == \
        [card.ts]
    assert current_card(live, finished.issue.id).ts == card.ts
    thread = replies(live, *finished.thread)
    assert len(reports_in(thread)) == 1
    assert len([f for m in thread for f in m.get("files") or []]) == 1
    assert len(live.rows(select(Investigation).where(
        Investigation.issue_id == finished.issue.id))) == 1
    live.stop()


def _polls(live: Live) -> dict[str, Any]:
    """When each source was last polled."""
    return {s.name: s.polled_at for s in live.rows(select(SourceState))}


# ---------------------------------------------------------------- Socket Mode


def test_socket_mode_connects_and_answers_a_slash_command(tmp_path: Path,
                                                          isolated_home: Path) -> None:
    workspace = start_workspace(tmp_path / "ws", 0, request_url="")
    creds = workspace.credentials
    try:
        config = write_config(tmp_path / "sleuth.yaml", store=tmp_path / "sleuth.db",
                              poll="1h", mode="socket", api_url=workspace.api_url,
                              auto_investigate=None)
        env = bot_env(isolated_home, config,
                      SLACK_BOT_TOKEN=creds.bot_token.get_secret_value(),
                      SLACK_APP_TOKEN=creds.app_token.get_secret_value())
        bot = start_process(tmp_path / "run", env)
        try:
            bot.wait_until(lambda: workspace.delivery.hub.connected, "the Socket Mode connection")
            client = WebClient(token=creds.bot_token.get_secret_value(), base_url=creds.api_url)
            channel = channel_id(client, "data-commerce")
            result = workspace.actions.post(APPROVER_USER_ID, channel, "/investigate #999")
            assert result == {"ok": True, "error": None}
            answer = workspace.workspace.channel_messages(channel, APPROVER_USER_ID)[-1]
            assert answer["ephemeral"] is True
            assert "There is no issue #999." in answer["text"]
            assert [e["via"] for e in workspace.delivery.log] == ["socket"]
        finally:
            code = bot.stop()
        assert code == 0, bot.stderr
        assert "Traceback" not in bot.stderr, bot.stderr
    finally:
        workspace.stop()


# ---------------------------------------------------------------- misconfiguration


@pytest.mark.parametrize(("mode", "secrets", "said"), [
    ("http", {}, "no local Slack workspace credentials"),
    ("http", {"SLACK_BOT_TOKEN": "xoxb-1-2-abc"}, "SLACK_SIGNING_SECRET is not set"),
    ("socket", {"SLACK_BOT_TOKEN": "xoxb-1-2-abc"}, "SLACK_APP_TOKEN is not set"),
])
def test_run_without_what_slack_needs_exits_2_with_one_line(
        tmp_path: Path, isolated_home: Path, mode: str, secrets: dict[str, str],
        said: str) -> None:
    config = write_config(tmp_path / "sleuth.yaml", store=tmp_path / "sleuth.db", mode=mode)
    done = run_once(["run"], bot_env(isolated_home, config, **secrets), tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and said in lines[0]

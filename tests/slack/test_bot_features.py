"""What people meet in Slack, end to end: the bot in this process over the demo platform, a
person acting in the local workspace (real signed deliveries to the bot's Request URL), and
the outcome read back as Slack state (messages, threads, ephemerals, modals) and store rows.

Each class runs one demo scenario on one rig and its tests in order: a scenario costs tens of
seconds, and the later tests build on what the earlier ones left (a report to rate, an issue
to resolve).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

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
)
from bot.slack.workspace import APPROVER_USER_ID, NON_APPROVER_USER_ID
from bot.slack.workspace.state import BOT_USER_ID
from bot.slack.workspace.validation import block_errors
from bot.store.models import (
    Approval,
    Feedback,
    Investigation,
    Issue,
    IssueStatus,
    Report,
    SlackEvent,
    SlackMessage,
)
from bot.vectors.index import open_index
from bot.world.memory import TABLE, IssueMemory
from tests.slack.botrig import Rig, start_rig
from tests.slack.conftest import wait_for

pytestmark = pytest.mark.slow

JO = "U0JO000003"  # a third person in the workspace
ALERT_BOT = "U0AIRFLOW1"  # another app that posts in the channel (its user is unknown here)


# ---------------------------------------------------------------- reading Slack and the store

def rows(rig: Rig, model: Any, *where: Any) -> list[Any]:
    order = col(model.key) if model is SlackEvent else col(model.id)
    with Session(rig.engine) as session:
        return list(session.exec(select(model).where(*where).order_by(order)).all())


def issue(rig: Rig, issue_id: int) -> Issue:
    with Session(rig.engine) as session:
        found = session.get(Issue, issue_id)
    assert found is not None
    return found


def recorded(rig: Rig, key: str) -> SlackMessage:
    found = rig.bot.bot.poster.recorded(key)
    assert found is not None, f"no message {key}"
    return found


def ephemerals(rig: Rig, channel: str, user: str) -> list[str]:
    """What only `user` sees in `channel` (threads included), oldest first."""
    return [m["text"] for m in rig.workspace.workspace.channel_messages(channel, user)
            if m["ephemeral"]]


def next_ephemeral(rig: Rig, channel: str, user: str, seen: int) -> str:
    """The first ephemeral `user` gets after the `seen` they had."""
    return wait_for(lambda: ephemerals(rig, channel, user)[seen:], f"an answer to {user}")[0]


def settle(rig: Rig, count: int) -> list[Investigation]:
    """Wait until `count` investigations exist and every one has ended (report posted)."""
    wait_for(lambda: len(rows(rig, Investigation)) >= count, f"{count} investigations", 60)
    rig.bot.bot.jobs.wait(timeout=300)
    return rows(rig, Investigation)


def buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message.get("blocks", []) if b["type"] == "actions"
            for e in b["elements"]]


def slack_message(rig: Rig, row: SlackMessage) -> dict[str, Any]:
    """The message as the workspace holds it now."""
    found = rig.workspace.workspace.message(row.channel, row.ts)
    assert found is not None
    return found


def first_versions(rig: Rig) -> dict[str, dict[str, Any]]:
    """Messages as first posted from now on (the workspace keeps only their last edit)."""
    found: dict[str, dict[str, Any]] = {}
    add = rig.workspace.workspace.add_message

    def kept(channel: str, **kwargs: Any) -> dict[str, Any]:
        message = add(channel, **kwargs)
        found[message["ts"]] = message
        return message

    rig.workspace.workspace.add_message = kept  # type: ignore[method-assign]
    return found


def click(rig: Rig, user: str, action_id: str, row: SlackMessage) -> None:
    assert rig.workspace.actions.click(user, action_id, None, channel_id=row.channel,
                                       ts=row.ts).ok


def open_view(rig: Rig, user: str, callback_id: str) -> dict[str, Any]:
    return wait_for(lambda: [v for v in rig.workspace.workspace.open_views(user)
                             if v["callback_id"] == callback_id], f"the {callback_id} modal")[-1]


def ended_in_report(rig: Rig, investigation: Investigation, channel: str, thread: str) -> Report:
    """The investigation's summary and report are in `thread`, the report renders in Slack."""
    for key in (f"summary:{investigation.id}", f"report:{investigation.id}"):
        row = recorded(rig, key)
        assert (row.channel, row.thread_ts) == (channel, thread), key
    texts = [m["text"] for m in rig.replies(channel, thread)]
    report_ts = recorded(rig, f"report:{investigation.id}").ts
    shown = [m for m in rig.replies(channel, thread) if m["ts"] == report_ts]
    assert shown and not block_errors(shown[0]["blocks"]), texts
    found = rows(rig, Report, Report.investigation_id == investigation.id)
    assert len(found) == 1
    return found[0]


def rig_for(scenario: str, paths: Any, workdir: Path) -> Iterator[tuple[Rig, int]]:
    """A rig that investigates only when asked, after `scenario`; (rig, its first issue)."""
    rig = start_rig(paths, workdir, auto_investigate=None)
    try:
        outcome = rig.scenario(scenario)
        assert outcome.opened, f"{scenario} opened no issue"
        yield rig, outcome.opened[0]
    finally:
        rig.stop()


# ---------------------------------------------------------------- one issue, its card and report

@pytest.fixture(scope="class")
def commit_rig(demo_platform, tmp_path_factory) -> Iterator[tuple[Rig, int]]:
    # A commit broke a model: its report recommends a code change (the Create PR button).
    paths, _ = demo_platform
    yield from rig_for("fanout_commit", paths, tmp_path_factory.mktemp("commit"))


class TestAnIssueCard:
    def test_investigate_starts_one_investigation_in_the_card_thread(self, commit_rig) -> None:
        rig, issue_id = commit_rig
        card = recorded(rig, f"card:{issue_id}")
        assert card.channel == rig.channel("data-commerce")
        assert [m["ts"] for m in rig.messages(card.channel)] == [card.ts]
        assert rows(rig, Investigation) == []  # auto_investigate is off: a person decides

        seen = len(ephemerals(rig, card.channel, NON_APPROVER_USER_ID))
        posted = first_versions(rig)
        click(rig, APPROVER_USER_ID, ACTION_INVESTIGATE, card)
        click(rig, NON_APPROVER_USER_ID, ACTION_INVESTIGATE, card)  # while the first runs
        answer = next_ephemeral(rig, card.channel, NON_APPROVER_USER_ID, seen)
        assert answer == f"Issue #{issue_id} is already being investigated in this thread."

        [investigation] = settle(rig, 1)
        assert (investigation.issue_id, investigation.trigger) == (issue_id, "button")
        report = ended_in_report(rig, investigation, card.channel, card.ts)
        assert report.body["code_change"]["needed"] is True
        shown = slack_message(rig, recorded(rig, f"report:{investigation.id}"))
        assert {ACTION_CREATE_PR, ACTION_RESOLVE, ACTION_FEEDBACK_UP,
                ACTION_FEEDBACK_DOWN} <= set(buttons(shown))
        assert recorded(rig, f"casefile:{investigation.id}").thread_ts == card.ts
        # the summary named what drives the investigation from its first post, not at the end
        first = posted[recorded(rig, f"summary:{investigation.id}").ts]
        assert investigation.policy == "offline" and "offline" in str(first["blocks"])
        assert first["text"].startswith("Investigating")
        assert [m["ts"] for m in rig.messages(card.channel)] == [card.ts]  # all in the thread

    def test_report_feedback_by_button_and_reaction_is_one_per_person(self, commit_rig) -> None:
        rig, _ = commit_rig
        [first] = rows(rig, Investigation)
        message = recorded(rig, f"report:{first.id}")
        [report] = rows(rig, Report, Report.investigation_id == first.id)

        def ratings() -> dict[str, int]:
            return {f.user_id: f.rating for f in rows(rig, Feedback, Feedback.report_id ==
                                                      report.id)}

        seen = len(ephemerals(rig, message.channel, APPROVER_USER_ID))
        click(rig, APPROVER_USER_ID, ACTION_FEEDBACK_UP, message)
        assert "recorded :+1:" in next_ephemeral(rig, message.channel, APPROVER_USER_ID, seen)
        assert ratings() == {APPROVER_USER_ID: 1}
        click(rig, APPROVER_USER_ID, ACTION_FEEDBACK_DOWN, message)  # a change of mind
        wait_for(lambda: ratings() == {APPROVER_USER_ID: -1}, "the changed rating")

        rig.workspace.actions.react(JO, message.channel, message.ts, "-1")
        wait_for(lambda: ratings().get(JO) == -1, "Jo's 👎 reaction")
        rig.workspace.actions.react(JO, message.channel, message.ts, "+1")
        wait_for(lambda: ratings().get(JO) == 1, "Jo's 👍 replacing it")
        assert len(rows(rig, Feedback)) == 2

    def test_create_pr_is_for_approvers_confirmed_and_counted_once(self, commit_rig) -> None:
        rig, _ = commit_rig
        [first] = rows(rig, Investigation)
        message = recorded(rig, f"report:{first.id}")
        [report] = rows(rig, Report, Report.investigation_id == first.id)
        channel, thread = message.channel, message.thread_ts

        seen = len(ephemerals(rig, channel, NON_APPROVER_USER_ID))
        click(rig, NON_APPROVER_USER_ID, ACTION_CREATE_PR, message)
        refusal = next_ephemeral(rig, channel, NON_APPROVER_USER_ID, seen)
        assert refusal.startswith(":no_entry: Only approvers may create a pull request")
        [refused] = rows(rig, Approval)
        assert (refused.user_id, refused.allowed, refused.report_id) == (
            NON_APPROVER_USER_ID, False, report.id)
        assert rig.workspace.workspace.open_views(NON_APPROVER_USER_ID) == []

        click(rig, APPROVER_USER_ID, ACTION_CREATE_PR, message)
        view = open_view(rig, APPROVER_USER_ID, VIEW_CONFIRM_PR)
        shown = str(view["blocks"])
        assert "Proposed change" in shown and "git revert" in shown
        assert all(f in shown for f in report.body["code_change"]["files"])
        assert rig.workspace.actions.submit_view(APPROVER_USER_ID, view["id"], {}) == {"ok": True}
        wait_for(lambda: rig.bot.bot.poster.recorded(f"approval:{report.id}"), "the note")

        # The approver clicks again and approves again: it counts once, said to them alone.
        seen = len(ephemerals(rig, channel, APPROVER_USER_ID))
        click(rig, APPROVER_USER_ID, ACTION_CREATE_PR, message)
        again = open_view(rig, APPROVER_USER_ID, VIEW_CONFIRM_PR)
        assert again["id"] != view["id"]
        assert rig.workspace.actions.submit_view(APPROVER_USER_ID, again["id"], {})["ok"]
        assert "already approved" in next_ephemeral(rig, channel, APPROVER_USER_ID, seen)

        allowed = [a for a in rows(rig, Approval) if a.allowed]
        assert [(a.user_id, a.report_id, a.action) for a in allowed] == [
            (APPROVER_USER_ID, report.id, "create_pr")]
        notes = [m["text"] for m in rig.replies(channel, thread)
                 if "approved a pull request" in m["text"]]
        assert len(notes) == 1
        assert f"<@{APPROVER_USER_ID}>" in notes[0] and "no pull request was opened" in notes[0]

    def test_a_mention_in_the_thread_follows_up_with_the_report(self, commit_rig) -> None:
        rig, issue_id = commit_rig
        card = recorded(rig, f"card:{issue_id}")
        [first] = rows(rig, Investigation)
        rig.workspace.actions.post(APPROVER_USER_ID, card.channel,
                                   "@sleuth does the fan-out also reach dim_customers?",
                                   thread_ts=card.ts)
        follow_up = settle(rig, 2)[-1]
        assert follow_up.trigger == "mention" and follow_up.issue_id == issue_id
        assert "does the fan-out also reach dim_customers?" in follow_up.question
        assert f"Follow-up to investigation #{first.id}" in follow_up.question
        assert "Its report:" in follow_up.question and "Root cause:" in follow_up.question
        ended_in_report(rig, follow_up, card.channel, card.ts)
        assert [m["ts"] for m in rig.messages(card.channel)] == [card.ts]

    def test_mute_then_unmute(self, commit_rig) -> None:
        rig, issue_id = commit_rig
        card = recorded(rig, f"card:{issue_id}")
        click(rig, NON_APPROVER_USER_ID, ACTION_MUTE, card)
        wait_for(lambda: ACTION_UNMUTE in buttons(slack_message(rig, card)), "Unmute on the card")
        assert issue(rig, issue_id).status == IssueStatus.muted
        assert ACTION_MUTE not in buttons(slack_message(rig, card))

        click(rig, NON_APPROVER_USER_ID, ACTION_UNMUTE, card)
        wait_for(lambda: ACTION_MUTE in buttons(slack_message(rig, card)), "Mute again")
        assert issue(rig, issue_id).status == IssueStatus.open

        def notes() -> list[str]:
            return [m["text"] for m in rig.replies(card.channel, card.ts)
                    if m["text"].startswith(f"<@{NON_APPROVER_USER_ID}>")]

        wait_for(lambda: len(notes()) >= 2, "the unmute note (it follows the card's edit)")
        shown = notes()
        assert len(shown) == 2 and "muted" in shown[0] and "unmuted" in shown[1]

    def test_resolve_asks_one_line_and_remembers_it(self, commit_rig) -> None:
        rig, issue_id = commit_rig
        card = recorded(rig, f"card:{issue_id}")
        click(rig, APPROVER_USER_ID, ACTION_RESOLVE, card)
        view = open_view(rig, APPROVER_USER_ID, VIEW_RESOLVE)
        empty = rig.workspace.actions.submit_view(APPROVER_USER_ID, view["id"], {})
        assert empty == {"ok": False, "errors": {"resolution": "Say in one line what fixed it."}}
        assert rig.workspace.workspace.view(view["id"]) is not None  # still open, with the error
        assert issue(rig, issue_id).status == IssueStatus.open
        rig.workspace.actions.close_view(APPROVER_USER_ID, view["id"])

        click(rig, APPROVER_USER_ID, ACTION_RESOLVE, card)
        view = open_view(rig, APPROVER_USER_ID, VIEW_RESOLVE)
        line = "Reverted the fan-out commit in int_orders_enriched and rebuilt the marts"
        done = rig.workspace.actions.submit_view(APPROVER_USER_ID, view["id"],
                                                 {"resolution": {"text": line}})
        assert done == {"ok": True}
        resolved_by(rig, card, line)
        resolved = issue(rig, issue_id)
        assert (resolved.status, resolved.resolution) == (IssueStatus.resolved, line)
        shown = slack_message(rig, card)
        assert "resolved" in shown["text"] and line in str(shown["blocks"])
        assert ACTION_INVESTIGATE not in buttons(shown) and ACTION_RESOLVE not in buttons(shown)

        index = open_index(rig.settings, TABLE)
        hits = IssueMemory(index).search(resolved.title, k=3)
        assert hits and hits[0].issue_id == resolved.fingerprint
        assert [h.metadata["outcome"] for h in index.search(resolved.title, k=1)] == [line]

    def test_a_line_typed_after_the_error_is_taken(self, commit_rig) -> None:
        rig, issue_id = commit_rig
        card = recorded(rig, f"card:{issue_id}")
        report = recorded(rig, f"report:{rows(rig, Investigation)[0].id}")
        click(rig, APPROVER_USER_ID, ACTION_RESOLVE, report)  # the report's Resolve issue
        view = open_view(rig, APPROVER_USER_ID, VIEW_RESOLVE)
        assert not rig.workspace.actions.submit_view(APPROVER_USER_ID, view["id"], {})["ok"]
        line = "Reverted the fan-out commit; a uniqueness test on fct_orders now runs in CI"
        assert rig.workspace.actions.submit_view(APPROVER_USER_ID, view["id"],
                                                 {"resolution": {"text": line}})["ok"]
        resolved_by(rig, card, line)
        assert issue(rig, issue_id).resolution == line


def resolved_by(rig: Rig, card: SlackMessage, line: str) -> None:
    note = f":white_check_mark: Resolved by <@{APPROVER_USER_ID}>: {line}"
    wait_for(lambda: note in [m["text"] for m in rig.replies(card.channel, card.ts)],
             "the resolution in the thread")  # the bot acks first, then resolves


# ---------------------------------------------------------------- commands, reactions, mentions

@pytest.fixture(scope="class")
def question_rig(demo_platform, tmp_path_factory) -> Iterator[tuple[Rig, int]]:
    paths, _ = demo_platform
    yield from rig_for("null_customer_ids", paths, tmp_path_factory.mktemp("questions"))


def command(rig: Rig, channel: str, text: str, user: str = APPROVER_USER_ID) -> str:
    """Type `text` (a /investigate …) in `channel`; the ephemeral answer."""
    seen = len(ephemerals(rig, channel, user))
    assert rig.workspace.actions.post(user, channel, text)["ok"]
    return next_ephemeral(rig, channel, user, seen)


class TestAskingInSlack:
    def test_investigate_answers_what_it_cannot_do(self, question_rig) -> None:
        rig, _ = question_rig
        alerts = rig.channel("data-alerts")
        before = rig.messages(alerts)
        assert command(rig, alerts, "/investigate").startswith("*Usage:* `/investigate")
        missing = command(rig, alerts, "/investigate #999")
        assert missing.startswith("There is no issue #999.") and "*Usage:*" in missing
        typo = command(rig, alerts, "/investigate fct_order")
        assert "No issue or asset is named `fct_order`" in typo
        assert "Did you mean `fct_orders`" in typo
        assert rig.messages(alerts) == before and rows(rig, Investigation) == []

    def test_investigate_an_issue_by_its_id(self, question_rig) -> None:
        rig, issue_id = question_rig
        card = recorded(rig, f"card:{issue_id}")
        answer = command(rig, card.channel, f"/investigate #{issue_id}")
        assert answer == f":mag: Investigating issue #{issue_id} in its card's thread."
        # it starts after that answer; asked again while it runs, no second one
        wait_for(lambda: rows(rig, Investigation, Investigation.issue_id == issue_id),
                 "the investigation's start")
        again = command(rig, card.channel, f"/investigate {issue_id}", NON_APPROVER_USER_ID)
        assert again == f"Issue #{issue_id} is already being investigated in its thread."
        [investigation] = settle(rig, 1)
        assert (investigation.issue_id, investigation.trigger) == (issue_id, "command")
        ended_in_report(rig, investigation, card.channel, card.ts)

    @pytest.mark.parametrize("text", ["fct_orders", "why did orders drop since Monday?"])
    def test_investigate_an_asset_or_a_question_in_a_new_thread(self, question_rig,
                                                                text: str) -> None:
        rig, _ = question_rig
        finance = rig.channel("data-finance")
        before = {m["ts"] for m in rig.messages(finance)}
        count = len(rows(rig, Investigation))
        answer = command(rig, finance, f"/investigate {text}", NON_APPROVER_USER_ID)
        assert answer.startswith(":mag: Investigating in a thread:")
        investigation = settle(rig, count + 1)[-1]
        assert investigation.trigger == "command" and investigation.issue_id is None
        [root] = [m for m in rig.messages(finance) if m["ts"] not in before]
        assert root["text"].startswith(f":mag: <@{NON_APPROVER_USER_ID}> asked:")
        assert root["user"] == BOT_USER_ID and text in root["text"]
        ended_in_report(rig, investigation, finance, root["ts"])
        if text == "fct_orders":  # one word naming an asset becomes a question about it
            assert investigation.question.startswith("What is wrong with model.")

    def test_mag_on_another_apps_message_investigates_it_once(self, question_rig) -> None:
        rig, _ = question_rig
        marketing = rig.channel("data-marketing")
        alert = rig.workspace.workspace.add_message(
            marketing, user=ALERT_BOT, subtype="bot_message",
            text="Airflow: DAG orders_daily task dbt_build failed (try 2 of 2)")
        count = len(rows(rig, Investigation))
        rig.workspace.actions.react(APPROVER_USER_ID, marketing, alert["ts"], "mag")
        investigation = settle(rig, count + 1)[-1]
        assert investigation.trigger == "reaction"
        assert "DAG orders_daily task dbt_build failed" in investigation.question
        ended_in_report(rig, investigation, marketing, alert["ts"])
        reactions = {r["name"]: r["users"] for r in
                     rig.workspace.workspace.message(marketing, alert["ts"])["reactions"]}
        assert reactions["eyes"] == [BOT_USER_ID]

        def jos_reactions() -> int:
            return len(rows(rig, SlackEvent, SlackEvent.user_id == JO,
                            SlackEvent.kind == "reaction_added"))

        delivered = jos_reactions()
        rig.workspace.actions.react(JO, marketing, alert["ts"], "mag")  # someone else, later
        wait_for(lambda: jos_reactions() > delivered, "the bot to take Jo's :mag:")
        rig.bot.bot.jobs.wait(timeout=300)
        assert len(rows(rig, Investigation)) == count + 1

    def test_check_mark_on_a_card_resolves_and_asks_for_the_line(self, question_rig) -> None:
        rig, issue_id = question_rig
        card = recorded(rig, f"card:{issue_id}")
        seen = len(ephemerals(rig, card.channel, JO))
        rig.workspace.actions.react(JO, card.channel, card.ts, "white_check_mark")
        ask = next_ephemeral(rig, card.channel, JO, seen)
        assert ask == f"Issue #{issue_id} is resolved. What fixed it?"
        assert issue(rig, issue_id).status == IssueStatus.resolved
        assert ACTION_RESOLVE not in buttons(slack_message(rig, card))

    def test_a_mention_elsewhere_starts_a_thread_under_it(self, question_rig) -> None:
        rig, _ = question_rig
        alerts = rig.channel("data-alerts")
        count = len(rows(rig, Investigation))
        asked = rig.workspace.actions.post(JO, alerts, "@sleuth is the revenue dashboard stale?")
        investigation = settle(rig, count + 1)[-1]
        assert investigation.trigger == "mention"
        assert investigation.question == "is the revenue dashboard stale?"
        ended_in_report(rig, investigation, alerts, asked["ts"])

"""The Poster and issue cards against the local workspace: each message posted once per key,
edits in place only when the content changed, a card in its channel (or the default one), and
Slack's rate limit waited out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.errors import SleuthError
from bot.slack.cards import Cards, card_key
from bot.slack.messages import Poster, slack_client
from bot.slack.thread import ThreadTrace
from bot.slack.workspace import start_workspace
from bot.slack.workspace.ratelimit import RateLimiter
from bot.store.models import (
    Investigation,
    InvestigationStatus,
    Issue,
    IssueStatus,
    SlackMessage,
)
from tests.slack.conftest import CountingClient, channel_id

DEFAULT_CHANNEL = "#data-alerts"


def add_issue(engine: Engine, channel: str = "#data-commerce", **changes: Any) -> int:
    now = datetime(2026, 11, 23, 9, 12, tzinfo=UTC)
    issue = Issue(fingerprint=f"fp-{channel}-{now.timestamp()}-{len(changes)}",
                  title="dbt test unique(fct_orders.order_id) failed", severity="SEV2",
                  asset="model.sleuth_demo.int_orders_enriched", kind="test_failed",
                  assets=["model.sleuth_demo.fct_orders"], channel=channel, first_seen=now,
                  last_seen=now, **changes)
    with Session(engine) as session:
        session.add(issue)
        session.commit()
        session.refresh(issue)
    assert issue.id is not None
    return issue.id


def change_issue(engine: Engine, issue_id: int, **changes: Any) -> None:
    with Session(engine) as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        for name, value in changes.items():
            setattr(issue, name, value)
        session.add(issue)
        session.commit()


def history(client: WebClient, channel: str) -> list[dict[str, Any]]:
    return client.conversations_history(channel=channel)["messages"]


# ---------------------------------------------------------------- Poster

def test_a_key_is_posted_once(poster: Poster, counting: CountingClient,
                              engine: Engine) -> None:
    channel = channel_id(counting, "data-alerts")
    first = poster.post("note:1", "#data-alerts", "hello", kind="notice")
    again = poster.post("note:1", channel, "hello, changed", kind="notice")
    assert (again.ts, again.channel) == (first.ts, channel)
    assert counting.calls["chat.postMessage"] == 1
    assert [m["text"] for m in history(counting, channel)] == ["hello"]
    with Session(engine) as session:
        rows = session.exec(select(SlackMessage)).all()
    assert [(r.key, r.kind, r.ts) for r in rows] == [("note:1", "notice", first.ts)]


def test_update_edits_in_place_and_skips_unchanged_content(poster: Poster,
                                                           counting: CountingClient) -> None:
    posted = poster.post("note:2", "#data-finance", "step 1", kind="notice")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*step 2*"}}]
    poster.update("note:2", "step 2", blocks)
    poster.update("note:2", "step 2", blocks)  # the same content: nothing to send
    assert counting.calls["chat.update"] == 1
    shown = history(counting, posted.channel)
    assert len(shown) == 1 and shown[0]["ts"] == posted.ts
    assert (shown[0]["text"], shown[0]["blocks"][0]["text"]["text"]) == ("step 2", "*step 2*")
    poster.update("note:2", "step 3")
    assert counting.calls["chat.update"] == 2
    assert history(counting, posted.channel)[0]["text"] == "step 3"
    assert poster.update("never-posted", "text") is None
    assert counting.calls["chat.update"] == 2


def test_channel_id_resolves_names_and_keeps_ids(poster: Poster,
                                                 counting: CountingClient) -> None:
    alerts = channel_id(counting, "data-alerts")
    assert poster.channel_id("#data-alerts") == alerts
    assert poster.channel_id("data-alerts") == alerts
    assert poster.channel_id(alerts) == alerts
    listed = counting.calls["conversations.list"]
    assert poster.channel_id("#data-alerts") == alerts  # cached: Slack is not asked again
    assert counting.calls["conversations.list"] == listed
    with pytest.raises(SleuthError, match="no channel #data-nowhere in the Slack workspace"):
        poster.channel_id("#data-nowhere")


# ---------------------------------------------------------------- cards

def test_a_card_is_posted_once_in_the_issues_channel(poster: Poster, engine: Engine,
                                                     counting: CountingClient) -> None:
    issue_id = add_issue(engine, "#data-commerce")
    cards = Cards(poster, engine, DEFAULT_CHANNEL)
    assert cards.show(issue_id) is True
    assert cards.show(issue_id) is False  # known: edited (here unchanged), not posted again
    commerce = channel_id(counting, "data-commerce")
    shown = history(counting, commerce)
    assert len(shown) == 1 and "fct_orders.order_id" in shown[0]["text"]
    card = cards.card(issue_id)
    assert card is not None and (card.channel, card.ts, card.kind) == (commerce, shown[0]["ts"],
                                                                       "card")
    assert counting.calls["chat.postMessage"] == 1 and counting.calls["chat.update"] == 0
    assert history(counting, channel_id(counting, "data-alerts")) == []


def test_a_card_whose_channel_is_missing_goes_to_the_default_channel(
        poster: Poster, engine: Engine, counting: CountingClient) -> None:
    issue_id = add_issue(engine, "#data-nowhere")
    Cards(poster, engine, DEFAULT_CHANNEL).show(issue_id)
    alerts = history(counting, channel_id(counting, "data-alerts"))
    assert len(alerts) == 1 and f"Issue #{issue_id}" in str(alerts[0]["blocks"])
    assert poster.recorded(card_key(issue_id)).channel == channel_id(counting, "data-alerts")


def test_a_card_is_edited_when_the_issue_changes(poster: Poster, engine: Engine,
                                                 counting: CountingClient) -> None:
    issue_id = add_issue(engine)
    cards = Cards(poster, engine, DEFAULT_CHANNEL)
    cards.show(issue_id)
    change_issue(engine, issue_id, occurrences=7)
    cards.show(issue_id)
    change_issue(engine, issue_id, status=IssueStatus.muted)
    cards.show(issue_id)
    shown = history(counting, channel_id(counting, "data-commerce"))
    assert len(shown) == 1 and counting.calls["chat.update"] == 2
    assert "7×" in shown[0]["text"] and "muted" in shown[0]["text"]
    buttons = [e["action_id"] for b in shown[0]["blocks"] if b["type"] == "actions"
               for e in b["elements"]]
    assert "issue_unmute" in buttons and "issue_mute" not in buttons
    assert shown[0].get("edited")


def test_a_reopened_issue_gets_one_note_in_its_thread(poster: Poster, engine: Engine,
                                                      counting: CountingClient) -> None:
    issue_id = add_issue(engine)
    cards = Cards(poster, engine, DEFAULT_CHANNEL)
    cards.show(issue_id)
    cards.show(issue_id, reopened=True)
    cards.show(issue_id, reopened=True)  # the same recurrence again: no second note
    card = cards.card(issue_id)
    assert card is not None
    replies = counting.conversations_replies(channel=card.channel, ts=card.ts)["messages"][1:]
    assert [m["text"] for m in replies] == [
        ":repeat: This issue happened again after it was resolved."]


# ---------------------------------------------------------------- a card that follows its issue

def card_buttons(message: dict[str, Any]) -> set[str]:
    return {e["action_id"] for b in message.get("blocks") or [] if b["type"] == "actions"
            for e in b["elements"]}


def test_a_card_follows_its_issue_to_the_channel_that_owns_it_now(
        poster: Poster, engine: Engine, counting: CountingClient) -> None:
    """A task failure opened the issue in the default channel; a dbt test then moved its root
    to a model #data-commerce owns."""
    issue_id = add_issue(engine, DEFAULT_CHANNEL)
    cards = Cards(poster, engine, DEFAULT_CHANNEL)
    cards.show(issue_id)
    alerts, commerce = channel_id(counting, "data-alerts"), channel_id(counting, "data-commerce")
    first = cards.card(issue_id)
    assert first is not None and first.channel == alerts

    change_issue(engine, issue_id, channel="#data-commerce", occurrences=2)
    assert cards.show(issue_id) is False
    moved = cards.card(issue_id)
    assert moved is not None and (moved.channel, moved.key) == (commerce,
                                                                 card_key(issue_id, commerce))
    new, = history(counting, commerce)
    assert new["ts"] == moved.ts and "2×" in new["text"]
    assert card_buttons(new) == {"issue_investigate", "issue_mute", "issue_resolve"}
    old, = history(counting, alerts)
    permalink = counting.chat_getPermalink(channel=commerce, message_ts=moved.ts)["permalink"]
    assert old["ts"] == first.ts and card_buttons(old) == set()
    assert f"moved to <#{commerce}>: <{permalink}|the card>" in str(old["blocks"])
    assert poster.recorded(card_key(issue_id)).kind == "moved"

    # a retry, then a restart (a new Cards over the same store): nothing posted again
    posted = counting.calls["chat.postMessage"]
    cards.show(issue_id)
    Cards(poster, engine, DEFAULT_CHANNEL).show(issue_id)
    assert counting.calls["chat.postMessage"] == posted

    # later changes edit the card where it is now; the pointer stays as it was
    change_issue(engine, issue_id, occurrences=5, last_seen=datetime(2026, 11, 24, tzinfo=UTC))
    Cards(poster, engine, DEFAULT_CHANNEL).show(issue_id, reopened=True)
    assert "5×" in history(counting, commerce)[0]["text"]
    assert history(counting, alerts) == [old]
    replies = counting.conversations_replies(channel=commerce, ts=moved.ts)["messages"][1:]
    assert [m["text"] for m in replies] == [
        ":repeat: This issue happened again after it was resolved."]


def test_a_card_that_moves_back_is_the_first_card_again(poster: Poster, engine: Engine,
                                                        counting: CountingClient) -> None:
    issue_id = add_issue(engine, DEFAULT_CHANNEL)
    cards = Cards(poster, engine, DEFAULT_CHANNEL)
    cards.show(issue_id)
    change_issue(engine, issue_id, channel="#data-commerce")
    cards.show(issue_id)
    change_issue(engine, issue_id, channel=DEFAULT_CHANNEL)
    cards.show(issue_id)
    alerts, commerce = channel_id(counting, "data-alerts"), channel_id(counting, "data-commerce")
    assert counting.calls["chat.postMessage"] == 2  # the first card and the one in #commerce
    card = cards.card(issue_id)
    assert card is not None and card.key == card_key(issue_id) and card.channel == alerts
    back, = history(counting, alerts)
    assert card_buttons(back) and "Investigate" in str(back["blocks"])
    pointer, = history(counting, commerce)
    assert card_buttons(pointer) == set() and f"<#{alerts}>" in pointer["text"]


def test_a_crash_between_posting_the_moved_card_and_editing_the_old_one_heals(
        poster: Poster, engine: Engine, counting: CountingClient) -> None:
    issue_id = add_issue(engine, DEFAULT_CHANNEL)
    cards = Cards(poster, engine, DEFAULT_CHANNEL)
    cards.show(issue_id)
    commerce = channel_id(counting, "data-commerce")
    change_issue(engine, issue_id, channel="#data-commerce")
    # what a process that died right after posting the new card left behind
    poster.post(card_key(issue_id, commerce), commerce, "the card", kind="card",
                issue_id=issue_id)
    Cards(poster, engine, DEFAULT_CHANNEL).show(issue_id)
    card = cards.card(issue_id)
    assert card is not None and card.channel == commerce
    assert card_buttons(history(counting, commerce)[0])
    old, = history(counting, channel_id(counting, "data-alerts"))
    assert card_buttons(old) == set() and "moved to" in old["text"]
    assert counting.calls["chat.postMessage"] == 2


def add_investigation(engine: Engine, issue_id: int, status: InvestigationStatus) -> int:
    with Session(engine) as session:
        row = Investigation(issue_id=issue_id, question="dbt test failed", trigger="auto",
                            policy="offline", status=status)
        session.add(row)
        session.commit()
        session.refresh(row)
    assert row.id is not None
    return row.id


def replies(client: WebClient, card: SlackMessage) -> list[dict[str, Any]]:
    return client.conversations_replies(channel=card.channel, ts=card.ts)["messages"][1:]


def test_a_moved_card_links_the_investigations_left_in_the_earlier_thread(
        poster: Poster, engine: Engine, counting: CountingClient) -> None:
    """The auto-investigation after the first card runs (and one is still running) under it
    when a dbt test moves the issue: the new card's thread says where they are, once."""
    issue_id = add_issue(engine, DEFAULT_CHANNEL)
    cards = Cards(poster, engine, DEFAULT_CHANNEL)
    cards.show(issue_id)
    first = cards.card(issue_id)
    assert first is not None
    done = add_investigation(engine, issue_id, InvestigationStatus.done)
    running = add_investigation(engine, issue_id, InvestigationStatus.running)
    for investigation_id in (done, running):
        ThreadTrace(poster, channel=first.channel, thread_ts=first.ts, issue_id=issue_id,
                    investigation_id=investigation_id, title="dbt test failed",
                    mode="update").start("offline")
    question = poster.post("ask:1", DEFAULT_CHANNEL, "why?", kind="question")
    ThreadTrace(poster, channel=question.channel, thread_ts=question.ts, issue_id=issue_id,
                investigation_id=add_investigation(engine, issue_id, InvestigationStatus.done),
                title="why?", mode="update").start("offline")  # not under a card: not linked

    change_issue(engine, issue_id, channel="#data-commerce")
    cards.show(issue_id)
    cards.show(issue_id)
    Cards(poster, engine, DEFAULT_CHANNEL).show(issue_id)  # a restart: still one note
    moved = cards.card(issue_id)
    assert moved is not None and moved.channel == channel_id(counting, "data-commerce")
    note, = replies(counting, moved)
    links = {i: counting.chat_getPermalink(channel=first.channel, message_ts=poster.recorded(
        f"summary:{i}").ts)["permalink"] for i in (done, running)}
    assert note["text"] == (
        f"Investigation #{done} ran in <{links[done]}|the earlier thread>.\n"
        f"Investigation #{running} is running in <{links[running]}|the earlier thread>; its "
        "report will be there.")
    # the investigations' messages stay in the earlier thread
    assert len(replies(counting, first)) == 4  # two summaries, two traces


def test_a_moved_card_with_no_investigation_behind_it_gets_no_note(
        poster: Poster, engine: Engine, counting: CountingClient) -> None:
    issue_id = add_issue(engine, DEFAULT_CHANNEL)
    cards = Cards(poster, engine, DEFAULT_CHANNEL)
    cards.show(issue_id)
    change_issue(engine, issue_id, channel="#data-commerce")
    cards.show(issue_id)
    moved = cards.card(issue_id)
    assert moved is not None and replies(counting, moved) == []


def test_a_card_stays_when_the_new_owner_channel_cannot_take_it(
        poster: Poster, engine: Engine, counting: CountingClient) -> None:
    issue_id = add_issue(engine, DEFAULT_CHANNEL)
    cards = Cards(poster, engine, DEFAULT_CHANNEL)
    cards.show(issue_id)
    change_issue(engine, issue_id, channel="#data-nowhere", occurrences=3)
    cards.show(issue_id)
    cards.show(issue_id)  # the missing channel is looked up once, not on every edit
    card = cards.card(issue_id)
    assert card is not None and card.key == card_key(issue_id)
    shown, = history(counting, card.channel)
    assert "3×" in shown["text"] and card_buttons(shown)
    assert counting.calls["chat.postMessage"] == 1
    assert counting.calls["conversations.list"] == 2  # the first post's lookup, then this one


# ---------------------------------------------------------------- rate limits

def test_a_rate_limited_post_is_retried_after_retry_after(isolated_home: Path,
                                                          engine: Engine) -> None:
    strict = start_workspace(isolated_home / "strict", retry_delays=(0.0,), ack_timeout=1.0,
                             rate_limit=RateLimiter(per_second=1.0, burst=1))
    try:
        token = strict.credentials.bot_token.get_secret_value()
        plain = WebClient(token=token, base_url=strict.api_url)
        channel = channel_id(plain, "data-alerts")
        plain.chat_postMessage(channel=channel, text="takes the only token")
        with pytest.raises(SlackApiError) as refused:  # the limit is real: a bare client fails
            plain.chat_postMessage(channel=channel, text="too soon")
        assert refused.value.response.status_code == 429
        assert refused.value.response.headers["Retry-After"] in ("1", ["1"])

        client = slack_client(token, strict.api_url)
        handler = client.retry_handlers[-1]
        waits: list[str] = []
        wait = handler.prepare_for_next_attempt

        def counted(**kwargs: Any) -> None:
            waits.append(kwargs["response"].headers.get("Retry-After", ["?"])[0])
            wait(**kwargs)

        handler.prepare_for_next_attempt = counted  # type: ignore[method-assign]
        poster = Poster(client, engine)
        poster.post("rate:1", channel, "first", kind="notice")
        poster.post("rate:2", channel, "second", kind="notice")
        assert waits and all(w.isdigit() for w in waits)  # the 429s were waited out
        assert [m["text"] for m in history(plain, channel)][:2] == ["second", "first"]
        assert poster.recorded("rate:2") is not None
    finally:
        strict.stop()

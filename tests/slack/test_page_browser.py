"""The workspace page in a real browser: what a person sees and does reaches the app as Slack's.

The bot's side is the real Web API (slack_sdk WebClient); the app is the `receiver`, a real
HTTP server that checks each request's signature. The browser is Chromium via Playwright.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.slack.workspace import APPROVER_USER_ID
from bot.slack.workspace.state import TEAM_ID
from tests.slack.browser import open_channel
from tests.slack.conftest import Received, Receiver, channel_id, wait_for

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

CARD = [
    {"type": "header", "text": {"type": "plain_text", "text": "🔴 orders_daily failed"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Row count dropped* on `fct_orders`"},
     "fields": [{"type": "mrkdwn", "text": "*Severity*\nSEV2"},
                {"type": "mrkdwn", "text": "*Occurrences*\n3"}],
     "accessory": {"type": "button", "action_id": "issue_mute", "value": "7",
                   "text": {"type": "plain_text", "text": "Mute"}}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "first seen 09:12 · #data-alerts"}]},
    {"type": "divider"},
    {"type": "actions", "elements": [
        {"type": "button", "action_id": "issue_investigate", "value": "7", "style": "primary",
         "text": {"type": "plain_text", "text": "Investigate"}},
        {"type": "button", "action_id": "issue_resolve", "value": "7", "style": "danger",
         "text": {"type": "plain_text", "text": "Resolve"}}]},
]

MODAL = {"type": "modal", "callback_id": "resolve_issue",
         "title": {"type": "plain_text", "text": "Resolve issue"},
         "submit": {"type": "plain_text", "text": "Resolve"},
         "close": {"type": "plain_text", "text": "Cancel"},
         "blocks": [{"type": "input", "block_id": "resolution",
                     "label": {"type": "plain_text", "text": "What fixed it?"},
                     "element": {"type": "plain_text_input", "action_id": "text"}}]}


def payloads(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.requests if r.json().get("type") == kind]


def test_a_message_typed_in_the_box_appears_in_the_channel(running, client: WebClient,
                                                           browser_page) -> None:
    page, channel = browser_page, channel_id(client, "data-alerts")
    open_channel(page, running.url, channel)
    page.get_by_test_id("message-input").fill("is orders_daily late again?")
    page.get_by_test_id("message-input").press("Enter")
    message = page.locator("#messages [data-testid=message]").filter(
        has_text="is orders_daily late again?")
    expect(message).to_have_attribute("data-user", APPROVER_USER_ID)
    expect(page.get_by_test_id("message-input")).to_have_value("")
    stored = client.conversations_history(channel=channel)["messages"]
    assert [(m["text"], m["user"], m["ts"]) for m in stored] == [
        ("is orders_daily late again?", APPROVER_USER_ID, message.get_attribute("data-ts"))]


def test_a_card_renders_and_its_button_sends_a_signed_block_action(
        running, client: WebClient, receiver: Receiver, browser_page) -> None:
    page, channel = browser_page, channel_id(client, "data-alerts")
    posted = client.chat_postMessage(channel=channel, text="orders_daily failed", blocks=CARD)
    open_channel(page, running.url, channel)
    card = page.locator(f'#messages [data-testid=message][data-ts="{posted["ts"]}"]')
    expect(card.get_by_test_id("block-header")).to_have_text("🔴 orders_daily failed")
    expect(card.get_by_test_id("block-section")).to_contain_text("Row count dropped")
    expect(card.locator("b", has_text="Row count dropped")).to_be_visible()  # mrkdwn bold
    expect(card.locator("code", has_text="fct_orders")).to_be_visible()
    expect(card.get_by_test_id("field")).to_have_count(2)
    expect(card.get_by_test_id("field").nth(1)).to_contain_text("Occurrences")
    expect(card.get_by_test_id("block-context")).to_contain_text("first seen 09:12")
    expect(card.get_by_test_id("block-divider")).to_have_count(1)
    button = card.locator('[data-testid=button][data-action-id="issue_investigate"]')
    expect(button).to_have_text("Investigate")
    expect(button).to_have_class(re.compile(r"\bprimary\b"))
    expect(card.locator('[data-testid=button][data-action-id="issue_resolve"]')).to_have_class(
        re.compile(r"\bdanger\b"))
    expect(card.locator('[data-testid=button][data-action-id="issue_mute"]')).to_be_visible()

    button.click()
    clicks = wait_for(lambda: payloads(receiver, "block_actions"), "the block_actions request")
    assert all(r.signature_valid for r in receiver.requests)
    action = clicks[0]["actions"][0]
    assert (action["action_id"], action["value"]) == ("issue_investigate", "7")
    assert clicks[0]["user"]["id"] == APPROVER_USER_ID
    assert clicks[0]["container"]["message_ts"] == posted["ts"]


def test_a_modal_opened_after_a_click_submits_what_was_typed(
        running, client: WebClient, receiver: Receiver, browser_page) -> None:
    opened: list[str] = []

    def answer(got: Received, n: int) -> tuple[int, bytes, str, float]:
        # As a Bolt app does: acknowledge the click and open the modal with its trigger_id
        # at once (a trigger id lasts 3 seconds).
        payload = got.json()
        if payload.get("type") == "block_actions":
            view = client.views_open(trigger_id=payload["trigger_id"], view=MODAL)["view"]
            opened.append(view["id"])
        return 200, b"", "text/plain", 0.0

    receiver.answer = answer
    page, channel = browser_page, channel_id(client, "data-finance")
    posted = client.chat_postMessage(channel=channel, text="card", blocks=CARD)
    open_channel(page, running.url, channel)
    page.locator(f'[data-ts="{posted["ts"]}"] [data-action-id="issue_resolve"]').click()

    modal = page.get_by_test_id("modal")
    expect(modal).to_be_visible()
    expect(page.get_by_test_id("modal-title")).to_have_text("Resolve issue")
    page.get_by_test_id("input-text").fill("reran the backfill after the upstream fix")
    page.get_by_test_id("modal-submit").click()
    expect(modal).to_be_hidden()

    submitted = wait_for(lambda: payloads(receiver, "view_submission"), "the view_submission")
    view = submitted[0]["view"]
    assert view["id"] == opened[0] and view["callback_id"] == "resolve_issue"
    assert view["state"]["values"]["resolution"]["text"] == {
        "type": "plain_text_input", "value": "reran the backfill after the upstream fix"}
    assert all(r.signature_valid for r in receiver.requests)


def test_a_thread_shows_replies_and_the_uploaded_file(running, client: WebClient,
                                                      browser_page) -> None:
    page, channel = browser_page, channel_id(client, "data-commerce")
    parent = client.chat_postMessage(channel=channel, text="orders_daily failed")
    client.chat_postMessage(channel=channel, thread_ts=parent["ts"],
                            text="Root cause: a late upstream load")
    content = "# Case file\n\n- step 1: read the logs\n"
    uploaded = client.files_upload_v2(channel=channel, thread_ts=parent["ts"], content=content,
                                      filename="case-7.md", title="Case file 7")
    open_channel(page, running.url, channel, thread_ts=parent["ts"])

    thread = page.get_by_test_id("thread-messages")
    expect(page.get_by_test_id("thread-panel")).to_be_visible()
    expect(thread.get_by_test_id("message")).to_have_count(3)  # parent, reply, file message
    expect(thread.get_by_test_id("message").nth(1)).to_contain_text(
        "Root cause: a late upstream load")
    link = thread.get_by_test_id("file")
    expect(link).to_have_text(re.compile("Case file 7"))
    expect(link).to_have_attribute("data-file-id", uploaded["file"]["id"])
    expect(page.locator("#messages").get_by_test_id("thread-link")).to_have_text("2 replies")

    with page.expect_download() as download:
        link.click()
    saved = download.value
    assert saved.suggested_filename == "case-7.md"
    assert saved.path().read_text(encoding="utf-8") == content


def test_a_streamed_reply_grows_live_and_stops(running, client: WebClient,
                                               browser_page) -> None:
    page, channel = browser_page, channel_id(client, "data-marketing")
    parent = client.chat_postMessage(channel=channel, text="why did signups drop?")
    open_channel(page, running.url, channel, thread_ts=parent["ts"])
    stream = client.chat_startStream(channel=channel, thread_ts=parent["ts"],
                                     markdown_text="Checking **signups** ",
                                     recipient_team_id=TEAM_ID,
                                     recipient_user_id=APPROVER_USER_ID)
    reply = page.locator(f'#thread-messages [data-ts="{stream["ts"]}"]')
    expect(reply.get_by_test_id("stream-text")).to_have_text("Checking signups")
    expect(reply.get_by_test_id("streaming")).to_be_visible()
    client.chat_appendStream(channel=channel, ts=stream["ts"],
                             markdown_text="then the tracking deploy.",
                             chunks=[{"type": "task_update", "id": "logs", "title": "Read logs",
                                      "status": "complete"}])
    expect(reply.get_by_test_id("stream-text")).to_contain_text("then the tracking deploy.")
    expect(reply.get_by_test_id("stream-task")).to_have_attribute("data-status", "complete")
    client.chat_stopStream(channel=channel, ts=stream["ts"])
    expect(reply.get_by_test_id("streaming")).to_have_count(0)
    expect(reply.locator("b", has_text="signups")).to_be_visible()


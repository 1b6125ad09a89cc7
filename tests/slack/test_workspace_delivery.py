"""What people do on the workspace reaches a real HTTP receiver, signed and retried like Slack."""

from __future__ import annotations

import json
import urllib.request

import pytest
from slack_sdk import WebClient

from bot.errors import SleuthError
from bot.slack.workspace import APPROVER_USER_ID, NON_APPROVER_USER_ID, load_credentials
from tests.slack.conftest import Receiver, channel_id, wait_for

CARD = [{"type": "section", "text": {"type": "mrkdwn", "text": "*fct_orders* failed"}},
        {"type": "actions", "block_id": "card", "elements": [
            {"type": "button", "action_id": "create_pr", "style": "primary", "value": "ISS-7",
             "text": {"type": "plain_text", "text": "Create PR"}}]}]


def test_a_mention_arrives_as_a_signed_app_mention_event(running, client, receiver) -> None:
    channel = channel_id(client, "data-alerts")
    posted = running.actions.post(APPROVER_USER_ID, channel, "@sleuth why did orders fail?")
    got = wait_for(lambda: receiver.requests, "the app_mention event")[0]
    assert got.signature_valid
    envelope = got.json()
    assert envelope["type"] == "event_callback"
    assert envelope["api_app_id"] == running.credentials.app_id
    event = envelope["event"]
    assert event["type"] == "app_mention"
    assert event["text"] == f"<@{running.credentials.bot_user_id}> why did orders fail?"
    assert (event["channel"], event["ts"], event["user"]) == (channel, posted["ts"],
                                                             APPROVER_USER_ID)
    assert event["blocks"][0]["type"] == "rich_text"
    assert "x-slack-retry-num" not in got.headers


def test_unsubscribed_events_are_not_sent(running, client, receiver) -> None:
    channel = channel_id(client, "data-alerts")
    running.actions.post(APPROVER_USER_ID, channel, "just chatting, no mention")
    parent = client.chat_postMessage(channel=channel, text="card")
    running.actions.react(APPROVER_USER_ID, channel, parent["ts"], "mag")
    got = wait_for(lambda: receiver.requests, "the reaction event")
    assert [r.json()["event"]["type"] for r in got] == ["reaction_added"]
    event = got[0].json()["event"]
    assert event["item"] == {"type": "message", "channel": channel, "ts": parent["ts"]}
    assert event["reaction"] == "mag" and event["item_user"] == running.credentials.bot_user_id


def test_a_slow_app_gets_retries_with_the_same_event_id(running, client, receiver) -> None:
    # The first attempt stalls past the 1 s ack wait (the fixture's); the retry is answered.
    receiver.answer = lambda r, n: (200, b"", "text/plain", 2.5 if n == 1 else 0.0)
    channel = channel_id(client, "data-alerts")
    running.actions.post(APPROVER_USER_ID, channel, "@sleuth hello")
    got = wait_for(lambda: receiver.requests[:2] if len(receiver.requests) >= 2 else None,
                   "a retry")
    first, retry = got
    assert first.json()["event_id"] == retry.json()["event_id"]
    assert retry.headers["x-slack-retry-num"] == "1"
    assert retry.headers["x-slack-retry-reason"] == "http_timeout"
    assert retry.signature_valid
    entry = wait_for(lambda: [e for e in running.delivery.log if e["status"] == "delivered"],
                     "the delivery to settle")[0]
    assert entry["attempts"] == 2


def test_an_app_that_keeps_failing_gets_three_retries_then_none(running, client,
                                                                receiver) -> None:
    receiver.answer = lambda r, n: (500, b"boom", "text/plain", 0.0)
    channel = channel_id(client, "data-alerts")
    running.actions.post(APPROVER_USER_ID, channel, "@sleuth hello")
    wait_for(lambda: [e for e in running.delivery.log if e["status"] == "failed"],
             "the delivery to give up")
    nums = [r.headers.get("x-slack-retry-num") for r in receiver.requests]
    assert nums == [None, "1", "2", "3"]
    assert {r.headers.get("x-slack-retry-reason") for r in receiver.requests[1:]} == \
        {"http_error"}
    assert len({r.json()["event_id"] for r in receiver.requests}) == 1


def test_no_retry_header_stops_retries(running, client, receiver) -> None:
    # Bolt answers `X-Slack-No-Retry: 1` when retrying would not help.
    receiver.answer = lambda r, n: (500, b"", "text/plain", 0.0)
    receiver.headers = {"X-Slack-No-Retry": "1"}
    running.actions.post(APPROVER_USER_ID, channel_id(client, "data-alerts"), "@sleuth hi")
    wait_for(lambda: [e for e in running.delivery.log if e["status"] == "failed"], "failure")
    assert len(receiver.requests) == 1


def test_registration_sends_url_verification_and_refuses_a_url_that_fails(running) -> None:
    with pytest.raises(SleuthError, match="Request URL"):
        running.set_request_url("http://127.0.0.1:9/slack/events")  # nothing listens there
    secret = running.credentials.signing_secret.get_secret_value()
    wrong, right = Receiver(secret, echo_challenge=False), Receiver(secret)
    try:
        with pytest.raises(SleuthError, match="did not echo the url_verification challenge"):
            running.set_request_url(wrong.url)
        assert running.credentials.request_url is None
        running.set_request_url(right.url)
        assert running.credentials.request_url == right.url
    finally:
        wrong.stop()
        right.stop()


def test_slash_command_is_a_signed_form_and_its_response_url_posts(running, client,
                                                                   receiver) -> None:
    receiver.answer = lambda r, n: (200, json.dumps({"text": "On it."}).encode(),
                                    "application/json", 0.0)
    channel = channel_id(client, "data-finance")
    result = running.actions.post(NON_APPROVER_USER_ID, channel, "/investigate fct_revenue")
    assert result == {"ok": True, "error": None}
    got = receiver.requests[0]
    assert got.signature_valid
    assert got.headers["content-type"] == "application/x-www-form-urlencoded"
    form = got.json()
    assert (form["command"], form["text"], form["user_id"], form["channel_id"]) == (
        "/investigate", "fct_revenue", NON_APPROVER_USER_ID, channel)
    assert form["trigger_id"] and form["response_url"].startswith(running.url)
    seen = running.workspace.channel_messages(channel, NON_APPROVER_USER_ID)
    assert [(m["text"], m["ephemeral"]) for m in seen] == [("On it.", True)]
    # later, the app answers in the channel through the response URL
    request = urllib.request.Request(
        form["response_url"], data=json.dumps({"response_type": "in_channel",
                                                "text": "Investigation started"}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        assert json.loads(response.read())["ok"] is True
    history = client.conversations_history(channel=channel)["messages"]
    assert [m["text"] for m in history] == ["Investigation started"]


def test_a_command_nobody_answers_tells_the_person(running, client) -> None:
    running.set_request_url(None)
    channel = channel_id(client, "data-finance")
    result = running.actions.post(APPROVER_USER_ID, channel, "/investigate orders")
    assert result["ok"] is False
    notice = running.workspace.channel_messages(channel, APPROVER_USER_ID)[-1]
    assert notice["ephemeral"] and "/investigate failed with the error" in notice["text"]
    running.actions.post(APPROVER_USER_ID, channel, "/deploy now")
    assert "is not a valid command" in \
        running.workspace.channel_messages(channel, APPROVER_USER_ID)[-1]["text"]


def test_button_click_sends_block_actions_and_the_app_opens_a_modal(running, client: WebClient,
                                                                    receiver) -> None:
    channel = channel_id(client, "data-commerce")
    card = client.chat_postMessage(channel=channel, text="issue", blocks=CARD)
    modal = {"type": "modal", "callback_id": "confirm_pr",
             "title": {"type": "plain_text", "text": "Create PR"},
             "submit": {"type": "plain_text", "text": "Create"},
             "blocks": [{"type": "input", "block_id": "reason",
                         "label": {"type": "plain_text", "text": "Reason"},
                         "element": {"type": "plain_text_input", "action_id": "value"}}]}

    def answer(received, n):
        payload = received.json()
        if payload["type"] == "block_actions":
            client.views_open(trigger_id=payload["trigger_id"], view=modal)
            return 200, b"", "text/plain", 0.0
        value = payload["view"]["state"]["values"]["reason"]["value"]["value"]
        if not value:
            body = {"response_action": "errors", "errors": {"reason": "Say why"}}
            return 200, json.dumps(body).encode(), "application/json", 0.0
        return 200, b"", "text/plain", 0.0

    receiver.answer = answer
    reply = running.actions.click(APPROVER_USER_ID, "create_pr", "card", channel_id=channel,
                                  ts=card["ts"])
    assert reply.ok
    payload = receiver.requests[0].json()
    assert receiver.requests[0].signature_valid
    assert payload["type"] == "block_actions"
    assert payload["actions"][0] | {"action_ts": None} == {
        "action_id": "create_pr", "block_id": "card", "type": "button", "style": "primary",
        "value": "ISS-7", "text": {"type": "plain_text", "text": "Create PR"}, "action_ts": None}
    assert payload["container"] == {"type": "message", "message_ts": card["ts"],
                                    "channel_id": channel, "is_ephemeral": False}
    assert payload["user"]["id"] == APPROVER_USER_ID
    view = running.workspace.open_views(APPROVER_USER_ID)[0]
    assert view["callback_id"] == "confirm_pr"

    refused = running.actions.submit_view(APPROVER_USER_ID, view["id"], {"reason": {"value": ""}})
    assert refused == {"ok": False, "errors": {"reason": "Say why"}}
    assert running.workspace.open_views(APPROVER_USER_ID)
    done = running.actions.submit_view(APPROVER_USER_ID, view["id"],
                                       {"reason": {"value": "fix the join"}})
    assert done == {"ok": True}
    assert running.workspace.open_views(APPROVER_USER_ID) == []
    submitted = receiver.requests[-1].json()
    assert submitted["type"] == "view_submission"
    assert submitted["view"]["state"]["values"]["reason"]["value"] == {
        "type": "plain_text_input", "value": "fix the join"}


def test_response_url_can_replace_the_clicked_message(running, client, receiver) -> None:
    channel = channel_id(client, "data-commerce")
    card = client.chat_postMessage(channel=channel, text="issue", blocks=CARD)
    running.actions.click(NON_APPROVER_USER_ID, "create_pr", None, channel_id=channel,
                          ts=card["ts"])
    url = receiver.requests[0].json()["response_url"]
    body = json.dumps({"replace_original": True, "text": "PR requested"}).encode()
    with urllib.request.urlopen(urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"})) as response:
        assert response.status == 200
    message = client.conversations_history(channel=channel)["messages"][0]
    assert message["text"] == "PR requested" and message["ts"] == card["ts"]


def test_a_running_bot_can_register_its_request_url_with_the_app_token(running,
                                                                     isolated_home) -> None:
    secret = running.credentials.signing_secret.get_secret_value()
    app = Receiver(secret)
    try:
        def register(token: str) -> dict:
            request = urllib.request.Request(
                running.url + "admin/request_url", data=f"url={app.url}".encode(),
                headers={"Authorization": f"Bearer {token}",
                         "Content-Type": "application/x-www-form-urlencoded"})
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read())

        bot_token = running.credentials.bot_token.get_secret_value()
        assert register(bot_token) == {"ok": False, "error": "invalid_auth"}
        assert register(running.credentials.app_token.get_secret_value()) == {
            "ok": True, "request_url": app.url}
        assert load_credentials(isolated_home).request_url == app.url
    finally:
        app.stop()

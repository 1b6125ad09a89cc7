"""The page: HTML with stable test ids, its JSON state (long-polled), and a person's actions."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from bot.slack.workspace import APPROVER_USER_ID, NON_APPROVER_USER_ID
from tests.slack.conftest import channel_id, wait_for


def get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers["Content-Type"], response.read().decode()


def ui(running, action: str, **data: Any) -> dict[str, Any]:
    request = urllib.request.Request(f"{running.url}ui/{action}", data=json.dumps(data).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def test_the_page_and_its_assets_are_served_offline(running) -> None:
    kind, html = get(running.url)
    assert kind.startswith("text/html")
    for testid in ("user-select", "channels", "messages", "message-input", "send-button",
                   "thread-panel", "modal", "deliveries"):
        assert f'data-testid="{testid}"' in html
    assert "http" not in html.replace("http-equiv", "")  # nothing from a CDN
    kind, script = get(running.url + "static/page.js")
    assert kind.startswith("text/javascript") and "data-testid" in script
    assert get(running.url + "static/page.css")[0].startswith("text/css")
    try:
        get(running.url + "static/../state.py")
        raise AssertionError("a path outside static/ was served")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404


def test_state_shows_the_channel_as_the_chosen_person_sees_it(running, client) -> None:
    channel = channel_id(client, "data-finance")
    client.chat_postMessage(channel=channel, text="card")
    client.chat_postEphemeral(channel=channel, user=NON_APPROVER_USER_ID, text="just for Sam")
    _, body = get(f"{running.url}ui/state?user={NON_APPROVER_USER_ID}&channel={channel}")
    state = json.loads(body)
    assert state["me"] == NON_APPROVER_USER_ID and state["channel"] == channel
    assert [(m["text"], m["ephemeral"]) for m in state["messages"]] == [
        ("card", False), ("just for Sam", True)]
    assert {c["name"] for c in state["channels"]} >= {"data-alerts", "data-finance"}
    default = json.loads(get(f"{running.url}ui/state")[1])
    assert default["me"] == APPROVER_USER_ID
    assert default["channel"] == channel_id(client, "data-alerts")


def test_a_long_poll_returns_when_something_changes(running, client) -> None:
    version = json.loads(get(f"{running.url}ui/state")[1])["version"]
    answer: list[dict[str, Any]] = []
    poll = threading.Thread(target=lambda: answer.append(json.loads(
        get(f"{running.url}ui/state?since={version}")[1])))
    poll.start()
    client.chat_postMessage(channel="#data-alerts", text="news")
    poll.join(timeout=30)
    assert answer and answer[0]["version"] > version
    assert [m["text"] for m in answer[0]["messages"]] == ["news"]


def test_page_actions_post_react_and_reply_in_a_thread(running, client, receiver) -> None:
    channel = channel_id(client, "data-alerts")
    posted = ui(running, "message", user=APPROVER_USER_ID, channel=channel,
                text="@sleuth look at #data-finance please")
    ts = posted["result"]["ts"]
    reply = ui(running, "message", user=NON_APPROVER_USER_ID, channel=channel, text="+1",
               thread_ts=ts)
    assert reply["result"]["thread_ts"] == ts
    assert ui(running, "reaction", user=APPROVER_USER_ID, channel=channel, ts=ts,
              name="mag")["result"] is True
    message = client.conversations_history(channel=channel)["messages"][0]
    finance = channel_id(client, "data-finance")
    assert message["text"] == (f"<@{running.credentials.bot_user_id}> look at "
                               f"<#{finance}|data-finance> please")
    assert message["reply_count"] == 1
    assert message["reactions"][0]["name"] == "mag"
    wait_for(lambda: len(receiver.requests) >= 2, "two events")
    kinds = sorted(r.json()["event"]["type"] for r in receiver.requests)
    assert kinds == ["app_mention", "reaction_added"]
    # a second click on the same reaction takes it back
    assert ui(running, "reaction", user=APPROVER_USER_ID, channel=channel, ts=ts,
              name="mag")["result"] is False


def test_page_actions_report_mistakes_without_a_traceback(running, client) -> None:
    channel = channel_id(client, "data-alerts")
    bad = ui(running, "message", user="U0BOT", channel=channel, text="hi")
    assert bad["ok"] is False and "no person" in bad["error"]
    missing = ui(running, "click", user=APPROVER_USER_ID, action_id="nope", channel=channel,
                 ts="1.0")
    assert missing["ok"] is False and "no message" in missing["error"]

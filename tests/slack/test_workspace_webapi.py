"""The real slack_sdk WebClient against the local workspace's Web API."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import load_settings
from bot.slack.workspace import (
    APPROVER_GROUP_ID,
    APPROVER_USER_ID,
    NON_APPROVER_USER_ID,
    start_workspace,
)
from bot.slack.workspace.credentials import load_credentials
from bot.slack.workspace.ratelimit import RateLimiter
from bot.slack.workspace.server import BOT_EVENTS, COMMANDS
from bot.slack.workspace.state import TEAM_ID
from tests.conftest import REPO_ROOT
from tests.slack.conftest import channel_id

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*orders* failed"},
           "accessory": {"type": "button", "action_id": "investigate",
                         "text": {"type": "plain_text", "text": "Investigate"},
                         "style": "primary", "value": "ISS-1"}}


def error_of(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value


def test_auth_test_names_the_bot_and_the_workspace_url(running, client: WebClient) -> None:
    found = client.auth_test()
    assert found["user_id"] == running.credentials.bot_user_id
    assert found["bot_id"].startswith("B")
    assert found["url"] == running.url


def test_credentials_file_holds_what_the_bot_needs(running, isolated_home: Path) -> None:
    creds = load_credentials(isolated_home)
    assert creds.bot_token.get_secret_value().startswith("xoxb-")
    assert creds.app_token.get_secret_value().startswith("xapp-")
    assert creds.api_url == running.api_url and creds.api_url.endswith("/")
    mode = (isolated_home / "workspace" / "credentials.json").stat().st_mode & 0o777
    assert mode == 0o600
    assert creds.bot_token.get_secret_value() not in repr(creds)


def test_demo_channels_and_people(client: WebClient) -> None:
    names = {c["name"] for c in client.conversations_list()["channels"]}
    assert {"data-alerts", "data-commerce", "data-marketing", "data-finance"} <= names
    approver = client.users_info(user=APPROVER_USER_ID)["user"]
    assert "approver" in approver["profile"]["title"]
    other = client.users_info(user=NON_APPROVER_USER_ID)["user"]
    assert "approver" not in other["profile"]["title"]
    assert error_of(lambda: client.users_info(user="UNOBODY")).response["error"] == "user_not_found"


def test_post_update_and_read_back(client: WebClient) -> None:
    posted = client.chat_postMessage(channel="#data-finance", text="fallback", blocks=[SECTION])
    channel = posted["channel"]
    assert channel == channel_id(client, "data-finance")
    client.chat_update(channel=channel, ts=posted["ts"], text="updated")
    history = client.conversations_history(channel=channel)["messages"]
    assert history[0]["ts"] == posted["ts"]
    assert history[0]["text"] == "updated"
    assert history[0]["blocks"][0]["accessory"]["action_id"] == "investigate"  # blocks kept
    assert "edited" in history[0]
    client.chat_update(channel=channel, ts=posted["ts"], text="no blocks", blocks=[])
    assert "blocks" not in client.conversations_history(channel=channel)["messages"][0]


def test_a_channel_named_by_the_bot_is_created_but_an_unknown_id_is_not(client) -> None:
    client.chat_postMessage(channel="#data-platform", text="hello")
    assert "data-platform" in {c["name"] for c in client.conversations_list()["channels"]}
    err = error_of(lambda: client.chat_postMessage(channel="C0NOSUCH00", text="x"))
    assert err.response["error"] == "channel_not_found"


def test_thread_replies_come_after_their_parent(client: WebClient) -> None:
    channel = channel_id(client, "data-alerts")
    parent = client.chat_postMessage(channel=channel, text="issue card")
    first = client.chat_postMessage(channel=channel, text="step 1", thread_ts=parent["ts"])
    # a reply to a reply joins the parent's thread
    client.chat_postMessage(channel=channel, text="step 2", thread_ts=first["ts"])
    replies = client.conversations_replies(channel=channel, ts=parent["ts"])["messages"]
    assert [m["text"] for m in replies] == ["issue card", "step 1", "step 2"]
    assert all(m["thread_ts"] == parent["ts"] for m in replies)
    history = client.conversations_history(channel=channel)["messages"]
    assert [m["text"] for m in history] == ["issue card"]
    assert history[0]["reply_count"] == 2


def test_history_pages_with_a_cursor(client: WebClient) -> None:
    channel = channel_id(client, "data-marketing")
    for i in range(5):
        client.chat_postMessage(channel=channel, text=f"m{i}")
    first = client.conversations_history(channel=channel, limit=3)
    assert first["has_more"] is True
    rest = client.conversations_history(channel=channel, limit=3,
                                        cursor=first["response_metadata"]["next_cursor"])
    texts = [m["text"] for m in first["messages"]] + [m["text"] for m in rest["messages"]]
    assert texts == ["m4", "m3", "m2", "m1", "m0"]
    assert rest["has_more"] is False


def test_reactions_add_and_remove(client: WebClient) -> None:
    channel = channel_id(client, "data-alerts")
    posted = client.chat_postMessage(channel=channel, text="report")
    client.reactions_add(channel=channel, timestamp=posted["ts"], name="eyes")
    err = error_of(lambda: client.reactions_add(channel=channel, timestamp=posted["ts"],
                                                name="eyes"))
    assert err.response["error"] == "already_reacted"
    message = client.conversations_history(channel=channel)["messages"][0]
    assert message["reactions"] == [{"name": "eyes", "users": [message["user"]], "count": 1}]
    client.reactions_remove(channel=channel, timestamp=posted["ts"], name="eyes")
    assert "reactions" not in client.conversations_history(channel=channel)["messages"][0]
    err = error_of(lambda: client.reactions_remove(channel=channel, timestamp=posted["ts"],
                                                   name="eyes"))
    assert err.response["error"] == "no_reaction"


def test_ephemeral_messages_stay_out_of_history(running, client: WebClient) -> None:
    channel = channel_id(client, "data-alerts")
    sent = client.chat_postEphemeral(channel=channel, user=NON_APPROVER_USER_ID,
                                     text="Only approvers can create the PR.")
    assert sent["message_ts"]
    assert client.conversations_history(channel=channel)["messages"] == []
    seen = running.workspace.channel_messages(channel, NON_APPROVER_USER_ID)
    assert [m["text"] for m in seen] == ["Only approvers can create the PR."]
    assert running.workspace.channel_messages(channel, APPROVER_USER_ID) == []


def test_delete_leaves_a_tombstone_only_when_there_are_replies(client: WebClient) -> None:
    channel = channel_id(client, "data-alerts")
    lone = client.chat_postMessage(channel=channel, text="lone")
    parent = client.chat_postMessage(channel=channel, text="parent")
    client.chat_postMessage(channel=channel, text="reply", thread_ts=parent["ts"])
    client.chat_delete(channel=channel, ts=lone["ts"])
    client.chat_delete(channel=channel, ts=parent["ts"])
    history = client.conversations_history(channel=channel)["messages"]
    assert [(m["ts"], m.get("subtype")) for m in history] == [(parent["ts"], "tombstone")]


def test_streaming_builds_one_reply_and_refuses_appends_after_stop(client: WebClient) -> None:
    channel = channel_id(client, "data-commerce")
    parent = client.chat_postMessage(channel=channel, text="issue")
    stream = client.chat_startStream(channel=channel, thread_ts=parent["ts"],
                                     markdown_text="Checking ", recipient_team_id=TEAM_ID,
                                     recipient_user_id=APPROVER_USER_ID)
    client.chat_appendStream(channel=channel, ts=stream["ts"], markdown_text="**orders**",
                             chunks=[{"type": "task_update", "id": "t1", "title": "Read logs",
                                      "status": "in_progress"}])
    stopped = client.chat_stopStream(channel=channel, ts=stream["ts"], markdown_text=".",
                                     blocks=[{"type": "divider"}])
    assert stopped["message"]["text"] == "Checking **orders**."
    assert stopped["message"]["blocks"][0]["type"] == "divider"
    err = error_of(lambda: client.chat_appendStream(channel=channel, ts=stream["ts"],
                                                    markdown_text="late"))
    assert err.response["error"] == "message_not_in_streaming_state"
    replies = client.conversations_replies(channel=channel, ts=parent["ts"])["messages"]
    assert [m["ts"] for m in replies] == [parent["ts"], stream["ts"]]


def test_chat_stream_helper_of_slack_sdk_works(client: WebClient) -> None:
    channel = channel_id(client, "data-commerce")
    parent = client.chat_postMessage(channel=channel, text="question")
    streamer = client.chat_stream(channel=channel, thread_ts=parent["ts"], buffer_size=5,
                                  recipient_team_id=TEAM_ID,
                                  recipient_user_id=APPROVER_USER_ID)
    for word in ("The ", "join ", "fans ", "out."):
        streamer.append(markdown_text=word)
    streamer.stop()
    replies = client.conversations_replies(channel=channel, ts=parent["ts"])["messages"]
    assert replies[-1]["text"] == "The join fans out."


def test_a_channel_stream_needs_its_recipient_and_a_dm_stream_does_not(client: WebClient) -> None:
    channel = channel_id(client, "data-commerce")
    parent = client.chat_postMessage(channel=channel, text="issue")
    for given, missing in (({}, "missing_recipient_team_id"),
                           ({"recipient_team_id": TEAM_ID}, "missing_recipient_user_id"),
                           ({"recipient_user_id": APPROVER_USER_ID}, "missing_recipient_team_id")):
        err = error_of(lambda given=given: client.chat_startStream(
            channel=channel, thread_ts=parent["ts"], markdown_text="x", **given))
        assert err.response["error"] == missing
    replies = client.conversations_replies(channel=channel, ts=parent["ts"])["messages"]
    assert [m["ts"] for m in replies] == [parent["ts"]]  # nothing was posted
    dm = client.conversations_open(users=APPROVER_USER_ID)["channel"]["id"]
    question = client.chat_postMessage(channel=dm, text="question")
    assert client.chat_startStream(channel=dm, thread_ts=question["ts"], markdown_text="ok")["ts"]


def test_usergroups_users_list_names_the_approvers(running, client: WebClient) -> None:
    found = client.usergroups_users_list(usergroup=APPROVER_GROUP_ID)
    assert found["users"] == [APPROVER_USER_ID]
    assert APPROVER_GROUP_ID.startswith("S")
    err = error_of(lambda: client.usergroups_users_list(usergroup="S0NOSUCH01"))
    assert err.response["error"] == "no_such_subteam"
    app = WebClient(token=running.credentials.app_token.get_secret_value(),
                    base_url=running.api_url)
    err = error_of(lambda: app.usergroups_users_list(usergroup=APPROVER_GROUP_ID))
    assert err.response["error"] == "not_allowed_token_type"


def test_file_upload_v2_shows_the_file_in_the_thread(running, client: WebClient) -> None:
    channel = channel_id(client, "data-finance")
    parent = client.chat_postMessage(channel=channel, text="report")
    uploaded = client.files_upload_v2(channel=channel, thread_ts=parent["ts"],
                                      content="# Case file\nsteps…", filename="case.md",
                                      title="Case file ISS-1", initial_comment="The case file")
    file_id = uploaded["file"]["id"]
    reply = client.conversations_replies(channel=channel, ts=parent["ts"])["messages"][-1]
    assert reply["text"] == "The case file"
    assert reply["files"][0]["id"] == file_id
    assert reply["files"][0]["title"] == "Case file ISS-1"
    with urllib.request.urlopen(reply["files"][0]["url_private"]) as response:
        assert response.read().decode() == "# Case file\nsteps…"


def test_complete_upload_refuses_a_file_never_uploaded(client: WebClient) -> None:
    started = client.files_getUploadURLExternal(filename="x.txt", length=3)
    err = error_of(lambda: client.files_completeUploadExternal(
        files=[{"id": started["file_id"], "title": "x"}], channel_id="#data-alerts"))
    assert err.response["error"] == "file_upload_not_completed"


def test_views_need_a_fresh_trigger_and_update_by_id(running, client: WebClient) -> None:
    view = {"type": "modal", "callback_id": "approve", "title": {"type": "plain_text",
            "text": "Approve PR"}, "submit": {"type": "plain_text", "text": "Approve"},
            "blocks": [{"type": "input", "block_id": "why", "label": {"type": "plain_text",
                        "text": "Why"}, "element": {"type": "plain_text_input",
                                                    "action_id": "text"}}]}
    err = error_of(lambda: client.views_open(trigger_id="12.34.made-up", view=view))
    assert err.response["error"] == "invalid_trigger_id"
    trigger = running.actions.handles.new_trigger(APPROVER_USER_ID)
    opened = client.views_open(trigger_id=trigger, view=view)["view"]
    assert running.workspace.open_views(APPROVER_USER_ID)[0]["id"] == opened["id"]
    changed = {**view, "title": {"type": "plain_text", "text": "Approved"}}
    updated = client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])
    assert updated["view"]["title"]["text"] == "Approved"
    stale = error_of(lambda: client.views_update(view_id=opened["id"], view=changed,
                                                 hash=opened["hash"]))
    assert stale.response["error"] == "hash_conflict"
    too_long = {**view, "title": {"type": "plain_text", "text": "x" * 30}}
    err = error_of(lambda: client.views_open(
        trigger_id=running.actions.handles.new_trigger(APPROVER_USER_ID), view=too_long))
    assert err.response["error"] == "invalid_arguments"


def test_invalid_auth_and_wrong_token_type(running) -> None:
    bad = WebClient(token="xoxb-not-the-token", base_url=running.api_url)
    assert error_of(bad.auth_test).response["error"] == "invalid_auth"
    app = WebClient(token=running.credentials.app_token.get_secret_value(),
                    base_url=running.api_url)
    assert error_of(app.auth_test).response["error"] == "not_allowed_token_type"
    bot = running.credentials.bot_token.get_secret_value()
    err = error_of(lambda: WebClient(base_url=running.api_url).apps_connections_open(
        app_token=bot))
    assert err.response["error"] == "not_allowed_token_type"


def test_invalid_blocks_name_the_reason_like_slack(client: WebClient) -> None:
    too_many = [{"type": "divider"}] * 51
    err = error_of(lambda: client.chat_postMessage(channel="#data-alerts", text="x",
                                                   blocks=too_many))
    assert err.response["error"] == "invalid_blocks"
    assert "no more than 50 items allowed" in err.response["response_metadata"]["messages"][0]
    client.chat_postMessage(channel="#data-alerts", text="x", blocks=too_many[:50])
    long_button = {"type": "actions", "elements": [{"type": "button", "action_id": "a",
                                                    "text": {"type": "plain_text",
                                                             "text": "b" * 80}}]}
    err = error_of(lambda: client.chat_postMessage(channel="#data-alerts", text="x",
                                                   blocks=[SECTION, long_button]))
    messages = err.response["response_metadata"]["messages"]
    assert messages == [("[ERROR] text attribute cannot exceed 75 characters "
                         "[json-pointer:/blocks/1]")]
    err = error_of(lambda: client.chat_postMessage(channel="#data-alerts", text="x",
                                                   blocks=[{"type": "sparkles"}]))
    assert err.response["error"] == "invalid_blocks"


@pytest.mark.filterwarnings("ignore::UserWarning")  # slack_sdk warns about the missing text
def test_text_limits(client: WebClient) -> None:
    err = error_of(lambda: client.chat_postMessage(channel="#data-alerts", text="x" * 40_001))
    assert err.response["error"] == "msg_too_long"
    assert error_of(lambda: client.chat_postMessage(channel="#data-alerts")
                    ).response["error"] == "no_text"


def test_post_message_is_rate_limited_per_channel_with_retry_after(isolated_home: Path) -> None:
    running = start_workspace(isolated_home, rate_limit=RateLimiter(per_second=0.2, burst=2))
    try:
        client = WebClient(token=running.credentials.bot_token.get_secret_value(),
                           base_url=running.api_url)
        client.chat_postMessage(channel="#data-alerts", text="1")
        client.chat_postMessage(channel="#data-alerts", text="2")
        err = error_of(lambda: client.chat_postMessage(channel="#data-alerts", text="3"))
        assert err.response.status_code == 429
        assert err.response["error"] == "ratelimited"
        assert int(err.response.headers["Retry-After"]) >= 1
        client.chat_postMessage(channel="#data-finance", text="another channel is fine")
    finally:
        running.stop()


def test_form_posts_and_json_posts_are_both_accepted(running) -> None:
    token = running.credentials.bot_token.get_secret_value()
    blocks = json.dumps([{"type": "divider"}])
    form = f"channel=%23data-alerts&text=form&blocks={urllib.request.quote(blocks)}".encode()
    for body, kind in ((form, "application/x-www-form-urlencoded"),
                       (json.dumps({"channel": "#data-alerts", "text": "json"}).encode(),
                        "application/json; charset=utf-8")):
        request = urllib.request.Request(running.api_url + "chat.postMessage", data=body,
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": kind})
        with urllib.request.urlopen(request) as response:
            assert json.loads(response.read())["ok"] is True


def test_history_and_tokens_survive_a_restart(isolated_home: Path) -> None:
    first = start_workspace(isolated_home)
    token = first.credentials.bot_token.get_secret_value()
    WebClient(token=token, base_url=first.api_url).chat_postMessage(channel="#data-alerts",
                                                                    text="before restart")
    first.stop()
    second = start_workspace(isolated_home)
    try:
        assert second.credentials.bot_token.get_secret_value() == token
        client = WebClient(token=token, base_url=second.api_url)
        channel = channel_id(client, "data-alerts")
        after = client.chat_postMessage(channel=channel, text="after restart")
        texts = [m["text"] for m in client.conversations_history(channel=channel)["messages"]]
        assert texts == ["after restart", "before restart"]
        assert float(after["ts"]) > 0
    finally:
        second.stop()


def test_workspace_config_defaults_and_overrides(tmp_path: Path) -> None:
    assert load_settings().workspace.port == 3100
    assert load_settings().workspace.request_url == "http://127.0.0.1:3000/slack/events"
    path = tmp_path / "sleuth.yaml"
    path.write_text("workspace:\n  port: 0\n  request_url: null\n")
    settings = load_settings(path)
    assert settings.workspace.port == 0 and settings.workspace.request_url is None


def test_delivered_events_and_commands_match_the_manifest() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "manifest.yaml").read_text())
    assert sorted(BOT_EVENTS) == sorted(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert COMMANDS == [c["command"] for c in manifest["features"]["slash_commands"]]


def test_the_workspace_command_is_registered() -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(app, ["workspace", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output

"""A real Bolt app, unchanged but for its base URL and tokens, works against the workspace.

Over HTTP (Bolt's own request verification checks our signatures) and over Socket Mode
(Bolt's SocketModeHandler). Skipped where slack-bolt is not installed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.slack.workspace import APPROVER_USER_ID, NON_APPROVER_USER_ID
from tests.slack.conftest import channel_id, wait_for

bolt = pytest.importorskip("slack_bolt")
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient

MODAL = {"type": "modal", "callback_id": "confirm",
         "title": {"type": "plain_text", "text": "Create PR"},
         "submit": {"type": "plain_text", "text": "Create"},
         "blocks": [{"type": "input", "block_id": "why",
                     "label": {"type": "plain_text", "text": "Why"},
                     "element": {"type": "plain_text_input", "action_id": "text"}}]}


def build_app(running) -> Any:
    """A small Bolt app: a mention is answered in its thread, /investigate acks and
    responds, a button opens a modal whose submission is checked."""
    creds = running.credentials
    app = bolt.App(token=creds.bot_token.get_secret_value(),
                   signing_secret=creds.signing_secret.get_secret_value(),
                   client=WebClient(token=creds.bot_token.get_secret_value(),
                                    base_url=creds.api_url))

    @app.event("app_mention")
    def mention(event: dict, say: Any) -> None:
        say(text="Looking into it", thread_ts=event["ts"])

    @app.event("reaction_added")
    def reaction(event: dict, client: WebClient) -> None:
        client.reactions_add(channel=event["item"]["channel"], timestamp=event["item"]["ts"],
                             name="eyes")

    @app.command("/investigate")
    def investigate(ack: Any, command: dict, respond: Any) -> None:
        ack(text=f"Investigating {command['text']}")
        respond(response_type="in_channel", text=f"Started on {command['text']}")

    @app.action("create_pr")
    def create_pr(ack: Any, body: dict, client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @app.view("confirm")
    def confirm(ack: Any, view: dict) -> None:
        if not view["state"]["values"]["why"]["text"]["value"]:
            ack(response_action="errors", errors={"why": "Say why"})
        else:
            ack()

    return app


@pytest.fixture
def bolt_over_http(running) -> Iterator[Any]:
    app = build_app(running)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            response = app.dispatch(BoltRequest(body=body, headers=dict(self.headers)))
            self.send_response(response.status)
            for key, values in response.headers.items():
                for value in values:
                    self.send_header(key, value)
            encoded = response.body.encode()
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    running.set_request_url(f"http://127.0.0.1:{server.server_address[1]}/slack/events")
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()


def exercise(running, client: WebClient) -> None:
    """What a person does; the Bolt app's answers must show up in the workspace."""
    channel = channel_id(client, "data-alerts")
    asked = running.actions.post(APPROVER_USER_ID, channel, "@sleuth what broke?")
    reply = wait_for(lambda: client.conversations_replies(channel=channel, ts=asked["ts"])
                     ["messages"][1:], "the answer in the thread")
    assert reply[0]["text"] == "Looking into it" and reply[0]["bot_id"]

    running.actions.react(APPROVER_USER_ID, channel, asked["ts"], "mag")
    wait_for(lambda: len(client.conversations_history(channel=channel)["messages"][0]
                         .get("reactions", [])) == 2, "the bot's :eyes:")

    assert running.actions.post(NON_APPROVER_USER_ID, channel, "/investigate fct_orders")["ok"]
    mine = running.workspace.channel_messages(channel, NON_APPROVER_USER_ID)
    assert any(m["ephemeral"] and m["text"] == "Investigating fct_orders" for m in mine)
    wait_for(lambda: any(m["text"] == "Started on fct_orders" for m in
                         client.conversations_history(channel=channel)["messages"]),
             "the in-channel response")

    card = client.chat_postMessage(channel=channel, text="card", blocks=[
        {"type": "actions", "elements": [{"type": "button", "action_id": "create_pr",
                                          "text": {"type": "plain_text", "text": "Create PR"}}]}])
    block_id = card["message"]["blocks"][0]["block_id"]
    assert running.actions.click(APPROVER_USER_ID, "create_pr", block_id, channel_id=channel,
                                 ts=card["ts"]).ok
    view = wait_for(lambda: running.workspace.open_views(APPROVER_USER_ID), "the modal")[0]
    assert running.actions.submit_view(APPROVER_USER_ID, view["id"], {}) == {
        "ok": False, "errors": {"why": "Say why"}}
    assert running.actions.submit_view(APPROVER_USER_ID, view["id"],
                                       {"why": {"text": "the join fans out"}}) == {"ok": True}


def test_a_bolt_app_over_http(running, client, bolt_over_http) -> None:
    exercise(running, client)
    assert all(e["via"] == "http" for e in running.delivery.log)
    assert not [e for e in running.delivery.log if e["status"] == "failed"]


def test_a_bolt_app_over_socket_mode(running, client) -> None:
    app = build_app(running)
    handler = SocketModeHandler(app, running.credentials.app_token.get_secret_value())
    handler.connect()
    try:
        wait_for(lambda: running.delivery.hub.connected, "Bolt's socket")
        exercise(running, client)
        assert all(e["via"] == "socket" for e in running.delivery.log)
        assert not [e for e in running.delivery.log if e["status"] == "failed"]
    finally:
        handler.close()

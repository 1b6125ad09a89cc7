"""The real slack_sdk Socket Mode client: apps.connections.open, then envelopes and acks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from bot.slack.workspace import APPROVER_USER_ID
from tests.slack.conftest import channel_id, wait_for

Listener = Callable[[SocketModeClient, SocketModeRequest], None]


@pytest.fixture
def socket_app(running, client: WebClient) -> Iterator[tuple[SocketModeClient, list]]:
    """A connected Socket Mode client that records every request; acks are up to each test."""
    seen: list[SocketModeRequest] = []
    app = SocketModeClient(app_token=running.credentials.app_token.get_secret_value(),
                           web_client=client, auto_reconnect_enabled=False)
    app.socket_mode_request_listeners.append(lambda c, req: seen.append(req))
    app.connect()
    wait_for(lambda: running.delivery.hub.connected, "the socket to connect")
    try:
        yield app, seen
    finally:
        app.close()


def ack_with(payload: dict[str, Any] | None = None) -> Listener:
    def ack(app: SocketModeClient, req: SocketModeRequest) -> None:
        app.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id,
                                                         payload=payload))
    return ack


def test_an_event_arrives_as_an_envelope_and_the_ack_settles_it(running, client,
                                                                 socket_app) -> None:
    app, seen = socket_app
    app.socket_mode_request_listeners.append(ack_with())
    channel = channel_id(client, "data-alerts")
    running.actions.post(APPROVER_USER_ID, channel, "@sleuth what broke?")
    request = wait_for(lambda: seen, "the envelope")[0]
    assert request.type == "events_api"
    assert request.payload["event"]["type"] == "app_mention"
    assert request.payload["event"]["channel"] == channel
    entry = wait_for(lambda: [e for e in running.delivery.log if e["status"] == "delivered"],
                     "the ack")[0]
    assert entry["via"] == "socket" and entry["attempts"] == 1


def test_an_unacked_event_is_sent_again_with_its_retry_attempt(running, client,
                                                               socket_app) -> None:
    app, seen = socket_app

    def ack_the_second(c: SocketModeClient, req: SocketModeRequest) -> None:
        if len(seen) >= 2:
            ack_with()(c, req)

    app.socket_mode_request_listeners.append(ack_the_second)
    running.actions.post(APPROVER_USER_ID, channel_id(client, "data-alerts"), "@sleuth hi")
    first, second = wait_for(lambda: seen[:2] if len(seen) >= 2 else None, "the retry")
    assert first.payload["event_id"] == second.payload["event_id"]
    assert (first.retry_attempt, second.retry_attempt) == (0, 1)
    assert second.retry_reason == "timeout"


def test_a_slash_command_ack_payload_answers_the_person(running, client, socket_app) -> None:
    app, seen = socket_app
    app.socket_mode_request_listeners.append(ack_with({"text": "Investigating fct_orders"}))
    channel = channel_id(client, "data-commerce")
    result = running.actions.post(APPROVER_USER_ID, channel, "/investigate fct_orders")
    assert result["ok"] is True
    assert seen[0].type == "slash_commands"
    assert seen[0].payload["command"] == "/investigate"
    assert seen[0].payload["text"] == "fct_orders"
    reply = running.workspace.channel_messages(channel, APPROVER_USER_ID)[-1]
    assert (reply["text"], reply["ephemeral"]) == ("Investigating fct_orders", True)


def test_a_used_socket_url_cannot_be_used_again(running) -> None:
    app = WebClient(token=running.credentials.app_token.get_secret_value(),
                    base_url=running.api_url)
    url = app.apps_connections_open(app_token=running.credentials.app_token.get_secret_value())
    with connect(url["url"]) as ws:
        assert '"hello"' in ws.recv(timeout=5)
    with connect(url["url"]) as ws, pytest.raises((ConnectionClosed, InvalidStatus)):
        ws.recv(timeout=5)

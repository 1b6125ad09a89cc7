"""Starting the bot (`start_bot`) against the local workspace: what it asks Slack at start."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from bot.config import Secrets, Settings, SlackConfig, StoreConfig
from bot.slack.runtime import start_bot
from bot.slack.workspace import APPROVER_USER_ID, RunningWorkspace
from bot.slack.workspace.webapi import WebApi
from tests.slack.conftest import channel_id, wait_for


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every Web API method the workspace answers, counted on its side: Bolt makes a client of
    its own per request, which a counting client in the test would not see."""
    calls: Counter[str] = Counter()
    call = WebApi.call

    def counted(self: WebApi, method: str, args: dict[str, Any], token: str | None) -> Any:
        calls[method] += 1
        return call(self, method, args, token)

    monkeypatch.setattr(WebApi, "call", counted)
    yield calls


def test_the_bot_asks_auth_test_once_and_answers_requests_without_asking_again(
        running: RunningWorkspace, client: WebClient, engine: Engine, tmp_path: Path,
        api_calls: Counter[str]) -> None:
    creds = running.credentials
    settings = Settings(home=tmp_path, store=StoreConfig(url=str(engine.url)),
                        slack=SlackConfig(port=0, api_url=running.api_url,
                                          auto_investigate=None))
    bot = start_bot(settings, engine, secrets=Secrets(
        slack_bot_token=creds.bot_token, slack_signing_secret=creds.signing_secret))
    try:
        assert api_calls["auth.test"] == 1
        running.set_request_url(bot.url)
        channel = channel_id(client, "data-commerce")
        def answers() -> int:
            return len([m for m in running.workspace.channel_messages(channel, APPROVER_USER_ID)
                        if "There is no issue #999." in m["text"]])

        for n in (1, 2):  # Bolt's own authorization would ask at the first request
            assert running.actions.post(APPROVER_USER_ID, channel, "/investigate #999")["ok"]
            wait_for(lambda n=n: answers() == n, "the bot's answer to /investigate")
        assert api_calls["auth.test"] == 1
        assert bot.bot.user_id == client.auth_test()["user_id"]
    finally:
        bot.stop()

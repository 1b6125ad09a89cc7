"""The bot in this process against a local workspace, over the demo platform.

The bot gets the workspace's tokens the way it gets Slack's (SLACK_BOT_TOKEN, the signing
secret, `slack.api_url`), so these tests run the code path a real workspace uses; the
workspace is then pointed at the bot's Request URL, as one types it in Slack's app settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from bot.config import DemoConfig, Secrets, Settings, SlackConfig, StoreConfig
from bot.demo.paths import PlatformPaths
from bot.intake.pipeline import IntakeOutcome
from bot.slack.runtime import RunningBot, on_outcome, start_bot
from bot.slack.workspace import APPROVER_USER_ID, RunningWorkspace, start_workspace
from bot.slack.workspace.ratelimit import RateLimiter
from bot.store import open_store
from tests.conftest import DEMO_DAYS, DEMO_SEED


@dataclass
class Rig:
    settings: Settings
    engine: Engine
    workspace: RunningWorkspace
    bot: RunningBot
    client: WebClient = field(repr=False)  # the bot's token: reads what the bot sees

    def scenario(self, name: str) -> IntakeOutcome:
        """Run a demo scenario, then one intake poll whose outcome goes to Slack (cards, and
        the investigations `slack.auto_investigate` starts)."""
        from bot.demo.platform import run_scenario
        from bot.demo.scenarios import get_scenario
        from bot.intake.runtime import build_poller, reset_intake

        settings = self.settings
        run_scenario(get_scenario(name), paths=settings.demo_platform, days=DEMO_DAYS,
                     seed=DEMO_SEED, cache=settings.home / "demo" / "cache")
        reset_intake(self.engine, settings)
        poller = build_poller(settings, self.engine, on_outcome=on_outcome(self.bot.bot))
        _, outcome = poller.poll_all()
        return outcome

    def channel(self, name: str) -> str:
        found = [c for c in self.client.conversations_list()["channels"] if c["name"] == name]
        assert found, f"no #{name}"
        return found[0]["id"]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        return self.client.conversations_history(channel=channel, limit=200)["messages"]

    def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return self.client.conversations_replies(channel=channel, ts=ts, limit=200)["messages"]

    def stop(self) -> None:
        self.bot.stop(wait=True)
        self.workspace.stop()


def start_rig(paths: PlatformPaths, workdir: Path, **slack: Any) -> Rig:
    """Workspace (its data under `workdir`) + bot (store under `workdir`) over the platform
    at `paths`. `slack`: SlackConfig fields (default: every issue investigated, the
    workspace's approver may approve, a free port)."""
    workspace = start_workspace(workdir, 0, request_url="", retry_delays=(0.0, 0.0, 0.0),
                                ack_timeout=3.0,
                                rate_limit=RateLimiter(per_second=50.0, burst=50))
    creds = workspace.credentials
    url = f"sqlite:///{workdir / 'sleuth.db'}"
    config = {"port": 0, "api_url": creds.api_url, "auto_investigate": "SEV4",
              "approvers": [APPROVER_USER_ID], "update_interval": 0.2, **slack}
    settings = Settings(home=paths.root.parents[1], store=StoreConfig(url=url),
                        demo=DemoConfig(days=DEMO_DAYS, seed=DEMO_SEED),
                        slack=SlackConfig.model_validate(config)).with_defaults()
    secrets = Secrets(slack_bot_token=creds.bot_token,
                      slack_signing_secret=creds.signing_secret)
    engine = open_store(url)
    try:
        bot = start_bot(settings, engine, secrets=secrets)
    except BaseException:
        workspace.stop()
        raise
    workspace.set_request_url(bot.url)
    client = WebClient(token=creds.bot_token.get_secret_value(), base_url=creds.api_url)
    return Rig(settings, engine, workspace, bot, client)

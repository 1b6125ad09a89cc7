"""The Slack app and the local Slack-compatible workspace that stands in for Slack."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from bot.config.base import Duration, _Strict


class WorkspaceConfig(_Strict):
    """The local Slack-compatible workspace (`sleuth workspace`) that stands in for Slack."""

    host: str = Field("127.0.0.1", description="Interface the workspace's page and API listen on.")
    port: int = Field(3100, ge=0, le=65535, description="Its port; 0 picks a free one.")
    request_url: str | None = Field(
        "http://127.0.0.1:3000/slack/events",
        description="Where it sends events, slash commands and interactivity over HTTP "
                    "(Bolt's default port and the manifest's path); a Socket Mode "
                    "connection takes precedence.",
    )


class SlackConfig(_Strict):
    """The Slack app (`sleuth run`): how Slack reaches it, who may approve, what it posts.

    Tokens come from the environment (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN
    for Socket Mode); without SLACK_BOT_TOKEN the bot talks to the local workspace
    (`sleuth workspace`) with the credentials it wrote under the data directory.
    """

    mode: Literal["http", "socket"] = Field(
        "http", description="`http`: Slack posts to the Request URL below; `socket`: the bot "
                            "connects out over Socket Mode (SLACK_APP_TOKEN), no public URL.")
    host: str = Field("127.0.0.1", description="Interface the HTTP endpoint listens on.")
    port: int = Field(3000, ge=0, le=65535, description="Its port; 0 picks a free one.")
    path: str = Field("/slack/events", description="Path of events, commands and clicks "
                                                   "(the manifest's Request URLs).")
    api_url: str | None = Field(
        None, description="Slack's Web API base URL; default Slack's own with a token, the "
                          "local workspace's without.")
    approvers: list[str] = Field(
        default_factory=list, description="User ids (U…) allowed to confirm Create PR.")
    approver_group: str | None = Field(
        None, description="A user group id (S…) whose members may confirm Create PR "
                          "(needs usergroups:read).")
    auto_investigate: Literal["SEV1", "SEV2", "SEV3", "SEV4"] | None = Field(
        "SEV2", description="New issues this severe or worse are investigated at once; "
                            "null: only on request (the Investigate button).")
    trace: Literal["auto", "stream", "update"] = Field(
        "auto", description="How the live trace reaches the thread: Slack's streaming "
                            "messages (`stream`), one message edited in place (`update`), or "
                            "streaming when someone asked for the investigation (`auto`).")
    update_interval: Duration = Field(
        timedelta(seconds=1), description="Least time between two edits of a live message.")
    workers: int = Field(2, ge=1, le=16, description="Investigations that run at once.")

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        return path

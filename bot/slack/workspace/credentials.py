"""The tokens and URLs a bot needs to talk to the local workspace, kept in one file it reads.

Tokens are made on the workspace's first start and kept (the file is readable by its owner
only), so a bot that was started against it keeps working across workspace restarts.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.errors import SleuthError

FILE_NAME = "credentials.json"


class Credentials(BaseModel):
    """What `slack_sdk.WebClient(token=bot_token, base_url=api_url)` and Bolt need."""

    model_config = ConfigDict(frozen=True)

    team_id: str
    app_id: str
    bot_user_id: str
    bot_token: SecretStr = Field(description="xoxb-… for the Web API.")
    app_token: SecretStr = Field(description="xapp-… for apps.connections.open (Socket Mode).")
    signing_secret: SecretStr = Field(description="Signs every request sent to the bot.")
    api_url: str = Field("", description="Web API base URL, with its trailing `/`.")
    page_url: str = Field("", description="The workspace's web page.")
    request_url: str | None = Field(
        None, description="Where events, slash commands and interactivity are sent over HTTP."
    )

    @classmethod
    def generate(cls, *, team_id: str, app_id: str, bot_user_id: str) -> Credentials:
        return cls(team_id=team_id, app_id=app_id, bot_user_id=bot_user_id,
                   bot_token=f"xoxb-{_digits()}-{_digits()}-{secrets.token_urlsafe(18)}",
                   app_token=f"xapp-1-{app_id}-{_digits()}-{secrets.token_hex(24)}",
                   signing_secret=secrets.token_hex(16))

    def to_file(self, path: Path) -> None:
        """Write with the secrets in clear (the bot reads them), owner-readable only."""
        data = self.model_dump(mode="json")
        for key in ("bot_token", "app_token", "signing_secret"):
            data[key] = getattr(self, key).get_secret_value()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
        tmp.replace(path)


def credentials_path(home: Path) -> Path:
    return home / "workspace" / FILE_NAME


def load_credentials(home: Path) -> Credentials:
    """The credentials of the workspace whose data lives under `home`."""
    path = credentials_path(home)
    if not path.is_file():
        raise SleuthError(f"no local Slack workspace credentials at {path}: "
                          "start one with `sleuth workspace`")
    try:
        return Credentials.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise SleuthError(f"{path} is not a workspace credentials file "
                          f"({exc.error_count()} problem(s)); delete it to make new ones") from exc


def _digits() -> str:
    return str(secrets.randbelow(10**12)).zfill(12)

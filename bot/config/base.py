"""What every part of the configuration shares: where it lives, which variables hold
secrets, durations written like `2h`, and strict models (an unknown key is an error)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

CONFIG_ENV = "SLEUTH_CONFIG"
HOME_ENV = "SLEUTH_HOME"
DEFAULT_FILE = "sleuth.yaml"
DEFAULT_HOME = Path("~/.local/share/sleuth")

# Secrets are read from these variables only; they never appear in the file.
SECRET_ENV = {
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "gemini_api_key": "GEMINI_API_KEY",
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "airflow_password": "AIRFLOW_PASSWORD",
}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def _duration(value: Any) -> Any:
    """`2h`, `90m`, `1h30m`, `1d`, `45s` as a timedelta; anything else is left to pydantic
    (seconds as a number, ISO 8601 `PT2H`, `HH:MM:SS`)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            d, h, m, s = (int(g or 0) for g in match.groups())
            return timedelta(days=d, hours=h, minutes=m, seconds=s)
    return value


# A length of time written like `2h`, `90m`, `1h30m`, `45s`, or seconds as a number.
Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

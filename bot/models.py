"""The configured model for each role, with its key from the environment, or None without one
(then the deterministic offline path runs instead: no model, no noise classifier)."""

from __future__ import annotations

from collections.abc import Callable

from agents.models import Message, Provider, make_provider
from bot.config import Secrets, Settings

Role = str  # orchestrator | pr | subagent | classifier


def provider_for(settings: Settings, role: Role, secrets: Secrets | None = None
                 ) -> Provider | None:
    config = getattr(settings.models.roles, role)
    secrets = secrets or Secrets.from_env()
    key = secrets.anthropic_api_key if config.provider == "anthropic" else secrets.gemini_api_key
    if key is None:
        return None
    return make_provider(config, api_key=key.get_secret_value())


def text_completion(provider: Provider) -> Callable[[str, str], str]:
    """`complete(system, user) -> text`, the shape single-shot callers (the classifier) use."""

    def complete(system: str, user: str) -> str:
        return provider.complete(system, [Message.user(user)]).text

    return complete

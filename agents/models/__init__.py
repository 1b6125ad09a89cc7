"""Model providers behind one small protocol: Anthropic, Gemini, and a scripted one.

`make_provider(role_config, api_key=...)` builds the one a role names; the SDKs are imported
only then, so importing the protocol types stays cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from agents.models.config import ModelsConfig, RoleConfig
from agents.models.pricing import PriceTable, Spend, SpendReport
from agents.models.protocol import (
    Completion,
    Message,
    ModelError,
    OpaquePart,
    Provider,
    StopReason,
    TextPart,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from agents.models.scripted import ScriptedCall, ScriptedProvider
from agents.models.structured import structured

__all__ = [
    "Completion", "Message", "ModelError", "ModelsConfig", "OpaquePart", "PriceTable",
    "Provider", "RoleConfig", "ScriptedCall", "ScriptedProvider", "Spend", "SpendReport",
    "StopReason", "TextPart", "ToolCall", "ToolResult", "ToolSpec", "Usage", "make_provider",
    "structured",
]


def make_provider(config: RoleConfig, *, api_key: str | None = None,
                  script: Sequence[Completion | str] | Callable[[ScriptedCall], Completion | str]
                  | None = None, sleep: Callable[[float], None] = time.sleep) -> Provider:
    """The provider `config` names. Keys are passed in (from Secrets), never read here."""
    if config.provider == "scripted":
        if script is None:
            raise ValueError("a scripted provider needs its script")
        return ScriptedProvider(script, model=config.model)
    if not api_key:
        env = "ANTHROPIC_API_KEY" if config.provider == "anthropic" else "GEMINI_API_KEY"
        raise ModelError(config.provider, config.model, "no API key",
                         advice=f"set {env}, or run without keys on the offline policy")
    if config.provider == "anthropic":
        from agents.models.anthropic_provider import AnthropicProvider

        return AnthropicProvider(config, api_key=api_key, sleep=sleep)
    from agents.models.gemini_provider import GeminiProvider

    return GeminiProvider(config, api_key=api_key, sleep=sleep)

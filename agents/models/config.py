"""Which model serves each role, how it is called, and what its tokens cost.

Lives in `agents` (which never imports `bot`); `bot/config/settings.py` hooks it into the
settings file as the `models:` section. A role written partly in the file keeps the defaults
of the keys it leaves out; a price table written in the file adds to the defaults.

Base URLs: with `base_url` unset the SDKs read their own variables, `ANTHROPIC_BASE_URL`
(anthropic) and `GOOGLE_GEMINI_BASE_URL` (google-genai), then use the public endpoints.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProviderName = Literal["anthropic", "gemini", "scripted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleConfig(_Strict):
    """How one role's model is called."""

    provider: ProviderName = Field(description="anthropic, gemini, or scripted (tests, evals).")
    model: str = Field(description="Model id as the provider names it.")
    temperature: float | None = Field(
        1.0, ge=0.0, le=2.0,
        description="Sampling temperature; null leaves the model's default. Near 1 served "
                    "agents better than 0 in tool use. Claude Sonnet/Opus 5.x reject the "
                    "parameter (HTTP 400), so their roles default to null.")
    max_tokens: int = Field(4096, ge=1, description="Most tokens one answer may have.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for one HTTP answer.")
    max_retries: int = Field(
        4, ge=0, le=10,
        description="Retries after a 429, 5xx, 529, timeout or connection error, with "
                    "exponential backoff (Retry-After honoured). Other 4xx fail at once.")
    prompt_cache: bool = Field(
        True, description="Anthropic: ask the API to cache the conversation prefix, so each "
                          "loop step re-reads the earlier ones at the cache-read price.")
    base_url: str | None = Field(
        None, description="API base URL; default the SDK's environment variable, else the "
                          "public endpoint. A local server in tests.")


_ANTHROPIC = {"provider": "anthropic", "model": "claude-sonnet-5-5", "temperature": None,
              "max_tokens": 8192}
_GEMINI = {"provider": "gemini", "model": "gemini-2.5-flash-lite"}
DEFAULT_ROLES: dict[str, dict[str, Any]] = {
    "orchestrator": _ANTHROPIC,
    "pr": _ANTHROPIC,
    "subagent": {**_GEMINI, "max_tokens": 4096},
    "classifier": {**_GEMINI, "max_tokens": 1024, "timeout_s": 30.0},
}


class ModelRoles(_Strict):
    """One model per role; a role given partly keeps its defaults for the other keys."""

    orchestrator: RoleConfig = Field(description="Plans, dispatches subagents, writes the report.")
    pr: RoleConfig = Field(description="Writes the code change of an approved fix.")
    subagent: RoleConfig = Field(description="Data, logs, code and metrics specialists.")
    classifier: RoleConfig = Field(description="The noise filter's cheap yes/no calls.")

    @model_validator(mode="before")
    @classmethod
    def _over_defaults(cls, data: Any) -> Any:
        data = data or {}
        if not isinstance(data, dict):
            return data
        merged = {k: dict(v) for k, v in DEFAULT_ROLES.items()}
        for role, given in data.items():
            if isinstance(given, RoleConfig):
                given = given.model_dump(exclude_unset=True)
            if role in merged and isinstance(given, dict):
                merged[role].update(given)
            else:
                merged[role] = given  # unknown role or bad value: validation reports it
        return merged


class ModelPrice(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float = Field(0.0, ge=0)
    cache_write: float = Field(0.0, ge=0)


# List prices (USD per million tokens) as published by the providers in late 2026; check
# them against the pricing pages and override in `models.prices`. Anthropic cache writes
# are the 5-minute rate; Gemini bills cache storage by the hour instead of writes.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "claude-sonnet-5-5": {"input": 2.0, "output": 10.0, "cache_read": 0.10, "cache_write": 2.50},
    "claude-sonnet-5": {"input": 2.0, "output": 10.0, "cache_read": 0.20, "cache_write": 2.50},
    "claude-sonnet-4-5": {"input": 3.0, "output": 15.0, "cache_read": 0.30, "cache_write": 3.75},
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_read": 0.10, "cache_write": 1.25},
    "gemini-2.5-flash-lite": {"input": 0.10, "output": 0.40, "cache_read": 0.01},
    "gemini-2.5-flash": {"input": 0.30, "output": 2.50, "cache_read": 0.03},
    "gemini-embedding-001": {"input": 0.15, "output": 0.0},
    "offline-policy": {"input": 0.0, "output": 0.0},  # the deterministic playbook costs nothing
}


class ModelsConfig(_Strict):
    """The `models:` section: roles and the price table spend tracking uses."""

    roles: ModelRoles = Field(default_factory=lambda: ModelRoles())
    prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: {k: ModelPrice(**v) for k, v in DEFAULT_PRICES.items()},
        description="USD per million tokens by model id; entries given add to the defaults. "
                    "A model with no price (not even by prefix) costs 0 and logs a warning.")

    @model_validator(mode="before")
    @classmethod
    def _prices_over_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("prices"), dict):
            data = {**data, "prices": {**DEFAULT_PRICES, **data["prices"]}}
        return data

"""Claude through the official `anthropic` SDK (Messages API, non-streaming).

The SDK sends the key as `Authorization: Bearer`. Temperature is no longer an argument of
`messages.create` in SDK 2.x, so it travels in `extra_body`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import anthropic
from anthropic.types import Message as WireMessage

from agents.models.config import RoleConfig
from agents.models.protocol import (
    Completion,
    Message,
    OpaquePart,
    StopReason,
    TextPart,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from agents.models.retry import Failure, Sleep, call_with_retries, http_failure, retry_after

KEY_ENV = "ANTHROPIC_API_KEY"
_STOP: dict[str | None, StopReason] = {
    "end_turn": "end_turn", "stop_sequence": "end_turn", "tool_use": "tool_use",
    "max_tokens": "max_tokens", "model_context_window_exceeded": "max_tokens",
    "refusal": "refusal",
}
_KEPT_BLOCKS = ("thinking", "redacted_thinking")  # must go back unmodified in a tool loop


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, config: RoleConfig, *, api_key: str, sleep: Sleep = time.sleep):
        self.config = config
        self.model = config.model
        self._sleep = sleep
        self._client = anthropic.Anthropic(api_key=api_key, base_url=config.base_url,
                                           timeout=config.timeout_s, max_retries=0)

    def complete(self, system: str, messages: list[Message], tools: Sequence[ToolSpec] = (),
                 *, max_tokens: int | None = None) -> Completion:
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens or self.config.max_tokens,
            "messages": [w for w in (to_wire(m) for m in messages) if w["content"]],
        }
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [{"name": t.name, "description": t.description,
                                 "input_schema": t.input_schema} for t in tools]
        if self.config.prompt_cache:
            request["cache_control"] = {"type": "ephemeral"}
        if self.config.temperature is not None:
            request["extra_body"] = {"temperature": self.config.temperature}

        def attempt() -> tuple[WireMessage, float]:
            start = time.perf_counter()
            reply = self._client.messages.create(**request)
            return reply, (time.perf_counter() - start) * 1000

        reply, latency_ms = call_with_retries(
            attempt, classify=self._classify, provider=self.name, model=self.model,
            max_retries=self.config.max_retries, sleep=self._sleep)
        return from_wire(reply, latency_ms)

    def _classify(self, exc: Exception) -> Failure | None:
        if isinstance(exc, anthropic.APIStatusError):
            return http_failure(exc.status_code, exc.api_message, key_env=KEY_ENV,
                                wait=retry_after(exc.response.headers))
        if isinstance(exc, anthropic.APITimeoutError):
            return Failure(f"no answer within {self.config.timeout_s:g}s", retryable=True,
                           advice="raise this role's timeout_s in models.roles")
        if isinstance(exc, anthropic.APIConnectionError):
            return Failure(f"could not connect to {self._client.base_url}", retryable=True,
                           advice="check the network and this role's base_url")
        if isinstance(exc, anthropic.AnthropicError):
            return Failure(f"unusable answer or setup ({type(exc).__name__}: {exc})")
        return None


def to_wire(message: Message) -> dict[str, Any]:
    """One protocol message as a MessageParam; tool results lead a user turn, as required."""
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, ToolResult):
            blocks.append({"type": "tool_result", "tool_use_id": part.call_id,
                           "content": part.content, "is_error": part.is_error})
    for part in message.content:
        if isinstance(part, OpaquePart) and part.provider == AnthropicProvider.name:
            blocks.append(part.data)
        elif isinstance(part, TextPart) and part.text:  # the API refuses empty text blocks
            blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCall):
            blocks.append({"type": "tool_use", "id": part.id, "name": part.name,
                           "input": part.arguments})
    return {"role": message.role, "content": blocks}


def from_wire(reply: WireMessage, latency_ms: float) -> Completion:
    texts: list[str] = []
    calls: list[ToolCall] = []
    opaque: list[OpaquePart] = []
    for block in reply.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall.parse(block.id, block.name, block.input))
        elif block.type in _KEPT_BLOCKS:
            opaque.append(OpaquePart(provider=AnthropicProvider.name,
                                     data=block.model_dump(mode="json", exclude_none=True)))
    u = reply.usage
    usage = Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                  cache_read_tokens=u.cache_read_input_tokens or 0,
                  cache_write_tokens=u.cache_creation_input_tokens or 0)
    return Completion(text="".join(texts), tool_calls=calls, opaque=opaque, usage=usage,
                      stop_reason=_STOP.get(reply.stop_reason, "other"), model=reply.model,
                      latency_ms=latency_ms)


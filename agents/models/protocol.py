"""The one small protocol every model provider speaks, and the types that cross it.

A conversation is a list of `Message`s whose content is text, tool calls (assistant) and
tool results (user). Providers translate these to and from their wire formats; nothing
above this layer sees an SDK type.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

StopReason = Literal["end_turn", "tool_use", "max_tokens", "refusal", "other"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextPart(_Frozen):
    type: Literal["text"] = "text"
    text: str


class ToolCall(_Frozen):
    """A call the model asked for. When the model's arguments were not a JSON object,
    `error` says what was wrong and `arguments` is empty: the loop answers the call with
    an error result (the model sees its mistake) instead of crashing."""

    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: dict[str, Any] = {}
    error: str | None = None
    signature: str | None = Field(
        None, description="Opaque provider data to send back with the call (Gemini's "
                          "base64 thought signature); never shown to anyone.")

    @classmethod
    def parse(cls, id: str, name: str, raw: Any, **extra: Any) -> ToolCall:  # noqa: A002
        """A call from the model's raw arguments: a string is parsed as JSON, and anything
        that is not a JSON object gives a call with an `error` instead of an exception."""
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                return cls(id=id, name=name, error=f"the arguments are not valid JSON "
                                                   f"({exc}): {raw[:200]!r}", **extra)
        if not isinstance(raw, dict):
            return cls(id=id, name=name, error=f"the arguments must be a JSON object, not "
                                               f"{type(raw).__name__}: {json.dumps(raw)[:200]}",
                       **extra)
        return cls(id=id, name=name, arguments=raw, **extra)


class ToolResult(_Frozen):
    """The answer to one ToolCall; `name` repeats the call's (Gemini matches on it)."""

    type: Literal["tool_result"] = "tool_result"
    call_id: str
    name: str
    content: str
    is_error: bool = False

    @classmethod
    def for_call(cls, call: ToolCall, content: str, *, is_error: bool = False) -> ToolResult:
        return cls(call_id=call.id, name=call.name, content=content, is_error=is_error)


class OpaquePart(_Frozen):
    """Provider state the model must see again in later turns (Anthropic thinking blocks,
    which a tool loop has to send back unmodified). Sent back only to the provider that
    made it; never shown to anyone."""

    type: Literal["opaque"] = "opaque"
    provider: str
    data: dict[str, Any]


Part = Annotated[TextPart | ToolCall | ToolResult | OpaquePart, Field(discriminator="type")]


class Message(_Frozen):
    role: Literal["user", "assistant"]
    content: list[Part]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=[TextPart(text=text)])

    @classmethod
    def results(cls, results: Sequence[ToolResult]) -> Message:
        """The user turn answering every tool call of the previous assistant turn."""
        return cls(role="user", content=list(results))

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


class ToolSpec(_Frozen):
    name: str
    description: str
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments object.")


class Usage(_Frozen):
    """Tokens of one or more calls. `input_tokens` are those billed at the full input price;
    cache reads and writes are counted apart (Gemini's prompt count includes its cached
    tokens, so its provider subtracts them)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total(self) -> int:
        return (self.input_tokens + self.output_tokens + self.cache_read_tokens
                + self.cache_write_tokens)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


class Completion(_Frozen):
    """One model answer. `stop_reason` defaults to tool_use when there are tool calls."""

    text: str = ""
    tool_calls: list[ToolCall] = []
    stop_reason: StopReason = "end_turn"
    opaque: list[OpaquePart] = []
    usage: Usage = Usage()
    model: str = ""
    latency_ms: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _default_stop_reason(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("stop_reason") is None:
            data = {**data, "stop_reason": "tool_use" if data.get("tool_calls") else "end_turn"}
        return data

    def message(self) -> Message:
        """This answer as the assistant turn to append to the conversation."""
        text = [TextPart(text=self.text)] if self.text else []
        return Message(role="assistant", content=[*self.opaque, *text, *self.tool_calls])


@runtime_checkable
class Provider(Protocol):
    """A model behind one role. `name` is the provider (anthropic, gemini, scripted)."""

    name: str
    model: str

    def complete(self, system: str, messages: list[Message], tools: Sequence[ToolSpec] = (),
                 *, max_tokens: int | None = None) -> Completion: ...


class ModelError(Exception):
    """A model call failed for good. The text names the provider, model, HTTP status and
    what to do; it never holds a key."""

    def __init__(self, provider: str, model: str, problem: str, *, status: int | None = None,
                 advice: str = "", attempts: int = 1):
        self.provider, self.model, self.status, self.attempts = provider, model, status, attempts
        where = f"{provider} model {model}"
        http = f" (HTTP {status})" if status is not None else ""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        text = f"{where}: {problem}{http}{tries}"
        super().__init__(f"{text} — {advice}" if advice else text)

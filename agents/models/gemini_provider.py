"""Gemini through the official `google-genai` SDK (Developer API, `v1`, non-streaming).

The SDK sends the key as `x-goog-api-key` and, on this sync path, does not retry unless
asked (no `retry_options`); our retries are the only ones. Automatic function calling is
off: tools are declared as JSON schemas and the agent loop runs them.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx2
import pydantic
from google import genai
from google.genai import errors, types

from agents.models.config import RoleConfig
from agents.models.protocol import (
    Completion,
    Message,
    StopReason,
    TextPart,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from agents.models.retry import Failure, Sleep, call_with_retries, http_failure, retry_after

KEY_ENV = "GEMINI_API_KEY"
API_VERSION = "v1"
# Gemini may return calls without ids; ours carry this prefix and are never sent back.
LOCAL_ID = "local-"
_REFUSED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}
_MALFORMED = {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"}
_CALLED = re.compile(r"([A-Za-z_][\w.-]*)\s*\(")


class GeminiProvider:
    name = "gemini"

    def __init__(self, config: RoleConfig, *, api_key: str, sleep: Sleep = time.sleep):
        self.config = config
        self.model = config.model
        self._sleep = sleep
        self._client = genai.Client(api_key=api_key, http_options=types.HttpOptions(
            base_url=config.base_url, api_version=API_VERSION,
            timeout=int(config.timeout_s * 1000)))  # milliseconds

    def complete(self, system: str, messages: list[Message], tools: Sequence[ToolSpec] = (),
                 *, max_tokens: int | None = None) -> Completion:
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=self.config.temperature,
            max_output_tokens=max_tokens or self.config.max_tokens,
            tools=[types.Tool(function_declarations=[
                types.FunctionDeclaration(name=t.name, description=t.description,
                                          parameters_json_schema=t.input_schema)
                for t in tools])] if tools else None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        contents = [c for c in (to_wire(m) for m in messages) if c.parts]

        def attempt() -> tuple[types.GenerateContentResponse, float]:
            start = time.perf_counter()
            reply = self._client.models.generate_content(
                model=self.model, contents=contents, config=config)
            return reply, (time.perf_counter() - start) * 1000

        reply, latency_ms = call_with_retries(
            attempt, classify=self._classify, provider=self.name, model=self.model,
            max_retries=self.config.max_retries, sleep=self._sleep)
        return from_wire(reply, latency_ms, self.model, [t.name for t in tools])

    def _classify(self, exc: Exception) -> Failure | None:
        if isinstance(exc, errors.APIError):
            body = exc.details if isinstance(exc.details, dict) else {}
            if "API_KEY_INVALID" in str(body) or exc.code == 401:
                return Failure("the API key was refused", exc.code, advice=f"check {KEY_ENV}")
            headers = getattr(exc.response, "headers", None)
            wait = _retry_delay(body) or retry_after(headers)
            return http_failure(exc.code, exc.message, key_env=KEY_ENV, wait=wait)
        if isinstance(exc, httpx2.TimeoutException):
            return Failure(f"no answer within {self.config.timeout_s:g}s", retryable=True,
                           advice="raise this role's timeout_s in models.roles")
        if isinstance(exc, httpx2.TransportError):
            where = self.config.base_url or "the Gemini API"
            return Failure(f"could not connect to {where}", retryable=True,
                           advice="check the network and this role's base_url")
        if isinstance(exc, pydantic.ValidationError):
            return Failure(f"the answer is not a valid Gemini response ({exc.error_count()} "
                           f"problems, first: {exc.errors()[0]['msg']})")
        return None


def to_wire(message: Message) -> types.Content:
    """One protocol message as Gemini Content; function responses lead a user turn."""
    parts: list[types.Part] = []
    for part in message.content:
        if isinstance(part, ToolResult):
            key = "error" if part.is_error else "output"  # the API's documented keys
            parts.append(types.Part(function_response=types.FunctionResponse(
                id=_wire_id(part.call_id), name=part.name, response={key: part.content})))
    for part in message.content:
        if isinstance(part, TextPart) and part.text:
            parts.append(types.Part(text=part.text))
        elif isinstance(part, ToolCall):
            signature = base64.b64decode(part.signature) if part.signature else None
            parts.append(types.Part(
                function_call=types.FunctionCall(id=_wire_id(part.id), name=part.name,
                                                 args=part.arguments),
                thought_signature=signature))
    return types.Content(role="model" if message.role == "assistant" else "user", parts=parts)


def from_wire(reply: types.GenerateContentResponse, latency_ms: float, model: str,
              tool_names: list[str]) -> Completion:
    usage = _usage(reply.usage_metadata)
    model = reply.model_version or model
    if not reply.candidates:  # the prompt itself was blocked
        return Completion(stop_reason="refusal", usage=usage, model=model, latency_ms=latency_ms)
    candidate = reply.candidates[0]
    texts: list[str] = []
    calls: list[ToolCall] = []
    for part in (candidate.content.parts or []) if candidate.content else []:
        if part.function_call:
            call = part.function_call
            signature = (base64.b64encode(part.thought_signature).decode()
                         if part.thought_signature else None)
            calls.append(ToolCall.parse(call.id or _local_id(), call.name or "",
                                        call.args or {}, signature=signature))
        elif part.text and not part.thought:  # thought summaries are not the answer
            texts.append(part.text)
    reason = candidate.finish_reason.value if candidate.finish_reason else None
    if reason in _MALFORMED:
        calls.append(_malformed(candidate.finish_message or reason, tool_names))
    stop: StopReason = ("tool_use" if calls else "max_tokens" if reason == "MAX_TOKENS"
                        else "refusal" if reason in _REFUSED
                        else "end_turn" if reason == "STOP" else "other")
    return Completion(text="".join(texts), tool_calls=calls, stop_reason=stop, usage=usage,
                      model=model, latency_ms=latency_ms)


def _malformed(message: str, tool_names: list[str]) -> ToolCall:
    """Gemini reports a call it could not form as a finish reason, with no call part. Answer
    it as an erroneous call so the model can try again: of the tool its finish message names
    (google-genai 3.4 drops that message), else of the only tool offered, else "unknown"."""
    named = [n.split(".")[-1] for n in _CALLED.findall(message)]
    only = tool_names if len(tool_names) == 1 else []
    name = next((n for n in [*named, *only] if n in tool_names), "unknown")
    return ToolCall(id=_local_id(), name=name,
                    error=f"the call was malformed ({message[:300]}); call the tool again "
                          "with a JSON object of arguments that matches its schema")


def _usage(meta: types.GenerateContentResponseUsageMetadata | None) -> Usage:
    if meta is None:
        return Usage()
    cached = meta.cached_content_token_count or 0
    prompt = (meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0)
    output = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return Usage(input_tokens=max(0, prompt - cached), cache_read_tokens=cached,
                 output_tokens=output)


def _retry_delay(body: dict[str, Any]) -> float | None:
    """The wait of a google.rpc.RetryInfo detail ("37s"), if the error carries one."""
    for detail in (body.get("error") or {}).get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                return None
    return None


def _local_id() -> str:
    return f"{LOCAL_ID}{uuid.uuid4().hex[:12]}"


def _wire_id(call_id: str) -> str | None:
    return None if call_id.startswith(LOCAL_ID) else call_id

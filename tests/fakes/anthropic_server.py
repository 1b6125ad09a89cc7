"""A local server speaking the Anthropic Messages API (`POST /v1/messages`), non-streaming.

    with AnthropicServer(api_key="sk-test") as server:
        server.push(message(tool_use("run_sql", {"sql": "select 1"})), message("done"))
        client = anthropic.Anthropic(api_key="sk-test", base_url=server.url, max_retries=0)

A request whose `Authorization: Bearer` key is not the server's gets the real 401 body.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.fakes.http import Recorded, Reply, ScriptedServer

DEFAULT_MODEL = "claude-sonnet-5-5"
_ids = itertools.count(1)


class AnthropicServer(ScriptedServer):
    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key

    def handle(self, request: Recorded) -> Reply:
        if (request.method, request.path) != ("POST", "/v1/messages"):
            return error(404, "not_found_error", f"Not found: {request.method} {request.path}")
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return error(401, "authentication_error", "invalid x-api-key")
        return self.next_reply(request)

    def exhausted(self, request: Recorded) -> Reply:
        return error(400, "invalid_request_error", "fake server: no scripted reply left")

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the Messages calls received, in order."""
        return [r.body for r in self.requests if r.path == "/v1/messages"]


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value, "citations": None}


def tool_use(name: str, input: Any, id: str | None = None) -> dict[str, Any]:  # noqa: A002
    """A tool_use block; `input` is sent as given, so a test can send a malformed one."""
    return {"type": "tool_use", "id": id or f"toolu_{next(_ids):04d}", "name": name, "input": input}


def message(*content: str | dict[str, Any], stop_reason: str | None = None,
            input_tokens: int = 10, output_tokens: int = 5, cache_read: int = 0,
            cache_write: int = 0, model: str = DEFAULT_MODEL) -> Reply:
    """A Message; stop_reason defaults to tool_use when a tool_use block is present."""
    blocks = [text(c) if isinstance(c, str) else c for c in content]
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return Reply(200, {
        "id": f"msg_{next(_ids):06d}", "type": "message", "role": "assistant", "model": model,
        "content": blocks, "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_creation_input_tokens": cache_write,
                  "cache_read_input_tokens": cache_read},
    }, {"request-id": f"req_{next(_ids):06d}"})


def error(status: int, kind: str, msg: str, headers: dict[str, str] | None = None) -> Reply:
    body = {"type": "error", "error": {"type": kind, "message": msg},
            "request_id": f"req_{next(_ids):06d}"}
    return Reply(status, body, headers or {})


def rate_limited(retry_after: float | None = None, retry_after_ms: float | None = None) -> Reply:
    headers = {}
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    if retry_after_ms is not None:
        headers["retry-after-ms"] = f"{retry_after_ms:g}"
    return error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit",
                 headers)


def overloaded() -> Reply:
    return error(529, "overloaded_error", "Overloaded")


def server_error(status: int = 500) -> Reply:
    return error(status, "api_error", "Internal server error")

"""A local server speaking the Gemini API (generativelanguage), non-streaming.

`POST /{v1,v1beta}/models/{model}:generateContent` serves the queued replies in order;
`:embedContent` and `:batchEmbedContents` always answer with deterministic unit vectors
(same text, same vector) so that embedding code can run against it unscripted.
A request whose `x-goog-api-key` is not the server's gets the real "API key not valid" 400.

    with GeminiServer(api_key="g-test") as server:
        server.push(response(function_call("grep_logs", {"pattern": "ERROR"})), response("ok"))
        client = genai.Client(api_key="g-test", http_options=HttpOptions(base_url=server.url))
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Any

from tests.fakes.http import Recorded, Reply, ScriptedServer

DEFAULT_MODEL = "gemini-2.5-flash-lite"
EMBED_DIM = 768
_ROUTE = re.compile(
    r"^/(v1|v1beta)/models/([^/:]+):(generateContent|embedContent|batchEmbedContents)$")


class GeminiServer(ScriptedServer):
    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key

    def handle(self, request: Recorded) -> Reply:
        match = _ROUTE.match(request.path)
        if request.method != "POST" or not match:
            return error(404, "NOT_FOUND", f"Method not found: {request.path}")
        if self.api_key and request.headers.get("x-goog-api-key") != self.api_key:
            return error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                         details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                   "reason": "API_KEY_INVALID", "domain": "googleapis.com"}])
        method = match.group(3)
        if method == "embedContent":
            return Reply(200, {"embedding": _embed_request(request.body or {})})
        if method == "batchEmbedContents":
            reqs = (request.body or {}).get("requests", [])
            return Reply(200, {"embeddings": [_embed_request(r) for r in reqs]})
        return self.next_reply(request)

    def exhausted(self, request: Recorded) -> Reply:
        return error(400, "INVALID_ARGUMENT", "fake server: no scripted reply left")

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the generateContent calls received, in order."""
        return [r.body for r in self.requests if r.path.endswith(":generateContent")]


def text(value: str) -> dict[str, Any]:
    return {"text": value}


def function_call(name: str, args: Any, id: str | None = None,
                  thought_signature: str | None = None) -> dict[str, Any]:
    """A functionCall part; `args` is sent as given, so a test can send a malformed one."""
    call: dict[str, Any] = {"name": name, "args": args}
    if id is not None:
        call["id"] = id
    part: dict[str, Any] = {"functionCall": call}
    if thought_signature is not None:
        part["thoughtSignature"] = thought_signature
    return part


def response(*parts: str | dict[str, Any], finish_reason: str = "STOP",
             finish_message: str | None = None, prompt_tokens: int = 10,
             candidates_tokens: int = 5, cached_tokens: int = 0, thoughts_tokens: int = 0,
             model_version: str = DEFAULT_MODEL) -> Reply:
    """A GenerateContentResponse with one candidate; promptTokenCount includes cached tokens,
    as the real API counts them."""
    candidate: dict[str, Any] = {
        "content": {"role": "model",
                    "parts": [text(p) if isinstance(p, str) else p for p in parts]},
        "finishReason": finish_reason, "index": 0,
    }
    if finish_message:
        candidate["finishMessage"] = finish_message
    usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": candidates_tokens,
             "totalTokenCount": prompt_tokens + candidates_tokens + thoughts_tokens}
    if cached_tokens:
        usage["cachedContentTokenCount"] = cached_tokens
    if thoughts_tokens:
        usage["thoughtsTokenCount"] = thoughts_tokens
    return Reply(200, {"candidates": [candidate], "usageMetadata": usage,
                       "modelVersion": model_version, "responseId": "resp-fake"})


def error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None,
          headers: dict[str, str] | None = None) -> Reply:
    body: dict[str, Any] = {"error": {"code": code, "message": message, "status": status}}
    if details:
        body["error"]["details"] = details
    return Reply(code, body, headers or {})


def rate_limited(retry_delay_s: float | None = None) -> Reply:
    """A 429 as Gemini sends it: the wait is in a RetryInfo detail, not a header."""
    details = None
    if retry_delay_s is not None:
        details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_delay_s:g}s"}]
    return error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)


def server_error(code: int = 500) -> Reply:
    status = {500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}.get(code, "INTERNAL")
    return error(code, status, "An internal error has occurred.")


def embedding(text_value: str, dim: int = EMBED_DIM) -> list[float]:
    """The vector the server returns for a text: seeded by its SHA-256, unit length."""
    rng = random.Random(hashlib.sha256(text_value.encode()).digest())
    values = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _embed_request(req: dict[str, Any]) -> dict[str, Any]:
    parts = (req.get("content") or {}).get("parts") or []
    joined = "".join(p.get("text", "") for p in parts)
    return {"values": embedding(joined, int(req.get("outputDimensionality") or EMBED_DIM))}

"""Both providers through the real SDKs, against local servers speaking the wire formats."""

from __future__ import annotations

import socket
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from google import genai
from google.genai import types
from pydantic import BaseModel

from agents.models import (
    Message,
    ModelError,
    Provider,
    RoleConfig,
    ToolResult,
    ToolSpec,
    make_provider,
)
from agents.models.config import ModelsConfig
from agents.models.pricing import PriceTable, Spend
from agents.models.structured import structured
from tests.fakes import anthropic_server as A
from tests.fakes import gemini_server as G
from tests.fakes.http import Recorded, Reply, ScriptedServer

ANTHROPIC_KEY = "sk-ant-test-9f3a1c"
GEMINI_KEY = "AIza-test-77c0de"
SQL = ToolSpec(name="run_sql", description="Run a read-only SQL query.",
               input_schema={"type": "object", "properties": {"sql": {"type": "string"}},
                             "required": ["sql"]})
LOGS = ToolSpec(name="grep_logs", description="Search task logs.",
                input_schema={"type": "object", "properties": {"pattern": {"type": "string"}}})


@dataclass
class Kit:
    """One provider, its local server, and how to script and read that server's wire format."""

    name: str
    server: ScriptedServer
    key: str
    sleeps: list[float]
    text: Callable[..., Reply]
    calls: Callable[[list[tuple[str, dict[str, Any], str]]], Reply]
    rate_limited: Callable[[float], Reply]
    server_error: Callable[[], Reply]
    results_sent: Callable[[dict[str, Any]], list[tuple[str | None, str, bool]]]

    def provider(self, key: str | None = None, **role: Any) -> Provider:
        defaults = ModelsConfig().roles.orchestrator if self.name == "anthropic" else \
            ModelsConfig().roles.subagent
        config = RoleConfig(**{**defaults.model_dump(), "base_url": self.server.url,
                               "max_retries": 2, **role})
        return make_provider(config, api_key=key or self.key, sleep=self.sleeps.append)


def _anthropic_results(body: dict[str, Any]) -> list[tuple[str | None, str, bool]]:
    last = body["messages"][-1]
    return [(b["tool_use_id"], b["content"], b["is_error"]) for b in last["content"]
            if b["type"] == "tool_result"]


def _gemini_results(body: dict[str, Any]) -> list[tuple[str | None, str, bool]]:
    out = []
    for part in body["contents"][-1]["parts"]:
        if fr := part.get("functionResponse"):
            is_error = "error" in fr["response"]
            out.append((fr.get("id"), fr["response"]["error" if is_error else "output"], is_error))
    return out


def anthropic_kit_on(server: A.AnthropicServer) -> Kit:
    return Kit("anthropic", server, ANTHROPIC_KEY, [],
               text=A.message,
               calls=lambda cs: A.message(*(A.tool_use(n, a, i) for n, a, i in cs)),
               rate_limited=lambda s: A.rate_limited(retry_after=s),
               server_error=A.server_error, results_sent=_anthropic_results)


def gemini_kit_on(server: G.GeminiServer) -> Kit:
    def text(t: str, input_tokens: int = 10, output_tokens: int = 5, **kw: Any) -> Reply:
        return G.response(t, prompt_tokens=input_tokens, candidates_tokens=output_tokens, **kw)

    return Kit("gemini", server, GEMINI_KEY, [], text=text,
               calls=lambda cs: G.response(*(G.function_call(n, a, i) for n, a, i in cs)),
               rate_limited=lambda s: G.rate_limited(retry_delay_s=s),
               server_error=G.server_error, results_sent=_gemini_results)


@pytest.fixture(params=["anthropic", "gemini"])
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    if request.param == "anthropic":
        with A.AnthropicServer(api_key=ANTHROPIC_KEY) as server:
            yield anthropic_kit_on(server)
    else:
        with G.GeminiServer(api_key=GEMINI_KEY) as server:
            yield gemini_kit_on(server)


@pytest.fixture
def anthropic_kit() -> Iterator[Kit]:
    with A.AnthropicServer(api_key=ANTHROPIC_KEY) as server:
        yield anthropic_kit_on(server)


@pytest.fixture
def gemini_kit() -> Iterator[Kit]:
    with G.GeminiServer(api_key=GEMINI_KEY) as server:
        yield gemini_kit_on(server)


def _no_secret_in(err: BaseException, key: str) -> None:
    assert key not in str(err)
    assert key not in "".join(traceback.format_exception(err))


# ---------------------------------------------------------------- both providers


def test_a_text_answer(kit: Kit) -> None:
    kit.server.push(kit.text("The orders load failed.", input_tokens=120, output_tokens=9))
    done = kit.provider().complete("You investigate.", [Message.user("Why?")])
    assert done.text == "The orders load failed."
    assert done.stop_reason == "end_turn" and done.tool_calls == []
    assert (done.usage.input_tokens, done.usage.output_tokens) == (120, 9)
    assert done.model and done.latency_ms > 0
    assert len(kit.server.requests) == 1


def test_a_tool_loop_sends_the_result_back_under_the_call_id(kit: Kit) -> None:
    kit.server.push(kit.calls([("run_sql", {"sql": "select count(*) from orders"}, "call_1")]),
                    kit.text("Orders doubled after the join."))
    provider = kit.provider()
    messages = [Message.user("Check the orders table.")]
    first = provider.complete("sys", messages, [SQL])
    assert first.stop_reason == "tool_use"
    [call] = first.tool_calls
    assert (call.id, call.name, call.arguments, call.error) == (
        "call_1", "run_sql", {"sql": "select count(*) from orders"}, None)
    messages += [first.message(), Message.results([ToolResult.for_call(call, "2048")])]
    final = provider.complete("sys", messages, [SQL])
    assert final.text == "Orders doubled after the join." and final.stop_reason == "end_turn"
    second = kit.server.requests[-1].body
    assert kit.results_sent(second) == [("call_1", "2048", False)]


def test_parallel_calls_in_one_turn_are_answered_in_one_turn(kit: Kit) -> None:
    kit.server.push(kit.calls([("run_sql", {"sql": "select 1"}, "a"),
                               ("grep_logs", {"pattern": "ERROR"}, "b")]), kit.text("ok"))
    provider = kit.provider()
    messages = [Message.user("Look at both.")]
    first = provider.complete("sys", messages, [SQL, LOGS])
    assert [(c.id, c.name) for c in first.tool_calls] == [("a", "run_sql"), ("b", "grep_logs")]
    results = [ToolResult.for_call(first.tool_calls[0], "1"),
               ToolResult.for_call(first.tool_calls[1], "no such file", is_error=True)]
    provider.complete("sys", [*messages, first.message(), Message.results(results)], [SQL, LOGS])
    assert kit.results_sent(kit.server.requests[-1].body) == [
        ("a", "1", False), ("b", "no such file", True)]


def test_a_429_is_retried_after_the_wait_the_server_asked_for(kit: Kit) -> None:
    kit.server.push(kit.rate_limited(3), kit.text("fine"))
    done = kit.provider().complete("sys", [Message.user("hi")])
    assert done.text == "fine"
    assert kit.sleeps == [3.0]
    assert len(kit.server.requests) == 2


def test_server_errors_exhaust_the_retries_into_a_model_error(kit: Kit) -> None:
    kit.server.push(*(kit.server_error() for _ in range(3)))
    with pytest.raises(ModelError) as caught:
        kit.provider(max_retries=2).complete("sys", [Message.user("hi")])
    err = caught.value
    assert (err.status, err.attempts, err.provider) == (500, 3, kit.name)
    assert "after 3 attempts" in str(err) and "HTTP 500" in str(err)
    assert len(kit.server.requests) == 3
    # exponential backoff with jitter: 0.5–1 s, then 1–2 s
    assert len(kit.sleeps) == 2 and 0.5 <= kit.sleeps[0] <= 1 and 1 <= kit.sleeps[1] <= 2
    _no_secret_in(err, kit.key)


def test_a_refused_key_fails_at_once_and_says_so(kit: Kit) -> None:
    wrong = kit.key + "-revoked"
    with pytest.raises(ModelError) as caught:
        kit.provider(key=wrong).complete("sys", [Message.user("hi")])
    err = caught.value
    assert "the API key was refused" in str(err)
    assert ("ANTHROPIC_API_KEY" if kit.name == "anthropic" else "GEMINI_API_KEY") in str(err)
    assert len(kit.server.requests) == 1 and kit.sleeps == []
    _no_secret_in(err, wrong)


def test_a_timeout_is_retried_then_reported(kit: Kit) -> None:
    def slow(request: Recorded) -> Reply:
        time.sleep(0.5)
        return kit.text("too late")

    kit.server.push(slow, slow)
    with pytest.raises(ModelError) as caught:
        kit.provider(timeout_s=0.1, max_retries=1).complete("sys", [Message.user("hi")])
    assert "no answer within 0.1s" in str(caught.value) and "timeout_s" in str(caught.value)
    assert caught.value.status is None and len(kit.sleeps) == 1


def test_an_unreachable_server_is_a_connection_error(kit: Kit) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(ModelError) as caught:
        kit.provider(base_url=f"http://127.0.0.1:{port}", max_retries=1).complete(
            "sys", [Message.user("hi")])
    assert "could not connect" in str(caught.value) and len(kit.sleeps) == 1


def test_without_base_url_the_sdk_reads_its_own_environment_variable(
        kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    env = "ANTHROPIC_BASE_URL" if kit.name == "anthropic" else "GOOGLE_GEMINI_BASE_URL"
    monkeypatch.setenv(env, kit.server.url)
    kit.server.push(kit.text("via env"))
    assert kit.provider(base_url=None).complete("s", [Message.user("hi")]).text == "via env"


def test_structured_retries_once_with_the_validation_error(kit: Kit) -> None:
    class Verdict(BaseModel):
        noise: bool
        reason: str

    kit.server.push(kit.text('{"noise": "perhaps"}'),
                    kit.text('```json\n{"noise": false, "reason": "a real failure"}\n```'))
    verdict = structured(kit.provider(), "Classify the signal.", "Task failed: OOM", Verdict)
    assert verdict == Verdict(noise=False, reason="a real failure")
    retry = str(kit.server.requests[-1].body)
    assert "reason" in retry and "Field required" in retry  # the model is told what was wrong


def test_spend_of_a_real_call(kit: Kit) -> None:
    kit.server.push(kit.text("x", input_tokens=1_000_000, output_tokens=1_000_000))
    done = kit.provider().complete("sys", [Message.user("hi")])
    spend = Spend(PriceTable(ModelsConfig().prices))
    cost = spend.record(done, step=1, tool="run_sql")
    expected = {"anthropic": 2.0 + 10.0, "gemini": 0.10 + 0.40}[kit.name]
    assert cost == pytest.approx(expected)
    report = spend.report()
    assert report.by_step["1"].cost_usd == pytest.approx(expected)
    assert report.by_tool["run_sql"].cost_usd == pytest.approx(expected)


# ---------------------------------------------------------------- Anthropic wire format


def test_anthropic_request_carries_bearer_key_temperature_and_max_tokens(
        anthropic_kit: Kit) -> None:
    server = anthropic_kit.server
    server.push(A.message("ok"), A.message("ok"))
    anthropic_kit.provider(model="claude-sonnet-4-6", temperature=0.7, max_tokens=300).complete(
        "You investigate.", [Message.user("hi")], [SQL], max_tokens=77)
    request = server.requests[0]
    assert request.path == "/v1/messages"
    assert request.headers["authorization"] == f"Bearer {ANTHROPIC_KEY}"
    assert "x-api-key" not in request.headers
    body = request.body
    assert body["temperature"] == 0.7 and body["max_tokens"] == 77
    assert body["model"] == "claude-sonnet-4-6" and body["system"] == "You investigate."
    assert body["tools"] == [{"name": "run_sql", "description": SQL.description,
                              "input_schema": SQL.input_schema}]
    assert body["cache_control"] == {"type": "ephemeral"}
    # the default orchestrator (Claude Sonnet 5.5) leaves temperature out: the model refuses it
    anthropic_kit.provider().complete("sys", [Message.user("hi")])
    assert "temperature" not in server.requests[1].body
    assert server.requests[1].body["max_tokens"] == 8192


def test_anthropic_a_malformed_tool_input_becomes_an_error_call(anthropic_kit: Kit) -> None:
    server = anthropic_kit.server
    server.push(A.message(A.tool_use("run_sql", '{"sql": "select', id="bad"),
                          A.tool_use("grep_logs", ["ERROR"], id="list")), A.message("sorry"))
    provider = anthropic_kit.provider()
    first = provider.complete("sys", [Message.user("go")], [SQL, LOGS])
    bad, listed = first.tool_calls
    assert bad.arguments == {} and "not valid JSON" in (bad.error or "")
    assert "must be a JSON object, not list" in (listed.error or "")
    results = [ToolResult.for_call(c, c.error or "", is_error=True) for c in first.tool_calls]
    provider.complete("sys", [Message.user("go"), first.message(), Message.results(results)])
    body = server.requests[-1].body
    assert [b["input"] for b in body["messages"][1]["content"]] == [{}, {}]
    assert [(i, e) for i, _, e in _anthropic_results(body)] == [("bad", True), ("list", True)]


def test_anthropic_usage_counts_cache_reads_and_writes(anthropic_kit: Kit) -> None:
    anthropic_kit.server.push(A.message("ok", input_tokens=50, output_tokens=20,
                                        cache_read=4000, cache_write=1000))
    done = anthropic_kit.provider().complete("sys", [Message.user("hi")])
    u = done.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens) == (
        50, 20, 4000, 1000)
    cost = PriceTable(ModelsConfig().prices).cost(u, done.model)
    assert cost == pytest.approx((50 * 2.0 + 20 * 10.0 + 4000 * 0.10 + 1000 * 2.50) / 1e6)


def test_anthropic_overloaded_529_is_retried(anthropic_kit: Kit) -> None:
    anthropic_kit.server.push(A.overloaded(), A.rate_limited(retry_after_ms=1500), A.message("ok"))
    assert anthropic_kit.provider().complete("sys", [Message.user("hi")]).text == "ok"
    assert len(anthropic_kit.sleeps) == 2 and anthropic_kit.sleeps[1] == 1.5


def test_anthropic_a_rejected_temperature_says_which_setting_to_change(anthropic_kit: Kit) -> None:
    anthropic_kit.server.push(A.error(400, "invalid_request_error",
                                      "`temperature` is deprecated for this model."))
    with pytest.raises(ModelError) as caught:
        anthropic_kit.provider(temperature=0.5).complete("sys", [Message.user("hi")])
    assert "HTTP 400" in str(caught.value) and "temperature to null" in str(caught.value)
    assert len(anthropic_kit.server.requests) == 1


def test_anthropic_thinking_blocks_go_back_unmodified(anthropic_kit: Kit) -> None:
    thinking = {"type": "thinking", "thinking": "Check the join first.", "signature": "EqQBCkYI"}
    anthropic_kit.server.push(A.message(thinking, A.tool_use("run_sql", {"sql": "x"}, id="t1")),
                              A.message("done"))
    provider = anthropic_kit.provider()
    first = provider.complete("sys", [Message.user("go")], [SQL])
    results = Message.results([ToolResult.for_call(first.tool_calls[0], "1")])
    provider.complete("sys", [Message.user("go"), first.message(), results], [SQL])
    assistant = anthropic_kit.server.requests[-1].body["messages"][1]
    assert assistant["content"][0] == thinking and assistant["content"][1]["type"] == "tool_use"


# ---------------------------------------------------------------- Gemini wire format


def test_gemini_request_carries_key_version_temperature_and_max_tokens(gemini_kit: Kit) -> None:
    server = gemini_kit.server
    server.push(G.response("ok"))
    gemini_kit.provider(temperature=0.3).complete("Be brief.", [Message.user("hi")], [SQL],
                                                  max_tokens=64)
    request = server.requests[0]
    assert request.path == "/v1/models/gemini-2.5-flash-lite:generateContent"
    assert request.headers["x-goog-api-key"] == GEMINI_KEY
    body = request.body
    assert body["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 64}
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    [declaration] = body["tools"][0]["functionDeclarations"]
    schema = declaration.get("parametersJsonSchema") or declaration.get("parameters_json_schema")
    assert declaration["name"] == "run_sql" and schema == SQL.input_schema


def test_gemini_calls_without_ids_and_thought_signatures_round_trip(gemini_kit: Kit) -> None:
    server = gemini_kit.server
    server.push(G.response(G.function_call("run_sql", {"sql": "select 1"},
                                           thought_signature="c2lnLTE=")), G.response("done"))
    provider = gemini_kit.provider()
    first = provider.complete("sys", [Message.user("go")], [SQL])
    [call] = first.tool_calls
    assert call.id  # made up locally: the API gave none
    results = Message.results([ToolResult.for_call(call, "1")])
    provider.complete("sys", [Message.user("go"), first.message(), results], [SQL])
    model_turn, answer = server.requests[-1].body["contents"][1:]
    assert model_turn["role"] == "model"
    assert model_turn["parts"] == [{
        "functionCall": {"args": {"sql": "select 1"}, "name": "run_sql"},
        "thoughtSignature": "c2lnLTE="}]
    assert answer == {"role": "user", "parts": [
        {"functionResponse": {"name": "run_sql", "response": {"output": "1"}}}]}


def test_gemini_a_malformed_function_call_becomes_an_error_call(gemini_kit: Kit) -> None:
    gemini_kit.server.push(G.response(
        finish_reason="MALFORMED_FUNCTION_CALL",
        finish_message="Malformed function call: print(default_api.run_sql(sql=select 1))"))
    provider = gemini_kit.provider()
    done = provider.complete("sys", [Message.user("go")], [SQL])
    [call] = done.tool_calls
    assert done.stop_reason == "tool_use"
    assert call.name == "run_sql" and call.arguments == {} and "malformed" in (call.error or "")
    # the SDK drops the finish message that names the tool: with two tools it is unknowable
    gemini_kit.server.push(G.response(finish_reason="MALFORMED_FUNCTION_CALL"))
    [call] = provider.complete("sys", [Message.user("go")], [SQL, LOGS]).tool_calls
    assert call.name == "unknown" and call.error


def test_gemini_usage_separates_cached_tokens_and_counts_thoughts(gemini_kit: Kit) -> None:
    gemini_kit.server.push(G.response("ok", prompt_tokens=5000, cached_tokens=4000,
                                      candidates_tokens=30, thoughts_tokens=70))
    u = gemini_kit.provider().complete("sys", [Message.user("hi")]).usage
    assert (u.input_tokens, u.cache_read_tokens, u.output_tokens) == (1000, 4000, 100)


def test_gemini_finish_reasons_are_normalized(gemini_kit: Kit) -> None:
    gemini_kit.server.push(G.response("cut", finish_reason="MAX_TOKENS"),
                           G.response(finish_reason="SAFETY"),
                           G.response("?", finish_reason="OTHER"))
    provider = gemini_kit.provider()
    stops = [provider.complete("s", [Message.user("x")]).stop_reason for _ in range(3)]
    assert stops == ["max_tokens", "refusal", "other"]


def test_gemini_server_embeds_deterministically_through_the_sdk(gemini_kit: Kit) -> None:
    client = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(
        base_url=gemini_kit.server.url, api_version="v1"))
    texts = ["orders fan-out", "late feed", "orders fan-out"]
    result = client.models.embed_content(model="gemini-embedding-001", contents=texts,
                                         config=types.EmbedContentConfig(output_dimensionality=16))
    vectors = [e.values for e in result.embeddings or []]
    assert len(vectors) == 3 and all(len(v or []) == 16 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert vectors[0] == pytest.approx(G.embedding("orders fan-out", 16))


# ---------------------------------------------------------------- building providers


def test_make_provider_needs_a_key_and_names_the_variable() -> None:
    with pytest.raises(ModelError, match="set GEMINI_API_KEY"):
        make_provider(ModelsConfig().roles.classifier, api_key=None)
    with pytest.raises(ValueError, match="script"):
        make_provider(RoleConfig(provider="scripted", model="s"))

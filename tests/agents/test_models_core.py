"""The provider-neutral parts of agents.models: config, prices, spend, retries, the scripted
provider and structured answers."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from agents.models import (
    Completion,
    Message,
    ModelError,
    ScriptedProvider,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from agents.models.config import ModelPrice, ModelsConfig
from agents.models.pricing import PriceTable, Spend
from agents.models.retry import Failure, backoff, call_with_retries, retry_after
from agents.models.structured import parse_json_object, structured
from bot.config import ConfigError, Settings, load_settings

# ---------------------------------------------------------------- config


def test_default_roles_put_claude_on_orchestration_and_gemini_on_the_rest() -> None:
    roles = ModelsConfig().roles
    orchestrator = roles.orchestrator
    assert (orchestrator.provider, orchestrator.model) == ("anthropic", "claude-sonnet-5-5")
    assert (roles.pr.provider, roles.pr.model) == ("anthropic", "claude-sonnet-5-5")
    assert (roles.subagent.provider, roles.subagent.model) == ("gemini", "gemini-2.5-flash-lite")
    assert roles.classifier.provider == "gemini"
    assert roles.orchestrator.temperature is None  # Claude 5.x refuses the parameter
    assert roles.subagent.temperature == 1.0


def test_the_settings_file_overrides_a_role_partly_and_adds_prices(tmp_path: Path) -> None:
    path = tmp_path / "sleuth.yaml"
    path.write_text("models:\n  roles:\n    orchestrator:\n      model: claude-opus-5\n"
                    "      max_retries: 1\n  prices:\n    claude-opus-5: {input: 5, output: 25}\n")
    models = load_settings(path).models
    assert models.roles.orchestrator.model == "claude-opus-5"
    assert models.roles.orchestrator.provider == "anthropic"  # kept from the role's default
    assert models.roles.orchestrator.max_retries == 1
    assert models.prices["claude-opus-5"] == ModelPrice(input=5, output=25)
    assert "gemini-2.5-flash-lite" in models.prices  # the defaults stay
    assert Settings().models == ModelsConfig()


def test_a_bad_models_section_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "sleuth.yaml"
    path.write_text("models:\n  roles:\n    subagent:\n      provider: openai\n"
                    "    planner:\n      model: x\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    keys = {(p.key, p.line) for p in caught.value.problems}
    assert ("models.roles.subagent.provider", 4) in keys
    assert ("models.roles.planner", 5) in keys


# ---------------------------------------------------------------- prices and spend


def test_prices_by_exact_id_then_longest_prefix_and_unknown_costs_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    table = PriceTable(ModelsConfig().prices)
    million = Usage(input_tokens=1_000_000)
    assert table.cost(million, "gemini-2.5-flash-lite") == pytest.approx(0.10)
    assert table.cost(million, "gemini-2.5-flash-lite-preview-09") == pytest.approx(0.10)
    assert table.cost(million, "gemini-2.5-flash-001") == pytest.approx(0.30)
    with caplog.at_level(logging.WARNING):
        assert table.cost(million, "mystery-1") == 0.0
        assert table.cost(million, "mystery-1") == 0.0
    assert [r.getMessage() for r in caplog.records].count(
        "no price for model 'mystery-1': its calls count as $0 (add it to models.prices in "
        "sleuth.yaml)") == 1


def test_spend_adds_up_by_step_tool_and_model_and_folds_in_subagents() -> None:
    table = PriceTable({"m": ModelPrice(input=1, output=2, cache_read=0.5, cache_write=4)})
    spend = Spend(table)
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000)
    one = Completion(text="a", model="m", usage=usage)
    spend.record(one, step=1)
    spend.record(one, step=2, tool="run_sql")
    sub = Spend(table)
    sub.record(Completion(model="m", usage=Usage(cache_read_tokens=2_000_000,
                                                 cache_write_tokens=250_000)))
    spend.merge(sub, tool="logs_subagent")
    report = spend.report()
    assert report.total.calls == 3 and spend.cost_usd == pytest.approx(2 + 2 + 1 + 1)
    assert report.by_step["2"].cost_usd == pytest.approx(2)
    assert report.by_tool["logs_subagent"].usage.cache_read_tokens == 2_000_000
    assert report.by_model["m"].calls == 3
    assert spend.tokens == 2 * 1_500_000 + 2_250_000


# ---------------------------------------------------------------- retries


def test_retry_after_reads_milliseconds_seconds_and_dates() -> None:
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "7"}) == 7.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after({"retry-after": later}) or 0) <= 30
    assert retry_after({"retry-after": "soon"}) is None and retry_after(None) is None


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8)]):
        assert low <= backoff(attempt, rng) <= high
    assert backoff(20, rng) <= 60


def test_call_with_retries_leaves_foreign_exceptions_alone() -> None:
    def bug() -> None:
        raise KeyError("a bug, not the provider")

    with pytest.raises(KeyError):
        call_with_retries(bug, classify=lambda e: None, provider="p", model="m", max_retries=3,
                          sleep=lambda s: None)


def test_a_retry_after_longer_than_the_cap_is_capped() -> None:
    sleeps: list[float] = []
    answers = iter([RuntimeError("429"), "ok"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    failure = Failure("rate limited", 429, retryable=True, retry_after=3600)
    assert call_with_retries(call, classify=lambda e: failure, provider="p", model="m",
                             max_retries=1, sleep=sleeps.append) == "ok"
    assert sleeps == [60.0]


# ---------------------------------------------------------------- protocol and scripted


def test_tool_call_parse_turns_bad_arguments_into_an_error() -> None:
    assert ToolCall.parse("1", "f", '{"a": 1}').arguments == {"a": 1}
    assert "not valid JSON" in (ToolCall.parse("1", "f", "{'a'").error or "")
    assert "not int" in (ToolCall.parse("1", "f", 3).error or "")


def test_messages_round_trip_through_json() -> None:
    call = ToolCall(id="c", name="f", arguments={"x": 1})
    convo = [Message.user("hi"), Completion(text="t", tool_calls=[call]).message(),
             Message.results([ToolResult.for_call(call, "r", is_error=True)])]
    again = [Message.model_validate_json(m.model_dump_json()) for m in convo]
    assert again == convo
    assert convo[1].content[1] == call


def test_scripted_provider_replays_records_and_estimates_usage() -> None:
    call = ToolCall(id="1", name="run_sql", arguments={"sql": "select 1"})
    provider = ScriptedProvider([Completion(tool_calls=[call]), "done"], model="script-1")
    spec = ToolSpec(name="run_sql", description="SQL")
    first = provider.complete("system prompt", [Message.user("go")], [spec])
    assert first.stop_reason == "tool_use" and first.tool_calls == [call]
    assert first.model == "script-1" and first.usage.input_tokens > 0
    second = provider.complete("s", [Message.user("go")])
    assert (second.text, second.stop_reason) == ("done", "end_turn")
    assert provider.calls[0].tools == [spec] and provider.calls[0].system == "system prompt"
    with pytest.raises(ModelError, match="no reply for call 3"):
        provider.complete("s", [])


def test_scripted_provider_can_answer_from_the_conversation() -> None:
    provider = ScriptedProvider(lambda call: f"you said {call.messages[-1].text}")
    assert provider.complete("s", [Message.user("ping")]).text == "you said ping"


# ---------------------------------------------------------------- structured


class Triage(BaseModel):
    severity: int
    summary: str


def test_structured_parses_fenced_or_wrapped_json() -> None:
    assert parse_json_object('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_object('Here it is: {"a": {"b": 2}} hope that helps') == {"a": {"b": 2}}
    with pytest.raises(ValueError, match="no JSON object"):
        parse_json_object("I don't know")


def test_structured_asks_again_with_the_error_then_gives_up() -> None:
    provider = ScriptedProvider(['{"severity": "high"}', '{"severity": 2, "summary": "late feed"}'])
    assert structured(provider, "Triage.", "feed late", Triage) == Triage(severity=2,
                                                                            summary="late feed")
    retry = provider.calls[1].messages
    assert [m.role for m in retry] == ["user", "assistant", "user"]
    assert "severity: Input should be a valid integer" in retry[-1].text
    assert '"summary"' in provider.calls[0].system  # the schema is in the prompt

    stubborn = ScriptedProvider(["no idea", "still no idea"])
    with pytest.raises(ModelError, match="no valid Triage in 2 answers"):
        structured(stubborn, "Triage.", "?", Triage)


def test_protocol_types_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Completion.model_validate({"text": "x", "stop_reason": "end_turn", "extra": 1})

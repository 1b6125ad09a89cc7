"""The noise classifier as `sleuth run` wires it: the configured Gemini role, through the real
SDK, against a local server speaking Gemini's wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.config import Settings
from bot.intake.noise import NoiseFilter
from bot.intake.runtime import noise_classifier
from bot.intake.signals import RawSignal
from tests.fakes.gemini_server import GeminiServer, response

KEY = "g-test-key-0123456789"
NOW = datetime(2026, 11, 24, 3, tzinfo=UTC)


def settings_for(url: str, enabled: bool = True) -> Settings:
    return Settings.model_validate({
        "intake": {"noise": {"classifier": {"enabled": enabled}}},
        "models": {"roles": {"classifier": {"base_url": url, "max_retries": 0}}},
    })


def log_error() -> RawSignal:
    return RawSignal(source="logs:airflow", kind="log_error", asset="task.d.t",
                     title="DeprecationWarning: pool_size is deprecated",
                     observed_at=NOW, dedup_key="k1",
                     detail={"message": "DeprecationWarning: pool_size is deprecated "
                                        f"(token {KEY})"})


def test_no_key_means_no_classifier_and_the_filter_says_so(monkeypatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    settings = settings_for("http://127.0.0.1:9")
    assert noise_classifier(settings) is None
    problems = NoiseFilter(settings.intake.noise, classifier=None).check(NOW)
    assert any("classifier" in p for p in problems)


@pytest.mark.parametrize("verdict, expected", [
    ({"noise": True, "confidence": 0.95, "reason": "a deprecation warning, no failure"}, "drop"),
    ({"noise": True, "confidence": 0.5, "reason": "unsure"}, "keep"),
])
def test_the_gemini_classifier_decides_through_the_real_sdk(monkeypatch, verdict, expected
                                                             ) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer(api_key=KEY) as server:
        server.push(response(json.dumps(verdict)))
        settings = settings_for(server.url)
        classifier = noise_classifier(settings)
        assert classifier is not None
        decision = NoiseFilter(settings.intake.noise, classifier=classifier).decide(
            log_error(), NOW)
        sent = json.dumps(server.bodies())
    assert decision.verdict == expected
    if expected == "drop":
        assert decision.rule == "classifier" and "deprecation" in decision.reason
    assert KEY not in sent  # the app's own key, planted in the log line, is redacted

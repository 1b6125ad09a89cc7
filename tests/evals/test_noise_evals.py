from __future__ import annotations

import json
from collections import Counter

import pytest

from agents.noise_classifier import NoiseClassifier
from evals.noise.run import load_cases, main, score

CASES = load_cases()


def test_the_cases_are_many_labelled_and_explained() -> None:
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)
    labels = Counter(c.expected for c in CASES)
    assert labels["noise"] >= 8 and labels["real"] >= 8
    kinds = {c.facts["kind"] for c in CASES}
    assert {"log_error", "table_check", "test_warned", "metric_anomaly"} <= kinds
    assert all(c.note and c.facts.get("title") for c in CASES)


def scripted(answers: dict[str, str]) -> NoiseClassifier:
    """A deterministic model: each case's prompt (rendered as the classifier renders it)
    gets the answer written for that case id; anything else gets no answer at all."""
    by_prompt: dict[str, str] = {}
    classifier = NoiseClassifier(lambda system, user: by_prompt.get(user, ""))
    for case in CASES:
        _, user = classifier.prompt(case.facts, case.context)
        assert user not in by_prompt, f"{case.id}: two cases render the same prompt"
        by_prompt[user] = answers.get(case.id, "")
    return classifier


def answer(noise: bool, confidence: float, reason: str = "scripted") -> str:
    return json.dumps({"noise": noise, "confidence": confidence, "reason": reason})


def test_a_perfect_model_scores_perfectly() -> None:
    answers = {c.id: f"```json\n{answer(c.expected == 'noise', 0.9)}\n```" for c in CASES}
    scores = score(scripted(answers), CASES)
    assert scores.accuracy == 1.0 and scores.real_dropped == [] and scores.noise_kept == []
    assert all(r.correct for r in scores.rows)


def test_errors_are_counted_apart_and_the_costly_one_comes_first() -> None:
    real = [c.id for c in CASES if c.expected == "real"]
    noise = [c.id for c in CASES if c.expected == "noise"]
    answers = {c.id: answer(c.expected == "noise", 0.95) for c in CASES}
    answers[real[0]] = answer(True, 0.97, "looks routine")      # a real problem dropped
    answers[real[1]] = answer(True, 0.6)                          # noise, unsure: kept, right
    answers[noise[0]] = answer(True, 0.79)                        # below threshold: kept
    answers[noise[1]] = "The signal is noise, I am fairly sure."  # unreadable: kept
    scores = score(scripted(answers), CASES, threshold=0.8)
    assert scores.real_dropped == [real[0]]
    assert scores.noise_kept == [noise[0], noise[1]]
    assert scores.accuracy == pytest.approx((len(CASES) - 3) / len(CASES))
    row = next(r for r in scores.rows if r.id == noise[1])
    assert (row.dropped, row.reason) == (False, "classifier output unreadable")
    assert list(scores.figures())[:2] == ["real_dropped", "noise_kept"]


def test_the_runner_without_a_key_scores_the_keep_everything_floor(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    assert figures["real_dropped"] == 0
    assert figures["noise_kept"] == sum(c.expected == "noise" for c in CASES)
    assert "keep-everything" in figures["label"]

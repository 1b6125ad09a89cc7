"""Score the noise classifier on labelled cases: `python -m evals.noise.run`.

Each case in `cases.yaml` is a signal the rules left undecided, with its runtime context and
the expected answer (noise or real). `score(classifier, cases)` runs the classifier on every
case and counts the two errors apart: a real problem dropped (costly: nobody is told) and
noise kept (cheap: someone reads one card too many).

With GEMINI_API_KEY set the cases run against Gemini; without it, against a model that
never answers, which keeps everything: the floor any model must beat on noise kept while
dropping no real problem. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field

from agents.noise_classifier import ClassifierVerdict, Complete, NoiseClassifier, NoiseContext

CASES = Path(__file__).resolve().parent / "cases.yaml"
DEFAULT_MODEL = "gemini-2.5-flash"


class NoiseCase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    expected: Literal["noise", "real"]
    note: str = Field(min_length=1, description="Why the answer is what it is.")
    tags: list[str] = Field(default_factory=list)
    facts: dict[str, Any]
    context: NoiseContext = NoiseContext()


class CaseRow(BaseModel):
    id: str
    expected: Literal["noise", "real"]
    dropped: bool
    correct: bool
    noise: bool
    confidence: float
    reason: str


class NoiseScores(BaseModel):
    """The costly error first: real problems the classifier would have dropped."""

    real_dropped: list[str] = Field(description="Ids of real problems dropped.")
    noise_kept: list[str] = Field(description="Ids of noise kept.")
    accuracy: float
    cases: int
    threshold: float
    rows: list[CaseRow]

    def figures(self) -> dict[str, Any]:
        return {"real_dropped": len(self.real_dropped), "noise_kept": len(self.noise_kept),
                "accuracy": round(self.accuracy, 3), "cases": self.cases,
                "threshold": self.threshold}


class Classifier(Protocol):
    def classify(self, facts: dict[str, Any], context: NoiseContext) -> ClassifierVerdict: ...


def load_cases(path: Path = CASES) -> list[NoiseCase]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [NoiseCase.model_validate(item) for item in data]


def score(classifier: Classifier, cases: list[NoiseCase], threshold: float = 0.8) -> NoiseScores:
    """Run `classifier` on every case; a case is right when it is dropped exactly if noise."""
    rows = []
    for case in cases:
        verdict = classifier.classify(case.facts, case.context)
        dropped = verdict.drops(threshold)
        rows.append(CaseRow(id=case.id, expected=case.expected, dropped=dropped,
                            correct=dropped == (case.expected == "noise"), noise=verdict.noise,
                            confidence=verdict.confidence, reason=verdict.reason))
    return NoiseScores(
        real_dropped=[r.id for r in rows if r.dropped and r.expected == "real"],
        noise_kept=[r.id for r in rows if not r.dropped and r.expected == "noise"],
        accuracy=sum(r.correct for r in rows) / len(rows) if rows else 0.0,
        cases=len(rows), threshold=threshold, rows=rows,
    )


def report(scores: NoiseScores, label: str) -> str:
    lines = [f"noise classifier: {label}",
             f"real problems dropped: {len(scores.real_dropped)} {scores.real_dropped or ''}",
             f"noise kept:            {len(scores.noise_kept)} {scores.noise_kept or ''}",
             f"accuracy:              {scores.accuracy:.2f} of {scores.cases} cases "
             f"(threshold {scores.threshold})", ""]
    for r in scores.rows:
        mark = "ok " if r.correct else "ERR"
        action = "drop" if r.dropped else "keep"
        lines.append(f"{mark} {r.id:<40} {r.expected:<5} {action} {r.confidence:.2f} {r.reason}")
    return "\n".join(lines)


def gemini_complete(api_key: str, model: str) -> Complete:
    """A plain Gemini call; to be replaced by the agents' Gemini provider once it exists."""
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=api_key)

    def complete(system: str, user: str) -> str:
        response = client.models.generate_content(
            model=model, contents=user,
            config=types.GenerateContentConfig(system_instruction=system,
                                               response_mime_type="application/json"))
        return response.text or ""

    return complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.noise.run", description=__doc__)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--model", default=os.environ.get("SLEUTH_NOISE_MODEL", DEFAULT_MODEL))
    parser.add_argument("--cases", type=Path, default=CASES)
    args = parser.parse_args(argv)
    key = os.environ.get("GEMINI_API_KEY")
    if key:
        complete, label = gemini_complete(key, args.model), f"live, {args.model}"
    else:
        complete, label = (lambda system, user: ""), "no GEMINI_API_KEY: keep-everything floor"
    scores = score(NoiseClassifier(complete), load_cases(args.cases), args.threshold)
    print(report(scores, label))
    print(json.dumps({"eval": "noise", "label": label, **scores.figures()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

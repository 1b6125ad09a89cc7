"""The cheap model that judges the signals the noise rules leave undecided: noise or real?

`NoiseClassifier(complete).classify(facts, context)` renders `prompts/noise_classifier.md`
with the signal's facts and its runtime context (the job, the log lines around it, the
history of its message template), asks the model through `complete(system, user)`, and
reads its JSON answer into a `ClassifierVerdict`.

It fails safe: anything it cannot read, and any error of the call, is "not noise"; a caller
drops a signal only when `verdict.drops(threshold)`. Everything that goes into the prompt
is redacted first, and every piece of data is JSON inside `<untrusted_data>` delimiters that
the data itself cannot close.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.redact import redact, redact_data

log = logging.getLogger(__name__)

PROMPTS = Path(__file__).resolve().parent / "prompts"
UNREADABLE = "classifier output unreadable"
_REASON_CHARS = 300
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)

Complete = Callable[[str, str], str]  # (system, user) -> the model's raw text


class TemplateHistory(BaseModel):
    """How the signal's message template behaved before."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seen: int = Field(ge=0, description="Times the template was seen in the lookback.")
    lookback_days: int = Field(ge=1, description="How far back `seen` counts.")
    preceded_failures: int = Field(
        0, ge=0, description="Times it was followed by a real failure of the same asset."
    )
    last_seen: str | None = Field(None, description="When it was last seen (ISO 8601).")
    note: str | None = Field(None, description="Anything else known, e.g. a closed issue's title.")


class NoiseContext(BaseModel):
    """What the model sees beside the signal itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: dict[str, Any] = Field(
        default_factory=dict, description="dag_id, task_id, run_id, try_number, operator…"
    )
    log_lines: list[str] = Field(default_factory=list, description="Lines around it, oldest first.")
    history: TemplateHistory | None = None


class ClassifierVerdict(BaseModel):
    """The model's answer; `drops(threshold)` is the only way it removes a signal."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    noise: bool
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str

    def drops(self, threshold: float) -> bool:
        return self.noise and self.confidence >= threshold


def unreadable(why: str = UNREADABLE) -> ClassifierVerdict:
    """The verdict when the model's answer cannot be used: keep the signal."""
    return ClassifierVerdict(noise=False, confidence=0.0, reason=why)


class NoiseClassifier:
    """Noise or real, by a model behind `complete(system, user) -> text`.

    `known_secrets`: exact values (the app's own tokens) redacted wherever they appear.
    """

    def __init__(
        self,
        complete: Complete,
        *,
        known_secrets: Iterable[str] = (),
        max_log_lines: int = 40,
        max_chars: int = 2_000,
    ) -> None:
        self.complete = complete
        self.known = tuple(known_secrets)
        self.max_log_lines = max_log_lines
        self.max_chars = max_chars
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(PROMPTS),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )
        self.template = env.get_template("noise_classifier.md")

    def prompt(self, facts: dict[str, Any], context: NoiseContext) -> tuple[str, str]:
        """(system, user): the rules, and this signal's redacted, delimited data."""
        lines = context.log_lines[-self.max_log_lines:]
        variables = {
            "facts": self._data(facts),
            "job": self._data(context.job),
            "log_lines": self._data([line[: self.max_chars] for line in lines]),
            "lines_cut": len(context.log_lines) - len(lines),
            "history": self._data(context.history.model_dump() if context.history else None),
        }
        return self._block("system", variables), self._block("user", variables)

    def classify(self, facts: dict[str, Any], context: NoiseContext) -> ClassifierVerdict:
        """The model's verdict; "not noise" if the call fails or its answer is unreadable."""
        system, user = self.prompt(facts, context)
        try:
            raw = self.complete(system, user)
        except Exception as exc:  # any provider failure: keep the signal, never drop on error
            log.warning("noise classifier call failed: %s", type(exc).__name__)
            return unreadable(f"classifier call failed ({type(exc).__name__})")
        verdict = parse_verdict(raw)
        if verdict is None:
            return unreadable()
        reason = _clip(redact(verdict.reason, self.known), _REASON_CHARS)  # clipped after:
        return verdict.model_copy(update={"reason": reason})  # a cut secret would slip through

    def _data(self, value: Any) -> str:
        """Redacted JSON that cannot close its `<untrusted_data>` delimiter."""
        clipped = _clip_strings(redact_data(value, self.known), self.max_chars)
        text = json.dumps(clipped, ensure_ascii=False, indent=1, default=str)
        return text.replace("</", "<\\/")  # `\/` is JSON for `/`: the data stays valid JSON

    def _block(self, name: str, variables: dict[str, Any]) -> str:
        render = self.template.blocks[name]
        return "".join(render(self.template.new_context(variables))).strip()


def parse_verdict(text: str | None) -> ClassifierVerdict | None:
    """The verdict-shaped JSON object in the model's text, in a code fence or bare, with
    prose around it; None if there is none, or several that disagree."""
    if not text:
        return None
    found: list[ClassifierVerdict] = []
    for candidate in [*_FENCE.findall(text), text]:
        for obj in _json_objects(candidate):
            try:
                found.append(ClassifierVerdict.model_validate(obj))
            except ValidationError:
                continue
    if not found or len({v.noise for v in found}) > 1:  # none, or it contradicts itself
        return None
    reason = " ".join(found[0].reason.split()) or "no reason given"
    return found[0].model_copy(update={"reason": reason})


def _json_objects(text: str) -> Iterable[dict[str, Any]]:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            yield obj


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return _clip(value, limit)
    if isinstance(value, dict):
        return {k: _clip_strings(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clip_strings(v, limit) for v in value]
    return value

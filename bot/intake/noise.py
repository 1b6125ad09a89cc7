"""The noise filter: keep, drop or hold each stored signal, always with a rule and a reason.

`NoiseFilter(config, task_states, classifier).decide(signal, now)` tries, in order:

1. maintenance windows (`maintenance:<name>`): the signal happened inside a planned window;
2. known-benign patterns (`benign:<name>`): its message matches a harmless pattern;
3. flaky tries (`flaky_try`): a failed try whose task succeeded soon after. A `task_retried`
   signal says so itself; any other signal of a try (a log error with dag_id, run_id,
   task_id and try_number in its detail) asks `TaskStates` how the task instance ended:
   success within `flaky_window` of the failure drops it, still running while the window
   is open holds it, a final failure or a late recovery keeps it;
4. the classifier (`classifier`), when enabled, for what the rules left undecided, never
   for the `excluded_kinds` (final failures the team declared blocking);
5. keep (`default`).

Nothing vanishes: intake stores the signal before deciding, and every decision carries the
rule that made it and one sentence a human reads (`sleuth signals --filtered`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.noise_classifier import ClassifierVerdict, NoiseContext
from bot.config import BenignPattern, MaintenanceWindow, NoiseConfig, SignalScope
from bot.intake.signals import RawSignal

log = logging.getLogger(__name__)

Verdict = Literal["keep", "drop", "hold"]
# Fields a benign pattern is searched in, in this order; the first that matches is cited.
BENIGN_FIELDS = ("title", "message", "exception", "template_text")
# Task-instance states after which nothing changes by itself.
FINISHED = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})
# Detail fields too bulky for the classifier's facts; their lines go to its context.
_LOG_FIELDS = ("text", "traceback", "log_excerpt")
_CONTEXT_LINES = 40


class Decision(BaseModel):
    """What the noise filter decided about one signal, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    rule: str = Field(description="benign:<name>, flaky_try, maintenance:<name>, classifier, "
                                  "default.")
    reason: str = Field(description="One sentence a human reads.")
    recheck_at: datetime | None = Field(None, description="When to decide a held signal again.")
    detail: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _hold_has_recheck(self) -> Decision:
        if (self.verdict == "hold") != (self.recheck_at is not None):
            raise ValueError("a hold, and only a hold, has a recheck_at")
        return self


@dataclass(frozen=True)
class TaskOutcome:
    """How a task instance stands: `state` as the orchestrator says it (success, failed,
    upstream_failed, skipped, running, up_for_retry, queued…), `ended_at` when its last
    try ended, `try_number` that try's number."""

    state: str
    ended_at: datetime | None = None
    try_number: int | None = None


class TaskStates(Protocol):
    """Where the filter learns how a task instance ended; None when it is not known yet."""

    def outcome(self, dag_id: str, run_id: str, task_id: str) -> TaskOutcome | None: ...


class _HasTries(Protocol):
    def tries(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[Any]: ...


class TriesTaskStates:
    """`TaskStates` over anything that lists a task instance's tries (objects with
    try_number, state and end_date), e.g. a `bot.sources.dag_runs.RunsBackend`."""

    def __init__(self, backend: _HasTries) -> None:
        self.backend = backend

    def outcome(self, dag_id: str, run_id: str, task_id: str) -> TaskOutcome | None:
        tries = [t for t in self.backend.tries(dag_id, run_id, task_id)
                 if t.task_id == task_id and t.try_number > 0]
        if not tries:
            return None
        last = max(tries, key=lambda t: t.try_number)
        return TaskOutcome(state=last.state or "running", ended_at=last.end_date,
                           try_number=last.try_number)


class SignalClassifier(Protocol):
    """`agents.noise_classifier.NoiseClassifier`, or anything answering the same way."""

    def classify(self, facts: dict[str, Any], context: NoiseContext) -> ClassifierVerdict: ...


ContextFor = Callable[[RawSignal], NoiseContext]


class NoiseFilter:
    """Decides keep / drop / hold for each signal; see the module docstring for the order.

    `task_states`: without it, signals of tries are not judged flaky (only `task_retried`).
    `classifier`: used only when `config.classifier.enabled`.
    `context`: builds the classifier's context (job, log lines, template history); by
    default from the signal's own detail, without history.
    """

    def __init__(
        self,
        config: NoiseConfig,
        task_states: TaskStates | None = None,
        classifier: SignalClassifier | None = None,
        *,
        context: ContextFor | None = None,
    ) -> None:
        self.config = config
        self.task_states = task_states
        self.classifier = classifier if config.classifier.enabled else None
        self._classifier_missing = config.classifier.enabled and classifier is None
        self.context = context or default_context
        self._benign = [(rule, re.compile(rule.regex)) for rule in config.benign]

    def decide(self, signal: RawSignal, now: datetime) -> Decision:
        """The decision for `signal` as things stand at `now` (timezone-aware)."""
        if now.tzinfo is None:
            raise ValueError("NoiseFilter.decide needs an aware `now`")
        at = _aware(signal.observed_at)
        return (
            self._maintenance(signal, at)
            or self._benign_match(signal, now)
            or self._flaky(signal, at, now)
            or self._classify(signal)
            or Decision(verdict="keep", rule="default", reason="no noise rule matched")
        )

    def check(self, now: datetime | None = None) -> list[str]:
        """Problems of the noise configuration, one sentence each; empty when none."""
        now = now or datetime.now(UTC)
        problems = [
            f"intake.noise.benign {rule.name!r} expired on {rule.expires.isoformat()}: it no "
            "longer drops anything; remove it, or extend `expires` if it still holds"
            for rule in self.config.benign if _expired(rule, now)
        ]
        problems += [
            f"intake.noise.maintenance {w.name!r} ended at {w.end.isoformat()}: it no longer "
            "applies; remove it"
            for w in self.config.maintenance if w.end is not None and w.end <= now
        ]
        if self._classifier_missing:
            problems.append("intake.noise.classifier is enabled but no model is available "
                            "(is GEMINI_API_KEY set?): undecided signals are kept")
        return problems

    # ------------------------------------------------------------ the rules

    def _maintenance(self, signal: RawSignal, at: datetime) -> Decision | None:
        for window in self.config.maintenance:
            if not in_scope(window, signal):
                continue
            span = window_at(window, at)
            if span is not None:
                start, end = span
                return Decision(
                    verdict="drop", rule=f"maintenance:{window.name}",
                    reason=f"observed at {_when(at)}, inside maintenance window "
                           f"{window.name!r} ({_when(start)} to {_when(end)})",
                    detail={"window_start": start.isoformat(), "window_end": end.isoformat()},
                )
        return None

    def _benign_match(self, signal: RawSignal, now: datetime) -> Decision | None:
        for rule, pattern in self._benign:
            if _expired(rule, now) or not in_scope(rule, signal):
                continue
            for field in BENIGN_FIELDS:
                text = signal.title if field == "title" else signal.detail.get(field)
                if isinstance(text, str) and (match := pattern.search(text)):
                    return Decision(
                        verdict="drop", rule=f"benign:{rule.name}",
                        reason=f"{field} matches known-benign pattern {rule.name!r}: "
                               f"{rule.reason}",
                        detail={"field": field, "matched": match.group(0)[:200]},
                    )
        return None

    def _flaky(self, signal: RawSignal, at: datetime, now: datetime) -> Decision | None:
        if signal.kind == "task_retried":
            return self._retried(signal, at)
        attempt = _Try.of(signal)
        if attempt is None or self.task_states is None:
            return None
        outcome = self._outcome(attempt)
        window = self.config.flaky_window
        deadline = at + window
        facts = {"task_state": outcome.state if outcome else None,
                 "flaky_window_s": window.total_seconds()}
        if outcome is not None and outcome.state == "success":
            if outcome.try_number is not None and attempt.try_number is not None \
                    and outcome.try_number <= attempt.try_number:
                return None  # an error inside the try that succeeded: not a failed try
            ended = _aware(outcome.ended_at) if outcome.ended_at else None
            if ended is None or ended <= deadline:
                return self._drop_flaky(signal, attempt, outcome, at, ended, facts)
            return Decision(
                verdict="keep", rule="flaky_try",
                reason=f"{attempt.label(signal)} failed; the task recovered only "
                       f"{_span(ended - at)} later, beyond the {_span(window)} flaky window",
                detail=facts)
        if outcome is not None and outcome.state in FINISHED:
            return Decision(
                verdict="keep", rule="flaky_try",
                reason=f"{attempt.label(signal)} failed and the task ended {outcome.state}: "
                       "not a flaky try", detail=facts)
        if now < deadline:
            state = outcome.state if outcome else "not yet known"
            return Decision(
                verdict="hold", rule="flaky_try",
                reason=f"{attempt.label(signal)} failed; the task is {state}: held until it "
                       f"ends or the {_span(window)} flaky window closes at {_when(deadline)}",
                recheck_at=min(now + self.config.recheck_every, deadline), detail=facts)
        return Decision(
            verdict="keep", rule="flaky_try",
            reason=f"{attempt.label(signal)} failed and the task had not succeeded "
                   f"{_span(window)} later", detail=facts)

    def _outcome(self, attempt: _Try) -> TaskOutcome | None:
        """How the try's task instance stands; unknown (held, then kept) if it can't be read."""
        assert self.task_states is not None
        try:
            return self.task_states.outcome(attempt.dag_id, attempt.run_id, attempt.task_id)
        except Exception as exc:  # the orchestrator is down: decide again later, lose nothing
            log.warning("task state of %s.%s unreadable: %s", attempt.dag_id, attempt.task_id,
                        type(exc).__name__)
            return None

    def _drop_flaky(self, signal: RawSignal, attempt: _Try, outcome: TaskOutcome,
                    at: datetime, ended: datetime | None, facts: dict[str, Any]) -> Decision:
        later = f" {_span(ended - at)} later" if ended is not None else ""
        succeeded = f"try {outcome.try_number}" if outcome.try_number else "a later try"
        return Decision(
            verdict="drop", rule="flaky_try",
            reason=f"{attempt.label(signal)} failed{_with(signal)}; {succeeded} "
                   f"succeeded{later}",
            detail={**facts, "recovered_try": outcome.try_number,
                    "recovered_at": ended.isoformat() if ended else None})

    def _retried(self, signal: RawSignal, at: datetime) -> Decision:
        """The DAG-runs source's own finding: a try failed, a later one succeeded."""
        d = signal.detail
        recovered = _parse_time(d.get("recovered_at"))
        attempt = _Try.of(signal)
        label = attempt.label(signal) if attempt else f"a try of {signal.asset}"
        later = f" {_span(recovered - at)} later" if recovered else ""
        if recovered is not None and recovered - at > self.config.flaky_window:
            return Decision(
                verdict="keep", rule="flaky_try",
                reason=f"{label} failed; the task recovered only{later}, beyond the "
                       f"{_span(self.config.flaky_window)} flaky window")
        succeeded = f"try {d['recovered_try']}" if d.get("recovered_try") else "a later try"
        return Decision(verdict="drop", rule="flaky_try",
                        reason=f"{label} failed{_with(signal)}; {succeeded} succeeded{later}")

    def _classify(self, signal: RawSignal) -> Decision | None:
        settings = self.config.classifier
        if self.classifier is None or signal.kind in settings.excluded_kinds:
            return None
        try:
            verdict = self.classifier.classify(signal_facts(signal), self.context(signal))
        except Exception as exc:  # a classifier must never make a signal vanish
            log.warning("noise classifier failed: %s", type(exc).__name__)
            return Decision(verdict="keep", rule="classifier",
                            reason=f"classifier failed ({type(exc).__name__}): kept")
        detail = {"noise": verdict.noise, "confidence": verdict.confidence,
                  "threshold": settings.threshold}
        if verdict.drops(settings.threshold):
            return Decision(verdict="drop", rule="classifier", detail=detail,
                            reason=f"classifier judged it noise ({verdict.confidence:.2f}): "
                                   f"{verdict.reason}")
        if verdict.noise:
            return Decision(verdict="keep", rule="classifier", detail=detail,
                            reason=f"classifier thought it noise but only at "
                                   f"{verdict.confidence:.2f} (< {settings.threshold:.2f}): "
                                   f"{verdict.reason}")
        return Decision(verdict="keep", rule="classifier", detail=detail,
                        reason=f"classifier judged it real: {verdict.reason}")


# ---------------------------------------------------------------- matching


def in_scope(scope: SignalScope, signal: RawSignal) -> bool:
    """Does a rule's kinds / sources / assets scope take in this signal?"""
    return (
        (scope.kinds is None or signal.kind in scope.kinds)
        and (scope.sources is None or any(fnmatchcase(signal.source, g) for g in scope.sources))
        and (scope.assets is None or any(fnmatchcase(signal.asset, g) for g in scope.assets))
    )


def window_at(window: MaintenanceWindow, at: datetime) -> tuple[datetime, datetime] | None:
    """(start, end) of the occurrence of `window` that contains `at`, or None."""
    if window.start is not None and window.end is not None:
        return (window.start, window.end) if window.start <= at < window.end else None
    assert window.duration is not None
    trigger = window.trigger()
    # An occurrence containing `at` started in (at - duration, at]; at most two starts are
    # looked at: the first may be the one that ends exactly at `at`.
    start = trigger.get_next_fire_time(None, at - window.duration)
    for _ in range(2):
        if start is None or start > at:
            return None
        if start + window.duration > at:
            return start, start + window.duration
        start = trigger.get_next_fire_time(start, start + timedelta(seconds=1))
    return None


def _expired(rule: BenignPattern, now: datetime) -> bool:
    return rule.expires is not None and now.astimezone(UTC).date() > rule.expires


# ---------------------------------------------------------------- the try a signal is about


@dataclass(frozen=True)
class _Try:
    dag_id: str
    run_id: str
    task_id: str
    try_number: int | None

    @classmethod
    def of(cls, signal: RawSignal) -> _Try | None:
        d = signal.detail
        run_id = d.get("run_id") or signal.run_id
        if not (d.get("dag_id") and d.get("task_id") and run_id):
            return None
        number = d.get("try_number")
        return cls(str(d["dag_id"]), str(run_id), str(d["task_id"]),
                   number if isinstance(number, int) else None)

    def label(self, signal: RawSignal) -> str:
        which = f"try {self.try_number}" if self.try_number is not None else "a try"
        return f"{which} of {signal.asset}"


def _with(signal: RawSignal) -> str:
    """` with ConnectionError`: the exception's class name, when there is one."""
    exc = signal.detail.get("exception")
    if not isinstance(exc, str) or not exc.strip():
        return ""
    name = exc.split(":", 1)[0].strip().rsplit(".", 1)[-1]
    return f" with {name}" if name and " " not in name else ""


# ---------------------------------------------------------------- the classifier's input


def signal_facts(signal: RawSignal) -> dict[str, Any]:
    """The signal as the classifier sees it: its fields and its detail's small facts."""
    small = {k: v for k, v in signal.detail.items()
             if k not in _LOG_FIELDS and isinstance(v, (str, int, float, bool))}
    return {"kind": signal.kind, "source": signal.source, "asset": signal.asset,
            "title": signal.title, "observed_at": _aware(signal.observed_at).isoformat(),
            "run_id": signal.run_id, **small}


def default_context(signal: RawSignal) -> NoiseContext:
    """The job and the log lines from the signal's own detail (no template history)."""
    d = signal.detail
    job = {k: d[k] for k in ("dag_id", "task_id", "run_id", "try_number", "max_tries",
                             "operator", "map_index") if d.get(k) is not None}
    text = next((d[k] for k in _LOG_FIELDS if isinstance(d.get(k), str) and d[k]), "")
    return NoiseContext(job=job, log_lines=text.splitlines()[-_CONTEXT_LINES:])


# ---------------------------------------------------------------- time


def _aware(moment: datetime) -> datetime:
    """Signals carry aware times; one without a zone is taken as UTC, as log times are."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, str):
        try:
            return _aware(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip() or moment.isoformat()


def _span(delta: timedelta) -> str:
    """`45 s`, `3 min`, `2 h`, `1 h 20 min`, `2 d 3 h`."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60 % 60, seconds // 3600 % 24, seconds // 86400
    if days:
        return f"{days} d" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"

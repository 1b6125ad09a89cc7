"""The limits an investigation runs within, and the checks that enforce them.

`Limits` is configuration (the `limits:` section of sleuth.yaml). `Budget` is one
investigation's running count of steps, tokens and time, shared by the orchestrator and its
subagents (threads), and raises `LimitReached` when one runs out. `RepeatGuard` refuses a call an
agent already made. `untrusted()` wraps tool output so the model can tell data from instructions;
`suspicious_instructions()` spots data that talks to the model.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.tools.base import MAX_OUTPUT_CHARS, Tool, ToolOutput

LimitName = Literal["steps", "tokens", "wall_clock"]
LIMIT_LABELS: dict[str, str] = {"steps": "step limit", "tokens": "token budget",
                                "wall_clock": "wall-clock limit"}


class Limits(BaseModel):
    """Guardrails of one investigation. Hitting any of them ends it with a report of what was
    learned so far, naming the limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    orchestrator_max_steps: int = Field(
        20, ge=1, description="Model turns the orchestrator may take, submitting the report "
                              "included.")
    subagent_max_steps: int = Field(
        8, ge=1, description="Model turns each subagent dispatch may take; at the limit the "
                             "subagent stops and the orchestrator gets what it saw so far.")
    token_budget: int = Field(
        400_000, ge=1, description="Tokens (input, output and cache, all models) one "
                                   "investigation may use.")
    wall_clock_s: float = Field(
        300.0, gt=0, description="Seconds one investigation may run, checked before each "
                                 "model call.")
    tool_timeout_s: float = Field(
        30.0, gt=0, description="Seconds one tool call may take before it is answered with "
                                "a timeout error (the call itself is abandoned, not killed).")
    max_tool_output_chars: int = Field(
        MAX_OUTPUT_CHARS, ge=200, description="Characters of one tool result the model sees; "
                                              "the rest is cut with an explicit marker.")
    max_parallel_subagents: int = Field(
        4, ge=1, description="Subagents (and tools) of one orchestrator turn that run at once.")


class LimitReached(Exception):
    """A guardrail ran out; `which` is the limit, `detail` says by how much and where."""

    def __init__(self, which: LimitName, detail: str) -> None:
        super().__init__(f"{LIMIT_LABELS[which]}: {detail}")
        self.which, self.detail = which, detail

    @property
    def label(self) -> str:
        """What the report's `limits_hit` says."""
        return f"{LIMIT_LABELS[self.which]} ({self.detail})"


class Budget:
    """Steps per agent run, tokens and time of one investigation; safe across threads."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._steps: dict[str, int] = {}
        self.tokens = 0

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def steps(self, run: str) -> int:
        return self._steps.get(run, 0)

    def step(self, run: str, max_steps: int) -> int:
        """Count one model turn of agent run `run`; raises when the run or the investigation
        is out of steps, tokens or time. Returns the turn's number, from 1."""
        self.check()
        with self._lock:
            taken = self._steps.get(run, 0)
            if taken >= max_steps:
                raise LimitReached("steps", f"{run} used its {max_steps} steps")
            self._steps[run] = taken + 1
            return taken + 1

    def spend(self, tokens: int) -> None:
        with self._lock:
            self.tokens += tokens

    def check(self) -> None:
        """Raise if the token budget or the wall clock is used up."""
        if self.tokens >= self.limits.token_budget:
            raise LimitReached("tokens", f"{self.tokens} of {self.limits.token_budget} tokens used")
        if self.elapsed_s >= self.limits.wall_clock_s:
            raise LimitReached("wall_clock", f"{self.elapsed_s:.0f} s of "
                                             f"{self.limits.wall_clock_s:g} s")


REPEATED = ("refused: you already called {name} with exactly these arguments; its result is "
            "above in this conversation. Use what you already have, or call it with different "
            "arguments.")


class RepeatGuard:
    """Remembers the (tool, arguments) pairs of one agent run and refuses a second identical
    call: a model that repeats itself burns budget without learning anything."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, name: str, arguments: dict[str, Any]) -> bool:
        key = name + json.dumps(arguments, sort_keys=True, default=str)
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True


def call_with_timeout(tool: Tool, arguments: dict[str, Any], timeout_s: float) -> ToolOutput:
    """`tool.call(arguments)`, or a timeout error after `timeout_s`. A Python thread cannot be
    killed: a call that overruns is abandoned on a daemon thread (tools are read-only, and the
    SQL guard has its own timeout that interrupts the query)."""
    box: list[ToolOutput] = []
    worker = threading.Thread(target=lambda: box.append(tool.call(arguments)), daemon=True,
                              name=f"tool-{tool.name}")
    worker.start()
    worker.join(timeout_s)
    if not box:
        return ToolOutput.fail(f"{tool.name}: no answer within {timeout_s:g} s",
                               f"timed out after {timeout_s:g} s; narrow the request "
                               "(a shorter window, fewer rows) and try again")
    return box[0]


def assert_no_subagent_tools(agent: str, tools: list[Tool], reserved: set[str]) -> None:
    """Subagents cannot spawn subagents, nor touch the orchestrator's own tools."""
    clash = sorted(t.name for t in tools if t.name in reserved or t.name.startswith("ask_"))
    if clash:
        raise ValueError(f"the {agent} subagent's tools include orchestrator tools {clash}: "
                         "subagents cannot dispatch subagents or submit the report")


# ------------------------------------------------------------------ untrusted data

def untrusted(text: str, **attrs: str) -> str:
    """`text` inside <untrusted_data> delimiters it cannot close: every `</` in it becomes
    `<\\/` (in JSON, `\\/` still reads as `/`, so JSON data stays valid)."""
    names = "".join(f' {k}="{_attr(v)}"' for k, v in attrs.items())
    body = text.replace("</", "<\\/")
    return f"<untrusted_data{names}>\n{body}\n</untrusted_data>"


def _attr(value: str) -> str:
    return re.sub(r'[<>"&\s]+', "_", value)[:80]


# Phrases with which data addresses the model rather than describing the pipeline. Few and
# plain on purpose: this only flags text for a human; the prompts are what keep the model safe.
_TALKS_TO_MODEL = re.compile(
    r"(?i)\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|"
    r"earlier|your)\s+(?:instructions|prompts?|rules)"
    r"|\byou\s+are\s+now\b|\bsystem\s+prompt\b|\bnew\s+instructions\b"
    r"|\b(?:approve|merge)\s+(?:the|this)\s+(?:PR|pull\s+request)\b"
    r"|\bdrop\s+(?:the\s+)?table\b|\bas\s+an\s+AI\b")


def instruction_phrases(text: str) -> set[str]:
    """The phrases of `text` that address a model, lower-cased, whitespace collapsed."""
    return {" ".join(m[0].lower().split()) for m in _TALKS_TO_MODEL.finditer(text)}


def suspicious_instructions(text: str, context: int = 80) -> list[str]:
    """Excerpts of `text` that read like instructions to an AI agent."""
    spans: list[list[int]] = []
    for m in _TALKS_TO_MODEL.finditer(text):
        start, end = max(0, m.start() - context), min(len(text), m.end() + context)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = end  # overlapping excerpts of one passage: one excerpt
        else:
            spans.append([start, end])
    return [" ".join(text[start:end].split()) for start, end in spans]

"""The orchestrator's working notes: plan, hypotheses, map nodes checked.

The model changes them only through four tools (`update_plan`, `add_hypothesis`,
`update_hypothesis`, `mark_checked`); every change is reported to `on_change` (the trace), and
`compact()` is shown to the model at every turn so it need not re-read the whole conversation.
When a limit ends the investigation early, the report is built from these notes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from agents.report import Category
from agents.tools.base import Tool, ToolOutput

HypothesisStatus = Literal["open", "supported", "rejected"]
OnChange = Callable[[Literal["plan", "scratchpad"], str, dict[str, Any]], None]


class PlanStep(BaseModel):
    text: str
    done: bool = False


class Hypothesis(BaseModel):
    id: str
    text: str
    node: str | None = None
    category: Category | None = None
    status: HypothesisStatus = "open"
    evidence: list[str] = Field(default_factory=list, description="Citation references.")
    note: str = ""


class Scratchpad:
    def __init__(self, on_change: OnChange | None = None) -> None:
        self.plan: list[PlanStep] = []
        self.hypotheses: dict[str, Hypothesis] = {}
        self.checked: dict[str, str] = {}  # map node -> what checking it showed
        self._on_change = on_change
        self._lock = threading.Lock()

    # ------------------------------------------------------------- what the model sees

    def compact(self) -> str:
        lines = ["Plan:"] + [f"  {i}. [{'x' if s.done else ' '}] {s.text}"
                             for i, s in enumerate(self.plan, 1)]
        if not self.plan:
            lines.append("  (none yet: call update_plan)")
        lines.append("Hypotheses:")
        for h in self.hypotheses.values():
            where = ", ".join(x for x in (h.node, h.category) if x)
            lines.append(f"  {h.id} [{h.status}] {h.text}" + (f" ({where})" if where else "")
                         + (f"; evidence: {', '.join(h.evidence)}" if h.evidence else "")
                         + (f"; {h.note}" if h.note else ""))
        if not self.hypotheses:
            lines.append("  (none yet)")
        lines.append("Map nodes checked:")
        lines += [f"  {node}: {result}" for node, result in self.checked.items()] or ["  (none)"]
        return "\n".join(lines)

    def snapshot(self) -> dict[str, Any]:
        return {"plan": [s.model_dump() for s in self.plan],
                "hypotheses": [h.model_dump() for h in self.hypotheses.values()],
                "checked": dict(self.checked)}

    # ------------------------------------------------------------- the model's tools

    def tools(self) -> list[Tool]:
        return [Tool.of(self.update_plan), Tool.of(self.add_hypothesis),
                Tool.of(self.update_hypothesis), Tool.of(self.mark_checked)]

    def update_plan(self, steps: Annotated[list[str], Field(min_length=1)],
                    done: list[int] = []) -> ToolOutput:  # noqa: B006 - read only
        """Replace your investigation plan with these steps, in order. `done` lists the
        numbers (from 1) of the steps already done. Keep it short: 3 to 8 steps."""
        bad = [n for n in done if not 1 <= n <= len(steps)]
        if bad:
            return ToolOutput.fail("update_plan: bad step numbers",
                                   f"done holds {bad}; step numbers run from 1 to {len(steps)}")
        with self._lock:
            self.plan = [PlanStep(text=t, done=i in done) for i, t in enumerate(steps, 1)]
        finished = sum(s.done for s in self.plan)
        return self._changed("plan", f"plan: {len(steps)} steps, {finished} done")

    def add_hypothesis(self, text: Annotated[str, Field(min_length=1)],
                       node: str | None = None, category: Category | None = None) -> ToolOutput:
        """Add a hypothesis about the root cause; `node` is the asset id where it would have
        started, `category` what kind of cause it would be. Returns its id (H1, H2…)."""
        with self._lock:
            hid = f"H{len(self.hypotheses) + 1}"
            self.hypotheses[hid] = Hypothesis(id=hid, text=text, node=node, category=category)
        return self._changed("scratchpad", f"hypothesis {hid}: {text}", {"id": hid})

    def update_hypothesis(self, id: str, status: HypothesisStatus,  # noqa: A002 - the model's word
                          evidence: list[str] = [],  # noqa: B006 - read only
                          note: str = "") -> ToolOutput:
        """Set a hypothesis's status: `supported` needs `evidence` (citation references such
        as sql:q1 or path@sha#L10-L12); `rejected` needs a `note` saying what ruled it out."""
        if id not in self.hypotheses:
            return ToolOutput.fail("update_hypothesis: no such id",
                                   f"no hypothesis {id!r}; the ids are {sorted(self.hypotheses)}")
        if status == "supported" and not evidence:
            return ToolOutput.fail("update_hypothesis: no evidence",
                                   "a supported hypothesis needs evidence: citation references")
        if status == "rejected" and not note:
            return ToolOutput.fail("update_hypothesis: no reason",
                                   "say in `note` what ruled the hypothesis out")
        with self._lock:
            h = self.hypotheses[id]
            self.hypotheses[id] = h.model_copy(update={
                "status": status, "evidence": list(dict.fromkeys([*h.evidence, *evidence])),
                "note": note or h.note})
        return self._changed("scratchpad", f"hypothesis {id} {status}" + (f": {note}" if note
                                                                           else ""))

    def mark_checked(self, node: Annotated[str, Field(min_length=1)],
                     result: Annotated[str, Field(min_length=1)]) -> ToolOutput:
        """Record that a map node (asset id) was checked, and in a few words what it showed."""
        with self._lock:
            self.checked[node] = result
        return self._changed("scratchpad", f"checked {node}: {result}")

    def _changed(self, kind: Literal["plan", "scratchpad"], summary: str,
                 data: dict[str, Any] | None = None) -> ToolOutput:
        if self._on_change:
            self._on_change(kind, summary, self.snapshot())
        return ToolOutput(status="ok", summary=summary, data=data)

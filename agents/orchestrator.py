"""The orchestrator: investigates one issue or question and ends with a validated report.

    result = investigate(inputs, orchestrator=claude, subagent=gemini, tools={"data": [...],
                         "logs": [...]}, orchestrator_tools=[system_map, search_memory])

It is an `AgentLoop` (agents/subagent.py) whose tools are the ones given (map, memory…), its
scratchpad's, and one `ask_<name>_agent` per subagent; it ends by calling `submit_report`, whose
argument must validate against `agents.report.Report` (errors go back to it as the tool result,
and it retries within its steps). `Orchestrator.run()` catches the three ways a loop ends in one
place: a submitted report, a limit (a report built from the scratchpad and the findings so far,
naming the limit), a model failure (the same, stating it). The case file is assembled in
`finally`, whatever happened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.casefile import CaseFile, CaseMeta, CodeCitation, LogExcerpt, MemoryHit, QueryRecord
from agents.guardrails import (
    Budget,
    LimitReached,
    Limits,
    assert_no_subagent_tools,
    instruction_phrases,
    untrusted,
)
from agents.models import ModelError, PriceTable, Provider, Spend, SpendReport
from agents.models.config import ModelsConfig
from agents.redact import redact_data
from agents.report import (
    CATEGORIES,
    REFERENCE_FORMATS,
    SEVERITY_CRITERIA,
    RejectedHypothesis,
    Report,
    RootCause,
    Severity,
)
from agents.scratchpad import Scratchpad
from agents.subagent import (
    AgentLoop,
    Finish,
    RunContext,
    Subagent,
    SubagentTools,
    Submitted,
    ask_spec,
    ask_tool_name,
    escaped,
    focus_of,
    render,
)
from agents.tools.base import Tool
from agents.trace import TraceEvent, Tracer, TraceSink

Status = Literal["done", "stopped", "failed"]
MAX_FALLBACK_CLAIMS = 12


class Investigation(BaseModel):
    """What to investigate: an issue opened by intake, or a free-text question."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: uuid4().hex[:12])
    title: str = Field(min_length=1, description="The issue's title, or the question cut short.")
    question: str | None = Field(None, description="A human's question, when there is one.")
    asset: str | None = Field(None, description="Asset id where the symptom showed.")
    signals_summary: str = Field("", description="What intake saw: the signals, in a few lines.")
    fingerprint: str | None = None
    issue_id: str | None = None
    severity: Severity | None = Field(None, description="Intake's estimate; a stopped "
                                                        "investigation's report keeps it.")
    trigger: str = Field("", description="What started it: auto, a button, a command.")

    @model_validator(mode="before")
    @classmethod
    def _title_from_question(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("title") and data.get("question"):
            question = " ".join(str(data["question"]).split())
            data = {**data, "title": question[:117] + "…" if len(question) > 120 else question}
        return data


class InvestigationResult(BaseModel):
    """The report (always valid), the trace as emitted, the spend, and the case file."""

    status: Status = Field(description="done: report submitted; stopped: a limit; failed: "
                                       "the model could not be used.")
    report: Report
    trace: list[TraceEvent]
    spend: SpendReport
    case_file: CaseFile


def investigate(inputs: Investigation, orchestrator: Provider, subagent: Provider,
                tools: SubagentTools, orchestrator_tools: list[Tool], *,
                limits: Limits | None = None, sink: TraceSink | None = None,
                spend: Spend | None = None, known_secrets: Iterable[str] = (),
                clock: Callable[[], float] = time.monotonic) -> InvestigationResult:
    """Investigate `inputs`; always returns a valid report (see the module docstring).

    `tools`: each subagent's read-only tools by name (data, logs, code, metrics);
    `orchestrator_tools`: the orchestrator's own (system map, memory search);
    `known_secrets`: the app's own secret values, redacted wherever they appear.
    """
    return Orchestrator(inputs, orchestrator, subagent, tools, orchestrator_tools,
                        limits=limits or Limits(), sink=sink, spend=spend,
                        known_secrets=tuple(known_secrets), clock=clock).run()


class Orchestrator:
    def __init__(self, inputs: Investigation, orchestrator: Provider, subagent: Provider,
                 tools: SubagentTools, orchestrator_tools: list[Tool], *, limits: Limits,
                 sink: TraceSink | None, spend: Spend | None, known_secrets: tuple[str, ...],
                 clock: Callable[[], float]) -> None:
        self.inputs, self.provider, self.limits = inputs, orchestrator, limits
        self.started_at = datetime.now(UTC)
        tracer = Tracer(sink, known_secrets=known_secrets)
        spend = spend or Spend(PriceTable(ModelsConfig().prices))
        self.ctx = RunContext(limits=limits, budget=Budget(limits, clock), tracer=tracer,
                              spend=spend, known_secrets=known_secrets)
        self.scratchpad = Scratchpad(lambda kind, summary, snapshot: tracer.emit(
            kind, "orchestrator", summary, data=snapshot, status="ok"))
        report = Finish("submit_report", "Submit the final report and end the investigation. "
                        "It is validated; if it is refused, fix what the error says and submit "
                        "again.", Report, "report", {"produced_by": orchestrator.model,
                                                     "limits_hit": None})
        notes = self.scratchpad.tools()
        reserved = {report.name, *(t.name for t in notes)}
        handlers = {}
        for name, subagent_tools in tools.items():
            assert_no_subagent_tools(name, subagent_tools, reserved)
            dispatch = Subagent(self.ctx, subagent, name, subagent_tools)
            handlers[dispatch.tool_name] = (ask_spec(name, subagent_tools), dispatch)
        self.loop = AgentLoop(
            self.ctx, agent="orchestrator", provider=orchestrator,
            tools=[*orchestrator_tools, *notes], handlers=handlers,
            finish=report, max_steps=limits.orchestrator_max_steps, template="orchestrator.md",
            system=render("orchestrator.md", "system", subagents=[
                (ask_tool_name(name), focus_of(name, t)) for name, t in tools.items()],
                severity=SEVERITY_CRITERIA, categories=CATEGORIES, formats=REFERENCE_FORMATS,
                max_steps=limits.orchestrator_max_steps, finish=report.name),
            notes=lambda step: render("orchestrator.md", "notes", step=step,
                                      max_steps=limits.orchestrator_max_steps,
                                      scratchpad=escaped(self.scratchpad.compact())))

    def run(self) -> InvestigationResult:
        report: Report | None = None
        status: Status = "failed"
        try:
            self.loop.run(self.task())
        except Submitted as done:
            report, status = done.value, "done"  # type: ignore[assignment]
        except LimitReached as limit:
            self.ctx.tracer.emit("limit", "orchestrator", f"stopped: {limit.label}",
                                 status="stopped")
            report = self.fallback(limit.label, f"It stopped at the {limit.label}.")
            status = "stopped"
        except ModelError as err:
            report = self.fallback("model error", f"The orchestrator's model failed: {err}.")
        finally:
            self.case = self.case_file(report, status)
        assert report is not None
        return InvestigationResult(status=status, report=self.case.report or report,
                                   trace=list(self.ctx.tracer.events),
                                   spend=self.ctx.spend.report(), case_file=self.case)

    def task(self) -> str:
        issue = {k: v for k, v in self.inputs.model_dump(include={
            "title", "question", "asset", "signals_summary", "fingerprint", "issue_id",
            "severity"}).items() if v}
        data = untrusted(json.dumps(issue, ensure_ascii=False, indent=1), name="issue")
        return render("orchestrator.md", "task", issue=redact_data(data, self.ctx.known))

    # ------------------------------------------------------------- the end

    def fallback(self, limits_hit: str, why: str) -> Report:
        """The report when no valid one was submitted: what the scratchpad and the findings
        establish, root cause unknown unless one hypothesis is supported with evidence."""
        pad, ctx = self.scratchpad, self.ctx
        claims = list({c.text: c for c in ctx.claims}.values())[:MAX_FALLBACK_CLAIMS]
        supported = [h for h in pad.hypotheses.values()
                     if h.status == "supported" and h.node and h.category]
        cause = supported[0] if len(supported) == 1 and claims else None
        if cause:
            root = RootCause(node=cause.node, category=cause.category,  # type: ignore[arg-type]
                             explanation=f"{cause.text} (supported by "
                                         f"{', '.join(cause.evidence)})")
        else:
            root = RootCause(node=None, category="unknown", explanation=(
                "Not established before the investigation ended. " + why))
        next_checks = [f"Check the open hypothesis: {h.text}" for h in pad.hypotheses.values()
                       if h.status == "open"]
        next_checks += [f"Not done yet: {s.text}" for s in pad.plan if not s.done]
        next_checks.append("Re-run the investigation (a narrower question, or a higher limit "
                           "in `limits:` of sleuth.yaml)" if limits_hit != "model error" else
                           "Check the model provider's status and key, then re-run")
        inputs = self.inputs
        asset = [inputs.asset] if inputs.asset and " " not in inputs.asset.strip() else []
        done = f"{len(ctx.steps)} tool calls, {len(claims)} findings"
        return Report(
            title=f"Incomplete: {inputs.title}"[:120],
            summary=f"The investigation ended before a report was submitted. {why} "
                    f"Root cause: {root.node or 'unknown'}. What was learned so far is below.",
            what_happened=(inputs.signals_summary or inputs.title) + f"\n\nInvestigation: {done}"
                          f"; {why}",
            impacted_assets=asset, severity=inputs.severity or "SEV3", root_cause=root,
            confidence=0.5 if cause else 0.2, evidence=claims,
            rejected_hypotheses=[RejectedHypothesis(hypothesis=h.text, why=h.note)
                                 for h in pad.hypotheses.values() if h.status == "rejected"],
            ruled_out=[f"{node}: {result}" for node, result in pad.checked.items()],
            next_checks=next_checks, produced_by=self.provider.model, limits_hit=limits_hit)

    def flagged(self, report: Report) -> Report:
        """The report with every passage of data that talked to the model flagged, unless
        the model already quoted it."""
        said = instruction_phrases(report.model_dump_json())
        flags = [f"Tool output ({s.agent} agent, {s.tool}) holds text that reads like "
                 f"instructions to an AI agent; it was treated as data and not followed (only "
                 f"read-only tools ran): \"{s.excerpt}\". Check who wrote it and why."
                 for s in self.ctx.suspicious if not instruction_phrases(s.excerpt) <= said]
        return report.model_copy(update={"next_checks": [*report.next_checks, *flags]}) \
            if flags else report

    def case_file(self, report: Report | None, status: Status) -> CaseFile:
        ctx = self.ctx
        if report is not None:
            report = redact_data(self.flagged(report), ctx.known)
            rc = report.root_cause
            ctx.tracer.emit("report", "orchestrator", f"{report.severity} · {report.title} · "
                            f"root cause {rc.node or 'unknown'} ({rc.category}) · confidence "
                            f"{report.confidence_label}", status=status,
                            data=report.model_dump(mode="json"))
        records = list(ctx.records.values())
        meta = CaseMeta(
            investigation_id=self.inputs.id, issue_id=self.inputs.issue_id,
            title=self.inputs.title, trigger=self.inputs.trigger, started_at=self.started_at,
            finished_at=datetime.now(UTC), produced_by=self.provider.model,
            status=status if report is not None else "failed")
        return CaseFile(
            meta=meta, steps=ctx.steps, report=report,
            queries=[r for r in records if isinstance(r, QueryRecord)],
            logs=[r for r in records if isinstance(r, LogExcerpt)],
            code=[r for r in records if isinstance(r, CodeCitation)],
            memory=[r for r in records if isinstance(r, MemoryHit)])


"""One investigation, end to end: inputs from the store (an issue), a demo scenario or a question;
the world of the settings; the models (or the offline policy without keys); a trace that is
stored before it is shown; the report and the case file, stored and written to disk.

    done = investigate_issue(settings, engine, issue_id=3, console=console)
    done.result.report, done.case_paths

`sleuth investigate` and the evals call these; the Slack app will too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from agents.models import PriceTable, Provider, Spend
from agents.models.config import ModelPrice
from agents.offline import MODEL as OFFLINE_MODEL
from agents.offline import OfflinePolicy
from agents.orchestrator import Investigation as Inputs
from agents.orchestrator import InvestigationResult, investigate
from agents.trace import TraceEvent, TraceSink
from bot.config import Secrets, Settings
from bot.errors import SleuthError
from bot.models import provider_for
from bot.store.models import (
    CaseFile,
    Investigation,
    InvestigationStatus,
    Issue,
    Report,
    Signal,
    TraceStep,
    utcnow,
)
from bot.world import build_world

Policy = Literal["auto", "offline", "live"]
MAX_SIGNALS_SHOWN = 12


@dataclass
class Investigated:
    """What one investigation left: its store id, the result, the case file's paths, seconds,
    and the stored report's id (what feedback and approvals point at)."""

    id: int
    result: InvestigationResult
    case_paths: tuple[Path, Path]
    seconds: float
    policy: str
    report_id: int


# ---------------------------------------------------------------- inputs

def issue_inputs(engine: Engine, issue_id: int, trigger: str = "cli") -> Inputs:
    """The orchestrator's inputs for a stored issue: its title, asset and signals."""
    with Session(engine) as session:
        issue = session.get(Issue, issue_id)
        if issue is None:
            raise SleuthError(f"no issue {issue_id} in the store; `sleuth issues --all` lists "
                              "them")
        signals = session.exec(select(Signal).where(Signal.issue_id == issue_id)
                               .order_by(col(Signal.observed_at))).all()
    lines = [f"first seen {issue.first_seen.isoformat()}, last seen "
             f"{issue.last_seen.isoformat()}; {len(signals)} signals; severity estimate "
             f"{issue.severity}; assets: {', '.join(issue.assets)}"]
    shown = _distinct(signals)[:MAX_SIGNALS_SHOWN]
    lines += [f"- {s.kind} {s.asset}: {' '.join(s.title.split())[:240]}" for s in shown]
    severity = issue.severity if issue.severity in ("SEV1", "SEV2", "SEV3", "SEV4") else None
    return Inputs(title=issue.title[:200], asset=issue.asset, signals_summary="\n".join(lines),
                  fingerprint=issue.fingerprint, issue_id=str(issue.id), severity=severity,
                  trigger=trigger)


def _distinct(signals: list[Signal]) -> list[Signal]:
    """One signal per (kind, asset, title): the summary names what happened, not how often."""
    seen: dict[tuple[str, str, str], Signal] = {}
    for s in signals:
        seen.setdefault((s.kind, s.asset, s.title), s)
    failures = [s for s in seen.values() if s.kind != "log_error"]
    return failures + [s for s in seen.values() if s.kind == "log_error"]


def question_inputs(question: str, trigger: str = "cli") -> Inputs:
    if not question.strip():
        raise SleuthError("the question is empty; say what to investigate")
    return Inputs(question=question.strip(), title="", trigger=trigger)


def scenario_issues(settings: Settings, engine: Engine, name: str,
                    console: Console | None = None, cache: Path | None = None) -> list[int]:
    """Run a demo scenario on the demo platform, then intake once; the ids of the issues it
    opened (or updated, in a store that already knew them), most severe first. `cache`: the healthy history's (default under the home)."""
    from bot.demo.platform import run_scenario
    from bot.demo.scenarios import get_scenario
    from bot.intake.runtime import build_poller, reset_intake

    scenario = get_scenario(name)
    default_store = settings.store.url is None  # the demo's own: its old issues are stale
    settings = settings.with_defaults()
    run_scenario(scenario, paths=settings.demo_platform, days=settings.demo.days,
                 seed=settings.demo.seed, cache=cache or settings.home / "demo" / "cache",
                 console=console)
    if default_store:
        reset_intake(engine, settings)
    _, outcome = build_poller(settings, engine, notice=lambda _text: None).poll_all()
    touched = dict.fromkeys([*outcome.opened, *outcome.reopened, *outcome.updated])
    with Session(engine) as session:
        issues = [session.get(Issue, i) for i in touched]
    found = sorted((i for i in issues if i is not None), key=lambda i: (i.severity, i.id))
    return [i.id for i in found if i.id is not None]


# ---------------------------------------------------------------- providers

def providers(settings: Settings, policy: Policy = "auto",
              secrets: Secrets | None = None) -> tuple[Provider, Provider]:
    """(orchestrator, subagent): the configured models when their keys are set, else the
    offline policy for both; `live` insists on the models, `offline` on the policy."""
    if policy == "offline":
        return OfflinePolicy(), OfflinePolicy()
    orchestrator = provider_for(settings, "orchestrator", secrets)
    subagent = provider_for(settings, "subagent", secrets)
    if orchestrator is None or subagent is None:
        if policy == "live":
            raise SleuthError("--policy live needs the models' API keys: set ANTHROPIC_API_KEY "
                              "(orchestrator) and GEMINI_API_KEY (subagents)")
        return OfflinePolicy(), OfflinePolicy()
    return orchestrator, subagent


# ---------------------------------------------------------------- the trace

class StoredTrace:
    """A trace sink that stores each event as a TraceStep, then shows it: on a console, and
    in `then` (the Slack thread), which sees only what is stored."""

    def __init__(self, engine: Engine, investigation_id: int,
                 console: Console | None = None, then: TraceSink | None = None) -> None:
        self.engine, self.id, self.console, self.then = engine, investigation_id, console, then

    def emit(self, event: TraceEvent) -> None:
        with Session(self.engine) as session:
            session.add(TraceStep(
                investigation_id=self.id, seq=event.seq, agent=event.agent, kind=event.kind,
                tool=event.tool, arguments=event.arguments or {}, summary=event.summary,
                status=event.status or "ok", tokens_in=event.tokens_in,
                tokens_out=event.tokens_out, cost_usd=event.cost_usd,
                latency_ms=event.latency_ms, created_at=event.at))
            session.commit()
        line = trace_line(event)
        if self.console is not None and line:
            self.console.print(line, highlight=False, soft_wrap=True)
        if self.then is not None:
            self.then.emit(event)


STYLE = {"plan": "bold cyan", "scratchpad": "cyan", "tool_call": "dim", "tool_result": "",
         "subagent_start": "magenta", "subagent_end": "magenta", "finding": "green",
         "model_call": "dim", "error": "red", "limit": "yellow", "report": "bold"}
QUIET = ("model_call",)  # shown only in the store: one per turn, they crowd the terminal


def trace_line(event: TraceEvent) -> str:
    if event.kind in QUIET:
        return ""
    style = STYLE.get(event.kind) or ("red" if event.status == "error" else "")
    text = f"{event.seq:>3} {event.agent:<12} {escape(event.summary)}"
    return f"[{style}]{text}[/{style}]" if style else text


# ---------------------------------------------------------------- one investigation

def run_investigation(settings: Settings, engine: Engine, inputs: Inputs, *,
                      policy: Policy = "auto", console: Console | None = None,
                      secrets: Secrets | None = None, sink: TraceSink | None = None,
                      on_start: Callable[[int, str], None] | None = None) -> Investigated:
    """Investigate `inputs` over the world of `settings`; stores every step, the report and
    the case file, and writes the case file to `<home>/cases/<id>.md` and `.json`.

    `sink` sees each step after it is stored (the Slack thread); `on_start` gets the
    investigation's id and policy (a model, or "offline") as soon as it is stored, before the
    first step."""
    settings = settings.with_defaults()
    secrets = secrets or Secrets.from_env()
    orchestrator, subagent = providers(settings, policy, secrets)
    offline = orchestrator.model == OFFLINE_MODEL
    world = build_world(settings, secrets)
    subagent_tools, orchestrator_tools = world.toolsets()
    with Session(engine) as session:
        row = Investigation(issue_id=int(inputs.issue_id) if inputs.issue_id else None,
                            question=inputs.question or inputs.title, trigger=inputs.trigger
                            or "cli", policy="offline" if offline else orchestrator.model)
        session.add(row)
        session.commit()
        session.refresh(row)
        assert row.id is not None
        run_id, run_policy = row.id, row.policy
    inputs = inputs.model_copy(update={"id": str(run_id)})
    if on_start is not None:
        on_start(run_id, run_policy)
    prices = {**settings.models.prices, OFFLINE_MODEL: ModelPrice(input=0, output=0)}
    started = time.perf_counter()
    result = investigate(inputs, orchestrator, subagent, subagent_tools, orchestrator_tools,
                         limits=settings.limits, sink=StoredTrace(engine, run_id, console, sink),
                         spend=Spend(PriceTable(prices)), known_secrets=world.known_secrets)
    seconds = time.perf_counter() - started
    paths, report_id = _store_outcome(settings, engine, run_id, result, world.known_secrets)
    return Investigated(run_id, result, paths, seconds, "offline" if offline else
                        orchestrator.model, report_id)


def _store_outcome(settings: Settings, engine: Engine, run_id: int,
                   result: InvestigationResult, known: tuple[str, ...]
                   ) -> tuple[tuple[Path, Path], int]:
    report, case = result.report, result.case_file
    markdown, body = case.to_markdown(known), case.to_json(known)
    folder = settings.home / "cases"
    folder.mkdir(parents=True, exist_ok=True)
    md_path, json_path = folder / f"{run_id}.md", folder / f"{run_id}.json"
    md_path.write_text(markdown, encoding="utf-8")
    json_path.write_text(body, encoding="utf-8")
    with Session(engine) as session:
        row = session.get(Investigation, run_id)
        assert row is not None
        row.status = InvestigationStatus(result.status)
        row.ended_at = utcnow()
        total = result.spend.total
        row.tokens_in, row.tokens_out = total.usage.input_tokens, total.usage.output_tokens
        row.cost_usd = total.cost_usd
        session.add(row)
        stored = Report(investigation_id=run_id, severity=report.severity,
                        root_cause_node=report.root_cause.node,
                        confidence=report.confidence, body=report.model_dump(mode="json"))
        session.add(stored)
        session.add(CaseFile(investigation_id=run_id, markdown=markdown,
                             body=case.redacted(known).model_dump(mode="json")))
        session.commit()
        assert stored.id is not None
        return (md_path, json_path), stored.id


def investigate_issue(settings: Settings, engine: Engine, issue_id: int,
                      **kwargs) -> Investigated:
    return run_investigation(settings, engine, issue_inputs(engine, issue_id), **kwargs)


def investigate_question(settings: Settings, engine: Engine, question: str,
                         **kwargs) -> Investigated:
    return run_investigation(settings, engine, question_inputs(question), **kwargs)


def investigate_scenario(settings: Settings, engine: Engine, name: str,
                         console: Console | None = None, cache: Path | None = None,
                         **kwargs) -> list[Investigated]:
    """Run the scenario and intake, then investigate every issue it opened (none for noise)."""
    opened = scenario_issues(settings, engine, name, console, cache)
    return [investigate_issue(settings, engine, i, console=console, **kwargs) for i in opened]


def report_of(engine: Engine, investigation_id: int) -> Report | None:
    """The stored report an investigation ended with (None while it runs)."""
    with Session(engine) as session:
        return session.exec(select(Report).where(Report.investigation_id == investigation_id)
                            ).first()

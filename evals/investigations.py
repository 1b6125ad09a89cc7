"""End-to-end evals of investigations: every demo scenario, scored against its ground truth.

For each scenario: the demo platform runs it, intake opens its issues, and each issue is
investigated (offline policy or the live models). Each report is scored: the root-cause node
at top-1 (dbt test ids match without their hash suffix), the category, impacted-asset
precision and recall, the severity, and how many of its citations verify against the world
(each sql citation re-runs, each code citation's path@sha exists, each log line is there).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from agents.report import Report
from bot.casecheck import check_citation
from bot.config import Settings, StoreConfig
from bot.demo.scenarios import SCENARIOS, Scenario
from bot.demo.truth import GroundTruth
from bot.investigate import Investigated, Policy, investigate_scenario
from bot.store import open_store
from bot.world import World, build_world


class Row(BaseModel):
    """One scenario's score."""

    scenario: str
    issues: int
    expected_issues: int
    root_causes: int = Field(description="Root causes in the ground truth.")
    top1: int = Field(description="Of those, how many a report names at top-1.")
    category: int = Field(description="Of those, how many with the right category too.")
    precision: float | None = None
    recall: float | None = None
    severity_ok: bool | None = None
    severities: list[str] = Field(default_factory=list)
    named: list[str] = Field(default_factory=list, description="Root-cause nodes reported.")
    citations: int = 0
    verified: int = 0
    unverified: list[str] = Field(default_factory=list)
    steps: int = 0
    tool_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    statuses: list[str] = Field(default_factory=list)


class EvalRun(BaseModel):
    policy: str
    rows: list[Row]
    totals: dict[str, Any]


# ---------------------------------------------------------------- scoring

def same_node(reported: str | None, truth: str) -> bool:
    """Ground truth names tests without dbt's hash suffix."""
    if not reported:
        return False
    return reported == truth or reported.rsplit(".", 1)[0] == truth


def score(scenario: Scenario, done: list[Investigated], verify: World | None) -> Row:
    truth = scenario.truth
    reports = [d.result.report for d in done]
    hit = [c for c in truth.root_causes
           if any(same_node(r.root_cause.node, c.node) for r in reports)]
    right = [c for c in truth.root_causes if any(
        same_node(r.root_cause.node, c.node) and r.root_cause.category == c.category
        for r in reports)]
    precision, recall = _overlap(reports, truth)
    checked = [check_citation(c, d.result.case_file, verify) for d in done
               for c in d.result.report.citations()] if verify else []
    known = [c.verdict == "holds" for c in checked if c.verdict != "unchecked"]
    steps = [d.result.case_file.steps for d in done]
    return Row(
        scenario=scenario.name, issues=len(done), expected_issues=truth.expected_issues,
        root_causes=len(truth.root_causes), top1=len(hit), category=len(right),
        precision=precision, recall=recall,
        severity_ok=(any(r.severity == truth.severity for r in reports) if reports else
                     truth.expected_issues == 0),
        severities=[r.severity for r in reports],
        named=[r.root_cause.node or "unknown" for r in reports],
        citations=len(known), verified=sum(known),
        unverified=[c.citation.reference for c in checked
                    if c.verdict in ("changed", "broken")][:10],
        steps=sum(len(s) for s in steps),
        tool_calls=sum(1 for s in steps for x in s if not x.tool.startswith("(")),
        tokens=sum(d.result.spend.total.usage.total for d in done),
        cost_usd=sum(d.result.spend.total.cost_usd for d in done),
        seconds=sum(d.seconds for d in done), statuses=[d.result.status for d in done])


def _overlap(reports: list[Report], truth: GroundTruth) -> tuple[float | None, float | None]:
    said = {a for r in reports for a in r.impacted_assets}
    wanted = set(truth.impacted_assets)
    if not said and not wanted:
        return None, None
    right = {a for a in said if any(same_node(a, w) for w in wanted)}
    precision = len(right) / len(said) if said else 0.0
    recall = len({w for w in wanted if any(same_node(a, w) for a in said)}) / len(wanted) \
        if wanted else None
    return precision, recall


# ---------------------------------------------------------------- running

def run_evals(settings: Settings, *, policy: Policy = "offline", console: Console | None = None,
              scenarios: list[Scenario] | None = None, workdir: Path | None = None) -> EvalRun:
    """Every scenario end to end in a scratch home (the user's store is not touched); the
    demo build cache of the user's home is reused."""
    cache = settings.home / "demo" / "cache"
    rows = []
    with tempfile.TemporaryDirectory(prefix="sleuth-evals-") as tmp:
        root = workdir or Path(tmp)
        for scenario in scenarios or SCENARIOS:
            home = root / scenario.name
            url = f"sqlite:///{home / 'sleuth.db'}"
            local = Settings(
                home=home, store=StoreConfig(url=url), demo=settings.demo,
                intake=settings.intake, embeddings=settings.embeddings, models=settings.models,
                limits=settings.limits, tools=settings.tools)
            engine = open_store(url)
            started = time.perf_counter()
            done = investigate_scenario(local, engine, scenario.name, policy=policy,
                                        cache=cache)
            row = score(scenario, done, build_world(local) if done else None)
            rows.append(row)
            if console is not None:
                console.print(f"{scenario.name}: {row.top1}/{row.root_causes} root causes, "
                              f"{row.seconds:.1f} s investigating, "
                              f"{time.perf_counter() - started:.0f} s in all", highlight=False)
            engine.dispose()
    return EvalRun(policy=policy, rows=rows, totals=totals(rows))


def totals(rows: list[Row]) -> dict[str, Any]:
    roots = sum(r.root_causes for r in rows)
    investigations = sum(r.issues for r in rows)
    seconds = sum(r.seconds for r in rows)
    pr = [r.precision for r in rows if r.precision is not None]
    rc = [r.recall for r in rows if r.recall is not None]
    return {
        "scenarios": len(rows), "root_causes": roots,
        "top1_right": sum(r.top1 for r in rows),
        "top1": round(sum(r.top1 for r in rows) / roots, 3) if roots else None,
        "category": round(sum(r.category for r in rows) / roots, 3) if roots else None,
        "precision": round(sum(pr) / len(pr), 3) if pr else None,
        "recall": round(sum(rc) / len(rc), 3) if rc else None,
        "severity": round(sum(bool(r.severity_ok) for r in rows) / len(rows), 3) if rows
        else None,
        "issues_exact": sum(r.issues == r.expected_issues for r in rows),
        "citations": sum(r.citations for r in rows),
        "citations_verified": sum(r.verified for r in rows),
        "investigations": investigations, "steps": sum(r.steps for r in rows),
        "tool_calls": sum(r.tool_calls for r in rows), "tokens": sum(r.tokens for r in rows),
        "cost_usd": round(sum(r.cost_usd for r in rows), 4),
        "seconds": round(seconds, 2),
        "mean_seconds": round(seconds / investigations, 2) if investigations else None,
    }


def table(run: EvalRun) -> Table:
    out = Table(title=f"Investigation evals ({run.policy})")
    for column in ("scenario", "issues", "root cause", "category", "precision", "recall",
                   "severity", "citations ok", "steps", "tokens", "cost $", "seconds"):
        out.add_column(column)
    for r in run.rows:
        out.add_row(r.scenario, f"{r.issues}/{r.expected_issues}", f"{r.top1}/{r.root_causes}",
                    f"{r.category}/{r.root_causes}", _pct(r.precision), _pct(r.recall),
                    f"{', '.join(r.severities) or '—'} {'✓' if r.severity_ok else '✗'}",
                    f"{r.verified}/{r.citations}", str(r.steps), str(r.tokens),
                    f"{r.cost_usd:.4f}", f"{r.seconds:.1f}")
    t = run.totals
    out.add_row("total", f"{t['issues_exact']}/{t['scenarios']} exact",
                f"{t['top1_right']}/{t['root_causes']}", _pct(t["category"]),
                _pct(t["precision"]), _pct(t["recall"]), _pct(t["severity"]),
                f"{t['citations_verified']}/{t['citations']}", str(t["steps"]),
                str(t["tokens"]), f"{t['cost_usd']:.4f}", f"{t['seconds']:.1f}")
    return out


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"

"""`python -m bench grouping`: issues opened per demo scenario against its ground truth.

Every scenario runs on the demo platform (healthy history from the cache after the first),
then intake polls every source once into a fresh store, exactly as `sleuth run --once`
does: noise filter, fingerprint, similarity and lineage. Beside it, the reference a naive
alerting setup gives: one alert per failed task, test or error signal, no filtering or
grouping (what an on-call person gets from Airflow's and dbt's own failure emails).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sqlmodel import Session, select

from bench.report import Result
from bot.config import Settings
from bot.demo.platform import run_scenario
from bot.demo.scenarios import SCENARIOS, Scenario
from bot.intake.runtime import build_poller
from bot.store import open_store
from bot.store.models import Issue, Signal, SignalStatus

DAYS = 7
SEED = 7


def run() -> Result:
    rows: list[list[object]] = []
    exact, detected, with_roots = 0, 0, 0
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-grouping-") as tmp:
        settings = Settings(home=Path(tmp) / "home")
        for scenario in SCENARIOS:
            run_scenario(scenario, paths=settings.demo_platform, days=DAYS, seed=SEED,
                         cache=Path(tmp) / "cache")
            row, ok, root = _intake(settings, scenario, Path(tmp) / f"{scenario.name}.db")
            rows.append(row)
            exact += ok
            if scenario.truth.root_causes:
                with_roots += 1
                detected += root
    return Result(
        name="grouping",
        columns=["scenario", "expected", "opened", "signals", "dropped as noise",
                 "naive alerts", "root seen", "intake s"],
        rows=rows,
        figures={"issues_exact": exact, "scenarios": len(SCENARIOS),
                 "root_detected": detected, "scenarios_with_root": with_roots},
        notes=["naive alerts: one per stored signal, as failure e-mails would send them.",
               "root seen: an issue names the ground truth's root-cause node, or holds a "
               "signal at one of the symptoms the scenario must produce (for a metric "
               "symptom: an anomaly of that metric)."],
    )


def _intake(settings: Settings, scenario: Scenario, db: Path) -> tuple[list[object], bool, bool]:
    engine = open_store(f"sqlite:///{db}")
    settings = settings.model_copy(update={"store": settings.store.model_copy(
        update={"url": f"sqlite:///{db}"})})
    poller = build_poller(settings, engine, notice=lambda _text: None)
    started = time.perf_counter()
    poller.poll_all()  # (results, outcome): the store holds what counts here
    seconds = time.perf_counter() - started
    with Session(engine) as session:
        issues = session.exec(select(Issue)).all()
        signals = session.exec(select(Signal)).all()
    dropped = sum(s.status == SignalStatus.filtered for s in signals)
    truth = scenario.truth
    wanted = {c.node for c in truth.root_causes} | {s.node for s in truth.symptoms}
    grouped = [s for s in signals if s.issue_id is not None]
    root = any(_same(s.asset, w) or _same(issues_root(issues, s), w) for s in grouped
               for w in wanted) or any(_metric_hit(s, truth) for s in grouped)
    ok = len(issues) == truth.expected_issues
    return ([scenario.name, truth.expected_issues, f"{len(issues)}{'' if ok else ' ✗'}",
             len(signals), dropped, len(signals), "yes" if root else
             ("—" if not truth.root_causes else "no"), f"{seconds:.1f}"], ok, root)


def _same(asset: str, node: str) -> bool:
    """Ground truth names tests without dbt's hash suffix."""
    return asset == node or asset.rsplit(".", 1)[0] == node


def issues_root(issues: list[Issue], signal: Signal) -> str:
    return next((i.asset for i in issues if i.id == signal.issue_id), "")


def _metric_hit(signal: Signal, truth) -> bool:  # noqa: ANN001 - GroundTruth
    """A metric symptom is seen when an anomaly's query reads that metric."""
    query = str(signal.detail.get("query", ""))
    return signal.kind == "metric_anomaly" and any(
        s.kind == "metric_shift" and s.node in query for s in truth.symptoms)

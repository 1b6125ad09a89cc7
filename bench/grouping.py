"""`python -m bench grouping`: issues opened per demo scenario against its ground truth.

Every scenario runs on the demo platform (healthy history from the cache after the first),
then intake polls every source once into a fresh store, exactly as `sleuth run --once`
does: noise filter, fingerprint, similarity and lineage. Beside it, the reference a naive
alerting setup gives: one alert per failed task, test or error signal, no filtering or
grouping (what an on-call person gets from Airflow's and dbt's own failure emails).

The similarity threshold is also checked on issue texts (the texts grouping compares, not
log lines): every pair of signals from two scenarios with different ground-truth roots and
different fingerprints (an equal fingerprint joins before similarity is asked) is a pair
similarity must not join, so the highest similarity among them is the margin below the
threshold.
"""

from __future__ import annotations

import tempfile
import time
from itertools import combinations
from pathlib import Path

from sqlmodel import Session, select

from bench.report import Result
from bot.config import Settings
from bot.demo.platform import run_scenario
from bot.demo.scenarios import SCENARIOS, Scenario
from bot.intake.grouping import signal_fingerprint, signal_text
from bot.intake.runtime import build_poller, system_map
from bot.store import open_store
from bot.store.models import Issue, Signal, SignalStatus
from bot.vectors.embedders import make_embedder

DAYS = 7
SEED = 7


def run() -> Result:
    rows: list[list[object]] = []
    texts: list[_Text] = []
    exact, detected, with_roots = 0, 0, 0
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-grouping-") as tmp:
        settings = Settings(home=Path(tmp) / "home")
        for scenario in SCENARIOS:
            run_scenario(scenario, paths=settings.demo_platform, days=DAYS, seed=SEED,
                         cache=Path(tmp) / "cache")
            row, ok, root = _intake(settings, scenario, Path(tmp) / f"{scenario.name}.db",
                                    texts)
            rows.append(row)
            exact += ok
            if scenario.truth.root_causes:
                with_roots += 1
                detected += root
        margin = _similarity_margin(settings, texts)
    return Result(
        name="grouping",
        columns=["scenario", "expected", "opened", "signals", "dropped as noise",
                 "naive alerts", "root seen", "joined by fp/sim/lineage", "intake s"],
        rows=rows,
        figures={"issues_exact": exact, "scenarios": len(SCENARIOS),
                 "root_detected": detected, "scenarios_with_root": with_roots, **margin},
        notes=["naive alerts: one per stored signal, as failure e-mails would send them.",
               ("root seen: an issue names the ground truth's root-cause node, or holds a "
                "signal at one of the symptoms the scenario must produce (for a metric "
                "symptom: an anomaly of that metric)."),
               _margin_note(margin)],
    )


def _margin_note(margin: dict[str, float | int]) -> str:
    return (f"similarity on issue texts (threshold {margin['similarity_threshold']}): "
            f"{margin['cross_root_pairs']} pairs of signals from scenarios with different "
            f"roots and fingerprints, {margin['cross_root_pairs_joinable']} at or above it, "
            f"the highest {margin['max_cross_root_similarity']}.")


_Text = tuple[str, frozenset[str], str, str]  # scenario, its roots, fingerprint, text


def _similarity_margin(settings: Settings, texts: list[_Text]) -> dict[str, float | int]:
    """How far apart issue texts of different root problems are, under the configured
    embedder, against the threshold that lets similarity join them."""
    threshold = settings.intake.grouping.similarity_threshold
    vectors = make_embedder(settings.embeddings).embed([t[3] for t in texts])
    cosine = vectors @ vectors.T
    cross = [
        float(cosine[i, j]) for i, j in combinations(range(len(texts)), 2)
        if texts[i][0] != texts[j][0] and not texts[i][1] & texts[j][1]
        and texts[i][2] != texts[j][2]
    ]
    return {
        "similarity_threshold": threshold,
        "cross_root_pairs": len(cross),
        "cross_root_pairs_joinable": sum(c >= threshold for c in cross),
        "max_cross_root_similarity": round(max(cross, default=0.0), 3),
    }


def _intake(settings: Settings, scenario: Scenario, db: Path,
            texts: list[_Text]) -> tuple[list[object], bool, bool]:
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
    system = system_map(settings.with_defaults())
    roots = frozenset(c.node for c in truth.root_causes)
    texts += [(scenario.name, roots, signal_fingerprint(s), signal_text(s, system))
              for s in grouped]
    return ([scenario.name, truth.expected_issues, f"{len(issues)}{'' if ok else ' ✗'}",
             len(signals), dropped, len(signals), "yes" if root else
             ("—" if not truth.root_causes else "no"), _joins(grouped), f"{seconds:.1f}"],
            ok, root)


def _joins(grouped: list[Signal]) -> str:
    """How many signals joined an existing issue, by each rule (`group_reason`)."""
    reasons = [s.group_reason or "" for s in grouped]
    counts = [sum(r.startswith(rule) for r in reasons)
              for rule in ("fingerprint", "similarity", "lineage")]
    return "/".join(map(str, counts))


def _same(asset: str, node: str) -> bool:
    """Ground truth names tests without dbt's hash suffix."""
    return asset == node or asset.rsplit(".", 1)[0] == node


def issues_root(issues: list[Issue], signal: Signal) -> str:
    return next((i.asset for i in issues if i.id == signal.issue_id), "")


def _metric_hit(signal: Signal, truth) -> bool:  # truth: a scenario's GroundTruth
    """A metric symptom is seen when an anomaly's query reads that metric."""
    query = str(signal.detail.get("query", ""))
    return signal.kind == "metric_anomaly" and any(
        s.kind == "metric_shift" and s.node in query for s in truth.symptoms)

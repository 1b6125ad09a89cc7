"""`sleuth investigate --scenario schema_change`, through the Python API: the demo platform runs
the scenario, intake opens its issue, the offline policy investigates it over the real world
(DuckDB, logs, git, metrics), and the trace, report and case file are stored and written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from agents.casefile import CaseFile as CaseFileModel
from bot.config import DemoConfig, Settings, StoreConfig
from bot.demo.paths import PlatformPaths
from bot.demo.scenarios import get_scenario
from bot.casecheck import check_citation, verify_case
from bot.investigate import investigate_question, investigate_scenario
from bot.store import open_store
from bot.store.models import CaseFile, Investigation, Report, TraceStep
from bot.world import build_world
from evals.investigations import same_node, score

from tests.conftest import DEMO_DAYS, DEMO_SEED

pytestmark = pytest.mark.slow


def test_the_offline_policy_finds_the_renamed_column(
        demo_platform: tuple[PlatformPaths, Path], tmp_path: Path) -> None:
    paths, _ = demo_platform
    url = f"sqlite:///{tmp_path / 'sleuth.db'}"
    settings = Settings(home=paths.root.parents[1], store=StoreConfig(url=url),
                        demo=DemoConfig(days=DEMO_DAYS, seed=DEMO_SEED))
    engine = open_store(url)

    (done,) = investigate_scenario(settings, engine, "schema_change")

    report = done.result.report
    truth = get_scenario("schema_change").truth.root_causes[0]
    assert done.result.status == "done" and done.policy == "offline"
    assert same_node(report.root_cause.node, truth.node)
    assert report.root_cause.category == truth.category
    assert report.produced_by == "offline-policy" and report.evidence
    assert any(c.kind == "log" and "load_shop_orders" in c.reference
               for c in report.citations())
    with Session(engine) as session:
        run = session.get(Investigation, done.id)
        steps = session.exec(select(TraceStep).where(TraceStep.investigation_id == done.id)
                             ).all()
        stored = session.exec(select(Report).where(Report.investigation_id == done.id)).one()
        case_row = session.exec(select(CaseFile).where(CaseFile.investigation_id == done.id)
                                ).one()
    assert run is not None and run.status == "done" and run.policy == "offline"
    assert [s.seq for s in steps] == [e.seq for e in done.result.trace]
    assert stored.root_cause_node == truth.node and stored.body["severity"] == report.severity
    md, js = done.case_paths
    assert md == settings.home / "cases" / f"{done.id}.md" and md.read_text() == case_row.markdown
    case = CaseFileModel.from_json(js.read_text())
    assert case.report == report and case.steps
    assert case.unresolved_citations() == []
    # `sleuth case verify`: every citation re-resolves against the platform as it is now
    checks = verify_case(case, build_world(settings))
    assert checks and all(c.verdict == "holds" for c in checks), checks
    # the evals' scoring of the same run: right node, every citation verified
    row = score(get_scenario("schema_change"), [done], build_world(settings))
    assert row.top1 == 1 and row.citations > 0 and row.verified == row.citations
    assert row.unverified == []
    # …and one that no longer holds is reported, not raised
    bad = case.report.citations()[0].model_copy(update={"excerpt": "a line never logged"})
    assert check_citation(bad, case, build_world(settings)).verdict in ("changed", "broken")

    # a question about what just broke finds the same node
    asked = investigate_question(settings, engine, "why did load_shop_orders fail?")
    assert asked.result.report.root_cause.node == truth.node

"""Intake end to end on the real demo platform: every source polled once into a real store,
then the issues opened are checked against the scenario's ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.config import Settings, StoreConfig
from bot.demo.paths import PlatformPaths
from bot.demo.platform import run_scenario
from bot.demo.scenarios import get_scenario
from bot.intake.runtime import build_poller
from bot.store import open_store
from bot.store.models import Issue, Signal, SignalStatus

from tests.conftest import DEMO_DAYS, DEMO_SEED

pytestmark = pytest.mark.slow


def intake_after(name: str, demo_platform: tuple[PlatformPaths, Path],
                 tmp_path: Path) -> tuple[list[Issue], list[Signal]]:
    paths, cache = demo_platform
    run_scenario(get_scenario(name), paths=paths, days=DEMO_DAYS, seed=DEMO_SEED, cache=cache)
    url = f"sqlite:///{tmp_path / 'sleuth.db'}"
    settings = Settings(home=paths.root.parents[1], store=StoreConfig(url=url))
    assert settings.demo_platform == paths
    engine = open_store(url)
    results, _ = build_poller(settings, engine, notice=lambda _t: None).poll_all()
    assert all(r.status == "ok" for r in results), results
    with Session(engine) as session:
        return list(session.exec(select(Issue)).all()), list(session.exec(select(Signal)).all())


def test_a_flaky_retry_opens_nothing_and_says_why(demo_platform, tmp_path: Path) -> None:
    issues, signals = intake_after("flaky_network", demo_platform, tmp_path)
    assert issues == []
    dropped = [s for s in signals if s.status == SignalStatus.filtered]
    assert dropped and all(s.filter_reason for s in dropped)
    assert {s.kind for s in dropped} >= {"task_retried"}


def test_a_cascade_is_one_issue(demo_platform, tmp_path: Path) -> None:
    issues, signals = intake_after("cascade", demo_platform, tmp_path)
    assert len(issues) == 1, [(i.asset, i.title) for i in issues]
    assert len([s for s in signals if s.status == SignalStatus.grouped]) > 1


def test_two_incidents_are_two_issues(demo_platform, tmp_path: Path) -> None:
    issues, _ = intake_after("two_incidents", demo_platform, tmp_path)
    assert len(issues) == 2, [(i.asset, i.title) for i in issues]


def test_a_fanout_below_one_model_is_one_issue_rooted_at_that_model(
        demo_platform, tmp_path: Path) -> None:
    """The fan-out fails unique tests of two of its children; the model both read is the root."""
    issues, _ = intake_after("fanout_commit", demo_platform, tmp_path)
    assert [i.asset for i in issues] == ["model.sleuth_demo.int_orders_enriched"]

"""Every scenario, run for real on top of one shared healthy history, shows its symptoms.

The history is built once per session (real generator, loaders, dbt, git) and restored from
the cache for each scenario, exactly as `sleuth demo run` does for a second scenario. Each
scenario's own checks run right after it, while the platform folder is still its own.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import git
import pytest
from rich.console import Console

from bot.demo.edits import EDITS
from bot.demo.paths import PlatformPaths
from bot.demo.platform import ScenarioOutcome, run_scenario, timeline
from bot.demo.runner import FlakyTask, RuntimeFaults
from bot.demo.scenarios import SCENARIOS, Faults, Scenario, get_scenario
from bot.demo.symptoms import healthy_problems
from bot.demo.views import outcome_panel

from tests.conftest import DEMO_DAYS as DAYS
from tests.conftest import DEMO_SEED as SEED


@pytest.fixture(scope="session")
def platform(demo_platform: tuple[PlatformPaths, Path]) -> tuple[PlatformPaths, Path]:
    return demo_platform


def run(name: str, platform: tuple[PlatformPaths, Path]) -> ScenarioOutcome:
    paths, cache = platform
    return run_scenario(get_scenario(name), paths=paths, days=DAYS, seed=SEED, cache=cache)


def flaky_recovers(outcome: ScenarioOutcome, paths: PlatformPaths) -> None:
    assert outcome.fault.state == "success"
    assert outcome.fault.retried == ["load_payments_payments"]
    (log,) = paths.logs.glob(f"dag_id=*/run_id={outcome.fault.run_id}"
                             "/task_id=load_payments_payments/attempt=1.log")
    assert "Connection reset by peer" in log.read_text()


def commit_in_history(outcome: ScenarioOutcome, paths: PlatformPaths) -> None:
    (cause,) = outcome.truth.root_causes
    repo = git.Repo(paths.repo)
    head = repo.head.commit
    assert cause.culprit.sha == head.hexsha
    assert head.summary == EDITS["fanout"].message.splitlines()[0]
    assert list(head.stats.files) == [EDITS["fanout"].path]
    assert len(list(repo.iter_commits())) > 15  # on top of the platform's own history


def silent_but_wrong(outcome: ScenarioOutcome, paths: PlatformPaths) -> None:
    """Amounts in cents: every dbt test passes, the run succeeds, only numbers move."""
    assert outcome.fault.state == "success"
    assert healthy_problems(paths, outcome.fault.run_id) == []


def healthy_history(outcome: ScenarioOutcome, paths: PlatformPaths) -> None:
    assert len(outcome.history) == DAYS
    for day in outcome.history:
        assert healthy_problems(paths, day.run_id) == [], day


EXTRA_CHECKS: dict[str, Callable[[ScenarioOutcome, PlatformPaths], None]] = {
    "flaky_network": flaky_recovers,
    "fanout_commit": commit_in_history,
    "amounts_in_cents": silent_but_wrong,
    "schema_change": healthy_history,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_shows_every_symptom_of_its_ground_truth(
        name: str, platform: tuple[PlatformPaths, Path]) -> None:
    paths = platform[0]
    outcome = run(name, platform)
    missing = [f"{c.symptom.kind} {c.symptom.node}: {c.evidence}"
               for c in outcome.checks if not c.observed]
    assert not missing, missing
    written = json.loads(paths.ground_truth.read_text())
    assert written["scenario"] == name and written["run_id"] == outcome.fault.run_id
    assert written["expected_issues"] == get_scenario(name).truth.expected_issues
    if name in EXTRA_CHECKS:
        EXTRA_CHECKS[name](outcome, paths)
    Console(file=io.StringIO()).print(outcome_panel(outcome))  # renders without error


@pytest.mark.slow
def test_second_scenario_restores_the_history_instead_of_rebuilding(
        platform: tuple[PlatformPaths, Path]) -> None:
    run("schema_change", platform)
    again = run("duplicate_delivery", platform)
    assert again.history_from_cache
    history_days, fault_day = timeline(DAYS)
    assert [d.day for d in again.history] == history_days and again.fault.day == fault_day
    # The restored platform is this scenario's alone: no trace of the previous fault.
    assert not list(platform[0].logs.glob("**/task_id=load_shop_orders/attempt=2.log"))


@pytest.mark.slow
def test_a_run_that_fails_leaves_no_half_built_platform(
        platform: tuple[PlatformPaths, Path]) -> None:
    paths, cache = platform
    bad = Scenario(name="bad", title="t", description="d", truth=get_scenario("cascade").truth,
                   faults=Faults(runtime=RuntimeFaults(flaky=[FlakyTask(task_id="dbt_build")])))
    with pytest.raises(ValueError, match="only load tasks"):
        run_scenario(bad, paths=paths, days=DAYS, seed=SEED, cache=cache)
    assert not paths.root.exists()
    assert any(cache.iterdir())  # the healthy history stays cached for the next run

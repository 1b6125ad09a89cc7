"""Running the demo platform: a healthy history, then one scenario's fault day.

The timeline ends yesterday (UTC). Each healthy day D runs at 02:00 on D+1, as a nightly
Airflow DAG would; the fault day's run happens now, so freshness is judged against the real
clock. The healthy history is cached by everything that shapes it (seed, days, dates, the
shipped code), so running a second scenario only pays for its own day.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bot.demo import gitrepo
from bot.demo.edits import EDITS
from bot.demo.generator import deliver_day
from bot.demo.paths import PlatformPaths
from bot.demo.runner import DagRunResult, run_dag
from bot.demo.scenarios import Scenario
from bot.demo.symptoms import SymptomCheck, check_symptom
from bot.demo.truth import GroundTruth

NIGHTLY = timedelta(days=1, hours=2)
# The latest run started a little while ago, so its simulated retry delays stay in the past.
LATEST_STARTED_AGO = timedelta(minutes=30)
# Who lands the scenario commits, and when: the afternoon before the run they break.
FAULT_AUTHOR = ("Jordan Blake", "jordan.blake@example.com")
FAULT_COMMIT_AT = timedelta(hours=15, minutes=42)


class DayResult(BaseModel):
    day: date
    run_id: str
    state: str
    failed: list[str]
    retried: list[str]
    seconds: float

    @classmethod
    def of(cls, day: date, result: DagRunResult, seconds: float) -> DayResult:
        states = result.final_states()
        retried = sorted({t.task_id for t in result.task_instances if t.try_number > 1})
        return cls(day=day, run_id=result.run_id, state=result.state,
                   failed=sorted(t for t, s in states.items() if s == "failed"),
                   retried=retried, seconds=round(seconds, 2))


class ScenarioOutcome(BaseModel):
    scenario: str
    title: str
    root: Path
    history: list[DayResult]
    fault: DayResult
    truth: GroundTruth
    checks: list[SymptomCheck]
    history_from_cache: bool
    seconds: float

    @property
    def all_observed(self) -> bool:
        return all(c.observed for c in self.checks)


def timeline(days: int, today: date | None = None) -> tuple[list[date], date]:
    """The healthy days, oldest first, and the fault day (yesterday)."""
    fault_day = (today or datetime.now(UTC).date()) - timedelta(days=1)
    return [fault_day - timedelta(days=n) for n in range(days, 0, -1)], fault_day


def run_scenario(scenario: Scenario, *, paths: PlatformPaths, days: int, seed: int,
                 cache: Path, console: Console | None = None) -> ScenarioOutcome:
    """Build (or restore) the healthy history, inject `scenario` on the last day, run it."""
    console = console or Console(quiet=True)
    try:
        return _run_scenario(scenario, paths, days, seed, cache, console)
    except BaseException:
        # A half-built platform would mislead whoever reads it next: leave nothing behind.
        shutil.rmtree(paths.root, ignore_errors=True)
        raise


def _run_scenario(scenario: Scenario, paths: PlatformPaths, days: int, seed: int, cache: Path,
                  console: Console) -> ScenarioOutcome:
    started = time.perf_counter()
    history_days, fault_day = timeline(days)
    with _progress(console) as progress:
        from_cache = restore_history(paths, cache, history_days, seed)
        if from_cache:
            console.print(f"healthy history: {len(history_days)} days restored from cache")
            history = json.loads((paths.root / "history.json").read_text())
            history = [DayResult.model_validate(d) for d in history]
        else:
            history = build_history(paths, history_days, seed, progress)
            save_history(paths, cache, history_days, seed, history)
        step = progress.add_task(f"fault day {fault_day}: {scenario.name}", total=1)
        truth = inject(scenario, paths, fault_day, seed)
        fault = _run_day(paths, fault_day, seed, latest=True, scenario=scenario)
        progress.advance(step)
    _write_truth(paths, scenario, fault, truth)
    checks = [check_symptom(s, paths, fault.run_id) for s in truth.symptoms]
    return ScenarioOutcome(scenario=scenario.name, title=scenario.title, root=paths.root,
                           history=history, fault=fault, truth=truth, checks=checks,
                           history_from_cache=from_cache,
                           seconds=round(time.perf_counter() - started, 1))


def build_history(paths: PlatformPaths, history_days: list[date], seed: int,
                  progress: Progress, *,
                  after_day: Callable[[DayResult], None] | None = None) -> list[DayResult]:
    """A fresh platform: the code repository with its history, then one DAG run a day.

    `after_day` is called after each day's run, e.g. to poll a source as it would have been.
    """
    if paths.root.exists():
        shutil.rmtree(paths.root)
    paths.root.mkdir(parents=True)
    gitrepo.build_history(paths.repo, first_run=history_days[0])
    step = progress.add_task("healthy history", total=len(history_days))
    results = []
    for day in history_days:
        results.append(_run_day(paths, day, seed, latest=False))
        if after_day is not None:
            after_day(results[-1])
        progress.advance(step)
    return results


def inject(scenario: Scenario, paths: PlatformPaths, day: date, seed: int) -> GroundTruth:
    """Commit the scenario's edits and deliver its bad data; the truth gets the commit shas."""
    when = datetime.combine(day, datetime.min.time(), UTC) + FAULT_COMMIT_AT
    shas = [gitrepo.commit_change(paths.repo, [EDITS[key]], author=FAULT_AUTHOR,
                                  message=EDITS[key].message, when=when)
            for key in scenario.faults.commits]
    deliver_day(paths.landing, day, seed=seed, faults=scenario.faults.upstream)
    return _with_shas(scenario.truth, shas)


def _run_day(paths: PlatformPaths, day: date, seed: int, *, latest: bool,
             scenario: Scenario | None = None) -> DayResult:
    if scenario is None:
        deliver_day(paths.landing, day, seed=seed)
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    run_at = datetime.now(UTC) - LATEST_STARTED_AGO if latest else midnight + NIGHTLY
    started = time.perf_counter()
    result = run_dag(day, paths=paths, run_at=run_at, latest=latest, seed=seed,
                     faults=scenario.faults.runtime if scenario else None)
    return DayResult.of(day, result, time.perf_counter() - started)


def _with_shas(truth: GroundTruth, shas: list[str]) -> GroundTruth:
    """Attach the scenario's commit to each root cause a commit caused."""
    if not shas:
        return truth
    causes = [c.model_copy(update={"culprit": c.culprit.model_copy(update={"sha": shas[-1]})})
              if c.category in ("code_change", "config_change") else c
              for c in truth.root_causes]
    return truth.model_copy(update={"root_causes": causes})


def _write_truth(paths: PlatformPaths, scenario: Scenario, fault: DayResult,
                 truth: GroundTruth) -> None:
    record = {"scenario": scenario.name, "title": scenario.title, "fault_day": str(fault.day),
              "run_id": fault.run_id, **truth.model_dump(mode="json")}
    paths.ground_truth.write_text(json.dumps(record, indent=2) + "\n")


# ------------------------------------------------------------------ cache of healthy history


def history_key(history_days: list[date], seed: int) -> str:
    """Everything that shapes the healthy history: dates, seed, and the demo's code and project."""
    digest = hashlib.sha256(f"{seed}:{history_days[0]}:{history_days[-1]}".encode())
    root = Path(__file__).parent  # bot/demo, the shipped project included
    for path in sorted(root.rglob("*")):
        if path.is_file() and not {"__pycache__", "target", "logs"} & set(path.parts):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def restore_history(paths: PlatformPaths, cache: Path, history_days: list[date],
                    seed: int) -> bool:
    cached = cache / history_key(history_days, seed)
    if not (cached / "history.json").is_file() or not _same_root(cached, paths):
        return False
    if paths.root.exists():
        shutil.rmtree(paths.root)
    shutil.copytree(cached, paths.root, symlinks=True)
    return True


def save_history(paths: PlatformPaths, cache: Path, history_days: list[date], seed: int,
                 history: list[DayResult]) -> None:
    (paths.root / "history.json").write_text(
        json.dumps([d.model_dump(mode="json") for d in history], indent=2))
    (paths.root / ".platform-root").write_text(str(paths.root))
    # Keep one cached history: a new day or new code makes the old one useless.
    if cache.exists():
        shutil.rmtree(cache)
    # Copy under a temporary name, then rename: an interrupted copy is never taken for a cache.
    partial = cache / "partial"
    shutil.copytree(paths.root, partial, symlinks=True)
    partial.rename(cache / history_key(history_days, seed))


def _same_root(cached: Path, paths: PlatformPaths) -> bool:
    """Artifacts hold absolute paths: restore only into the folder the history was built in."""
    marker = cached / ".platform-root"
    return marker.is_file() and marker.read_text() == str(paths.root)


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        console=console, transient=False)
    with progress:
        yield progress

"""`python -m bench demo`: the time to build the demo platform and to run each scenario.

Side by side in one run: the healthy history built from scratch, then every scenario
restored from that history's cache (as a user running a second scenario sees it), and as a
reference, one bare `dbt build` of the same project with no DAG around it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from dbt.cli.main import dbtRunner

from bench.report import Result
from bot.demo.paths import PlatformPaths
from bot.demo.platform import run_scenario
from bot.demo.scenarios import SCENARIOS

DAYS = 7
SEED = 7


def run() -> Result:
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-demo-") as tmp:
        paths, cache = PlatformPaths(Path(tmp) / "platform"), Path(tmp) / "cache"
        rows: list[list[object]] = []
        seconds: dict[str, float] = {}
        history_s = 0.0
        all_observed = True
        for scenario in SCENARIOS:
            outcome = run_scenario(scenario, paths=paths, days=DAYS, seed=SEED, cache=cache)
            if not outcome.history_from_cache:
                history_s = sum(d.seconds for d in outcome.history)
                rows.append([f"healthy history ({DAYS} days)", f"{history_s:.1f}", "", ""])
            seconds[scenario.name] = outcome.fault.seconds
            observed = sum(c.observed for c in outcome.checks)
            all_observed &= outcome.all_observed
            rows.append([scenario.name, f"{outcome.seconds:.1f}",
                         f"{outcome.fault.seconds:.1f}", f"{observed}/{len(outcome.checks)}"])
        dbt_s = _bare_dbt_build(paths)
    rows.append(["reference: bare `dbt build`, one day", f"{dbt_s:.1f}", f"{dbt_s:.1f}", ""])
    fault_days = list(seconds.values())
    return Result(
        name="demo",
        columns=["step", "total s", "fault-day run s", "symptoms observed"],
        rows=rows,
        figures={
            "history_days": DAYS,
            "history_s": round(history_s, 1),
            "mean_fault_day_s": round(sum(fault_days) / len(fault_days), 2),
            "bare_dbt_build_s": round(dbt_s, 2),
            "scenarios": seconds,
            "symptoms_all_observed": all_observed,
        },
        notes=["fault-day runs include Airflow-style retries of a failing task (dbt_build "
               "retries once), so a failing scenario costs about two builds."],
    )


def _bare_dbt_build(paths: PlatformPaths) -> float:
    started = time.perf_counter()
    dbtRunner().invoke(["--log-level", "none", "build", "--project-dir", str(paths.repo),
                        "--profiles-dir", str(paths.profiles_dir), "--target", "prod"])
    return time.perf_counter() - started

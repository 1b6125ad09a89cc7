"""`python -m bench investigate`: the offline policy on every demo scenario, end to end.

Each scenario runs on the demo platform (healthy history from the cache after the first),
intake opens its issues, and the offline policy investigates each: wall time per
investigation and in total, steps and tool calls, and how many root causes it names at top-1
(the target: at least 8 of 10, under 20 s per investigation on a 2-core machine).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.report import Result
from bot.config import DemoConfig, Settings
from evals.investigations import run_evals

DAYS = 7
SEED = 7


def run() -> Result:
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-investigate-") as tmp:
        settings = Settings(home=Path(tmp) / "home", demo=DemoConfig(days=DAYS, seed=SEED))
        evals = run_evals(settings, policy="offline", workdir=Path(tmp) / "runs")
    rows = [[r.scenario, r.issues, f"{r.top1}/{r.root_causes}", ", ".join(r.named) or "—",
             r.steps, r.tool_calls, r.seconds / r.issues if r.issues else 0.0, r.seconds]
            for r in evals.rows]
    t = evals.totals
    return Result(
        name="investigate",
        columns=["scenario", "investigations", "top-1", "root cause named", "steps",
                 "tool calls", "s per investigation", "s investigating"],
        rows=rows,
        figures={"top1_right": t["top1_right"], "root_causes": t["root_causes"],
                 "top1": t["top1"], "investigations": t["investigations"],
                 "mean_seconds": t["mean_seconds"], "total_seconds": t["seconds"],
                 "steps": t["steps"], "tool_calls": t["tool_calls"],
                 "citations_verified": t["citations_verified"], "citations": t["citations"]},
        notes=["Wall time counts the investigation only (not the scenario's build and intake).",
               "Reference: the targets are top-1 >= 8 of 10 root causes and < 20 s per "
               "investigation."],
    )

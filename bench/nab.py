"""NAB: the anomaly detector on the Numenta Anomaly Benchmark, scored independently.

Every one of NAB's 58 series is fed to `bot.intake.anomaly.Detector` once, in time order,
point by point, with one configuration (the defaults) for all series, as NAB's rules ask.
The scores are written as NAB result files and scored by `../shared/tools/nab-score`, a
scorer that knows nothing of Sleuth. A plain windowed Gaussian, run the same way in this
bench, gives a measured reference next to the published ones.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from bench.report import Result
from bot.intake.anomaly import Detector, DetectorConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
NAB_DIR = REPO_ROOT.parent / "shared" / "datasets" / "nab"
SCORER = REPO_ROOT.parent / "shared" / "tools" / "nab-score"

# Published NAB v1.1 scoreboard (standard, reward low FP, reward low FN), from the NAB
# repository's results/final_results.json and README; not measured here.
PUBLISHED: dict[str, tuple[float, float, float]] = {
    "ARTime": (74.9, 65.1, 80.4),
    "Numenta HTM": (70.5, 62.6, 75.2),
    "earthgecko Skyline": (58.2, 46.2, 63.9),
    "Windowed Gaussian": (39.6, 20.9, 47.4),
    "Random": (11.0, 1.2, 19.5),
}
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
WORKERS = 2

Scorer = Callable[[Iterator[tuple[datetime, float]]], Iterator[float]]


def run() -> Result:
    data_dir = _require(NAB_DIR / "data", "NAB data")
    _require(SCORER, "the NAB scorer")
    series = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*.csv"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sleuth-nab-") as tmp:
        measured = {}
        timings = {}
        for name in ("sleuth", "windowed_gaussian"):
            t0 = time.perf_counter()
            out = Path(tmp) / name
            points = _run_detector(name, data_dir, series, out)
            timings[name] = time.perf_counter() - t0
            measured[name] = _score(out)
    total = time.perf_counter() - started
    return _result(measured, timings, total, len(series), points)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise SystemExit(
            f"bench nab: {what} not found at {path}. It is expected beside the repository, "
            "in ../shared (datasets/nab and tools/nab-score)."
        )
    return path


# --- running detectors -------------------------------------------------------------------


def _run_detector(name: str, data_dir: Path, series: list[Path], out: Path) -> int:
    """Write one result CSV per series; series run in parallel, each one in time order."""
    jobs = [(name, data_dir / rel, out / rel) for rel in series]
    # the longest series first, so that two workers finish together
    jobs.sort(key=lambda job: job[1].stat().st_size, reverse=True)
    with ProcessPoolExecutor(max_workers=min(WORKERS, os.cpu_count() or 1)) as pool:
        return sum(pool.map(_run_file, jobs))


def _run_file(job: tuple[str, Path, Path]) -> int:
    name, source, target = job
    with source.open(newline="") as f:
        rows = [(r["timestamp"], float(r["value"])) for r in csv.DictReader(f)]
    stream = ((datetime.strptime(ts, "%Y-%m-%d %H:%M:%S"), value) for ts, value in rows)
    scores = list(DETECTORS[name](stream))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp", "anomaly_score"])
        writer.writerows((ts, repr(score)) for (ts, _), score in zip(rows, scores, strict=True))
    return len(rows)


def _sleuth(points: Iterator[tuple[datetime, float]]) -> Iterator[float]:
    detector = Detector(DetectorConfig())
    state = detector.new_state()
    for ts, value in points:
        score, state = detector.update(state, ts, value)
        yield score.score


def _windowed_gaussian(
    points: Iterator[tuple[datetime, float]], window: int = 6400
) -> Iterator[float]:
    """Reference: how far a value lies in a Gaussian fitted to the previous `window` values,
    as 1 - two-sided tail probability. No seasonality, no calibration, no suppression."""
    recent: deque[float] = deque()
    total = total_sq = 0.0
    for _, value in points:
        score = 0.0
        if len(recent) >= 10:
            mean = total / len(recent)
            std = math.sqrt(max(total_sq / len(recent) - mean * mean, 0.0))
            if std > 0:
                score = math.erf(abs(value - mean) / (std * math.sqrt(2.0)))
        yield score
        recent.append(value)
        total += value
        total_sq += value * value
        if len(recent) > window:
            old = recent.popleft()
            total -= old
            total_sq -= old * old


DETECTORS: dict[str, Scorer] = {"sleuth": _sleuth, "windowed_gaussian": _windowed_gaussian}


# --- scoring and report --------------------------------------------------------------------


def _score(results_dir: Path) -> dict[str, float]:
    """Run the independent scorer and read its last line, a JSON object."""
    done = subprocess.run(
        [sys.executable, str(SCORER), str(results_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"bench nab: the scorer failed: {done.stderr.strip() or done.stdout}")
    return json.loads(lines[-1])


def _result(
    measured: dict[str, dict[str, float]],
    timings: dict[str, float],
    total: float,
    n_series: int,
    n_points: int,
) -> Result:
    ours, baseline = measured["sleuth"], measured["windowed_gaussian"]
    rows: list[list[object]] = [
        ["Sleuth detector", *(ours[p] for p in PROFILES), _measured(timings["sleuth"])],
        [
            "Windowed Gaussian (here)",
            *(baseline[p] for p in PROFILES),
            _measured(timings["windowed_gaussian"]),
        ],
    ]
    rows += [[name, *scores, "published"] for name, scores in PUBLISHED.items()]
    return Result(
        name="nab",
        columns=["detector", "standard", "low FP", "low FN", "source"],
        rows=rows,
        figures={
            "standard": ours["standard"],
            "low_fp": ours["reward_low_FP_rate"],
            "low_fn": ours["reward_low_FN_rate"],
            "baseline_standard": baseline["standard"],
            "baseline_low_fp": baseline["reward_low_FP_rate"],
            "baseline_low_fn": baseline["reward_low_FN_rate"],
            "series": n_series,
            "points": n_points,
            "seconds": round(total, 1),
        },
        notes=[
            (
                f"{n_series} series, {n_points} points, each series once in time order, one "
                "configuration (DetectorConfig defaults); scored by ../shared/tools/nab-score."
            ),
            "Published figures are NAB's scoreboard (NAB v1.1, results/final_results.json).",
            f"Total runtime {total:.0f}s with {WORKERS} worker processes, scoring included.",
        ],
    )


def _measured(seconds: float) -> str:
    return f"measured, {seconds:.0f}s"

"""A real Prometheus, its TSDB backfilled with a planted series, on a free local port.

Debian's `prometheus` package is installed when the binary is missing (root only); the test
skips, saying why, when that is not possible. The server runs from a temporary folder with a
minimal config and no scrape targets, so the backfilled blocks are all it knows.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest

STEP = timedelta(minutes=5)
POINTS_PER_DAY = 288
DAYS = 4
METRIC = "sleuth_orders_per_5m"
SPIKE = 3 * POINTS_PER_DAY + 100  # one point at 2.2 times the usual
DROP = range(3 * POINTS_PER_DAY + 200, 3 * POINTS_PER_DAY + 212)  # an hour at a tenth


@dataclass(frozen=True)
class Planted:
    url: str
    start: datetime  # first sample
    end: datetime  # last sample
    spike: datetime
    drop: tuple[datetime, datetime]


def series_values(seed: int, planted: bool) -> list[float]:
    """A day-periodic series with noise; the `eu` one carries a spike and a drop."""
    rng = random.Random(seed)
    values = []
    for i in range(DAYS * POINTS_PER_DAY):
        value = 200 + 80 * math.sin(2 * math.pi * i / POINTS_PER_DAY) + rng.gauss(0, 6)
        if planted and i == SPIKE:
            value *= 2.2
        if planted and i in DROP:
            value *= 0.1
        values.append(value)
    return values


def openmetrics(start: datetime) -> str:
    lines = [f"# TYPE {METRIC} gauge", f"# HELP {METRIC} Orders placed per 5 minutes."]
    for shop, seed, planted in (("eu", 1, True), ("us", 2, False)):
        for i, value in enumerate(series_values(seed, planted)):
            ts = (start + i * STEP).timestamp()
            lines.append(f'{METRIC}{{shop="{shop}"}} {value:.3f} {ts:.0f}')
    return "\n".join(lines + ["# EOF"]) + "\n"


def _binaries() -> tuple[str, str]:
    """prometheus and promtool, installed from Debian if missing; skip when impossible."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("prometheus is not installed and apt-get as root is not available")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode:
                pytest.skip(f"could not install Debian's prometheus: {' '.join(cmd)} said "
                            f"{done.stderr.strip()[-300:]}")
        # The package may start its own service; ours runs from a temp folder, not that one.
        subprocess.run(["service", "prometheus", "stop"], capture_output=True, timeout=60)
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not (prometheus and promtool):
        pytest.skip("the prometheus package did not provide prometheus and promtool")
    return prometheus, promtool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx2.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"prometheus at {url} not ready after 120 s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    prometheus_bin, promtool = _binaries()
    base = tmp_path_factory.mktemp("prometheus")
    step = STEP.total_seconds()
    # The last sample an hour ago, on the step grid, so queries aligned to it hit every sample.
    end = datetime.fromtimestamp((time.time() // step) * step - 3600, UTC)
    start = end - (DAYS * POINTS_PER_DAY - 1) * STEP
    (base / "series.om").write_text(openmetrics(start))
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                    str(base / "series.om"), str(base / "data")],
                   check=True, capture_output=True, timeout=300)
    (base / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [prometheus_bin, f"--storage.tsdb.path={base / 'data'}",
             f"--config.file={base / 'prometheus.yml'}", f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=30d"],
            stdout=out, stderr=subprocess.STDOUT, cwd=base)
    try:
        _wait_ready(url, proc, log)
        yield Planted(url=url, start=start, end=end, spike=start + SPIKE * STEP,
                      drop=(start + DROP[0] * STEP, start + DROP[-1] * STEP))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

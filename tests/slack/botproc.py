"""`sleuth run` as its own process, for tests that treat the bot as Slack does: over HTTP.

The test writes a sleuth.yaml, passes the tokens the way a deployment does (SLACK_BOT_TOKEN,
SLACK_SIGNING_SECRET, SLACK_APP_TOKEN in the environment), starts `python -m bot run`, and
talks to it only through its Request URL, the workspace and its store.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

from bot.config import CONFIG_ENV, HOME_ENV, SECRET_ENV
from bot.slack.workspace.delivery import signature
from tests.conftest import DEMO_DAYS, DEMO_SEED

START_TIMEOUT = 90.0  # a loaded machine imports dbt, duckdb and Bolt slowly
STOP_TIMEOUT = 120.0  # SIGINT lets running investigations end first
READY = "Ctrl-C stops"  # the last line `sleuth run` prints once everything started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(path: Path, *, store: Path, poll: str = "2s", **slack: Any) -> Path:
    """A sleuth.yaml with the store at `store`, every source polled each `poll` (a failing
    one again soon too), and `slack` (SlackConfig fields). Sources are left to the defaults:
    the demo platform under the home."""
    schedule = {"default": poll, "backoff_first": poll, "backoff_longest": poll}
    config = {"store": {"url": f"sqlite:///{store}"},
              "demo": {"days": DEMO_DAYS, "seed": DEMO_SEED},
              "slack": slack, "intake": {"schedule": schedule}}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def bot_env(home: Path, config: Path | None, **secrets: str) -> dict[str, str]:
    """This environment without any Sleuth secret or config of the developer's, plus `secrets`
    by variable name (SLACK_BOT_TOKEN=…): model keys are dropped, so the offline policy runs."""
    env = {k: v for k, v in os.environ.items()
           if k not in SECRET_ENV.values() and k not in (CONFIG_ENV, HOME_ENV)}
    env |= {HOME_ENV: str(home), "PYTHONUNBUFFERED": "1", **secrets}
    if config is not None:
        env[CONFIG_ENV] = str(config)
    return env


def run_once(args: list[str], env: dict[str, str], cwd: Path,
             timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """`sleuth ARGS` to its end."""
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          check=False)


@dataclass
class BotProcess:
    """A started `sleuth run`; its output goes to files (a full pipe would block it)."""

    proc: subprocess.Popen[bytes]
    folder: Path
    url: str | None = None
    code: int | None = field(default=None)

    @property
    def stdout(self) -> str:
        return (self.folder / "stdout.txt").read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return (self.folder / "stderr.txt").read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.code = self.proc.wait()
        return self.code

    def wait_until(self, ready: Any, what: str, timeout: float = START_TIMEOUT) -> Any:
        """Poll `ready()` until truthy; fail with the process's output if it died or timed out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"`sleuth run` exited {self.proc.returncode} before {what}"
                                     f"\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}")
            found = ready()
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\nstdout:\n{self.stdout}\n"
                             f"stderr:\n{self.stderr[-4000:]}")


def start_process(folder: Path, env: dict[str, str], *, port: int | None = None) -> BotProcess:
    """Start `sleuth run` and wait until it says it runs; with `port` (HTTP mode) also until
    GET /healthz answers."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "stdout.txt").open("wb") as out, (folder / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=folder,
                                stdout=out, stderr=err)
    bot = BotProcess(proc, folder)
    bot.wait_until(lambda: READY in bot.stdout, f"{READY!r} on its output")
    if port is not None:
        base = f"http://127.0.0.1:{port}"
        bot.wait_until(lambda: _healthy(base), f"{base}/healthz")
        bot.url = f"{base}/slack/events"
    return bot


def _healthy(base: str) -> bool:
    try:
        return httpx2.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


def post_signed(url: str, body: dict[str, Any], secret: str, *, age: float = 0.0,
                headers: dict[str, str] | None = None) -> httpx2.Response:
    """POST `body` as Slack does: JSON, signed with `secret` at a timestamp `age` s ago."""
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time() - age))
    return httpx2.post(url, content=raw, timeout=30, headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(secret, timestamp, raw), **(headers or {})})


def store_engine(path: Path) -> Engine:
    """The bot's store, read from the test (the bot process migrated it)."""
    return create_engine(f"sqlite:///{path}")

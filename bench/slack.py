"""`python -m bench slack`: how fast the Slack app answers, and how soon a failure is a card.

Everything runs in this process as the product runs it: the local Slack-compatible workspace,
the bot started by `start_bot` with the workspace's tokens (the real-Slack code path: signed
HTTP requests to waitress + Bolt), the scheduler polling the demo platform (days=7, seed=7).

1. Ack latency: a person's `/investigate` (empty → help; an unknown issue id; the issue's id,
   which starts an investigation or says one runs) and 👍 on a report, each timed on the
   workspace side from sending the signed POST to the bot's HTTP response. Side by side, the
   floor: a bare Bolt app on the same waitress server that acks and does nothing.
2. failure → card: the cascade scenario's fault day runs while the scheduler polls every
   POLL_EVERY; from the end of the failing task's first failed try (and of its last) to the
   issue card in the workspace, and the part from the poll that opened the issue to the card.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bench.report import Result
from bot.config import (
    DemoConfig,
    IntakeConfig,
    ScheduleConfig,
    Secrets,
    Settings,
    SlackConfig,
)
from bot.demo.paths import PlatformPaths
from bot.demo.platform import LATEST_STARTED_AGO, build_history, inject, timeline
from bot.demo.runner import DagRunResult, run_dag
from bot.demo.scenarios import get_scenario
from bot.errors import SleuthError
from bot.intake.runtime import build_poller
from bot.intake.scheduler import Poller, start_scheduler, stop_scheduler
from bot.slack.blocks import ACTION_FEEDBACK_UP
from bot.slack.cards import card_key
from bot.slack.runtime import RunningBot, on_outcome, start_bot
from bot.slack.serve import Endpoint, serve_http
from bot.slack.workspace import APPROVER_USER_ID, RunningWorkspace, start_workspace
from bot.store import open_store
from bot.store.models import SlackMessage

DAYS = 7
SEED = 7
SCENARIO = "cascade"
POLL_EVERY = timedelta(seconds=5)
N = 200          # timed requests per kind (enough for a p99)
WARMUP = 5       # untimed requests per kind first (connections, first imports)
SLACK_LIMIT_MS = 3000.0
TARGET_P99_MS = 100.0
UNKNOWN_ISSUE = 999999
WAIT_S = 150.0   # longest wait for polls, the card, the investigation
TABLES = "tables"  # the table monitor source, left out (see _failure_to_card)


def run() -> Result:
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-slack-") as tmp:
        settings = _settings(Path(tmp) / "home")
        history_days, fault_day = timeline(DAYS)
        build_history(settings.demo_platform, history_days, SEED,
                      Progress(console=Console(quiet=True)))
        engine = open_store(settings.store_url)
        workspace = start_workspace(settings.home, 0, request_url="")
        try:
            settings = settings.model_copy(update={"slack": settings.slack.model_copy(
                update={"api_url": workspace.credentials.api_url})})
            bot = start_bot(settings, engine, secrets=_secrets(workspace))
            try:
                workspace.set_request_url(bot.url)
                card = _failure_to_card(settings, engine, bot, fault_day)
                acks = _acks(settings, engine, workspace, bot, card)
            finally:
                bot.stop(wait=True)
        finally:
            workspace.stop()
    return _result(acks, card)


def _settings(home: Path) -> Settings:
    return Settings(home=home, demo=DemoConfig(days=DAYS, seed=SEED),
                    intake=IntakeConfig(schedule=ScheduleConfig(default=POLL_EVERY)),
                    slack=SlackConfig(port=0)).with_defaults()


def _secrets(workspace: RunningWorkspace) -> Secrets:
    creds = workspace.credentials
    return Secrets(slack_bot_token=creds.bot_token, slack_signing_secret=creds.signing_secret)


# ---------------------------------------------------------------- failure → card


@dataclass
class PollWatch:
    """When each poll started, and for each issue the start of the poll that opened it (its
    card is posted inside that poll, by the outcome handler)."""

    polled: dict[str, int] = field(default_factory=dict)
    opened: dict[int, float] = field(default_factory=dict)
    _local: threading.local = field(default_factory=threading.local)

    def watch(self, poller: Poller) -> None:
        poll, group = poller.poll, poller.process

        def timed_poll(name: str, now: datetime | None = None, *, process: bool = True) -> Any:
            self._local.started = time.time()
            try:
                return poll(name, now, process=process)
            finally:
                self._local.started = None
                self.polled[name] = self.polled.get(name, 0) + 1

        def timed_process(now: datetime | None = None) -> Any:
            started = getattr(self._local, "started", None) or time.time()
            outcome = group(now)
            for issue_id in outcome.opened:
                self.opened.setdefault(issue_id, started)
            return outcome

        # Instance attributes: the scheduler's job and `poll` itself call these.
        poller.poll, poller.process = timed_poll, timed_process  # type: ignore[method-assign]


@dataclass
class CardTiming:
    issue_id: int
    channel: str
    card_ts: float
    failed_task: str
    failed_first: float    # wall clock: its first failed try ended (the failure happened)
    failed_end: float      # wall clock: its last try ended (the task failed for good)
    poll_started: float
    polls_before: int      # polls of the healthy history before the fault day ran
    issues_before: int

    @property
    def failure_to_card(self) -> float:
        return self.card_ts - self.failed_first

    @property
    def poll_to_card(self) -> float:
        return self.card_ts - self.poll_started


def _failure_to_card(settings: Settings, engine: Engine, bot: RunningBot,
                     fault_day: date) -> CardTiming:
    """The scheduler polls the healthy platform; then the fault day runs under it."""
    watch = PollWatch()
    poller = build_poller(settings, engine, on_outcome=on_outcome(bot.bot))
    # The demo's warehouse is one DuckDB file: the table monitor's read-only connection in this
    # process makes dbt's writes fail ("different configuration"), which is not the scenario.
    poller.sources.pop(TABLES, None)
    watch.watch(poller)
    bot.scheduler = start_scheduler(poller, settings.store_url)
    _until(lambda: all(watch.polled.get(name) for name in poller.sources),
           "the first poll of every source")
    before, polls_before = set(watch.opened), sum(watch.polled.values())
    scenario = get_scenario(SCENARIO)
    paths: PlatformPaths = settings.demo_platform
    # run_scenario's steps after its restore (which replaces the platform folder under the
    # polling scheduler): the scenario's edits and data, then the fault day's run, now.
    inject(scenario, paths, fault_day, SEED)
    result = run_dag(fault_day, paths=paths, run_at=datetime.now(UTC) - LATEST_STARTED_AGO,
                     latest=True, seed=SEED, faults=scenario.faults.runtime)
    task, failed_first, failed_end = _failed_times(result)
    card = _until(lambda: _first_card(engine, [i for i in watch.opened if i not in before]),
                  "the failure's issue card")
    stop_scheduler(bot.scheduler)
    bot.scheduler = None
    return CardTiming(card.issue_id or 0, card.channel, float(card.ts), task, failed_first,
                      failed_end, watch.opened[card.issue_id or 0], polls_before, len(before))


def _failed_times(result: DagRunResult) -> tuple[str, float, float]:
    """The first task that failed for good, and when (wall clock) its first failed try and its
    last try ended. The run records times on the demo's simulated clock, so each try's log file
    mtime is used: the file is closed when the try ends."""
    failed = sorted((t for t in result.task_instances if t.state == "failed" and t.log_path),
                    key=lambda t: t.end_date)
    if not failed:
        raise SleuthError(f"the {SCENARIO} scenario's run has no failed task")
    last = failed[0]
    first = min((t for t in result.tries(last.task_id) if t.log_path
                 and t.state in ("failed", "up_for_retry")), key=lambda t: t.try_number)
    return (last.task_id, os.path.getmtime(first.log_path or ""),
            os.path.getmtime(last.log_path or ""))


def _first_card(engine: Engine, issue_ids: list[int]) -> SlackMessage | None:
    with Session(engine) as session:
        cards = session.exec(select(SlackMessage).where(
            SlackMessage.key.in_([card_key(i) for i in issue_ids]))).all()  # type: ignore[attr-defined]
    return min(cards, key=lambda c: float(c.ts)) if cards else None


def _until(found: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.05)
    raise SleuthError(f"bench slack: no {what} within {timeout:.0f} s")


# ---------------------------------------------------------------- ack latency


class HttpTimer:
    """Times the workspace's signed POSTs made from this thread (the bench's requests; event
    deliveries go from the workspace's own threads) from send to the bot's HTTP response."""

    def __init__(self, workspace: RunningWorkspace) -> None:
        delivery = workspace.delivery
        self._post, self._thread = delivery._post, threading.get_ident()
        self.last: tuple[float, int | None, str] | None = None
        delivery._post = self.post  # type: ignore[method-assign]

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        started = time.perf_counter()
        answer = self._post(url, body, headers)
        elapsed = (time.perf_counter() - started) * 1000
        form = headers.get("Content-Type") == "application/x-www-form-urlencoded"
        if form and threading.get_ident() == self._thread:  # not url_verification, not events
            self.last = (elapsed, answer[0], answer[1])
        return answer

    def time(self, request: Callable[[], Any]) -> tuple[float, str]:
        self.last = None
        request()
        if self.last is None or self.last[1] != 200:
            raise SleuthError(f"bench slack: the request got no 200 answer ({self.last})")
        return self.last[0], self.last[2]


@dataclass
class Kind:
    key: str    # its name in the JSON line
    name: str   # and in the table
    request: Callable[[], Any]
    ms: list[float] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)  # acks that started an investigation


def _acks(settings: Settings, engine: Engine, workspace: RunningWorkspace, bot: RunningBot,
          card: CardTiming) -> list[Kind]:
    jobs = bot.bot.jobs
    if not jobs.running_for(card.issue_id):  # below slack.auto_investigate: ask for one
        jobs.for_issue(card.issue_id, trigger="button")
    jobs.wait(timeout=WAIT_S)
    report = _until(lambda: _report(engine, card.issue_id), "report message")
    actions, user = workspace.actions, APPROVER_USER_ID
    slash = lambda text: lambda: actions.post(user, card.channel, text)
    kinds = [Kind("help", "/investigate (help)", slash("/investigate")),
             Kind("unknown_issue", f"/investigate {UNKNOWN_ISSUE}",
                  slash(f"/investigate {UNKNOWN_ISSUE}")),
             Kind("button", "👍 button", lambda: actions.click(
                 user, ACTION_FEEDBACK_UP, None, channel_id=report.channel, ts=report.ts)),
             # last: the investigations it starts run under the requests that follow
             Kind("issue", f"/investigate {card.issue_id}",
                  slash(f"/investigate {card.issue_id}"))]
    timer = HttpTimer(workspace)
    floor = _floor(settings, workspace)
    try:
        workspace.set_request_url(floor.url)
        for kind in kinds:
            kind.floor_ms = _series(timer, kind.request)
    finally:
        floor.stop()
        workspace.set_request_url(bot.url)
    for kind in kinds:
        answers: list[str] = []
        kind.ms = _series(timer, kind.request, answers)
        kind.started = [ms for ms, a in zip(kind.ms, answers, strict=True)
                        if "Investigating issue" in a]
    jobs.wait(timeout=WAIT_S)
    _quiet(workspace)
    return kinds


def _quiet(workspace: RunningWorkspace, timeout: float = 10.0) -> None:
    """Let the workspace's last event deliveries (the investigations' messages) reach the
    bot before it stops."""
    deadline = time.monotonic() + timeout
    while any(e["status"] == "pending" for e in list(workspace.delivery.log)) \
            and time.monotonic() < deadline:
        time.sleep(0.05)


def _series(timer: HttpTimer, request: Callable[[], Any],
            answers: list[str] | None = None) -> list[float]:
    for _ in range(WARMUP):
        timer.time(request)
    timed = []
    for _ in range(N):
        ms, text = timer.time(request)
        timed.append(ms)
        if answers is not None:
            answers.append(text)
    return timed


def _floor(settings: Settings, workspace: RunningWorkspace) -> Endpoint:
    """A bare Bolt app on the same server (waitress + Bolt's WSGI adapter): ack, nothing else."""
    creds = workspace.credentials
    client = WebClient(token=creds.bot_token.get_secret_value(), base_url=creds.api_url)
    app = App(client=client, signing_secret=creds.signing_secret.get_secret_value())

    @app.command("/investigate")
    def command(ack: Ack) -> None:
        ack()

    @app.action(ACTION_FEEDBACK_UP)
    def click(ack: Ack) -> None:
        ack()

    return serve_http(app, settings.slack.host, 0, settings.slack.path)


def _report(engine: Engine, issue_id: int) -> SlackMessage | None:
    with Session(engine) as session:
        return session.exec(select(SlackMessage).where(
            SlackMessage.kind == "report", SlackMessage.issue_id == issue_id)).first()


# ---------------------------------------------------------------- the table


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _row(name: str, ms: list[float], floor: list[float]) -> list[Any]:
    return [name, len(ms), _pct(ms, 50), _pct(ms, 99), max(ms), _pct(floor, 50),
            _pct(floor, 99), _pct(ms, 50) - _pct(floor, 50)]


def _once(name: str, seconds: float) -> list[Any]:
    return [name, 1, seconds, "", "", "", "", ""]


def _result(kinds: list[Kind], card: CardTiming) -> Result:
    every = [ms for k in kinds for ms in k.ms]
    floor = [ms for k in kinds for ms in k.floor_ms]
    rows = [_row(f"ack {k.name}", k.ms, k.floor_ms) for k in kinds]
    rows.append(_row("ack, all kinds", every, floor))
    rows += [["reference: Slack's limit", "", "", f"{SLACK_LIMIT_MS:.0f}", "", "", "", ""],
             ["reference: target", "", "", f"< {TARGET_P99_MS:.0f}", "", "", "", ""]]
    waited = card.poll_started - card.failed_first
    rows += [_once("failure → card (s)", card.failure_to_card),
             _once("  last try's end → card (s)", card.card_ts - card.failed_end),
             _once("  failure → poll (s)", waited),
             _once("  poll → card (s)", card.poll_to_card)]
    started = kinds[-1].started
    figures = {
        "ack_p50_ms": round(_pct(every, 50), 2), "ack_p99_ms": round(_pct(every, 99), 2),
        "ack_max_ms": round(max(every), 2), "n": len(every),
        "floor_p50_ms": round(_pct(floor, 50), 2), "floor_p99_ms": round(_pct(floor, 99), 2),
        "kinds": {k.key: {"n": len(k.ms), "p50_ms": round(_pct(k.ms, 50), 2),
                          "p99_ms": round(_pct(k.ms, 99), 2),
                          "floor_p50_ms": round(_pct(k.floor_ms, 50), 2),
                          "floor_p99_ms": round(_pct(k.floor_ms, 99), 2)} for k in kinds},
        "starting_acks_ms": [round(ms, 1) for ms in started],
        "failure_to_card_s": round(card.failure_to_card, 2),
        "failed_for_good_to_card_s": round(card.card_ts - card.failed_end, 2),
        "failure_to_poll_s": round(waited, 2),
        "poll_to_card_s": round(card.poll_to_card, 2),
        "poll_interval_s": POLL_EVERY.total_seconds(),
        "slack_limit_ms": SLACK_LIMIT_MS, "target_p99_ms": TARGET_P99_MS,
    }
    return Result(name="slack", columns=["measure", "n", "p50", "p99", "max", "floor p50",
                                         "floor p99", "+p50"],
                  rows=rows, figures=figures, notes=_notes(every, started, card))


def _notes(every: list[float], started: list[float], card: CardTiming) -> list[str]:
    return [
        (f"ack rows in ms: timed in the workspace from sending the signed POST to the bot's "
         f"HTTP response; {N} per kind after {WARMUP} untimed, one at a time; mean "
         f"{statistics.fmean(every):.1f} ms. floor: a bare Bolt app on the same waitress "
         "server that acks and does nothing (Bolt polls for ack() every 10 ms); +p50: what "
         "Sleuth adds. Slack's limit is 3000 ms; the target (issue 5) p99 < 100 ms."),
        (f"/investigate {card.issue_id} runs last: {len(started)} of its {N} acks started an "
         "investigation (" + ", ".join(f"{ms:.0f}" for ms in started) + " ms), the others "
         "said one is running and were answered while it ran."),
        (f"failure → card: the {SCENARIO} fault day ran while the scheduler polled every source "
         f"every {POLL_EVERY.seconds} s (after {card.polls_before} polls of the healthy history, "
         f"which opened {card.issues_before} issues), all but the table monitor: in one process "
         "its DuckDB connection makes dbt's writes to the same file fail. failure: the end of "
         f"{card.failed_task}'s first failed try; poll: the start of the poll that opened the "
         "issue and posted its card. Wall clock: a try's end is its log file's mtime (the run "
         f"records a simulated clock), the card's is its ts in the workspace (issue "
         f"#{card.issue_id})."),
    ]

"""Starting the Slack side of `sleuth run`: the client, the app, its transport, and the poller
whose outcomes become issue cards and automatic investigations.

With SLACK_BOT_TOKEN the bot talks to Slack; without it, to the local workspace whose
credentials `sleuth workspace` (or `sleuth demo`) wrote, and tells it where the bot listens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.config import Secrets, Settings
from bot.errors import SleuthError
from bot.intake.pipeline import IntakeOutcome
from bot.intake.scheduler import stop_scheduler
from bot.slack.app import Bot, build_app
from bot.slack.approvals import Approvers
from bot.slack.cards import Cards
from bot.slack.jobs import Investigations
from bot.slack.messages import Poster, slack_client
from bot.slack.serve import Endpoint, serve_http, serve_socket
from bot.store.models import Issue, IssueStatus
from bot.systemmap import SystemMap

log = logging.getLogger(__name__)
MAP_TTL = 300.0


@dataclass(frozen=True)
class Connection:
    """How to reach Slack (or the local workspace) and how to check its requests."""

    client: WebClient
    signing_secret: str | None
    app_token: str | None
    local_url: str | None  # the local workspace's base URL, when talking to one


def connect(settings: Settings, secrets: Secrets) -> Connection:
    socket = settings.slack.mode == "socket"
    if secrets.slack_bot_token is not None:
        signing, app_token = secrets.slack_signing_secret, secrets.slack_app_token
        if not socket and signing is None:
            raise SleuthError("SLACK_SIGNING_SECRET is not set: HTTP mode checks every request "
                              "from Slack with it (Basic Information page of the Slack app)")
        if socket and app_token is None:
            raise SleuthError("SLACK_APP_TOKEN is not set: Socket Mode needs an app-level "
                              "token with connections:write")
        return Connection(slack_client(secrets.slack_bot_token.get_secret_value(),
                                       settings.slack.api_url),
                          signing.get_secret_value() if signing else None,
                          app_token.get_secret_value() if app_token else None, None)
    from bot.slack.workspace import load_credentials

    creds = load_credentials(settings.home)
    return Connection(slack_client(creds.bot_token.get_secret_value(),
                                   settings.slack.api_url or creds.api_url),
                      creds.signing_secret.get_secret_value(),
                      creds.app_token.get_secret_value(), creds.page_url or None)


@dataclass
class RunningBot:
    bot: Bot
    app: App
    endpoint: Endpoint
    scheduler: BackgroundScheduler | None = None
    stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str | None:
        return self.endpoint.url

    def stop(self, wait: bool = True) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.scheduler is not None:
            stop_scheduler(self.scheduler, wait=wait)
        self.bot.jobs.shutdown(wait=wait)  # investigations post to Slack, not to the endpoint
        self.endpoint.stop()


def start_bot(settings: Settings, engine: Engine, *, secrets: Secrets | None = None,
              poll: bool = True, notice: Callable[[str], None] | None = None,
              **jobs: Any) -> RunningBot:
    """Connect, serve Slack's requests, and (with `poll`) run intake on its schedule."""
    settings = settings.with_defaults()
    secrets = secrets or Secrets.from_env()
    conn = connect(settings, secrets)
    bot = make_bot(settings, engine, conn.client, secrets, **jobs)
    socket = settings.slack.mode == "socket"
    app = build_app(bot, conn.client, None if socket else conn.signing_secret)
    config = settings.slack
    endpoint = serve_socket(app, conn.app_token or "") if socket else \
        serve_http(app, config.host, config.port, config.path)
    running = RunningBot(bot, app, endpoint)
    try:
        if conn.local_url and endpoint.url:
            _tell_workspace(conn, endpoint.url)
    except BaseException:
        running.stop(wait=False)
        raise
    return running


def make_bot(settings: Settings, engine: Engine, client: WebClient,
             secrets: Secrets | None = None, **jobs: Any) -> Bot:
    try:
        auth = client.auth_test()
    except SlackApiError as exc:
        raise SleuthError(f"Slack refused the bot token: {exc.response.get('error')}") from exc
    poster = Poster(client, engine)
    cards = Cards(poster, engine, settings.intake.grouping.default_channel)
    workers = Investigations(settings, engine, poster, cards, team_id=auth.get("team_id"),
                             secrets=secrets, **jobs)
    approvers = Approvers(client, settings.slack.approvers, settings.slack.approver_group)
    return Bot(settings, engine, poster, cards, workers, approvers, user_id=auth["user_id"],
               team_id=auth.get("team_id"), system_map=cached_map(settings),
               auth={k: auth.get(k) for k in ("user_id", "team_id", "bot_id", "enterprise_id")})


def on_outcome(bot: Bot) -> Callable[[IntakeOutcome], None]:
    """After each poll: cards for what intake touched, then the investigations that start on
    their own (new or reopened issues at `slack.auto_investigate` or worse, not muted)."""
    threshold = bot.settings.slack.auto_investigate

    def publish(outcome: IntakeOutcome) -> None:
        bot.cards.publish(outcome)
        if threshold is None:
            return
        for issue_id in dict.fromkeys([*outcome.opened, *outcome.reopened]):
            with Session(bot.engine) as session:
                issue = session.get(Issue, issue_id)
            if issue is not None and issue.status == IssueStatus.open \
                    and issue.severity <= threshold and bot.cards.card(issue_id) is not None:
                bot.jobs.for_issue(issue_id, trigger="auto")

    return publish


def cached_map(settings: Settings) -> Callable[[], SystemMap]:
    """The system map, rebuilt at most every few minutes (dbt's manifest changes on deploys)."""
    from bot.intake.runtime import system_map

    lock = threading.Lock()
    state: dict[str, Any] = {}

    def get() -> SystemMap:
        with lock:
            if "map" not in state or time.monotonic() - state["at"] > MAP_TTL:
                try:
                    state["map"] = system_map(settings)
                except SleuthError as exc:  # no manifest yet: an empty map, said once
                    log.warning("no system map: %s", exc)
                    state["map"] = SystemMap()
                state["at"] = time.monotonic()
            return state["map"]

    return get


def _tell_workspace(conn: Connection, url: str) -> None:
    """Point the local workspace's deliveries at this bot (it checks the URL first)."""
    assert conn.local_url and conn.app_token
    try:
        answer = httpx2.post(f"{conn.local_url.rstrip('/')}/admin/request_url",
                             data={"url": url}, timeout=30,
                             headers={"Authorization": f"Bearer {conn.app_token}"}).json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise SleuthError(f"the local workspace at {conn.local_url} did not answer: {exc}; "
                          "is `sleuth workspace` running?") from exc
    if not answer.get("ok"):
        raise SleuthError(f"the local workspace refused the bot's URL {url}: "
                          f"{answer.get('detail') or answer.get('error')}")

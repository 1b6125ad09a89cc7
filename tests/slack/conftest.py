"""A running local workspace per test, and a real HTTP receiver standing in for the bot."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.engine import Engine

from bot.slack.messages import Poster
from bot.slack.workspace import RunningWorkspace, start_workspace
from bot.slack.workspace.ratelimit import RateLimiter
from bot.store import open_store

# Registered here, once: a copy imported into each module would start a second Playwright
# (its sync API refuses to start inside the first one's event loop).
from tests.slack.browser import browser_page_fixture, chromium_fixture  # noqa: F401


@pytest.fixture
def running(isolated_home: Path) -> Iterator[RunningWorkspace]:
    # Retries follow at once and the ack wait is short, so the retry tests stay quick; the
    # rate limit is loose here (its own test sets a tight one).
    ws = start_workspace(isolated_home, retry_delays=(0.0, 0.0, 0.0), ack_timeout=1.0,
                         rate_limit=RateLimiter(per_second=100.0, burst=100))
    try:
        yield ws
    finally:
        ws.stop()


@pytest.fixture
def client(running: RunningWorkspace) -> WebClient:
    return WebClient(token=running.credentials.bot_token.get_secret_value(),
                     base_url=running.api_url)


def channel_id(client: WebClient, name: str) -> str:
    found = [c for c in client.conversations_list()["channels"] if c["name"] == name]
    assert found, f"no #{name}"
    return found[0]["id"]


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll until `condition()` is truthy (deliveries are asynchronous); fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    def json(self) -> dict[str, Any]:
        if self.headers.get("content-type", "").startswith("application/json"):
            return json.loads(self.body)
        form = dict(parse_qsl(self.body.decode()))
        return json.loads(form["payload"]) if "payload" in form else form


# How the receiver answers one request: (status, body, content type, seconds to stall first).
Answer = tuple[int, bytes, str, float]


@dataclass
class Receiver:
    """A real HTTP server that checks Slack's signature with slack_sdk and records requests."""

    signing_secret: str
    answer: Callable[[Received, int], Answer] = lambda r, n: (200, b"", "text/plain", 0.0)
    requests: list[Received] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # added to every answer
    echo_challenge: bool = True
    url: str = ""

    def __post_init__(self) -> None:
        verifier = SignatureVerifier(self.signing_secret)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                got = Received(headers, body, verifier.is_valid(
                    body, headers.get("x-slack-request-timestamp"),
                    headers.get("x-slack-signature")))
                challenge = _challenge(got)
                if challenge is not None and receiver.echo_challenge:  # answered as Bolt does
                    return self._reply(200, json.dumps({"challenge": challenge}).encode(),
                                       "application/json", 0.0)
                receiver.requests.append(got)
                self._reply(*receiver.answer(got, len(receiver.requests)))

            def _reply(self, status: int, body: bytes, kind: str, stall: float) -> None:
                time.sleep(stall)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in receiver.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the workspace gave up waiting; that is the point of a stall

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/slack/events"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _challenge(got: Received) -> str | None:
    if not got.headers.get("content-type", "").startswith("application/json"):
        return None
    data = json.loads(got.body)
    return data["challenge"] if data.get("type") == "url_verification" else None


@pytest.fixture
def receiver(running: RunningWorkspace) -> Iterator[Receiver]:
    found = Receiver(running.credentials.signing_secret.get_secret_value())
    running.set_request_url(found.url)
    try:
        yield found
    finally:
        found.stop()


class CountingClient(WebClient):
    """A real client that counts the Web API methods it calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[str] = Counter()
        self.appended: list[int] = []  # characters of each chat.appendStream

    def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls[api_method] += 1
        if api_method == "chat.appendStream":
            self.appended.append(len((kwargs.get("json") or {}).get("markdown_text") or ""))
        return super().api_call(api_method, **kwargs)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_store(f"sqlite:///{tmp_path / 'sleuth.db'}")


@pytest.fixture
def counting(running: RunningWorkspace) -> CountingClient:
    return CountingClient(token=running.credentials.bot_token.get_secret_value(),
                          base_url=running.api_url)


@pytest.fixture
def poster(counting: CountingClient, engine: Engine) -> Poster:
    return Poster(counting, engine)

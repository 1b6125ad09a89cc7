"""The Airflow 3 API backend against a local HTTP server replaying a real Airflow's answers.

`recordings/airflow/responses.json` holds what Airflow 3.3 answered to the integration test
(`SLEUTH_RECORD=1 make integration`; the token replaced). The server here serves those answers
over a real socket, pages lists by `offset`/`limit` as Airflow does, checks the bearer token,
and can be told to fail: expired tokens, 429s, 5xx, non-JSON, malformed records.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from bot.config import AirflowConfig, ConfigError, Secrets, load_settings
from bot.errors import SleuthError
from bot.intake.signals import RawSignal
from bot.sources.airflow_api import AirflowApiBackend, render_log_record
from bot.sources.dag_runs import DagRunsSource, RunsBackendError, dag_runs_source
from bot.sources.demo_runs import DemoRunsBackend

RECORDED = json.loads((Path(__file__).parent / "recordings" / "airflow" /
                       "responses.json").read_text())
RUN_ID = RECORDED["meta"]["run_id"]
USER, PASSWORD = "sleuth", "replay-secret-7c1e"
DAG = "sleuth_probe"


@dataclass
class Scripted:
    """An answer given instead of the recorded one, `times` times (None: always)."""

    method: str
    path_part: str
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = 1
    raw: bytes | None = None


class FakeAirflow:
    """The recorded answers behind a real HTTP server on localhost."""

    def __init__(self) -> None:
        self.answers = {(a["method"], a["path"]): a for a in copy.deepcopy(RECORDED["answers"])}
        self.scripted: list[Scripted] = []
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.logins = 0
        self.valid_tokens: set[str] = set()
        self.lock = threading.Lock()

    def body(self, method: str, path: str) -> Any:
        return self.answers[method, path]["body"]

    def path(self, suffix: str) -> str:
        """The recorded path ending in `suffix`, e.g. `/taskInstances`."""
        (found,) = [p for (_, p) in self.answers if p.endswith(suffix)]
        return found

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def answer(self, method: str, raw_path: str, auth: str | None,
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        with self.lock:
            self.requests.append((method, parts.path, query))
            for s in self.scripted:
                if s.method == method and s.path_part in parts.path and s.times != 0:
                    if s.times is not None:
                        s.times -= 1
                    return s.status, s.headers, s.raw if s.raw is not None else _json(s.body)
            if (method, parts.path) == ("POST", "/auth/token"):
                return self._login(body)
            if auth not in {f"Bearer {t}" for t in self.valid_tokens}:
                return 401, {}, _json({"detail": "Not authenticated"})
            kept = self.answers.get((method, parts.path))
            if kept is None:
                return 404, {}, _json({"detail": "Not Found"})
            return kept["status"], {}, _json(_page(kept["body"], query))

    def _login(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        sent = json.loads(body or b"{}")
        if sent != {"username": USER, "password": PASSWORD}:
            return 401, {}, _json({"detail": "Invalid credentials"})
        self.logins += 1
        token = f"token-{self.logins}"
        self.valid_tokens.add(token)
        return 201, {}, _json({"access_token": token})


def _page(body: Any, query: dict[str, list[str]]) -> Any:
    """A list answer cut to `offset`/`limit`, `total_entries` left whole, as Airflow pages."""
    if not (isinstance(body, dict) and "total_entries" in body and "limit" in query):
        return body
    offset, limit = int(query.get("offset", ["0"])[0]), int(query["limit"][0])
    key = next(k for k, v in body.items() if isinstance(v, list))
    return {**body, key: body[key][offset:offset + limit], "total_entries": len(body[key])}


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture
def airflow() -> Iterator[tuple[FakeAirflow, str]]:
    fake = FakeAirflow()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, headers, payload = fake.answer(self.command, self.path,
                                                   self.headers.get("Authorization"),
                                                   self.rfile.read(length))
            self.send_response(status)
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def backend(url: str, sleeps: list[float] | None = None, **kwargs: Any) -> AirflowApiBackend:
    sleeper = sleeps.append if sleeps is not None else (lambda seconds: None)
    return AirflowApiBackend(url, USER, PASSWORD, timeout=5, sleep=sleeper, **kwargs)


def by_kind(signals: list[RawSignal]) -> dict[tuple[str, str], RawSignal]:
    return {(s.kind, s.asset): s for s in signals}


# --------------------------------------------------------------------------- signals


def test_the_recorded_run_gives_a_failure_and_a_recovered_retry(
        airflow: tuple[FakeAirflow, str], caplog: pytest.LogCaptureFixture) -> None:
    fake, url = airflow
    caplog.set_level(logging.DEBUG)
    signals, _ = DagRunsSource(backend(url), name="airflow").poll()
    got = by_kind(signals)
    assert sorted(got) == [("task_failed", f"task.{DAG}.load_orders"),
                           ("task_retried", f"task.{DAG}.fetch_payments")]
    failed = got["task_failed", f"task.{DAG}.load_orders"]
    assert failed.source == "airflow" and failed.run_id == RUN_ID
    assert failed.dedup_key == f"dagrun:{DAG}:{RUN_ID}:load_orders:2:task_failed"
    assert failed.detail["exception"] == "ValueError: column customer_id not found in raw.orders"
    assert failed.detail["blocked_tasks"] == ["build_marts", "publish_dashboard"]
    assert failed.detail["blocked_count"] == 2
    assert (failed.detail["try_number"], failed.detail["max_tries"], failed.detail["tries"]) == (
        2, 2, 2)
    excerpt = failed.detail["log_excerpt"]
    assert "Traceback (most recent call last):" in excerpt and "load_orders" in excerpt
    assert len(excerpt.splitlines()) <= 40
    assert failed.title == ("Task sleuth_probe.load_orders failed on try 2 of 2: ValueError: "
                            "column customer_id not found in raw.orders")
    retried = got["task_retried", f"task.{DAG}.fetch_payments"]
    assert retried.observed_at < failed.observed_at
    assert retried.detail["recovered_try"] == 2 and "blocked_tasks" not in retried.detail
    assert retried.title.startswith("Task sleuth_probe.fetch_payments try 1 failed, recovered on "
                                    "try 2: ConnectionResetError: [Errno 104]")
    # Every API call carried the bearer token of the one login; the password went nowhere else.
    assert fake.logins == 1
    assert PASSWORD not in caplog.text and PASSWORD not in json.dumps(
        [s.model_dump(mode="json") for s in signals])


def test_the_log_tail_keeps_the_last_40_lines(airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    lines = [f"[2026-11-20T02:00:{i % 60:02d}Z] {{task.py:{i}}} INFO - line {i}" for i in range(99)]
    fake.answers["GET", fake.path("/load_orders/logs/2")]["body"] = {
        "content": [*lines[:50], "[2026-11-20T02:01:00Z] {task.py:9} ERROR - disk full",
                    *lines[50:]], "continuation_token": None}
    signals, _ = DagRunsSource(backend(url)).poll()
    failed = by_kind(signals)["task_failed", f"task.{DAG}.load_orders"]
    tail = failed.detail["log_excerpt"].splitlines()
    assert len(tail) == 40 and tail[-1].endswith("line 98")
    assert failed.detail["error_line"] == "disk full" and "exception" not in failed.detail
    assert failed.title.endswith(": disk full")


def test_text_log_content_is_read_as_lines() -> None:
    assert render_log_record("[2026-11-20, 02:00:01 UTC] {x.py:1} ERROR - boom") == (
        "[2026-11-20, 02:00:01 UTC] {x.py:1} ERROR - boom")
    chained = render_log_record({
        "timestamp": "2026-11-20T02:00:01Z", "event": "Task failed", "level": "error",
        "logger": "task",
        "error_detail": [
            {"exc_type": "RuntimeError", "exc_value": "load failed", "is_cause": False,
             "frames": [{"filename": "/dags/x.py", "lineno": 9, "name": "load"}]},
            {"exc_type": "KeyError", "exc_value": "'id'", "is_cause": True, "frames": []},
        ]})
    assert chained.splitlines()[0] == "[2026-11-20T02:00:01Z] {task} ERROR - Task failed"
    assert "The above exception was the direct cause" in chained
    assert chained.index("KeyError: 'id'") < chained.index("RuntimeError: load failed")


# --------------------------------------------------------------------------- HTTP behaviour


def test_an_expired_token_logs_in_again_once(airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    source = DagRunsSource(backend(url))
    _, cursor = source.poll()
    fake.expire_tokens()
    signals, cursor = source.poll(cursor)
    assert signals == [] and fake.logins == 2
    # A server that refuses every token: one more login, then the error names the user.
    fake.scripted.append(Scripted("GET", "/dagRuns", 401, {"detail": "Invalid token"}, times=2))
    with pytest.raises(RunsBackendError, match=rf"dagRuns: HTTP 401 after 2 tries: Invalid token "
                                               rf"\(user '{USER}'\)$"):
        source.poll(cursor)
    assert fake.logins == 3


def test_429_waits_for_retry_after_then_succeeds(airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    fake.scripted.append(Scripted("GET", "/dagRuns", 429, {"detail": "slow down"},
                                  headers={"Retry-After": "7"}))
    sleeps: list[float] = []
    signals, _ = DagRunsSource(backend(url, sleeps)).poll()
    assert len(signals) == 2 and sleeps == [7.0]


def test_5xx_retried_then_a_clear_error_without_the_password(
        airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    fake.scripted.append(Scripted("GET", "/dagRuns", 503, {"detail": "database is locked"},
                                  times=None))
    sleeps: list[float] = []
    with pytest.raises(RunsBackendError) as caught:
        DagRunsSource(backend(url, sleeps, retries=3, backoff=0.5)).poll()
    message = str(caught.value)
    assert message == (f"Airflow {url}/api/v2/dags/~/dagRuns: HTTP 503 after 4 tries: "
                       "database is locked")
    assert PASSWORD not in message and isinstance(caught.value, SleuthError)
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]  # backing off


def test_an_unreachable_server_and_a_non_json_answer_are_named(
        airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    dead = backend("http://127.0.0.1:9", retries=1)  # the discard port: nothing listens
    with pytest.raises(RunsBackendError, match=r"^Airflow http://127.0.0.1:9/auth/token: cannot "
                                               r"connect .* after 2 tries$"):
        DagRunsSource(dead).poll()
    fake.scripted.append(Scripted("GET", "/dagRuns", 200, raw=b"<html>proxy login</html>",
                                  headers={"Content-Type": "text/html"}))
    with pytest.raises(RunsBackendError, match=r"/api/v2/dags/~/dagRuns: the answer is not JSON "
                                               r"\(text/html\)"):
        DagRunsSource(backend(url)).poll()


def test_lists_are_read_page_by_page(airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    signals, _ = DagRunsSource(backend(url, page_size=1)).poll()
    assert len(signals) == 2
    offsets = [q["offset"][0] for (_, path, q) in fake.requests if path.endswith("/taskInstances")]
    assert offsets == ["0", "1", "2", "3"]  # four task instances, one per page


def test_a_malformed_record_is_skipped_and_the_rest_kept(
        airflow: tuple[FakeAirflow, str], caplog: pytest.LogCaptureFixture) -> None:
    fake, url = airflow
    instances = fake.body("GET", fake.path("/taskInstances"))["task_instances"]
    (flaky,) = [ti for ti in instances if ti["task_id"] == "fetch_payments"]
    flaky["try_number"] = "second"
    runs = fake.body("GET", "/api/v2/dags/~/dagRuns")
    runs["dag_runs"].append({"dag_id": DAG, "state": "failed"})  # no run id
    with caplog.at_level(logging.WARNING):
        signals, _ = DagRunsSource(backend(url)).poll()
    assert [(s.kind, s.asset) for s in signals] == [("task_failed", f"task.{DAG}.load_orders")]
    assert "record 3 skipped: try_number" in caplog.text
    assert "record 1 skipped: dag_run_id" in caplog.text


def test_the_cursor_gives_each_try_once(airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    source = DagRunsSource(backend(url))
    first, cursor = source.poll()
    assert len(first) == 2
    stored = cursor.model_dump(mode="json")  # as the scheduler keeps it
    assert source.poll(stored)[0] == []
    # The run is cleared and load_orders tried a third time: the run's record changes.
    run = fake.body("GET", "/api/v2/dags/~/dagRuns")["dag_runs"][0]
    instances = fake.body("GET", fake.path("/taskInstances"))["task_instances"]
    (orders,) = [ti for ti in instances if ti["task_id"] == "load_orders"]
    orders.update(try_number=3, max_tries=2, end_date="2099-01-01T00:00:00Z")
    fake.body("GET", fake.path("/load_orders/tries"))["task_instances"].append(dict(orders))
    run["end_date"] = "2099-01-01T00:00:05Z"
    new, cursor = source.poll(stored)
    assert [(s.kind, s.detail["try_number"]) for s in new] == [("task_failed", 3)]
    assert new[0].detail["log_missing"] == "no log"  # no log recorded for try 3
    assert new[0].detail["earlier_failed_tries"][-1]["try_number"] == 2
    assert source.poll(cursor)[0] == []
    # What was reported before is not fetched again: the flaky try's log was read once.
    assert [p for (_, p, _) in fake.requests if p.endswith("/fetch_payments/logs/1")] == [
        fake.path("/fetch_payments/logs/1")]


def test_queries_for_other_parts(airflow: tuple[FakeAirflow, str]) -> None:
    _, url = airflow
    source = DagRunsSource(backend(url))
    assert source.final_state(DAG, RUN_ID, "load_orders") == "failed"
    assert source.final_state(DAG, RUN_ID, "fetch_payments") == "success"
    assert source.final_state(DAG, "no_such_run", "load_orders") is None
    first = min(t.start_date for t in source.task_history(DAG, "load_orders",
                                                         source.clock() - timedelta(days=3650)))
    history = source.task_history(DAG, "fetch_payments", first - timedelta(minutes=5))
    assert [(t.try_number, t.state) for t in history] == [(1, "failed"), (2, "success")]


def test_check_names_a_refused_login_and_a_missing_dag(airflow: tuple[FakeAirflow, str]) -> None:
    _, url = airflow
    wrong = AirflowApiBackend(url, USER, "guess", sleep=lambda s: None)
    assert DagRunsSource(wrong).check() == [
        f"Airflow {url}: login refused for user '{USER}' (HTTP 401); check the "
        "username and AIRFLOW_PASSWORD"]
    nobody = AirflowApiBackend(url, USER, None)
    assert DagRunsSource(nobody).check() == [
        f"Airflow {url}: AIRFLOW_PASSWORD is not set (user '{USER}' needs it to log in)"]
    ok = DagRunsSource(backend(url), dag_ids=[DAG, "nightly"])
    assert ok.check() == [f"DAG 'nightly' not found at {url}"]


# --------------------------------------------------------------------------- config


def test_airflow_config_defaults_to_the_demo_run_records(isolated_home: Path) -> None:
    settings = load_settings(None)
    assert settings.sources.airflow == AirflowConfig()
    filled = settings.with_defaults().sources.airflow
    assert filled.runs_db == isolated_home / "demo" / "platform" / "runs.sqlite"
    source = dag_runs_source(settings)
    assert isinstance(source.backend, DemoRunsBackend)
    assert source.check() == [f"the demo platform's run records {filled.runs_db} do "
                              "not exist: run `sleuth demo run` first"]


def test_airflow_config_from_the_file(tmp_path: Path, airflow: tuple[FakeAirflow, str]) -> None:
    _, url = airflow
    path = tmp_path / "sleuth.yaml"
    path.write_text(f"sources:\n  airflow:\n    url: {url}\n    username: {USER}\n"
                    f"    dag_ids: [{DAG}]\n    lookback_hours: 6\n    timeout_seconds: 5\n")
    settings = load_settings(path)
    source = dag_runs_source(settings, Secrets(airflow_password=SecretStr(PASSWORD)))
    assert isinstance(source.backend, AirflowApiBackend)
    assert source.dag_ids == [DAG] and source.lookback == timedelta(hours=6)
    assert source.check() == []
    path.write_text("sources:\n  airflow:\n    url: airflow:8080\n    lookback_hours: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    keys = [(p.key, p.line) for p in caught.value.problems]
    assert keys == [("sources.airflow.url", 3), ("sources.airflow.lookback_hours", 4)]

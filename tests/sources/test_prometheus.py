"""The Prometheus client against a real local HTTP server replaying recorded answers.

The recordings (`recordings/prometheus/`) are a real Prometheus 2.42's answers, captured by
`SLEUTH_RECORD=1 make integration`. The server here replays them, and answers scripted
failures (503, timeouts, 401) and generated ranges for what a real server will not do on cue.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from bot.config import PrometheusMetricsConfig
from bot.errors import SleuthError
from bot.sources.prometheus import PrometheusClient, PrometheusError, split_range

RECORDINGS = Path(__file__).parent / "recordings" / "prometheus"
STEP = timedelta(minutes=5)


def recording(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / f"{name}.json").read_text())


class Answer:
    def __init__(self, status: int, body: Any, delay: float = 0.0,
                 headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.delay, self.headers = status, body, delay, headers or {}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    script: list[Answer]
    requests: list[tuple[str, dict[str, str], dict[str, str]]]


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append((url.path, params, dict(self.headers)))
        answer = self.server.script.pop(0) if self.server.script else _default(url.path, params)
        time.sleep(answer.delay)
        body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(body.encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    def log_message(self, *args: Any) -> None:
        pass


def _default(path: str, params: dict[str, str]) -> Answer:
    """What the recorded server said, by request; `generated` makes a range on the fly."""
    if path.endswith("buildinfo"):
        name = "buildinfo"
    elif params.get("query") == "generated":
        start, end, step = (float(params[k]) for k in ("start", "end", "step"))
        n = int(round((end - start) / step)) + 1
        values = [[start + i * step, str(start + i * step)] for i in range(n)]
        return Answer(200, {"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "gen"}, "values": values}]}})
    else:
        name = {"sum(": "syntax_error", "no_such_metric": "empty"}.get(params.get("query", ""),
                                                                      "query_range")
    record = recording(name)
    return Answer(record["status"], record["body"])


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.script, httpd.requests = [], []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url_of(server: Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def client(server: Server, **kwargs: Any) -> PrometheusClient:
    return PrometheusClient(url_of(server), backoff=0.0, **kwargs)


def window() -> tuple[datetime, datetime]:
    params = recording("query_range")["request"]["params"]
    return (datetime.fromtimestamp(float(params["start"]), UTC),
            datetime.fromtimestamp(float(params["end"]), UTC))


# ------------------------------------------------------------------------------- answers


def test_a_recorded_range_becomes_typed_series(server: Server) -> None:
    query = recording("query_range")["request"]["params"]["query"]
    result = client(server).query_range(query, *window(), STEP)
    assert {s.labels["shop"] for s in result.series} == {"eu", "us"}
    eu = next(s for s in result.series if s.labels["shop"] == "eu")
    assert eu.labels["__name__"] == query
    raw = recording("query_range")["body"]["data"]["result"][0]["values"]
    assert [(t.timestamp(), v) for t, v in eu.points] == [(float(t), float(v)) for t, v in raw]
    assert eu.points[0][0].tzinfo is UTC and result.warnings == []
    path, params, _ = server.requests[0]
    assert path == "/api/v1/query_range" and params["step"] == "300"


def test_nan_and_infinities_are_floats(server: Server) -> None:
    server.script.append(Answer(200, {"status": "success", "data": {"resultType": "matrix",
                                      "result": [{"metric": {}, "values": [
                                          [1, "NaN"], [2, "+Inf"], [3, "-Inf"], [4, "1.5e3"]]}]}}))
    (series,) = client(server).query_range("x", *window(), STEP).series
    values = [v for _, v in series.points]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 1500.0]


def test_a_syntax_error_names_server_query_and_prometheus_reason(server: Server) -> None:
    with pytest.raises(PrometheusError) as err:
        client(server).query_range("sum(", *window(), STEP)
    text = str(err.value)
    assert url_of(server) in text and "'sum('" in text
    assert "bad_data: 1:5: parse error: unclosed left parenthesis" in text
    assert len(server.requests) == 1  # a 400 is not retried


def test_an_empty_result_is_no_series(server: Server) -> None:
    assert client(server).query_range("no_such_metric", *window(), STEP).series == []


def test_warnings_are_returned_and_logged(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    body = {**recording("empty")["body"], "warnings": ["results truncated"]}
    server.script.append(Answer(200, body))
    with caplog.at_level(logging.WARNING):
        result = client(server).query_range("up", *window(), STEP)
    assert result.warnings == ["results truncated"]
    assert "results truncated" in caplog.text and "'up'" in caplog.text


def test_a_non_json_answer_is_a_clear_error(server: Server) -> None:
    server.script.append(Answer(404, "<html>not found</html>"))
    with pytest.raises(PrometheusError, match="HTTP 404: <html>not found</html>"):
        client(server).query_range("up", *window(), STEP)


# ------------------------------------------------------------------------------- retries


def test_a_503_is_retried_then_succeeds(server: Server) -> None:
    server.script.append(Answer(503, {"status": "error", "errorType": "unavailable",
                                      "error": "overloaded"}))
    result = client(server).query_range("no_such_metric", *window(), STEP)
    assert result.series == [] and len(server.requests) == 2


def test_a_429_honours_retry_after_then_succeeds(server: Server) -> None:
    server.script.append(Answer(429, "slow down", headers={"Retry-After": "0"}))
    assert client(server).buildinfo()["version"].startswith("2.")
    assert len(server.requests) == 2


def test_it_gives_up_after_its_retries_with_the_last_answer(server: Server) -> None:
    server.script += [Answer(503, {"status": "error", "errorType": "unavailable",
                                   "error": "overloaded"})] * 3
    with pytest.raises(PrometheusError, match="unavailable: overloaded"):
        client(server, retries=2).query_range("up", *window(), STEP)
    assert len(server.requests) == 3


def test_a_timeout_is_retried_then_reported(server: Server) -> None:
    server.script += [Answer(200, recording("empty")["body"], delay=1.0)] * 2
    with pytest.raises(PrometheusError, match="did not answer query 'up' after 2 tries"):
        client(server, retries=1, timeout=0.2).query_range("up", *window(), STEP)


def test_check_reports_an_unreachable_server() -> None:
    (problem,) = PrometheusClient("http://127.0.0.1:9", retries=0).check()
    assert "http://127.0.0.1:9" in problem and "did not answer" in problem


def test_check_is_empty_when_the_server_answers(server: Server) -> None:
    assert client(server).check() == []
    assert server.requests[0][0] == "/api/v1/status/buildinfo"


# ------------------------------------------------------------------------------- splitting


def test_split_range_keeps_one_grid_and_the_point_limit() -> None:
    assert split_range(0, 10, 1, max_points=3) == [(0, 2), (3, 5), (6, 8), (9, 10)]
    assert split_range(0, 4, 1, max_points=11_000) == [(0, 4)]
    assert split_range(5, 4, 1) == []


def test_a_long_range_is_split_into_requests_and_joined(server: Server) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + 12 * STEP
    (series,) = client(server, max_points=5).query_range("generated", start, end, STEP).series
    assert [t for t, _ in series.points] == [start + i * STEP for i in range(13)]
    assert [v for _, v in series.points] == [t.timestamp() for t, _ in series.points]
    spans = [(float(p["start"]), float(p["end"])) for _, p, _ in server.requests]
    assert len(spans) == 3 and all((hi - lo) / 300 + 1 <= 5 for lo, hi in spans)


# ------------------------------------------------------------------------------- auth


def test_a_bearer_token_is_sent_and_never_logged(server: Server, caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROM_TOKEN", "s3cret-token")
    config = PrometheusMetricsConfig(kind="prometheus", url=url_of(server),
                                     bearer_token_env="PROM_TOKEN")
    server.script += [Answer(503, "busy"), Answer(401, "unauthorized")]
    with caplog.at_level(logging.DEBUG), pytest.raises(PrometheusError) as err:
        PrometheusClient.from_config(config).query_range("up", *window(), STEP)
    assert "401" in str(err.value) and "credentials" in str(err.value)
    assert all(h.get("Authorization") == "Bearer s3cret-token" for _, _, h in server.requests)
    assert "s3cret" not in caplog.text and "s3cret" not in str(err.value)


def test_basic_auth_is_sent_from_the_named_variables(server: Server,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROM_USER", "sleuth")
    monkeypatch.setenv("PROM_PASS", "hunter2")
    config = PrometheusMetricsConfig(kind="prometheus", url=url_of(server),
                                     username_env="PROM_USER", password_env="PROM_PASS")
    PrometheusClient.from_config(config).buildinfo()
    assert server.requests[0][2]["Authorization"] == "Basic c2xldXRoOmh1bnRlcjI="


def test_an_unset_credentials_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROM_TOKEN", raising=False)
    config = PrometheusMetricsConfig(kind="prometheus", url="http://prom:9090",
                                     bearer_token_env="PROM_TOKEN")
    with pytest.raises(SleuthError, match="PROM_TOKEN is not set"):
        PrometheusClient.from_config(config)


@pytest.mark.parametrize("auth", [{"username_env": "U"},
                                  {"bearer_token_env": "T", "username_env": "U",
                                   "password_env": "P"}])
def test_config_refuses_half_or_double_auth(auth: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        PrometheusMetricsConfig(kind="prometheus", url="http://prom:9090", **auth)

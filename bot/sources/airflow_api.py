"""Airflow 3's REST API (`/api/v2`) as a `RunsBackend`.

Auth: Airflow 3 hands out a JWT at `POST {url}/auth/token` for a username and password (the
simple auth manager and the FAB provider both do); requests carry `Authorization: Bearer`.
A 401 logs in again, once. The password is only ever put in that one request body.

Reads: DAG runs by `updated_at_gte` (`~` for every DAG), a run's task instances, the tries of
an instance that was tried more than once (`…/tries`: the history plus the current try), a
try's log (`…/logs/{try}` as JSON: in Airflow 3 a list of structured records, in older
setups lines of text), and a DAG's tasks for their downstream ids. Lists are paged by offset
until `total_entries`.

Failures: timeouts, transport errors, 429 (after its Retry-After) and 5xx are retried with
exponential backoff; when the tries run out, or on any other error, `RunsBackendError` says
which URL and what happened. A 404 is an answer (no such run, no log), not an error.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx2
from pydantic import BaseModel, SecretStr

from bot.sources.dag_runs import DagRunRecord, RunsBackendError, TaskTry, parse_records
from bot.sources.dbt_files import UtcDatetime

log = logging.getLogger(__name__)

API = "/api/v2"
TOKEN_PATH = "/auth/token"
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class ApiRun(BaseModel):
    """The fields of Airflow's DAGRunResponse this backend reads."""

    dag_id: str
    dag_run_id: str
    state: str
    logical_date: UtcDatetime | None = None
    queued_at: UtcDatetime | None = None
    run_after: UtcDatetime | None = None
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
    last_scheduling_decision: UtcDatetime | None = None

    def record(self) -> DagRunRecord:
        # The response has no updated_at (only a filter on it): the latest time it carries.
        moments = [m for m in (self.end_date, self.last_scheduling_decision, self.start_date,
                               self.queued_at, self.run_after, self.logical_date) if m]
        if not moments:
            raise ValueError("a run with no date at all")
        return DagRunRecord(dag_id=self.dag_id, run_id=self.dag_run_id, state=self.state,
                            logical_date=self.logical_date, start_date=self.start_date,
                            end_date=self.end_date, updated_at=max(moments))


class ApiTry(BaseModel):
    """The fields of TaskInstanceResponse / TaskInstanceHistoryResponse this backend reads."""

    dag_id: str
    dag_run_id: str
    task_id: str
    map_index: int = -1
    try_number: int
    max_tries: int | None = None
    state: str | None = None
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
    duration: float | None = None
    operator: str | None = None
    hostname: str | None = None

    def record(self) -> TaskTry:
        return TaskTry(dag_id=self.dag_id, run_id=self.dag_run_id, task_id=self.task_id,
                       map_index=self.map_index, try_number=self.try_number,
                       max_tries=self.max_tries + 1 if self.max_tries is not None else None,
                       state=self.state, start_date=self.start_date, end_date=self.end_date,
                       duration=self.duration, operator=self.operator, hostname=self.hostname)


class AirflowApiBackend:
    """DAG runs, task tries and logs read from an Airflow 3 API server."""

    def __init__(
        self,
        url: str,
        username: str | None,
        password: SecretStr | str | None,
        *,
        timeout: float = 30.0,
        verify_tls: bool = True,
        retries: int = 4,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        page_size: int = 100,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.label = _without_userinfo(self.url)
        self.username = username
        self._password = password if isinstance(password, SecretStr | None) else SecretStr(password)
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.page_size = page_size
        self.sleep = sleep
        self._token: str | None = None
        self.client = httpx2.Client(base_url=self.url, timeout=timeout, verify=verify_tls,
                                     headers={"Accept": "application/json"})

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------ RunsBackend

    def runs_since(self, since: datetime, dag_ids: Sequence[str] | None) -> list[DagRunRecord]:
        params = {"updated_at_gte": since.isoformat(), "order_by": "id"}
        found: list[DagRunRecord] = []
        for dag_id in dag_ids or ["~"]:
            path = f"{API}/dags/{_q(dag_id)}/dagRuns"
            rows = self._pages(path, params, "dag_runs")
            if rows is None:
                log.warning("Airflow %s: DAG %r not found; its runs are skipped", self.label,
                            dag_id)
                continue
            found += _records(ApiRun, rows, f"{self.label}{path}")
        return found

    def run(self, dag_id: str, run_id: str) -> DagRunRecord | None:
        body = self._get(f"{API}/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")
        if body is None:
            return None
        records = _records(ApiRun, [body], f"{self.label} run {dag_id}/{run_id}")
        return records[0] if records else None

    def tries(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[TaskTry]:
        path = f"{API}/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances"
        rows = self._pages(path, {"task_id": task_id} if task_id else {}, "task_instances")
        tries: list[TaskTry] = []
        for ti in _records(ApiTry, rows or [], f"{self.label}{path}"):
            if task_id is not None and ti.task_id != task_id:
                continue  # `task_id` is a filter servers may read as a pattern
            if ti.try_number > 1 or ti.state == "up_for_retry":
                tries += self._history(ti) or [ti]
            else:
                tries.append(ti)
        return tries

    def log(self, attempt: TaskTry) -> str | None:
        path = (f"{API}/dags/{_q(attempt.dag_id)}/dagRuns/{_q(attempt.run_id)}/taskInstances/"
                f"{_q(attempt.task_id)}/logs/{attempt.try_number}")
        body = self._get(path, {"full_content": "true", "map_index": attempt.map_index})
        if body is None:
            return None
        content = body.get("content") if isinstance(body, dict) else None
        if isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise RunsBackendError(f"Airflow {self.label}{path}: no log `content` in the answer")
        return "\n".join(render_log_record(item) for item in content)

    def downstream(self, dag_id: str) -> Mapping[str, Sequence[str]] | None:
        body = self._get(f"{API}/dags/{_q(dag_id)}/tasks")
        if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
            return None
        return {t["task_id"]: list(t.get("downstream_task_ids") or []) for t in body["tasks"]
                if isinstance(t, dict) and isinstance(t.get("task_id"), str)}

    def check(self, dag_ids: Sequence[str] | None) -> list[str]:
        try:
            if self._get(f"{API}/dags", {"limit": 1}) is None:
                return [f"{self.label} has no {API}/dags: is this an Airflow 3 API server?"]
            return [f"DAG {d!r} not found at {self.label}" for d in dag_ids or []
                    if self._get(f"{API}/dags/{_q(d)}") is None]
        except RunsBackendError as exc:
            return [str(exc)]

    # ------------------------------------------------------------ HTTP

    def _history(self, ti: TaskTry) -> list[TaskTry] | None:
        base = (f"{API}/dags/{_q(ti.dag_id)}/dagRuns/{_q(ti.run_id)}/taskInstances/"
                f"{_q(ti.task_id)}")
        path = f"{base}/{ti.map_index}/tries" if ti.map_index >= 0 else f"{base}/tries"
        body = self._get(path)
        if not isinstance(body, dict) or not isinstance(body.get("task_instances"), list):
            return None
        return _records(ApiTry, body["task_instances"], f"{self.label}{path}")

    def _pages(self, path: str, params: Mapping[str, Any], key: str) -> list[Any] | None:
        """Every item of a paged list; None if the list itself is not found (404)."""
        items: list[Any] = []
        for body in self._page_bodies(path, params):
            if body is None:
                return None
            page = body.get(key) if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise RunsBackendError(f"Airflow {self.label}{path}: the answer has no "
                                       f"`{key}` list")
            items += page
        return items

    def _page_bodies(self, path: str, params: Mapping[str, Any]) -> Iterator[Any]:
        offset = 0
        while True:
            body = self._get(path, {**params, "limit": self.page_size, "offset": offset})
            yield body
            if not isinstance(body, dict):
                return
            count = next((len(v) for v in body.values() if isinstance(v, list)), 0)
            offset += count
            total = body.get("total_entries")
            if count == 0 or (total is not None and offset >= total) or \
                    (total is None and count < self.page_size):
                return

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON body of a GET, None on 404."""
        response = self._send("GET", path, params=params)
        if response.status_code == 404:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RunsBackendError(f"Airflow {self.label}{path}: the answer is not JSON "
                                   f"({response.headers.get('content-type', 'no type')})") from exc

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        """One request with auth, retries and backoff; any answer but a retried one returns."""
        reauthed = False
        attempt = 0
        while True:
            attempt += 1
            headers = {"Authorization": f"Bearer {self._login()}"} if self.username else {}
            try:
                response = self.client.request(method, path, headers=headers, **kwargs)
            except httpx2.TransportError as exc:
                if attempt > self.retries:
                    raise RunsBackendError(f"Airflow {self.label}{path}: {_transport(exc)} "
                                           f"after {attempt} tries") from None
                self.sleep(self._delay(attempt))
                continue
            if response.status_code == 401 and self.username and not reauthed:
                reauthed, self._token = True, None  # the token expired: log in once more
                continue
            if response.status_code in _RETRY_STATUS and attempt <= self.retries:
                self.sleep(self._retry_after(response) or self._delay(attempt))
                continue
            if response.status_code == 404 or response.is_success:
                return response
            raise RunsBackendError(self._failure(path, response, attempt))

    def _login(self) -> str:
        if self._token is not None:
            return self._token
        if self._password is None:
            raise RunsBackendError(f"Airflow {self.label}: AIRFLOW_PASSWORD is not set "
                                   f"(user {self.username!r} needs it to log in)")
        body = {"username": self.username, "password": self._password.get_secret_value()}
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.client.post(TOKEN_PATH, json=body)
            except httpx2.TransportError as exc:
                if attempt > self.retries:
                    raise RunsBackendError(f"Airflow {self.label}{TOKEN_PATH}: {_transport(exc)} "
                                           f"after {attempt} tries") from None
                self.sleep(self._delay(attempt))
                continue
            if response.status_code in _RETRY_STATUS and attempt <= self.retries:
                self.sleep(self._retry_after(response) or self._delay(attempt))
                continue
            break
        if response.status_code in (401, 403):
            raise RunsBackendError(f"Airflow {self.label}: login refused for user "
                                   f"{self.username!r} (HTTP {response.status_code}); "
                                   "check the username and AIRFLOW_PASSWORD")
        if not response.is_success:
            raise RunsBackendError(self._failure(TOKEN_PATH, response, attempt))
        try:
            self._token = str(response.json()["access_token"])
        except (ValueError, KeyError, TypeError):
            raise RunsBackendError(f"Airflow {self.label}{TOKEN_PATH}: no access_token in the "
                                   "answer") from None
        return self._token

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: 0.5, 1, 2, 4… seconds, capped."""
        return min(self.backoff * 2 ** (attempt - 1) * random.uniform(0.8, 1.2), self.max_wait)

    def _retry_after(self, response: httpx2.Response) -> float | None:
        value = response.headers.get("retry-after")
        if not value:
            return None
        if value.strip().isdigit():
            return min(float(value), self.max_wait)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return min(max((when - datetime.now(when.tzinfo)).total_seconds(), 0.0), self.max_wait)

    def _failure(self, path: str, response: httpx2.Response, attempt: int) -> str:
        tries = f" after {attempt} tries" if attempt > 1 else ""
        why = ""
        try:
            detail = response.json().get("detail")
            why = f": {_short(detail)}" if detail else ""
        except (ValueError, AttributeError):
            pass
        if response.status_code == 401:
            why += f" (user {self.username!r})" if self.username else " (no username configured)"
        if response.status_code == 403:
            why += f" (user {self.username!r} may not read this)"
        return f"Airflow {self.label}{path}: HTTP {response.status_code}{tries}{why}"


def render_log_record(item: Any) -> str:
    """One of Airflow 3's structured log records as a classic Airflow log line (with its
    traceback below it), so that one reader finds error lines and exceptions in either."""
    if not isinstance(item, dict):
        return str(item)
    ts = str(item.get("timestamp") or "")
    level = str(item.get("level") or "info").upper()
    logger = str(item.get("logger") or item.get("chan") or "task")
    event = str(item.get("event") or "")
    if not ts:  # a header line (`::group::…`) or a source note: no timestamp to show
        return event
    line = f"[{ts}] {{{logger}}} {level} - {event}"
    return "\n".join([line, *_traceback_lines(item.get("error_detail"))])


def _traceback_lines(detail: Any) -> list[str]:
    """Airflow 3's `error_detail` (a chain of exceptions with frames) as a Python traceback."""
    if not isinstance(detail, list):
        return []
    lines: list[str] = []
    inner: dict[str, Any] | None = None
    # Listed outermost first, each marked `is_cause` if it caused the one before it;
    # Python prints the innermost first.
    for exc in (d for d in reversed(detail) if isinstance(d, dict)):
        if inner is not None:
            lines += ["", "The above exception was the direct cause of the following exception:"
                      if inner.get("is_cause") else
                      "During handling of the above exception, another exception occurred:", ""]
        inner = exc
        lines.append("Traceback (most recent call last):")
        for frame in exc.get("frames") or []:
            if isinstance(frame, dict):
                lines.append(f'  File "{frame.get("filename")}", line {frame.get("lineno")}, '
                             f'in {frame.get("name")}')
        value = exc.get("exc_value")
        lines.append(f"{exc.get('exc_type')}: {value}" if value else str(exc.get("exc_type")))
    return lines


def _records(model: type[ApiRun] | type[ApiTry], rows: Sequence[Any], where: str) -> list[Any]:
    out = []
    for parsed in parse_records(model, rows, where):
        try:
            out.append(parsed.record())
        except ValueError as exc:
            log.warning("%s: record skipped: %s", where, exc)
    return out


def _transport(exc: httpx2.TransportError) -> str:
    if isinstance(exc, httpx2.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx2.ConnectError):
        return f"cannot connect ({_short(str(exc)) or 'connection refused'})"
    return f"{type(exc).__name__} ({_short(str(exc))})"


def _q(part: str) -> str:
    """A path segment: run ids hold `:` and `+`, which must reach Airflow intact."""
    return quote(part, safe="~")


def _short(value: Any, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))

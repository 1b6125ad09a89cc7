"""The DAG-runs source against a real Airflow 3 API server (see conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2
import pytest

from bot.sources.airflow_api import AirflowApiBackend
from bot.sources.dag_runs import DagRunsSource
from tests.integration.airflow.conftest import (
    DAG_ID,
    PASSWORD,
    RECORDINGS,
    USER,
    AirflowServer,
    Recorder,
)

pytestmark = pytest.mark.integration


def test_failed_and_flaky_tasks_of_a_real_run(airflow_server: AirflowServer,
                                             recorder: Recorder | None) -> None:
    backend = AirflowApiBackend(airflow_server.url, USER, PASSWORD, timeout=30)
    if recorder is not None:
        backend.client.event_hooks["response"].append(recorder)
    source = DagRunsSource(backend, dag_ids=None, lookback_hours=2)
    assert source.check() == []
    assert DagRunsSource(backend, dag_ids=[DAG_ID]).check() == []

    signals, cursor = source.poll()
    by_kind = {(s.kind, s.asset): s for s in signals}
    assert sorted(by_kind) == [("task_failed", f"task.{DAG_ID}.load_orders"),
                               ("task_retried", f"task.{DAG_ID}.fetch_payments")]

    failed = by_kind["task_failed", f"task.{DAG_ID}.load_orders"]
    assert failed.run_id == airflow_server.run_id
    assert failed.detail["try_number"] == 2 and failed.detail["max_tries"] == 2
    assert failed.detail["exception"] == "ValueError: column customer_id not found in raw.orders"
    assert failed.detail["error_line"] == "Task failed with exception"
    assert "column customer_id not found" in failed.detail["log_excerpt"]
    assert failed.detail["blocked_tasks"] == ["build_marts", "publish_dashboard"]
    assert [t["try_number"] for t in failed.detail["earlier_failed_tries"]] == [1]
    assert failed.detail["operator"] == "PythonOperator"
    assert failed.observed_at.isoformat() == failed.detail["end_date"]
    assert "load_orders failed on try 2 of 2: ValueError" in failed.title

    retried = by_kind["task_retried", f"task.{DAG_ID}.fetch_payments"]
    assert retried.detail["try_number"] == 1 and retried.detail["recovered_try"] == 2
    assert retried.detail["exception"].startswith("ConnectionResetError: [Errno 104]")

    again, _ = source.poll(cursor.model_dump(mode="json"))
    assert again == []

    since = datetime.now(UTC) - timedelta(hours=2)
    history = source.task_history(DAG_ID, "fetch_payments", since)
    assert [(t.try_number, t.state) for t in history] == [(1, "failed"), (2, "success")]
    assert source.final_state(DAG_ID, airflow_server.run_id, "load_orders") == "failed"
    assert source.final_state(DAG_ID, airflow_server.run_id, "build_marts") == "upstream_failed"
    assert source.final_state(DAG_ID, airflow_server.run_id, "no_such_task") is None

    if recorder is not None:
        source.final_state(DAG_ID, airflow_server.run_id, "fetch_payments")
        recorder.write(RECORDINGS, {"airflow": version_of_server(airflow_server),
                                    "run_id": airflow_server.run_id, "user": USER})


def test_a_wrong_password_is_named_without_the_password(airflow_server: AirflowServer) -> None:
    backend = AirflowApiBackend(airflow_server.url, USER, "not-" + PASSWORD, retries=0)
    problems = DagRunsSource(backend).check()
    assert problems == [f"Airflow {airflow_server.url}: login refused for user "
                        f"'{USER}' (HTTP 401); check the username and AIRFLOW_PASSWORD"]
    assert PASSWORD not in problems[0]


def test_an_unknown_dag_is_named(airflow_server: AirflowServer) -> None:
    backend = AirflowApiBackend(airflow_server.url, USER, PASSWORD)
    problems = DagRunsSource(backend, dag_ids=[DAG_ID, "no_such_dag"]).check()
    assert problems == [f"DAG 'no_such_dag' not found at {airflow_server.url}"]


def version_of_server(server: AirflowServer) -> str:
    return str(httpx2.get(f"{server.url}/api/v2/version", timeout=10).json()["version"])

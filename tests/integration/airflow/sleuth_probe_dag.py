"""The DAG the Airflow integration test runs: a task that fails on both of its tries, one
that fails once and then succeeds (flaky), and tasks below the failure that never run."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

RETRY = {"retries": 1, "retry_delay": timedelta(seconds=0)}


def load_orders() -> None:
    raise ValueError("column customer_id not found in raw.orders")


def fetch_payments(ti) -> str:  # Airflow passes the task instance by name
    if ti.try_number == 1:
        raise ConnectionResetError(104, "Connection reset by peer")
    return "fetched"


with DAG(
    dag_id="sleuth_probe",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    default_args=RETRY,
):
    orders = PythonOperator(task_id="load_orders", python_callable=load_orders)
    payments = PythonOperator(task_id="fetch_payments", python_callable=fetch_payments)
    build = PythonOperator(task_id="build_marts", python_callable=lambda: None)
    publish = PythonOperator(task_id="publish_dashboard", python_callable=lambda: None)
    [orders, payments] >> build >> publish

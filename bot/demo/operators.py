"""What each DAG operator does, and what Airflow operator it shows up as in the logs.

An operator gets a `TaskContext` (the try, its log, the simulated clock, the platform's files)
and either returns (success) or raises (the try failed).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from bot.demo import dbt_task
from bot.demo.dagspec import DagSpec, TaskSpec
from bot.demo.loaders import LoadResult, run_loader
from bot.demo.metrics import MetricsStore, Sample
from bot.demo.paths import PlatformPaths
from bot.demo.tasklog import AttemptLog


@dataclass
class TaskContext:
    dag: DagSpec
    task: TaskSpec
    day: date  # the logical date
    run_id: str
    try_number: int
    latest: bool
    paths: PlatformPaths
    log: AttemptLog
    metrics: MetricsStore

    def now(self) -> datetime:
        return self.log.clock.now()


@dataclass(frozen=True)
class Operator:
    airflow_class: Literal["PythonOperator", "BashOperator"]
    execute: Callable[[TaskContext], object]
    python_callable: Callable[..., object] | None = None
    """The function Airflow's PythonOperator would call; its frames start the traceback."""


def default_operators() -> dict[str, Operator]:
    return {
        "load": Operator("PythonOperator", load, run_loader),
        "dbt_build": Operator("BashOperator", dbt_task.dbt_build),
        "dbt_source_freshness": Operator("BashOperator", dbt_task.dbt_source_freshness),
        "publish": Operator("PythonOperator", publish, publish),
    }


def source_table(loader: str) -> tuple[str, str]:
    """`payments_refunds` -> ("payments", "refunds"): loaders are named source_table."""
    source, _, table = loader.partition("_")
    return source, table


def load(ctx: TaskContext) -> LoadResult:
    assert ctx.task.loader is not None  # guaranteed by the DAG's validation
    result = run_loader(
        ctx.task.loader,
        ctx.day,
        repo=ctx.paths.repo,
        landing=ctx.paths.landing,
        warehouse=ctx.paths.warehouse,
        loaded_at=ctx.now(),
        log=ctx.log.logger,
    )
    source, table = source_table(ctx.task.loader)
    ctx.metrics.record("rows_loaded", {"source": source, "table": table}, ctx.now(), result.rows)
    return result


# ---------------------------------------------------------------- publish

DASHBOARD_MODEL = "fct_daily_revenue"


def publish(ctx: TaskContext) -> str:
    """Hand the dashboard its extract and record the day's KPIs as the dashboard shows them."""
    assert ctx.task.exposure is not None
    relation = dbt_task.model_relations(ctx.paths).get(DASHBOARD_MODEL)
    if relation is None:
        raise LookupError(f"model {DASHBOARD_MODEL} is not in the dbt manifest; nothing to publish")
    target = ctx.paths.exports / ctx.task.exposure / f"{ctx.day.isoformat()}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    with dbt_task.warehouse(ctx.paths) as con:
        cursor = con.execute(f"select * from {relation} order by 1")
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    with target.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    ctx.log.logger.info("Exported %d rows of %s to %s", len(rows), relation, target)
    kpis = day_kpis(columns, rows, ctx.day)
    if kpis["orders"] == 0:
        ctx.log.logger.warning(
            "%s has no row for %s: the dashboard shows no revenue for the day",
            DASHBOARD_MODEL,
            ctx.day,
        )
    # Recorded when the dashboard gets it (the run's time), for the run's logical date.
    ctx.metrics.record_many(
        Sample(name="kpi", labels={"name": k}, ts=ctx.now(), value=v)
        for k, v in kpis.items()
        if v is not None
    )
    ctx.log.logger.info("KPIs for %s: %s", ctx.day, ", ".join(f"{k}={v}" for k, v in kpis.items()))
    return str(target)


_KPI_COLUMNS = {  # first column found wins
    "date": ("revenue_date", "date", "day", "order_date"),
    "revenue": ("net_revenue", "revenue", "gross_revenue"),
    "orders": ("orders_placed", "orders", "order_count", "orders_paid"),
    "avg_order_value": ("average_order_value", "avg_order_value", "aov"),
}


def day_kpis(columns: list[str], rows: list[tuple], day: date) -> dict[str, float | None]:
    """Revenue, orders and average order value of `day` as the daily revenue table has them."""
    lowered = [c.lower() for c in columns]
    at = {
        kpi: next((lowered.index(c) for c in names if c in lowered), None)
        for kpi, names in _KPI_COLUMNS.items()
    }
    if at["date"] is None:
        raise LookupError(f"no date column among {columns}")
    row = next((r for r in rows if _as_date(r[at["date"]]) == day), None)

    def value(kpi: str) -> float | None:
        i = at[kpi]
        return None if row is None or i is None or row[i] is None else float(row[i])

    revenue, orders = value("revenue") or 0.0, value("orders") or 0.0
    aov = value("avg_order_value")
    if aov is None and orders:
        aov = revenue / orders
    return {"revenue": revenue, "orders": orders, "avg_order_value": aov}


def _as_date(value: object) -> date | None:
    return (
        value.date() if isinstance(value, datetime) else value if isinstance(value, date) else None
    )

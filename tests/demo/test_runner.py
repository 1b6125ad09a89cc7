"""The DAG runner: Airflow's states and retries, run records, runtime faults, real dbt on DuckDB."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.demo import dbt_task, operators
from bot.demo.dagspec import DagSpec, DagSpecError, dag_file, load_dag
from bot.demo.metrics import MetricsStore
from bot.demo.operators import Operator, TaskContext
from bot.demo.paths import DAG_ID, PlatformPaths, shipped_project
from bot.demo.runner import (
    DagRunResult,
    FlakyTask,
    HungTask,
    RuntimeFaults,
    execute_dag,
    run_id_for,
)
from bot.demo.runs import list_runs, task_instances

DAY = date(2026, 11, 20)
RUN_AT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def nightly(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) + timedelta(
        hours=2
    )


# ---------------------------------------------------------------- the shipped DAG file


def test_shipped_dag_file_declares_the_daily_warehouse() -> None:
    dag = load_dag(dag_file(shipped_project(), DAG_ID))
    loads = [t for t in dag.tasks.values() if t.operator == "load"]
    assert {t.loader for t in loads} == {
        "shop_orders",
        "shop_order_items",
        "shop_customers",
        "shop_products",
        "payments_payments",
        "payments_refunds",
        "marketing_events",
        "marketing_ad_spend",
    }
    assert all(t.task_id == f"load_{t.loader}" for t in loads)
    build, fresh, publish = (
        dag.tasks[t] for t in ("dbt_build", "dbt_source_freshness", "publish_revenue_dashboard")
    )
    assert set(build.dependencies) == {t.task_id for t in loads}
    assert fresh.latest_only and not build.latest_only
    assert publish.dependencies == ["dbt_build"]
    assert dag.tasks["load_shop_orders"].max_tries == 3  # default retries: 2
    order = [t.task_id for t in dag.topological_order()]
    assert order.index("dbt_build") > max(order.index(t.task_id) for t in loads)
    assert order[-1] == "publish_revenue_dashboard"


def test_shipped_loaders_all_have_a_load_task() -> None:
    loaders = pytest.importorskip("bot.demo.loaders")
    dag = load_dag(dag_file(shipped_project(), DAG_ID))
    assert set(loaders.loader_names(shipped_project())) == {
        t.loader for t in dag.tasks.values() if t.loader
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"tasks": {"a": {"operator": "load"}}},
            "tasks.a: Value error, operator 'load' needs 'loader'",
        ),
        (
            {"tasks": {"a": {"operator": "lod", "loader": "x"}}},
            "tasks.a.operator: Input should be 'load'",
        ),
        (
            {"tasks": {"a": {"operator": "load", "loader": "x", "dependencies": ["b"]}}},
            "depends on unknown task(s) ['b']",
        ),
        (
            {
                "tasks": {
                    "a": {"operator": "load", "loader": "x", "dependencies": ["b"]},
                    "b": {"operator": "load", "loader": "y", "dependencies": ["a"]},
                }
            },
            "tasks form a cycle",
        ),
        (
            {"tasks": {"a": {"operator": "load", "loader": "x", "retires": 3}}},
            "tasks.a.retires: Extra inputs",
        ),
        (
            {"tasks": {"a": {"operator": "dbt_build", "bash_command": "rm -rf /"}}},
            "bash_command must run dbt",
        ),
    ],
)
def test_invalid_dag_files_fail_with_a_message_saying_where(
    tmp_path: Path, change: dict, message: str
) -> None:
    path = tmp_path / "dag.yml"
    path.write_text(yaml.safe_dump({"daily_warehouse": change}))
    with pytest.raises(DagSpecError) as error:
        load_dag(path)
    assert str(path) in str(error.value) and message in str(error.value)


# ---------------------------------------------------------------- Airflow semantics, trivial tasks

TRIVIAL_DAG = {
    "dag_id": DAG_ID,
    "default_args": {
        "owner": "data-platform",
        "retries": 2,
        "retry_delay_sec": 300,
        "execution_timeout_secs": 900,
    },
    "tasks": {
        "load_shop_orders": {"operator": "load", "loader": "shop_orders"},
        "load_payments_payments": {"operator": "load", "loader": "payments_payments"},
        "dbt_source_freshness": {
            "operator": "dbt_source_freshness",
            "bash_command": "dbt source freshness",
            "latest_only": True,
            "retries": 0,
            "dependencies": ["load_shop_orders", "load_payments_payments"],
        },
        "dbt_build": {
            "operator": "dbt_build",
            "bash_command": "dbt build",
            "retries": 1,
            "dependencies": ["load_shop_orders", "load_payments_payments"],
        },
        "publish_revenue_dashboard": {
            "operator": "publish",
            "exposure": "revenue_dashboard",
            "dependencies": ["dbt_build"],
        },
    },
}


class Script:
    """Trivial task callables whose outcome per (task, try) the test decides."""

    def __init__(self, failing: dict[str, set[int]] | None = None) -> None:
        self.failing = failing or {}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, ctx: TaskContext) -> str:
        self.calls.append((ctx.task.task_id, ctx.try_number))
        if ctx.try_number in self.failing.get(ctx.task.task_id, set()):
            raise RuntimeError(f"{ctx.task.task_id} broke on try {ctx.try_number}")
        return "ok"

    def operators(self) -> dict[str, Operator]:
        python = Operator("PythonOperator", self, load_callable)
        return {
            "load": python,
            "publish": python,
            "dbt_build": Operator("BashOperator", self),
            "dbt_source_freshness": Operator("BashOperator", self),
        }


def load_callable(name: str) -> None:
    """What a load task's python_callable would be; tracebacks of runtime faults start here."""
    open(name)


def run(
    tmp_path: Path,
    script: Script,
    *,
    latest: bool = False,
    faults: RuntimeFaults | None = None,
    day: date = DAY,
) -> DagRunResult:
    return execute_dag(
        DagSpec.model_validate(TRIVIAL_DAG),
        day,
        paths=PlatformPaths(tmp_path),
        run_at=nightly(day),
        latest=latest,
        faults=faults,
        seed=3,
        operators=script.operators(),
    )


def test_healthy_run_succeeds_and_skips_freshness_when_not_latest(tmp_path: Path) -> None:
    result = run(tmp_path, Script())
    assert result.state == "success"
    assert result.run_id == "scheduled__2026-11-20T00:00:00+00:00" == run_id_for(DAY)
    assert result.final_states() == {
        "load_shop_orders": "success",
        "load_payments_payments": "success",
        "dbt_source_freshness": "skipped",
        "dbt_build": "success",
        "publish_revenue_dashboard": "success",
    }
    (skipped,) = result.tries("dbt_source_freshness")
    assert skipped.try_number == 0 and skipped.log_path is None


def test_latest_run_runs_the_latest_only_task(tmp_path: Path) -> None:
    script = Script()
    result = run(tmp_path, script, latest=True)
    assert result.final_states()["dbt_source_freshness"] == "success"
    assert ("dbt_source_freshness", 1) in script.calls


def test_retry_then_success_gives_up_for_retry_then_success(tmp_path: Path) -> None:
    result = run(tmp_path, Script({"load_shop_orders": {1, 2}}))
    tries = result.tries("load_shop_orders")
    assert [(t.try_number, t.state) for t in tries] == [
        (1, "up_for_retry"),
        (2, "up_for_retry"),
        (3, "success"),
    ]
    assert result.state == "success"
    # the retry delay passes on the simulated clock, not the real one
    assert tries[1].start_date - tries[0].end_date >= timedelta(seconds=300)
    assert tries[2].start_date - tries[1].end_date < timedelta(seconds=310)
    downstream = result.tries("dbt_build")[0]
    assert downstream.start_date > tries[2].end_date


def test_failure_after_retries_marks_downstream_upstream_failed(tmp_path: Path) -> None:
    script = Script({"load_payments_payments": {1, 2, 3}})
    result = run(tmp_path, script)
    states = result.final_states()
    assert states["load_payments_payments"] == "failed"
    assert states["load_shop_orders"] == "success"
    assert states["dbt_build"] == states["publish_revenue_dashboard"] == "upstream_failed"
    assert result.state == "failed"
    assert not any(task == "dbt_build" for task, _ in script.calls)
    (never,) = result.tries("publish_revenue_dashboard")
    assert never.try_number == 0 and never.duration is None


def test_run_records_hold_one_row_per_try(tmp_path: Path) -> None:
    run(tmp_path, Script({"dbt_build": {1}}))
    db = PlatformPaths(tmp_path).runs_db
    (dag_run,) = list_runs(db, dag_id=DAG_ID)
    assert dag_run.state == "success" and dag_run.logical_date == datetime(
        2026, 11, 20, tzinfo=UTC
    )
    assert dag_run.start_date == nightly(DAY) and dag_run.end_date > dag_run.start_date
    tries = task_instances(db, dag_run.run_id, dag_id=DAG_ID, task_id="dbt_build")
    assert [(t.try_number, t.state, t.max_tries) for t in tries] == [
        (1, "up_for_retry", 2),
        (2, "success", 2),
    ]
    assert all(
        Path(t.log_path).name == f"attempt={t.try_number}.log" and Path(t.log_path).exists()
        for t in tries
    )
    assert all(
        t.duration == pytest.approx((t.end_date - t.start_date).total_seconds()) for t in tries
    )
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from task_instance").fetchone()[0] == 6
    finals = task_instances(db, dag_run.run_id, dag_id=DAG_ID, final_only=True)
    assert len(finals) == 5 and {t.task_id: t.state for t in finals}["dbt_build"] == "success"


def test_rerunning_a_day_replaces_its_records(tmp_path: Path) -> None:
    run(tmp_path, Script({"load_shop_orders": {1, 2, 3}}))
    run(tmp_path, Script())
    db = PlatformPaths(tmp_path).runs_db
    (dag_run,) = list_runs(db)
    assert dag_run.state == "success"
    assert len(task_instances(db, dag_run.run_id, dag_id=DAG_ID)) == 5
    assert not (
        PlatformPaths(tmp_path).logs
        / f"dag_id={DAG_ID}"
        / f"run_id={dag_run.run_id}"
        / "task_id=load_shop_orders"
        / "attempt=3.log"
    ).exists()


def test_task_metrics_are_recorded_on_the_simulated_clock(tmp_path: Path) -> None:
    result = run(tmp_path, Script({"load_shop_orders": {1}}))
    store = MetricsStore(PlatformPaths(tmp_path).metrics_db)
    (tries,) = store.query("task_tries", {"dag_id": DAG_ID, "task_id": "load_shop_orders"})
    assert [p.value for p in tries.points] == [2]
    assert tries.points[0].ts == result.tries("load_shop_orders")[-1].end_date
    durations = store.query("task_duration_seconds", {"dag_id": DAG_ID})
    assert {s.labels["task_id"] for s in durations} == {
        "load_shop_orders",
        "load_payments_payments",
        "dbt_build",
        "publish_revenue_dashboard",
    }


def test_flaky_fault_fails_the_first_try_only(tmp_path: Path) -> None:
    faults = RuntimeFaults(flaky=[FlakyTask(task_id="load_payments_payments")])
    result = run(tmp_path, Script(), faults=faults)
    first, second = result.tries("load_payments_payments")
    assert (first.state, second.state) == ("up_for_retry", "success")
    assert result.state == "success"
    log = Path(first.log_path).read_text()
    assert (
        "WARNING - Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None))"
        in log
    )
    assert log.count("Traceback (most recent call last):") == 4
    assert (
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.payments.example.com', "
        "port=443): Max retries exceeded with url: /v1/payments?date=2026-11-20"
    ) in log
    assert "Connection reset by peer" in log and "in load_callable\n    open(name)\n" in log


def test_hung_fault_times_out_on_the_simulated_clock(tmp_path: Path) -> None:
    faults = RuntimeFaults(hung=[HungTask(task_id="load_shop_orders", tries=[1])])
    result = run(tmp_path, Script(), faults=faults)
    first, second = result.tries("load_shop_orders")
    assert (first.state, second.state) == ("up_for_retry", "success")
    assert first.duration >= 900  # execution_timeout_secs, never slept
    log = Path(first.log_path).read_text()
    assert f"{{timeout.py:68}} ERROR - Process timed out, PID: {first.pid}" in log
    assert (
        log.rstrip().splitlines()[-4]
        == f"airflow.exceptions.AirflowTaskTimeout: Timeout, PID: {first.pid}"
    )
    assert 'airflow/utils/timeout.py", line 69, in handle_timeout' in log
    assert "in load_callable\n    open(name)\n" in log
    assert "pathlib.py\", line 356, in _select_from\n    entries = list(scandir_it)" in log


def test_runtime_faults_are_checked_against_the_dag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only load tasks"):
        run(tmp_path, Script(), faults=RuntimeFaults(flaky=[FlakyTask(task_id="dbt_build")]))
    with pytest.raises(ValueError, match="memory_limit|pattern"):
        RuntimeFaults(warehouse_memory_limit="lots")


# ---------------------------------------------------------------- real dbt on DuckDB

TINY_PROJECT = {
    "dbt_project.yml": """
        name: tiny
        version: "1.0.0"
        profile: sleuth_demo
        models:
          tiny:
            +materialized: table
    """,
    "models/sources.yml": """
        sources:
          - name: shop
            schema: raw_shop
            config:
              loaded_at_field: _loaded_at
              freshness:
                warn_after: {count: 12, period: hour}
                error_after: {count: 18, period: hour}
            tables:
              - name: orders
    """,
    "models/fct_orders.sql": """
        select order_id, order_date, amount from {{ source('shop', 'orders') }}
    """,
    "models/fct_daily_revenue.sql": """
        select order_date, sum(amount) as revenue, count(*) as orders,
               round(sum(amount) / count(*), 2) as avg_order_value
        from {{ ref('fct_orders') }} group by 1
    """,
    # a join that blows up in memory: the model the memory limit takes down
    "models/order_fanout.sql": """
        select o.order_id, string_agg(repeat('x', 60) || g.range::varchar, ',') as padding
        from {{ ref('fct_orders') }} o, range(4000) g group by 1
    """,
    "models/schema.yml": """
        models:
          - name: fct_orders
            columns:
              - name: order_id
                data_tests: [unique, not_null]
    """,
}


def tiny_load(ctx: TaskContext) -> int:
    """Ten orders a day, stamped with the (simulated) load time."""
    with dbt_task.warehouse(ctx.paths) as con:
        con.execute("create schema if not exists raw_shop")
        con.execute(
            "create table if not exists raw_shop.orders "
            "(order_id integer, order_date date, amount double, _loaded_at timestamp)"
        )
        first = (ctx.day - date(2026, 1, 1)).days * 10
        con.execute("delete from raw_shop.orders where order_date = ?", [ctx.day])
        con.execute(
            "insert into raw_shop.orders select ? + range, ?, 10 + range, ? from range(10)",
            [first, ctx.day, ctx.now().replace(tzinfo=None)],
        )
    ctx.log.logger.info("Loaded 10 rows into raw_shop.orders")
    return 10


def tiny_dag() -> DagSpec:
    dag = json.loads(json.dumps(TRIVIAL_DAG))
    del dag["tasks"]["load_payments_payments"]
    for task in dag["tasks"].values():
        task["dependencies"] = [
            d for d in task.get("dependencies", []) if d != "load_payments_payments"
        ]
    return DagSpec.model_validate(dag)


DBT_OPERATORS = {
    "load": Operator("PythonOperator", tiny_load, tiny_load),
    "dbt_build": Operator("BashOperator", dbt_task.dbt_build),
    "dbt_source_freshness": Operator("BashOperator", dbt_task.dbt_source_freshness),
    "publish": Operator("PythonOperator", operators.publish, operators.publish),
}


@pytest.fixture(scope="module")
def tiny_platform(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[PlatformPaths, dict[str, DagRunResult]]:
    """A healthy night, a night with too little warehouse memory, then the latest run."""
    paths = PlatformPaths(tmp_path_factory.mktemp("platform"))
    for rel, text in TINY_PROJECT.items():
        (paths.repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (paths.repo / rel).write_text(textwrap.dedent(text).lstrip())
    days = {"healthy": DAY - timedelta(days=1), "oom": DAY}
    results = {}
    for name, day in days.items():
        faults = RuntimeFaults(warehouse_memory_limit="16MB") if name == "oom" else None
        results[name] = execute_dag(
            tiny_dag(),
            day,
            paths=paths,
            run_at=nightly(day),
            latest=False,
            faults=faults,
            seed=3,
            operators=DBT_OPERATORS,
        )
    # Started a little while ago, so simulated scheduler delays stay behind the real clock
    # that dbt judges freshness by.
    latest = DAY + timedelta(days=1)
    results["latest"] = execute_dag(
        tiny_dag(),
        latest,
        paths=paths,
        run_at=datetime.now(UTC) - timedelta(minutes=30),
        latest=True,
        seed=3,
        operators=DBT_OPERATORS,
    )
    return paths, results


def test_dbt_build_runs_for_real_and_its_artifacts_are_archived(tiny_platform) -> None:
    paths, results = tiny_platform
    healthy = results["healthy"]
    assert healthy.state == "success"
    log = Path(healthy.tries("dbt_build")[0].log_path).read_text()
    assert "{subprocess.py:75} INFO - Running command: ['/usr/bin/bash', '-c', 'dbt build']" in log
    assert "Running with dbt=" in log and "OK created sql table model main.fct_orders" in log
    assert "Done. PASS=5 WARN=0 ERROR=0 SKIP=0" in log
    assert "{subprocess.py:97} INFO - Command exited with return code 0" in log
    archive = paths.artifacts / healthy.run_id
    assert sorted(p.name for p in archive.iterdir()) == ["manifest.json", "run_results.json"]
    run_results = json.loads((archive / "run_results.json").read_text())
    assert {r["status"] for r in run_results["results"]} == {"success", "pass"}
    assert (paths.dbt_target / "run_results.json").exists()  # dbt's own target/ is left as is
    profile = yaml.safe_load((paths.profiles_dir / "profiles.yml").read_text())
    output = profile["sleuth_demo"]["outputs"]["prod"]
    assert output["path"] == str(paths.warehouse) and output["threads"] == 2
    assert "memory_limit" not in output["settings"]  # the fault lasted one run


def test_dbt_lines_carry_the_simulated_time(tiny_platform) -> None:
    _, results = tiny_platform
    build = results["healthy"].tries("dbt_build")[0]
    log = Path(build.log_path).read_text().splitlines()
    lines = [line for line in log if "Running with dbt=" in line]
    assert lines[0].startswith(f"[{build.start_date:%Y-%m-%d, %H}:")
    assert f"INFO - {build.start_date:%H}:" in lines[0]


def test_warehouse_memory_limit_fails_a_model_with_duckdbs_error(tiny_platform) -> None:
    paths, results = tiny_platform
    oom = results["oom"]
    assert oom.state == "failed"
    assert [t.state for t in oom.tries("dbt_build")] == ["up_for_retry", "failed"]
    assert oom.final_states()["publish_revenue_dashboard"] == "upstream_failed"
    log = Path(oom.tries("dbt_build")[-1].log_path).read_text()
    assert "Out of Memory Error" in log
    assert (
        "airflow.exceptions.AirflowException: Bash command failed. "
        "The command returned a non-zero exit code 1."
        in log
    )
    results_json = json.loads((paths.artifacts / oom.run_id / "run_results.json").read_text())
    errors = [r for r in results_json["results"] if r["status"] == "error"]
    assert errors and all("Out of Memory Error" in r["message"] for r in errors)
    assert not (paths.exports / "revenue_dashboard" / f"{DAY}.csv").exists()


def test_latest_run_checks_freshness_and_publishes(tiny_platform) -> None:
    paths, results = tiny_platform
    latest = results["latest"]
    assert latest.state == "success"
    assert latest.final_states()["dbt_source_freshness"] == "success"
    sources = json.loads((paths.artifacts / latest.run_id / "sources.json").read_text())
    assert [r["status"] for r in sources["results"]] == ["pass"]
    export = paths.exports / "revenue_dashboard" / f"{DAY + timedelta(days=1)}.csv"
    assert export.read_text().splitlines()[0] == "order_date,revenue,orders,avg_order_value"


def test_runner_records_warehouse_metrics(tiny_platform) -> None:
    paths, results = tiny_platform
    store = MetricsStore(paths.metrics_db)
    counts = {s.labels["model"]: s.points for s in store.query("model_row_count")}
    assert set(counts) == {"fct_orders", "fct_daily_revenue", "order_fanout"}
    assert [p.value for p in counts["fct_orders"]][:2] == [10, 20]
    (orders,) = store.query("kpi", {"name": "orders"})
    assert [p.value for p in orders.points] == [10, 10]  # the OOM night published nothing
    (aov,) = store.query("kpi", {"name": "avg_order_value"})
    assert aov.points[0].value == 14.5
    (failures,) = store.query("dbt_test_failures")
    assert {p.value for p in failures.points} == {0}
    (lag,) = store.query("freshness_lag_seconds", {"source": "shop", "table": "orders"})
    assert len(lag.points) == 3 and all(0 <= p.value < 3600 for p in lag.points)
    healthy_end = results["healthy"].dag_run.end_date
    assert any(
        p.ts <= healthy_end and p.ts >= results["healthy"].dag_run.start_date for p in lag.points
    )

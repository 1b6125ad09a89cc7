"""Grouping: one issue per root problem, over a real manifest and a real store and index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.intake.grouping import Grouper, GroupingSettings
from bot.intake.pipeline import Intake
from bot.intake.runtime import IssueVectors
from bot.intake.signals import RawSignal
from bot.sources.dbt_lineage import Lineage
from bot.store import open_store
from bot.store.models import Issue, IssueStatus, Signal
from bot.systemmap import SystemMap, TaskInfo
from bot.vectors.embedders import HashingEmbedder
from bot.vectors.index import VectorIndex

MANIFEST = Path(__file__).parents[1] / "sources" / "fixtures" / "target_v6" / "manifest.json"
RAW_ORDERS = "source.shop.raw.orders"
RAW_PAYMENTS = "source.shop.raw.payments"
STG_ORDERS = "model.shop.stg_orders"
FCT_REVENUE = "model.shop.fct_revenue"
NOT_NULL = "test.shop.not_null_stg_orders_customer_id.5f2a9c1e3b"
LOAD_ORDERS = "task.nightly.load_orders"
DBT_BUILD = "task.nightly.dbt_build"
T0 = datetime(2026, 11, 20, 2, tzinfo=UTC)


@pytest.fixture
def system() -> SystemMap:
    tasks = [TaskInfo(dag_id="nightly", task_id="load_orders", writes=["raw.orders"]),
             TaskInfo(dag_id="nightly", task_id="load_payments", writes=["raw.payments"]),
             TaskInfo(dag_id="nightly", task_id="dbt_build", runs_dbt=True,
                      upstream=["load_orders", "load_payments"])]
    return SystemMap(Lineage.read(MANIFEST), tasks)


@pytest.fixture
def intake(tmp_path: Path, system: SystemMap) -> Intake:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}")
    index = VectorIndex(tmp_path / "vectors", "open_issues", HashingEmbedder())
    return Intake(engine, Grouper(system, GroupingSettings(), IssueVectors(index)))


def sig(kind: str, asset: str, title: str, minutes: int = 0, run: str = "r1",
        **detail: object) -> RawSignal:
    return RawSignal(source="test", kind=kind, asset=asset, title=title,  # type: ignore[arg-type]
                     observed_at=T0 + timedelta(minutes=minutes),
                     dedup_key=f"{kind}:{asset}:{title}:{minutes}:{run}", run_id=run,
                     detail=dict(detail))


def issues(intake: Intake) -> list[Issue]:
    with Session(intake.engine) as session:
        return list(session.exec(select(Issue).order_by(Issue.id)).all())


def reasons(intake: Intake) -> list[str]:
    with Session(intake.engine) as session:
        return [s.group_reason or "" for s in session.exec(select(Signal).order_by(Signal.id))]


def test_the_map_joins_loads_to_sources_and_dbt_to_its_task(system: SystemMap) -> None:
    assert system.upstream_of(LOAD_ORDERS, RAW_ORDERS)
    assert system.upstream_of(LOAD_ORDERS, FCT_REVENUE)
    assert system.upstream_of(NOT_NULL, DBT_BUILD)
    assert not system.upstream_of(RAW_PAYMENTS, STG_ORDERS)
    assert system.exposures(LOAD_ORDERS) == ["exposure.shop.revenue_dashboard"]


def test_find_names_assets_the_way_people_do(system: SystemMap) -> None:
    assert system.find(STG_ORDERS) == [STG_ORDERS]
    assert system.find("stg_orders") == [STG_ORDERS]
    assert system.find("FCT_REVENUE") == [FCT_REVENUE]
    assert system.find("load_orders") == [LOAD_ORDERS]
    assert system.find("not_null_stg_orders_customer_id") == []  # tests are not assets
    assert system.find("nothing_like_it") == []


def test_repeats_of_one_error_make_one_issue_with_count_and_seen_times(intake: Intake) -> None:
    for minute, job in ((0, 101), (5, 102), (10, 103)):
        intake.ingest([sig("log_error", LOAD_ORDERS, f"Failed to execute job {job}", minute,
                           message=f"Failed to execute job {job} for task load_orders")])
    intake.process()
    [issue] = issues(intake)
    assert issue.occurrences == 3
    assert issue.first_seen.replace(tzinfo=UTC) == T0
    assert issue.last_seen.replace(tzinfo=UTC) == T0 + timedelta(minutes=10)
    assert reasons(intake)[1:] == [f"fingerprint: same problem as issue #{issue.id}"] * 2


def test_a_cascade_is_one_issue_rooted_at_its_most_upstream_asset(intake: Intake) -> None:
    intake.ingest([
        sig("test_failed", NOT_NULL, "not_null(stg_orders.customer_id) failed", 30),
        sig("task_failed", DBT_BUILD, "dbt_build failed", 31),
        sig("metric_anomaly", FCT_REVENUE, "revenue dropped 40%", 40, metric="revenue"),
        sig("table_check", RAW_ORDERS, "raw.orders customer_id null rate 31%", 45,
            check="null_rate", column="customer_id"),
    ])
    intake.process()
    [issue] = issues(intake)
    assert issue.asset == RAW_ORDERS  # the table check moved the root upstream
    assert issue.occurrences == 4
    assert set(issue.assets) == {NOT_NULL, DBT_BUILD, FCT_REVENUE, RAW_ORDERS}
    assert issue.title == "not_null(stg_orders.customer_id) failed"
    assert issue.channel == "#data-commerce"  # stg_orders' group owns the failed test


def test_two_unrelated_roots_the_same_night_are_two_issues(intake: Intake) -> None:
    intake.ingest([
        sig("source_stale", RAW_PAYMENTS, "raw.payments is 30h old", 0),
        sig("test_failed", NOT_NULL, "not_null(stg_orders.customer_id) failed", 20),
        sig("task_failed", DBT_BUILD, "dbt_build failed", 25),
    ])
    intake.process()
    first, second = issues(intake)
    assert (first.asset, second.asset) == (RAW_PAYMENTS, NOT_NULL)
    assert first.occurrences + second.occurrences == 3  # the task joined one of them


def test_a_symptom_outside_the_lineage_window_opens_its_own_issue(intake: Intake) -> None:
    intake.ingest([sig("source_stale", RAW_ORDERS, "raw.orders is late", 0),
                   sig("test_failed", NOT_NULL, "not_null failed", 13 * 60, run="r2")])
    intake.process()
    assert len(issues(intake)) == 2


def test_similar_text_joins_only_where_the_map_allows(intake: Intake) -> None:
    text = "psycopg2.OperationalError: could not connect to server: Connection refused"
    intake.ingest([sig("log_error", "file:worker-1.log", text, 0, message=text)])
    intake.ingest([sig("log_error", "file:worker-2.log", text + " (retrying)", 1,
                       message=text + " (retrying)")])
    intake.process()
    [issue] = issues(intake)
    assert reasons(intake)[1].startswith("similarity ") and f"#{issue.id}" in reasons(intake)[1]
    # the same words about two unrelated sources stay apart
    intake.ingest([sig("source_stale", RAW_ORDERS, "source freshness error: 30h old", 100),
                   sig("source_stale", RAW_PAYMENTS, "source freshness error: 30h old", 101)])
    intake.process()
    assert len(issues(intake)) == 3


def test_a_resolved_problem_that_returns_reopens_its_issue(intake: Intake) -> None:
    intake.ingest([sig("test_failed", NOT_NULL, "not_null failed", 0)])
    intake.process()
    with Session(intake.engine) as session:
        issue = session.exec(select(Issue)).one()
        issue.status = IssueStatus.resolved
        session.add(issue)
        session.commit()
    intake.ingest([sig("test_failed", NOT_NULL, "not_null failed", 60 * 24, run="r2")])
    outcome = intake.process()
    [issue] = issues(intake)
    assert issue.status == IssueStatus.open and outcome.reopened == [issue.id]
    assert issue.occurrences == 2


def test_a_signal_seen_twice_is_stored_once(intake: Intake) -> None:
    one = sig("task_failed", DBT_BUILD, "dbt_build failed", 0)
    assert intake.ingest([one, one]) == 1
    assert intake.ingest([one]) == 0


STG_PAYMENTS = "model.shop.stg_payments"


def test_a_model_left_stale_by_a_blocked_dbt_run_joins_the_failed_load(intake: Intake) -> None:
    # stg_payments reads nothing load_orders wrote, but dbt_build (which rebuilds it) runs
    # after load_orders: with load_orders failed, the night's dbt run never came.
    intake.ingest([
        sig("task_failed", LOAD_ORDERS, "load_orders failed", 0),
        sig("table_check", STG_PAYMENTS, "stg_payments last updated 31h ago", 400,
            check="freshness"),
    ])
    intake.process()
    [issue] = issues(intake)
    assert issue.asset == LOAD_ORDERS
    assert reasons(intake)[1] == (
        f"lineage: not refreshed by {DBT_BUILD}, which runs after issue #{issue.id}'s root "
        f"{LOAD_ORDERS}")


def test_a_stale_model_joins_a_failed_dbt_run_itself(intake: Intake) -> None:
    intake.ingest([sig("task_failed", DBT_BUILD, "dbt_build failed", 0),
                   sig("table_check", STG_PAYMENTS, "stg_payments last updated 31h ago", 400,
                       check="freshness")])
    intake.process()
    [issue] = issues(intake)
    assert reasons(intake)[1] == f"lineage: not refreshed by issue #{issue.id}'s root {DBT_BUILD}"


def test_wrong_data_in_a_model_is_not_explained_by_a_blocked_run(intake: Intake) -> None:
    # Only staleness follows from a run that did not happen; a null rate does not.
    intake.ingest([
        sig("task_failed", LOAD_ORDERS, "load_orders failed", 0),
        sig("table_check", STG_PAYMENTS, "stg_payments amount null rate 40%", 400,
            check="null_rate", column="amount"),
    ])
    intake.process()
    assert [i.asset for i in issues(intake)] == [LOAD_ORDERS, STG_PAYMENTS]


def test_builders_are_the_dbt_task_for_models_and_the_loader_for_its_table(
    system: SystemMap,
) -> None:
    assert system.builders(STG_PAYMENTS) == [DBT_BUILD]
    assert system.builders(RAW_ORDERS) == [LOAD_ORDERS]
    assert system.builders(NOT_NULL) == []  # a test is checked, not built
    assert system.builders("model.shop.nowhere") == []
    assert system.builders(DBT_BUILD) == []  # a task runs; it is not built

"""The fault scenarios: what each injects on the last day, and its ground truth.

Each scenario is data. `bot.demo.platform.run_scenario` applies its faults on top of a healthy
history; `bot.demo.symptoms` checks that the run shows the symptoms its truth promises.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bot.demo.edits import EDITS, FileEdit
from bot.demo.generator import UpstreamFault
from bot.demo.paths import DAG_ID, DBT_PROJECT_NAME
from bot.demo.runner import FlakyTask, RuntimeFaults
from bot.demo.truth import Culprit, GroundTruth, RootCause, Symptom
from bot.errors import SleuthError

P = DBT_PROJECT_NAME
DASHBOARD = f"exposure.{P}.revenue_dashboard"


def model(name: str) -> str:
    return f"model.{P}.{name}"


def source(name: str) -> str:
    return f"source.{P}.{name}"


def test(name: str) -> str:
    return f"test.{P}.{name}"


def task(name: str) -> str:
    return f"task.{DAG_ID}.{name}"


class Faults(BaseModel):
    """What goes wrong on the fault day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    upstream: list[UpstreamFault] = Field(default_factory=list,
                                          description="Bad deliveries from upstream systems.")
    commits: list[str] = Field(default_factory=list,
                               description="Keys of bot.demo.edits.EDITS, each committed as-is.")
    runtime: RuntimeFaults = Field(default_factory=RuntimeFaults,
                                   description="Faults of the platform itself during the run.")


class Scenario(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    title: str
    description: str
    truth: GroundTruth
    faults: Faults


def _subject(edit: FileEdit) -> str:
    return edit.message.splitlines()[0]


def _upstream(kind: str, table: str, **params: object) -> UpstreamFault:
    src, tbl = table.split(".")
    return UpstreamFault(kind=kind, source=src, table=tbl, **params)


ORDERS_MARTS = [model("fct_orders"), model("fct_daily_revenue"), model("dim_customers"), DASHBOARD]

SCENARIOS: list[Scenario] = [
    Scenario(
        name="schema_change",
        title="Upstream renamed orders.customer_id",
        description="The shop system ships orders with customer_id renamed to customer_ref; the "
                    "orders loader selects customer_id and fails on every try, so nothing "
                    "downstream refreshes.",
        faults=Faults(upstream=[_upstream("rename_column", "shop.orders", column="customer_id",
                                          new_name="customer_ref")]),
        truth=GroundTruth(
            root_causes=[RootCause(
                node=source("shop.orders"), category="schema_change",
                culprit=Culprit(kind="upstream_source",
                                ref="shop.orders: customer_id renamed to customer_ref"),
                explanation="The upstream export renamed a column the loader selects.")],
            impacted_assets=[task("load_shop_orders"), *ORDERS_MARTS],
            severity="SEV2", expected_issues=1,
            symptoms=[Symptom(kind="task_failed", node=task("load_shop_orders")),
                      Symptom(kind="upstream_failed", node=task("dbt_build"))]),
    ),
    Scenario(
        name="amounts_in_cents",
        title="Payments amounts arrive in cents",
        description="The payments API starts sending amount in cents. Every dbt test passes; "
                    "revenue on the dashboard is a hundred times too high.",
        faults=Faults(upstream=[_upstream("scale_column", "payments.payments", column="amount",
                                          factor=100.0)]),
        truth=GroundTruth(
            root_causes=[RootCause(
                node=source("payments.payments"), category="semantic_change",
                culprit=Culprit(kind="upstream_source", ref="payments.payments: amount in cents"),
                explanation="Same column, new unit: amounts are 100x their former scale.")],
            impacted_assets=[model("stg_payments__payments"), model("int_orders_enriched"),
                             model("fct_payments"), model("fct_orders"),
                             model("fct_daily_revenue"), DASHBOARD],
            severity="SEV1", expected_issues=1,
            symptoms=[Symptom(kind="metric_shift", node="kpi", labels={"name": "revenue"},
                              direction="up", factor=20.0)]),
    ),
    Scenario(
        name="null_customer_ids",
        title="Null spike in orders.customer_id",
        description="An upstream bug leaves customer_id empty on about a third of orders; the "
                    "not_null test on the staging model fails and the orders marts are skipped.",
        faults=Faults(upstream=[_upstream("null_fraction", "shop.orders", column="customer_id",
                                          fraction=0.3)]),
        truth=GroundTruth(
            root_causes=[RootCause(
                node=source("shop.orders"), category="data_quality",
                culprit=Culprit(kind="upstream_source", ref="shop.orders: customer_id null"),
                explanation="The shop export dropped customer_id on ~30% of rows.")],
            impacted_assets=[model("stg_shop__orders"), *ORDERS_MARTS],
            severity="SEV2", expected_issues=1,
            symptoms=[Symptom(kind="test_failed",
                              node=test("not_null_stg_shop__orders_customer_id")),
                      Symptom(kind="task_failed", node=task("dbt_build"))]),
    ),
    Scenario(
        name="duplicate_delivery",
        title="Marketing events file delivered twice",
        description="The marketing vendor re-delivers the day's events file under a new name; "
                    "the loader takes both, events double, and the unique test fails.",
        faults=Faults(upstream=[_upstream("duplicate_file", "marketing.events")]),
        truth=GroundTruth(
            root_causes=[RootCause(
                node=source("marketing.events"), category="duplicate_data",
                culprit=Culprit(kind="upstream_source",
                                ref="marketing.events: file delivered twice"),
                explanation="Two copies of the same delivery landed in one partition.")],
            impacted_assets=[model("stg_marketing__events"), model("int_campaign_attribution"),
                             model("fct_marketing_performance"), DASHBOARD],
            severity="SEV3", expected_issues=1,
            symptoms=[Symptom(kind="test_failed", node=test("unique_stg_marketing__events_event_id")),
                      Symptom(kind="metric_shift", node="rows_loaded",
                              labels={"source": "marketing", "table": "events"},
                              direction="up", factor=1.5)]),
    ),
    Scenario(
        name="late_partition",
        title="Payments partition missing",
        description="The payments export for the day never arrives. The loader finds no file "
                    "and loads nothing; source freshness goes red, the day's refunds outweigh "
                    "its charges so a revenue check fails, and the dashboard goes stale.",
        faults=Faults(upstream=[_upstream("missing_partition", "payments.payments")]),
        truth=GroundTruth(
            root_causes=[RootCause(
                node=source("payments.payments"), category="freshness",
                culprit=Culprit(kind="upstream_source",
                                ref="payments.payments: partition not delivered"),
                explanation="No file for the day in the payments landing folder.")],
            impacted_assets=[model("stg_payments__payments"), model("fct_payments"),
                             model("fct_daily_revenue"), DASHBOARD],
            severity="SEV2", expected_issues=1,
            symptoms=[Symptom(kind="source_stale", node=source("payments.payments")),
                      Symptom(kind="metric_shift", node="rows_loaded",
                              labels={"source": "payments", "table": "payments"},
                              direction="down", factor=10.0)]),
    ),
    Scenario(
        name="fanout_commit",
        title="A refactor fans out the orders join",
        description="A commit to int_orders_enriched drops the filter to succeeded payments; "
                    "orders with a failed attempt join twice and fct_orders grows.",
        faults=Faults(commits=["fanout"]),
        truth=GroundTruth(
            root_causes=[RootCause(
                node=model("int_orders_enriched"), category="code_change",
                culprit=Culprit(kind="commit", ref=_subject(EDITS["fanout"])),
                explanation="The join to payments lost its one-row-per-order filter.")],
            impacted_assets=[model("int_orders_enriched"), *ORDERS_MARTS],
            severity="SEV2", expected_issues=1,
            symptoms=[Symptom(kind="test_failed", node=test("unique_fct_orders_order_id")),
                      Symptom(kind="metric_shift", node="model_row_count",
                              labels={"model": "int_orders_enriched"},
                              per="model_row_count", per_labels={"model": "stg_shop__orders"},
                              direction="up", factor=1.04)]),
    ),
    Scenario(
        name="loader_filter_change",
        title="A loader config change drops orders",
        description="A commit 'simplifies' the orders loader's filter to `not is_test`; orders "
                    "from the apps, which leave is_test empty, silently stop loading.",
        faults=Faults(commits=["config"]),
        truth=GroundTruth(
            root_causes=[RootCause(
                node=task("load_shop_orders"), category="config_change",
                culprit=Culprit(kind="config_key", ref=f"{EDITS['config'].path}:filter"),
                explanation="`not is_test` is NULL where the app never sets the flag, so the "
                            "loader skips every app order.")],
            impacted_assets=[model("stg_shop__orders"), *ORDERS_MARTS],
            severity="SEV1", expected_issues=1,
            symptoms=[Symptom(kind="metric_shift", node="rows_loaded",
                              labels={"source": "shop", "table": "orders"},
                              per="rows_loaded", per_labels={"source": "shop",
                                                             "table": "order_items"},
                              direction="down", factor=1.5)]),
    ),
    Scenario(
        name="warehouse_oom",
        title="Warehouse runs out of memory",
        description="The warehouse's memory limit is cut; the heaviest model fails with DuckDB's "
                    "Out of Memory error and its dependants are skipped.",
        faults=Faults(runtime=RuntimeFaults(warehouse_memory_limit="16MB")),
        truth=GroundTruth(
            root_causes=[RootCause(
                node=task("dbt_build"), category="infrastructure",
                culprit=Culprit(kind="infrastructure", ref="warehouse memory_limit 16MB"),
                explanation="The warehouse has too little memory for the run.")],
            impacted_assets=[task("dbt_build"), model("fct_orders"), model("fct_daily_revenue"),
                             DASHBOARD],
            severity="SEV2", expected_issues=1,
            symptoms=[Symptom(kind="task_failed", node=task("dbt_build"))]),
    ),
    Scenario(
        name="flaky_network",
        title="Payments API connection reset, recovered on retry",
        description="The payments loader's first try hits a connection reset; the retry "
                    "succeeds. Noise: a good system opens no issue.",
        faults=Faults(runtime=RuntimeFaults(
            flaky=[FlakyTask(task_id="load_payments_payments")])),
        truth=GroundTruth(
            root_causes=[], impacted_assets=[], severity="SEV4", expected_issues=0,
            symptoms=[Symptom(kind="task_retried", node=task("load_payments_payments"))]),
    ),
    Scenario(
        name="cascade",
        title="Customers export changes its date format",
        description="The shop's customers export switches signup_date to DD/MM/YYYY; the cast "
                    "in stg_shop__customers fails and every model downstream of it is skipped.",
        faults=Faults(upstream=[_upstream("bad_date_format", "shop.customers",
                                          column="signup_date")]),
        truth=GroundTruth(
            root_causes=[RootCause(
                node=source("shop.customers"), category="schema_change",
                culprit=Culprit(kind="upstream_source",
                                ref="shop.customers: signup_date format DD/MM/YYYY"),
                explanation="A date column changed format upstream; the staging cast fails.")],
            impacted_assets=[model("stg_shop__customers"), model("int_customer_orders"),
                             *ORDERS_MARTS],
            severity="SEV2", expected_issues=1,
            symptoms=[Symptom(kind="model_error", node=model("stg_shop__customers")),
                      Symptom(kind="nodes_skipped", node=model("stg_shop__customers"),
                              at_least=5)]),
    ),
    Scenario(
        name="two_incidents",
        title="Duplicate events and a missing payments partition, together",
        description="Two unrelated problems on one day: the marketing events file arrives twice "
                    "and the payments partition does not arrive. Two issues, not one.",
        faults=Faults(upstream=[_upstream("duplicate_file", "marketing.events"),
                                _upstream("missing_partition", "payments.payments")]),
        truth=GroundTruth(
            root_causes=[
                RootCause(node=source("marketing.events"), category="duplicate_data",
                          culprit=Culprit(kind="upstream_source",
                                          ref="marketing.events: file delivered twice"),
                          explanation="Two copies of the same delivery landed in one partition."),
                RootCause(node=source("payments.payments"), category="freshness",
                          culprit=Culprit(kind="upstream_source",
                                          ref="payments.payments: partition not delivered"),
                          explanation="No file for the day in the payments landing folder.")],
            impacted_assets=[model("stg_marketing__events"), model("fct_marketing_performance"),
                             model("stg_payments__payments"), model("fct_daily_revenue"),
                             DASHBOARD],
            severity="SEV2", expected_issues=2,
            symptoms=[Symptom(kind="test_failed", node=test("unique_stg_marketing__events_event_id")),
                      Symptom(kind="source_stale", node=source("payments.payments"))]),
    ),
]


def get_scenario(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    names = ", ".join(s.name for s in SCENARIOS)
    raise SleuthError(f"unknown scenario {name!r}; choose one of: {names}")

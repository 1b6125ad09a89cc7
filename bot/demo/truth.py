"""Machine-readable ground truth of a fault scenario, and the symptoms it must produce.

Node ids follow dbt's unique ids (`source.sleuth_demo.shop.orders`, `model.sleuth_demo.fct_orders`;
tests by name without dbt's hash suffix) and `task.daily_warehouse.<task_id>` for DAG tasks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.report import SEVERITY_CRITERIA, KnownCategory, Severity

# One vocabulary for ground truth and reports: the agents' report schema owns it.
Category = KnownCategory
__all__ = ["SEVERITY_CRITERIA", "Category", "Severity"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Culprit(_Frozen):
    """What to blame, concretely enough that a human can go and look."""

    kind: Literal["upstream_source", "commit", "config_key", "infrastructure", "none"]
    ref: str = Field(description="Source table, commit message, `file:key`, or resource.")
    sha: str | None = Field(None, description="For commits: filled in once the scenario ran.")


class RootCause(_Frozen):
    node: str
    category: Category
    culprit: Culprit
    explanation: str


SymptomKind = Literal[
    "task_failed",     # the task's final state is failed
    "task_retried",    # a try failed and a later one succeeded
    "upstream_failed", # the task never ran because an upstream task failed
    "test_failed",     # a dbt test's status is fail
    "model_error",     # a dbt model's status is error
    "nodes_skipped",   # at least `at_least` dbt nodes were skipped
    "source_stale",    # dbt source freshness says error
    "metric_shift",    # a metric moved by `factor` against its healthy history
]


class Symptom(_Frozen):
    """Something observable in the fault run's artifacts."""

    kind: SymptomKind
    node: str = Field(description="Task, dbt node, or metric name.")
    labels: dict[str, str] = Field(default_factory=dict, description="For metric_shift.")
    direction: Literal["up", "down"] | None = None
    factor: float | None = Field(None, description="metric_shift: at least this ratio vs median.")
    per: str | None = Field(None, description="metric_shift: divide by this metric first, so "
                                              "weekly seasonality shared by both cancels out.")
    per_labels: dict[str, str] = Field(default_factory=dict)
    at_least: int | None = Field(None, description="nodes_skipped: how many.")


class GroundTruth(_Frozen):
    root_causes: list[RootCause]
    impacted_assets: list[str]
    severity: Severity
    expected_issues: int = Field(description="How many issues a good system opens.")
    symptoms: list[Symptom]

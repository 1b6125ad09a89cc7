"""What a source yields on each poll: raw observations, before filtering and grouping.

Intake stores every `RawSignal` as a `bot.store.models.Signal` (deduplicated by `dedup_key`)
before it decides anything about it, so nothing a source saw is lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SignalKind = Literal[
    "task_failed",     # a DAG task ended failed after its retries
    "task_retried",    # a try failed, a later one succeeded (a noise candidate)
    "model_error",     # a dbt model errored
    "test_failed",     # a dbt test failed (severity error)
    "test_warned",     # a dbt test warned
    "source_stale",    # dbt source freshness warn/error
    "log_error",       # an ERROR/exception event in a log
    "metric_anomaly",  # a metric moved against its history
    "table_check",     # a table monitor broke (volume, nulls, uniqueness, schema)
]


class RawSignal(BaseModel):
    """One observation from one source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="The configured source's name, e.g. 'dbt', 'logs:airflow'.")
    kind: SignalKind
    asset: str = Field(description="The node it is about: dbt unique id, or task.<dag>.<task>.")
    title: str = Field(description="One line a human reads.")
    observed_at: datetime = Field(description="When it happened (timezone-aware).")
    dedup_key: str = Field(description="Stable id of this observation: seen twice, stored once.")
    run_id: str | None = Field(None, description="The DAG run or dbt invocation it came from.")
    detail: dict[str, Any] = Field(default_factory=dict,
                                   description="Source-specific facts: message, file, line, sql…")

"""Sleuth's tables. Everything is stored before it is acted on, so nothing is lost on a crash.

Signals are raw observations; intake files each one under an issue or records why it was
dropped. An investigation of an issue (or of a free-text question) writes trace steps as it
goes, then one report and one case file. Feedback and approvals refer to a report.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime: SQLite hands them back without a zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(**kwargs: Any) -> Any:
    """A timezone-aware timestamp column (SQLite keeps it as text; Postgres as timestamptz)."""
    return Field(sa_type=DateTime(timezone=True), **kwargs)


def _json(**kwargs: Any) -> Any:
    return Field(sa_column=Column(JSON, nullable=False), **kwargs)


class SignalStatus(StrEnum):
    new = "new"            # stored, not yet filtered or grouped
    held = "held"          # the filter waits for more facts (a retry); decided again at `recheck_at`
    filtered = "filtered"  # dropped as noise; `filter_rule` and `filter_reason` say why
    grouped = "grouped"    # filed under `issue_id`; `group_reason` says how


class IssueStatus(StrEnum):
    open = "open"
    muted = "muted"
    resolved = "resolved"


class InvestigationStatus(StrEnum):
    running = "running"
    done = "done"
    failed = "failed"
    stopped = "stopped"  # a guardrail ended it; the report says which


class Signal(SQLModel, table=True):
    """One observation from a source: a failed task, a failed test, a log error, an anomaly."""

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True, description="Name of the source that produced it.")
    kind: str = Field(index=True, description="task_failed, test_failed, log_error, anomaly…")
    asset: str = Field(index=True, description="The node it is about (dbt unique id, task id).")
    title: str
    detail: dict[str, Any] = _json(default_factory=dict)
    dedup_key: str = Field(unique=True, description="Same observation seen twice, stored once.")
    run_id: str | None = Field(default=None, index=True, description="DAG run or dbt invocation.")
    observed_at: datetime = _when(index=True)
    received_at: datetime = _when(default_factory=utcnow)
    fingerprint: str | None = Field(default=None, index=True)
    status: SignalStatus = Field(default=SignalStatus.new, index=True)
    filter_rule: str | None = Field(default=None, description="Which rule decided: benign:<name>…")
    filter_reason: str | None = None
    recheck_at: datetime | None = _when(default=None)
    issue_id: int | None = Field(default=None, foreign_key="issue.id", index=True)
    group_reason: str | None = Field(default=None, description="fingerprint, similarity, lineage.")


class Issue(SQLModel, table=True):
    """One root problem, however many signals show it."""

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(unique=True)
    title: str
    severity: str = Field(description="SEV1 (worst) to SEV4.")
    status: IssueStatus = Field(default=IssueStatus.open, index=True)
    asset: str = Field(index=True, description="The most upstream asset its signals point at.")
    kind: str = Field(default="", description="Kind of the signal that opened it.")
    assets: list[str] = _json(default_factory=list, description="Every asset its signals name.")
    channel: str = Field(description="Slack channel that owns the asset.")
    occurrences: int = 1
    first_seen: datetime = _when()
    last_seen: datetime = _when()
    resolved_at: datetime | None = _when(default=None)
    resolution: str | None = None


class SourceState(SQLModel, table=True):
    """Where each source's polling stands: its cursor, and whether it is failing."""

    name: str = Field(primary_key=True, description="Source name, e.g. dbt, logs:airflow.")
    cursor: dict[str, Any] = _json(default_factory=dict)
    polled_at: datetime | None = _when(default=None)
    ok_at: datetime | None = _when(default=None)
    failures: int = Field(default=0, description="Consecutive failed polls.")
    last_error: str | None = None
    retry_at: datetime | None = _when(default=None, description="Backed off until then.")


class Investigation(SQLModel, table=True):
    """One run of the orchestrator on an issue or a free-text question."""

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int | None = Field(default=None, foreign_key="issue.id", index=True)
    question: str
    trigger: str = Field(description="auto, button, command, reaction, cli.")
    policy: str = Field(description="offline, or the orchestrator model's name.")
    status: InvestigationStatus = Field(default=InvestigationStatus.running, index=True)
    started_at: datetime = _when(default_factory=utcnow)
    ended_at: datetime | None = _when(default=None)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


class TraceStep(SQLModel, table=True):
    """One step of an investigation, stored before it is shown anywhere."""

    __table_args__ = (UniqueConstraint("investigation_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    investigation_id: int = Field(foreign_key="investigation.id", index=True)
    seq: int = Field(description="Order within the investigation, from 1.")
    agent: str = Field(description="orchestrator, data, logs, code, metrics, pr.")
    kind: str = Field(description="plan, tool_call, tool_result, finding, scratchpad, error…")
    tool: str | None = None
    arguments: dict[str, Any] = _json(default_factory=dict)
    summary: str = Field(description="The one line a human reads in the thread.")
    status: str = Field(default="ok", description="ok, error, no_data.")
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0
    created_at: datetime = _when(default_factory=utcnow)


class Report(SQLModel, table=True):
    """The structured outcome of an investigation (its body follows the agents' report model)."""

    id: int | None = Field(default=None, primary_key=True)
    investigation_id: int = Field(foreign_key="investigation.id", unique=True)
    severity: str
    root_cause_node: str | None = None
    confidence: float = 0.0
    body: dict[str, Any] = _json(default_factory=dict)
    created_at: datetime = _when(default_factory=utcnow)


class CaseFile(SQLModel, table=True):
    """What a human needs to verify or continue an investigation, as Markdown and JSON."""

    id: int | None = Field(default=None, primary_key=True)
    investigation_id: int = Field(foreign_key="investigation.id", unique=True)
    markdown: str
    body: dict[str, Any] = _json(default_factory=dict)
    created_at: datetime = _when(default_factory=utcnow)


class Feedback(SQLModel, table=True):
    """A 👍/👎 on a report; a 👎 becomes an eval case candidate."""

    __table_args__ = (UniqueConstraint("report_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    user_id: str
    rating: int = Field(description="+1 or -1.")
    comment: str | None = None
    created_at: datetime = _when(default_factory=utcnow)


class Approval(SQLModel, table=True):
    """A click on an action that changes code, allowed or refused: the audit trail."""

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    action: str = Field(description="create_pr.")
    user_id: str
    allowed: bool
    reason: str = Field(description="Why it was allowed or refused.")
    request_key: str = Field(unique=True, description="Makes double clicks and retries count once.")
    created_at: datetime = _when(default_factory=utcnow)


class SlackMessage(SQLModel, table=True):
    """A message the bot posted, under the key of what it shows (`card:<issue>`,
    `report:<investigation>`…): posting checks the key first, so a restart never reposts, and
    updates find the message to edit."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    kind: str = Field(description="card, summary, trace, report, casefile, notice.")
    channel: str = Field(description="Channel id.")
    ts: str = Field(index=True)
    thread_ts: str | None = None
    issue_id: int | None = Field(default=None, foreign_key="issue.id", index=True)
    investigation_id: int | None = Field(default=None, foreign_key="investigation.id",
                                         index=True)
    digest: str = Field(default="", description="Hash of the content last sent: no-op "
                                                "updates are skipped.")
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class SlackEvent(SQLModel, table=True):
    """A delivery from Slack the bot acted on (event id, or a click's own key): Slack retries
    and double clicks find it here and do nothing."""

    key: str = Field(primary_key=True)
    kind: str = Field(description="event type, command, action or view.")
    user_id: str | None = None
    received_at: datetime = _when(default_factory=utcnow)

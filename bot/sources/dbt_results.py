"""Typed readers of `run_results.json` (schema v4-v6) and `sources.json` (source freshness, v3).

The differences between run_results versions are normalised away: v4 (dbt 1.0-1.6) has no
`compiled`, `compiled_code` or `relation_name` on a result and may leave out `message` and
`failures`; v5 (dbt 1.7) adds the three compiled fields; v6 (dbt 1.8+) adds the statuses
`partial success` and `no-op`, `batch_results` for microbatch models, and
`metadata.invocation_started_at`. Fields a version lacks read as None.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field

from bot.sources.dbt_files import Artifact, OptionalText, UtcDatetime, one_of, read_artifact

NodeStatus = Literal["success", "error", "fail", "warn", "skipped", "pass", "partial success",
                     "no-op", "runtime error"]
FreshnessStatus = Literal["pass", "warn", "error", "runtime error"]
NODE_STATUSES: tuple[str, ...] = get_args(NodeStatus)
FRESHNESS_STATUSES: tuple[str, ...] = get_args(FreshnessStatus)


class ArtifactMetadata(Artifact):
    dbt_schema_version: str
    dbt_version: str | None = None
    generated_at: UtcDatetime | None = None
    invocation_id: str | None = None
    invocation_started_at: UtcDatetime | None = Field(None, description="v6 and later.")


class Timing(Artifact):
    name: str
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None


class BatchResults(Artifact):
    """Microbatch models (v6): the (start, end) of each batch that succeeded or failed."""

    successful: list[tuple[str, str]] = Field(default_factory=list)
    failed: list[tuple[str, str]] = Field(default_factory=list)


class RunResult(Artifact):
    """One node's outcome in a dbt invocation."""

    unique_id: str
    status: Annotated[NodeStatus, one_of(NODE_STATUSES)]
    message: str | None = None
    failures: int | None = Field(None, description="Rows a test found; None for models.")
    execution_time: float = 0.0
    thread_id: str | None = None
    timing: list[Timing] = Field(default_factory=list)
    adapter_response: dict[str, Any] = Field(default_factory=dict)
    compiled: bool | None = Field(None, description="v5 and later.")
    compiled_code: OptionalText = Field(None, description="v5 and later.")
    relation_name: OptionalText = Field(None, description="v5 and later.")
    batch_results: BatchResults | None = Field(None, description="v6 and later.")

    @property
    def finished_at(self) -> datetime | None:
        """When the node finished executing (or compiling, if it never executed)."""
        ends = {t.name: t.completed_at for t in self.timing if t.completed_at}
        return ends.get("execute") or (max(ends.values()) if ends else None)


class RunResults(Artifact):
    """`run_results.json`: the nodes one dbt invocation ran, and how each ended."""

    metadata: ArtifactMetadata
    results: list[RunResult]
    elapsed_time: float = 0.0
    args: dict[str, Any] = Field(default_factory=dict)

    @property
    def command(self) -> str | None:
        """The dbt command: build, run, test, seed, snapshot…"""
        which = self.args.get("which")
        return which if isinstance(which, str) else None


def _stringify(value: object) -> object:
    return str(value) if isinstance(value, int) else value  # the schema allows an int error


class FreshnessPeriod(Artifact):
    count: int | None = None
    period: Literal["minute", "hour", "day"] | None = None

    def __str__(self) -> str:
        return f"{self.count} {self.period}{'s' if self.count != 1 else ''}"


class FreshnessCriteria(Artifact):
    warn_after: FreshnessPeriod | None = None
    error_after: FreshnessPeriod | None = None
    filter: str | None = None


class SourceFreshness(Artifact):
    """One source table's freshness; a `runtime error` carries only `error`."""

    unique_id: str
    status: Annotated[FreshnessStatus, one_of(FRESHNESS_STATUSES)]
    max_loaded_at: UtcDatetime | None = None
    snapshotted_at: UtcDatetime | None = None
    max_loaded_at_time_ago_in_s: float | None = None
    criteria: FreshnessCriteria | None = None
    error: Annotated[str | None, BeforeValidator(_stringify)] = None
    execution_time: float = 0.0


class SourcesArtifact(Artifact):
    """`sources.json`: the outcome of one `dbt source freshness`."""

    metadata: ArtifactMetadata
    results: list[SourceFreshness]
    elapsed_time: float = 0.0


def read_run_results(path: Path) -> RunResults:
    """Read a `run_results.json`; `ArtifactError` naming file and field if it cannot be read."""
    return read_artifact(path, RunResults, kind="run-results", collections=("results",))


def read_sources(path: Path) -> SourcesArtifact:
    """Read a `sources.json`; `ArtifactError` naming file and field if it cannot be read."""
    return read_artifact(path, SourcesArtifact, kind="sources", collections=("results",))

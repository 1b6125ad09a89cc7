"""The investigation's world: what the tools read, as small protocols with pydantic data types.

`agents/` never imports `bot`: it states here what it needs (a warehouse, log files, a git
repository, metric series, DAG runs, the system map, issue memory) and `bot.world` implements
each over the user's configured sources or the demo platform. Every protocol is read-only;
bounds (rows, lines, bytes) are the tools' business, and an implementation only has to honour
the `limit` it is given. Paths and files are named as the citations name them: log files by
a label relative to their source's root, code by its path in the repository.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from agents.casefile import MemoryHit
from agents.tools.sql_guard import GuardedQuery, QueryResult

__all__ = [
    "BlameLine", "CodeRepo", "Column", "Commit", "DagRun", "LogLine", "LogStore", "MapNode",
    "Memory", "MemoryHit", "MetricSeries", "MetricStore", "QueryResult", "RecordedSchema",
    "RunHistory", "SystemMapView", "TaskLog", "TaskTry", "Warehouse",
]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---------------------------------------------------------------- warehouse


class Column(_Data):
    name: str
    type: str


class RecordedSchema(_Data):
    """A table's columns as something recorded them earlier: a baseline for a schema diff."""

    source: str = Field(description="Who recorded it, e.g. `table monitor` or `dbt docs`.")
    as_of: datetime | None = None
    columns: dict[str, str | None] = Field(description="Name to type; None: type not recorded.")


class Warehouse(Protocol):
    """The user's warehouse, read-only. `run` takes only queries that passed `guard_sql`."""

    dialect: str  # sqlglot's name of the SQL dialect: duckdb, postgres, sqlite…

    def run(self, query: GuardedQuery, timeout_s: float) -> QueryResult:
        """Rows of a guarded query; raises SqlFailed / SqlTimeout (agents.tools.sql_guard)."""
        ...

    def tables(self) -> list[str]:
        """Every table and view as `schema.table`."""
        ...

    def columns(self, table: str) -> list[Column]:
        """The columns of `schema.table` in order; empty if there is no such table."""
        ...

    def recorded_schemas(self, table: str) -> list[RecordedSchema]:
        """Earlier records of the table's columns, newest first; empty if none is kept."""
        ...


# ---------------------------------------------------------------- logs


class LogLine(_Data):
    """One log line (the first line of an event when it spans several)."""

    file: str = Field(description="The file's label, as `read` and citations take it.")
    line_no: int = Field(ge=1)
    timestamp: datetime | None = None
    level: str | None = None
    text: str
    template_id: str | None = Field(None, description="Its message's template, if mined.")
    template: str | None = None


class LogStore(Protocol):
    """Log files, searched by task, run, time, pattern and level; lines oldest first."""

    def search(self, *, task: str | None = None, run_id: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               pattern: str | None = None, level: str | None = None,
               limit: int = 100) -> list[LogLine]:
        """Matching lines oldest first, at most `limit`. `task`: a task id (or
        `dag_id.task_id`); `pattern`: a regex searched in the line; `level`: that level or
        worse (ERROR also takes a traceback's lines)."""
        ...

    def read(self, file: str, start_line: int, end_line: int) -> list[LogLine]:
        """Lines `start_line..end_line` (inclusive) of a file `search` named; [] if unknown."""
        ...


# ---------------------------------------------------------------- code


class Commit(_Data):
    sha: str
    author: str
    date: datetime
    summary: str
    files: list[str] = Field(default_factory=list)


class BlameLine(_Data):
    line_no: int
    sha: str
    author: str
    date: datetime
    text: str


class CodeRepo(Protocol):
    """The git repository of the pipeline's code; paths relative to its root."""

    def head(self) -> str:
        """The sha HEAD points at."""
        ...

    def log(self, paths: list[str], since: datetime | None, until: datetime | None,
            limit: int) -> list[Commit]:
        """Commits touching `paths` (all if empty), newest first."""
        ...

    def show(self, sha: str, path: str | None = None) -> tuple[Commit, str]:
        """The commit and its patch (of `path` only, if given); ValueError if unknown."""
        ...

    def diff(self, sha_a: str, sha_b: str, paths: list[str]) -> str:
        """The unified diff from `sha_a` to `sha_b`, limited to `paths` if any."""
        ...

    def blame(self, path: str, start: int, end: int, sha: str | None = None) -> list[BlameLine]:
        """Who last changed each of lines `start..end` of `path` at `sha` (default HEAD)."""
        ...

    def read(self, path: str, sha: str | None = None) -> str:
        """The file at `sha` (default HEAD); FileNotFoundError if absent."""
        ...


# ---------------------------------------------------------------- metrics


class MetricSeries(_Data):
    name: str | None = Field(description="The metric's name; None for a computed series.")
    labels: dict[str, str] = Field(default_factory=dict)
    points: list[tuple[datetime, float]] = Field(description="(time, value), oldest first.")


class MetricStore(Protocol):
    """Metric series by query (the backend's language: PromQL, or the demo's selectors)."""

    def series(self, query: str, start: datetime, end: datetime,
               step_s: float) -> list[MetricSeries]:
        """Series of `query` over the window; ValueError for a query it cannot read."""
        ...

    def names(self) -> list[str]:
        """Metric names it holds, if it can list them (else empty)."""
        ...


# ---------------------------------------------------------------- DAG runs


class DagRun(_Data):
    dag_id: str
    run_id: str
    state: str
    logical_date: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None


class TaskTry(_Data):
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    map_index: int = -1
    state: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: float | None = None
    operator: str | None = None
    hostname: str | None = None


class TaskLog(_Data):
    file: str = Field(description="The log's label, as citations name it.")
    text: str


class RunHistory(Protocol):
    """The orchestrator's run records (Airflow's API, the demo's run records)."""

    def runs(self, dag_id: str, since: datetime) -> list[DagRun]:
        """Runs of the DAG that ended (or are running) since `since`, oldest first."""
        ...

    def tries(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[TaskTry]:
        ...

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> TaskLog | None:
        ...


# ---------------------------------------------------------------- the system map


NodeKind = Literal["model", "source", "seed", "snapshot", "test", "exposure", "task", "table",
                   "other"]


class MapNode(_Data):
    """One asset of the system map with what an investigator asks of it."""

    id: str = Field(description="dbt unique id, `task.<dag>.<task>` or `table:<schema.table>`.")
    kind: NodeKind
    name: str = Field(description="What people call it.")
    relation: str | None = Field(None, description="Its table, `schema.table`, if it has one.")
    owner: str | None = None
    channel: str | None = None
    description: str | None = None
    code_paths: list[str] = Field(default_factory=list,
                                  description="Files that define it, relative to the repo.")
    logs: list[str] = Field(default_factory=list, description="Where its logs are (globs).")
    upstream: list[str] = Field(default_factory=list, description="Direct upstream ids.")
    downstream: list[str] = Field(default_factory=list, description="Direct downstream ids.")


class SystemMapView(Protocol):
    """The map of assets: dbt lineage plus DAG tasks, with owners and where things live."""

    def node(self, node_id: str) -> MapNode | None:
        """A node by id, or by a name or relation that names exactly one node."""
        ...

    def nodes(self) -> list[MapNode]:
        ...

    def places(self) -> dict[str, str]:
        """Where things live: `code` (the repository), `logs`, `docs`, `warehouse`…"""
        ...


# ---------------------------------------------------------------- memory


class Memory(Protocol):
    """Closed issues: summary (the hit's title), root cause and fix."""

    def search(self, text: str, k: int) -> list[MemoryHit]:
        ...

"""The case file: everything an investigation did and saw, so a human can audit the report.

Steps (tool, arguments, result digest, status, tokens, cost, latency), the queries with their
samples, log excerpts, code citations, memory hits, and the report. It is written as JSON
(to reload) and Markdown (to read). Secrets are redacted on the way out, in both forms: the
model saw what the tools returned, and tool output can hold a password in a log line.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.redact import redact_data
from agents.report import Report
from agents.tools.sql_guard import QueryResult

StepStatus = Literal["ok", "error", "no_data", "refused"]
SAMPLE_ROWS = 20  # rows of each query kept in the case file


class _Model(BaseModel):
    # Query samples go to JSON as they are, except blobs, which need not be UTF-8 (the setting
    # is read from the model being dumped, so every model here carries it).
    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64")


class CaseMeta(_Model):
    investigation_id: str
    issue_id: str | None = None
    title: str
    trigger: str = Field("", description="What started it: auto, a button, a command.")
    started_at: datetime
    finished_at: datetime | None = None
    produced_by: str = Field(description="'offline policy' or the orchestrator's model.")
    status: Literal["running", "done", "failed", "stopped"] = "running"


class Step(_Model):
    index: int
    agent: str = Field("orchestrator", description="Orchestrator or the subagent's name.")
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result_digest: str = Field(description="The one-line description shown in the thread.")
    status: StepStatus
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0


class QueryRecord(_Model):
    id: str = Field(description="Cited as `sql:<id>`.")
    sql: str = Field(description="The SQL that ran (after the guard).")
    columns: list[str] = Field(default_factory=list)
    sample: list[list[Any]] = Field(default_factory=list)
    row_count: int = 0
    truncated: bool = False
    error: str | None = None

    @property
    def reference(self) -> str:
        return f"sql:{self.id}"

    @classmethod
    def from_result(cls, id: str, sql: str, result: QueryResult) -> QueryRecord:
        return cls(id=id, sql=sql, columns=result.columns, sample=result.rows[:SAMPLE_ROWS],
                   row_count=result.row_count, truncated=result.truncated)


class LogExcerpt(_Model):
    file: str
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    text: str

    @property
    def reference(self) -> str:
        return f"{self.file}#L{self.start_line}-L{self.end_line}"


class CodeCitation(_Model):
    path: str
    sha: str
    start_line: int | None = None
    end_line: int | None = None
    excerpt: str = ""

    @property
    def reference(self) -> str:
        if not self.start_line:
            return f"{self.path}@{self.sha}"
        return f"{self.path}@{self.sha}#L{self.start_line}-L{self.end_line or self.start_line}"


class MemoryHit(_Model):
    issue_id: str
    title: str
    similarity: float
    root_cause: str | None = None
    fix: str | None = None

    @property
    def reference(self) -> str:
        return f"memory:{self.issue_id}"


class CaseFile(_Model):
    meta: CaseMeta
    steps: list[Step] = Field(default_factory=list)
    queries: list[QueryRecord] = Field(default_factory=list)
    logs: list[LogExcerpt] = Field(default_factory=list)
    code: list[CodeCitation] = Field(default_factory=list)
    memory: list[MemoryHit] = Field(default_factory=list)
    report: Report | None = None

    @property
    def tokens(self) -> int:
        return sum(s.tokens_in + s.tokens_out for s in self.steps)

    @property
    def cost_usd(self) -> float:
        return sum(s.cost_usd for s in self.steps)

    def redacted(self, known: Iterable[str] = ()) -> CaseFile:
        """A copy with secrets replaced; `known`: the app's own secret values."""
        return redact_data(self, known)

    def to_json(self, known: Iterable[str] = ()) -> str:
        return self.redacted(known).model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> CaseFile:
        return cls.model_validate_json(text)

    def unresolved_citations(self) -> list[str]:
        """Report citations of kind sql, log, code or memory that point at nothing recorded here."""
        if self.report is None:
            return []
        known = {"sql": {q.reference for q in self.queries},
                 "memory": {m.reference for m in self.memory}}
        missing = []
        for c in self.report.citations():
            if c.kind in known:
                found = c.reference in known[c.kind]
            elif c.kind == "log":
                found = any(_log_covers(log, c.reference) for log in self.logs)
            elif c.kind == "code":
                found = any(_code_matches(code, c.reference) for code in self.code)
            else:
                continue
            if not found:
                missing.append(c.reference)
        return missing

    def to_markdown(self, known: Iterable[str] = ()) -> str:
        case = self.redacted(known)
        m = case.meta
        lines = [
            f"# Case {m.investigation_id}: {m.title}",
            "",
            f"- status: {m.status} · produced by {m.produced_by}"
            + (f" · trigger: {m.trigger}" if m.trigger else ""),
            f"- issue: {m.issue_id or '-'} · started {m.started_at:%Y-%m-%d %H:%M:%S}"
            + (f" · finished {m.finished_at:%Y-%m-%d %H:%M:%S}" if m.finished_at else ""),
            f"- {len(case.steps)} steps · {case.tokens} tokens · ${case.cost_usd:.4f}",
        ]
        if case.report:
            lines += ["", case.report.to_markdown(level=2).rstrip()]
        if case.steps:
            lines += ["", "## Steps", "", "| # | agent | tool | status | result | tokens | cost "
                      "| ms |", "|---|---|---|---|---|---|---|---|"]
            lines += [_row([s.index, s.agent, s.tool, s.status, s.result_digest,
                            s.tokens_in + s.tokens_out, f"${s.cost_usd:.4f}", s.latency_ms])
                      for s in case.steps]
        for q in case.queries:
            lines += ["", f"## `{q.reference}`", "", "```sql", q.sql, "```"]
            if q.error:
                lines += ["", f"Error: {q.error}"]
            elif q.columns:
                more = " (truncated)" if q.truncated else ""
                lines += ["", f"{q.row_count} rows{more}; first {len(q.sample)}:", "",
                          _row(q.columns), _row(["---"] * len(q.columns)),
                          *(_row(r) for r in q.sample)]
        for log in case.logs:
            lines += ["", f"## `{log.reference}`", "", "```text", log.text, "```"]
        for code in case.code:
            lines += ["", f"## `{code.reference}`", "", "```", code.excerpt, "```"]
        if case.memory:
            lines += ["", "## Similar past issues"]
            lines += [f"- `{h.reference}` ({h.similarity:.2f}) {h.title}"
                      + (f": {h.root_cause}" if h.root_cause else "")
                      + (f"; fix: {h.fix}" if h.fix else "") for h in case.memory]
        return "\n".join(lines) + "\n"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _log_covers(log: LogExcerpt, reference: str) -> bool:
    file, _, lines = reference.rpartition("#L")
    start, _, end = lines.partition("-L")
    return (file == log.file and start.isdigit()
            and log.start_line <= int(start) <= int(end or start) <= log.end_line)


def _code_matches(code: CodeCitation, reference: str) -> bool:
    path, _, rest = reference.partition("@")
    sha = rest.split("#", 1)[0]
    return path == code.path and (code.sha.startswith(sha) or sha.startswith(code.sha))

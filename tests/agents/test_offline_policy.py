"""The offline policy drives the real loop over small made-up tools: it reaches a valid report,
supports the hypothesis the evidence supports, says unknown when nothing is, and repeats
itself exactly."""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import Completion, Message, ToolSpec
from agents.offline import OfflinePolicy
from agents.orchestrator import Investigation, InvestigationResult, investigate
from agents.report import Citation
from agents.tools.base import Tool, ToolOutput
from agents.trace import ListSink

SOURCE, MODEL, LOADER = "source.p.shop.orders", "model.p.stg_orders", "task.d.load_orders"
EXPOSURE = "exposure.p.dashboard"
DAYS = ["2026-11-23", "2026-11-22", "2026-11-21", "2026-11-20"]


def _brief(node: str, kind: str, relation: str | None = None, code: list[str] = ()) -> dict:
    return {"id": node, "kind": kind, "name": node.split(".", 2)[-1], "relation": relation,
            "code": list(code)}


NODES = {
    SOURCE: _brief(SOURCE, "source", "raw.orders", ["models/_sources.yml"]),
    MODEL: _brief(MODEL, "model", "staging.stg_orders", ["models/stg_orders.sql"]),
    LOADER: _brief(LOADER, "task", "raw.orders", ["loaders/orders.yml"]),
    EXPOSURE: _brief(EXPOSURE, "exposure"),
}
UPSTREAM = {MODEL: [SOURCE, LOADER], SOURCE: [LOADER], LOADER: [], EXPOSURE: [MODEL, SOURCE]}
DOWNSTREAM = {LOADER: [SOURCE, MODEL, EXPOSURE], SOURCE: [MODEL, EXPOSURE], MODEL: [EXPOSURE],
              EXPOSURE: []}


class Pipeline:
    """Made-up read-only tools; `nulls` and `commit` decide what the evidence shows."""

    def __init__(self, *, nulls: bool = False, commit: bool = False) -> None:
        self.nulls, self.commit = nulls, commit

    def _sql(self, qid: str, columns: list[str], rows: list[list[Any]], summary: str
             ) -> ToolOutput:
        sql = f"SELECT /* {qid} */ 1"
        return ToolOutput(status="ok", summary=summary,
                          data={"query_id": qid, "sql": sql, "columns": columns, "rows": rows,
                                "row_count": len(rows), "truncated": False},
                          citations=[Citation(kind="sql", reference=f"sql:{qid}", excerpt=sql)])

    # the orchestrator's
    def system_map(self, node: str, depth: int = 2) -> ToolOutput:
        """A node and its upstream and downstream neighbours."""
        if node not in NODES:
            return ToolOutput.fail(f"no map node {node}", "no such node")
        full = {**NODES[node], "code_paths": NODES[node]["code"],
                "upstream": UPSTREAM[node], "downstream": DOWNSTREAM[node]}
        return ToolOutput(status="ok", summary=f"map of {node}", data={
            "node": full, "upstream": [NODES[n] for n in UPSTREAM[node]],
            "downstream": [NODES[n] for n in DOWNSTREAM[node]],
            "exposures": [EXPOSURE] if node != EXPOSURE else []},
            citations=[Citation(kind="map", reference=f"map:{node}")])

    def search_memory(self, text: str, k: int = 5) -> ToolOutput:
        """Similar closed issues."""
        return ToolOutput(status="no_data", summary="no similar closed issue")

    # the data specialist's
    def run_sql(self, sql: str) -> ToolOutput:
        """One read-only query."""
        rows = [[d, 100, 100] for d in DAYS]
        return self._sql("dups", ["partition", "row_count", "distinct_keys"], rows,
                         "distinct keys per load")

    def schema_of(self, table: str) -> ToolOutput:
        """A table's columns."""
        return ToolOutput(status="ok", summary=f"schema of {table}", data={"columns": [
            {"name": "order_id", "type": "BIGINT"}, {"name": "customer_id", "type": "BIGINT"},
            {"name": "amount", "type": "DECIMAL(12,2)"},
            {"name": "_partition_date", "type": "DATE"}]})

    def row_counts(self, table: str) -> ToolOutput:
        """Rows per partition."""
        return self._sql("counts", ["partition", "row_count"], [[d, 100] for d in DAYS],
                         "100 rows a day")

    def null_rates(self, table: str) -> ToolOutput:
        """Null rate per column per partition."""
        rates = [[d, 100, 0.0, 0.3 if self.nulls and i == 0 else 0.0, 0.0, 0.0]
                 for i, d in enumerate(DAYS)]
        return self._sql("nulls", ["partition", "row_count", "order_id", "customer_id",
                                   "amount", "_partition_date"], rates, "null rates")

    def compare_values(self, table: str, column: str) -> ToolOutput:
        """A column's distribution in the last two partitions."""
        return self._sql("dist", ["partition", "row_count", "mean"],
                         [[DAYS[1], 100, 20.0], [DAYS[0], 100, 21.0]], "same scale")

    # the logs specialist's
    def search_logs(self, task: str | None = None, since: str | None = None,
                    pattern: str | None = None) -> ToolOutput:
        """Log lines matching a pattern."""
        return ToolOutput(status="no_data", summary="no lines")

    # the code specialist's
    def git_log(self, paths: list[str], since: str | None = None,
                until: str | None = None) -> ToolOutput:
        """Commits to paths in a window."""
        if not self.commit or "models/stg_orders.sql" not in paths:
            return ToolOutput(status="no_data", summary="no commits")
        commit = {"sha": "abc1234def56", "date": "2026-11-23T10:00:00+00:00", "author": "dev",
                  "summary": "Refactor stg_orders", "files": ["models/stg_orders.sql"]}
        return ToolOutput(status="ok", summary="1 commit", data={"commits": [commit]},
                          citations=[Citation(kind="code",
                                              reference="models/stg_orders.sql@abc1234def56")])

    def git_show(self, sha: str, path: str | None = None) -> ToolOutput:
        """One commit's patch."""
        return ToolOutput(status="ok", summary=f"commit {sha}", data={"patch": "-a\n+b"},
                          citations=[Citation(kind="code", excerpt="-a\n+b", reference=(
                              "models/stg_orders.sql@abc1234def56#L3-L4"))])

    def tools(self) -> tuple[dict[str, list[Tool]], list[Tool]]:
        t = Tool.of
        return ({"data": [t(self.run_sql), t(self.schema_of), t(self.row_counts),
                          t(self.null_rates), t(self.compare_values)],
                 "logs": [t(self.search_logs)],
                 "code": [t(self.git_log), t(self.git_show)]},
                [t(self.system_map), t(self.search_memory)])


ISSUE = Investigation(
    id="t1", title="dbt test not_null(stg_orders.customer_id) failed", asset=MODEL,
    signals_summary="first seen 2026-11-24T01:40:00+00:00; 2 signals\n"
                    f"- test_failed {MODEL}: not_null(stg_orders.customer_id) failed\n"
                    "- task_failed task.d.dbt_build: dbt build failed")


def run(pipeline: Pipeline, inputs: Investigation = ISSUE) -> InvestigationResult:
    subagents, orchestrator = pipeline.tools()
    return investigate(inputs, OfflinePolicy(), OfflinePolicy(), subagents, orchestrator,
                       sink=ListSink())


def calls(result: InvestigationResult) -> list[tuple[str, str, Any]]:
    return [(e.agent, e.tool or "", e.arguments) for e in result.trace if e.kind == "tool_call"]


def test_a_null_spike_is_reported_as_data_quality_at_the_source() -> None:
    result = run(Pipeline(nulls=True))
    report = result.report
    assert result.status == "done"
    assert (report.root_cause.node, report.root_cause.category) == (SOURCE, "data_quality")
    assert report.produced_by == "offline-policy"
    assert any("customer_id" in c.text for c in report.evidence)
    assert {c.reference for c in report.citations()} == {"sql:nulls"}
    assert EXPOSURE in report.impacted_assets and report.severity == "SEV2"
    rejected = " ".join(r.hypothesis for r in report.rejected_hypotheses)
    assert "twice" in rejected and "config" in rejected  # duplicates and the loader ruled out
    kinds = {e.kind for e in result.trace}
    assert {"plan", "scratchpad", "subagent_start", "finding", "report"} <= kinds


def test_a_commit_in_the_window_is_the_code_change_it_explains() -> None:
    report = run(Pipeline(commit=True)).report
    assert (report.root_cause.node, report.root_cause.category) == (MODEL, "code_change")
    assert report.code_change.needed and report.code_change.files == ["models/stg_orders.sql"]
    assert "abc1234def56" in (report.code_change.sketch or "")


def test_nothing_supported_is_unknown_with_next_checks() -> None:
    report = run(Pipeline()).report
    assert report.root_cause.category == "unknown" and report.root_cause.node is None
    assert report.confidence <= 0.5 and report.next_checks
    assert report.rejected_hypotheses


def test_same_inputs_same_calls() -> None:
    first, second = run(Pipeline(nulls=True)), run(Pipeline(nulls=True))
    lead = [c for c in calls(first) if c[0] == "orchestrator"]
    assert lead == [c for c in calls(second) if c[0] == "orchestrator"]
    # specialists run side by side: their calls interleave, but they are the same calls
    assert sorted(map(repr, calls(first))) == sorted(map(repr, calls(second)))
    assert first.report == second.report


def test_a_question_without_an_asset_searches_the_map_first() -> None:
    pipeline = Pipeline(nulls=True)

    def search_nodes(text: str) -> ToolOutput:
        """Map nodes matching words."""
        return ToolOutput(status="ok", summary="1 node",
                          data={"nodes": [NODES[MODEL]] if "orders" in text else []})

    subagents, orchestrator = pipeline.tools()
    result = investigate(Investigation(question="why are stg_orders customers missing?"),
                         OfflinePolicy(), OfflinePolicy(), subagents,
                         [*orchestrator, Tool.of(search_nodes)])
    assert [c[1] for c in calls(result)][:3] == ["search_nodes", "search_memory", "system_map"]
    assert result.report.root_cause.node == SOURCE


@pytest.mark.parametrize("tools", [[], [ToolSpec(name="mystery", description="?")]])
def test_a_specialist_with_unknown_tools_still_submits_valid_findings(tools) -> None:
    answer = OfflinePolicy().complete("", [Message.user("Task from the lead investigator: x")],
                                      [*tools, ToolSpec(name="submit_findings", description="end")])
    assert isinstance(answer, Completion) and answer.usage.total == 0
    (call,) = answer.tool_calls
    assert call.name == "submit_findings" and call.arguments["findings"]["claims"]

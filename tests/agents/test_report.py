"""The report schema (what a model submits) and the case file (what a human audits)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import duckdb
import pytest
from pydantic import ValidationError

from agents.casefile import (
    SAMPLE_ROWS,
    CaseFile,
    CaseMeta,
    CodeCitation,
    LogExcerpt,
    MemoryHit,
    QueryRecord,
    Step,
)
from bot.demo import truth

from agents.report import (
    CATEGORIES,
    SEVERITY_CRITERIA,
    Report,
    confidence_label,
    feedback,
)
from agents.tools.sql_guard import connect_readonly, guard_sql, run_guarded

REPO = Path(__file__).resolve().parents[2]


def report_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "fct_orders revenue doubled after a join change",
        "summary": "A commit joined orders to payments on customer_id; revenue doubled.",
        "what_happened": "The 02:00 run built fct_orders with two rows per order.",
        "impacted_assets": ["model.sleuth_demo.fct_orders", "model.sleuth_demo.fct_orders"],
        "severity": "SEV1",
        "root_cause": {"node": "model.sleuth_demo.fct_orders", "category": "code_change",
                       "explanation": "The join key lost order_id, so each order fans out."},
        "confidence": 0.82,
        "evidence": [{
            "text": "fct_orders has 2 rows per order_id since the run",
            "citations": [
                {"kind": "sql", "reference": "sql:q1", "excerpt": "dupes=1000"},
                {"kind": "code", "reference": "models/marts/fct_orders.sql@1a2b3c4#L10-L12"},
                {"kind": "log", "reference": "logs/daily/run_dbt/attempt=1.log#L40-L52"},
                {"kind": "metric",
                 "reference": 'metric:orders_total{env="prod"}@2026-11-19..2026-11-20'},
            ],
        }],
        "rejected_hypotheses": [{"hypothesis": "duplicate delivery upstream",
                                 "why": "raw orders have unique ids"}],
        "ruled_out": ["source freshness"],
        "fix_steps": ["Revert the join change", "Rebuild fct_orders"],
        "prevention": ["Add a unique test on fct_orders.order_id"],
        "code_change": {"needed": True, "sketch": "- on customer_id\n+ on order_id",
                        "files": ["models/marts/fct_orders.sql"]},
        "produced_by": "offline policy",
    }
    data.update(changes)
    return data


def errors_of(**changes: Any) -> str:
    with pytest.raises(ValidationError) as info:
        Report.model_validate(report_data(**changes))
    return feedback(info.value)


def test_a_complete_report_validates_and_dedupes_assets():
    report = Report.model_validate(report_data())
    assert report.impacted_assets == ["model.sleuth_demo.fct_orders"]
    assert report.confidence_label == "high"


@pytest.mark.parametrize(("value", "label"), [(0.0, "low"), (0.39, "low"), (0.4, "medium"),
                                              (0.74, "medium"), (0.75, "high"), (1.0, "high")])
def test_the_confidence_label_is_derived(value: float, label: str):
    assert confidence_label(value) == label


def test_a_dumped_report_reads_back_identical():
    report = Report.model_validate(report_data())
    dumped = report.model_dump(mode="json")
    assert dumped["confidence_label"] == "high"
    assert Report.model_validate_json(json.dumps(dumped)) == report


def test_the_schema_a_model_fills_has_no_derived_label():
    schema = Report.model_json_schema()
    assert "confidence_label" not in schema["properties"]
    assert "SEV1: Wrong numbers" in schema["properties"]["severity"]["description"]


def test_an_unknown_root_cause_needs_next_checks_and_modest_confidence():
    unknown = {"node": None, "category": "unknown", "explanation": "Evidence is mixed."}
    message = errors_of(root_cause=unknown, confidence=0.9)
    assert "list next_checks" in message and "at most 0.5" in message
    ok = Report.model_validate(report_data(root_cause=unknown, confidence=0.3,
                                           next_checks=["Ask the payments team"]))
    assert ok.confidence_label == "low"


def test_a_named_root_cause_needs_evidence():
    assert "needs evidence" in errors_of(evidence=[])


def test_a_claim_needs_a_citation():
    assert "evidence.0.citations: cite at least one source" in errors_of(
        evidence=[{"text": "it broke", "citations": []}])


@pytest.mark.parametrize(("kind", "reference"), [
    ("sql", "q1"), ("log", "attempt=1.log"), ("code", "models/x.sql#L1"),
    ("metric", "orders_total"), ("memory", "ISS-1"), ("map", "model.x"),
])
def test_citation_references_must_fit_their_kind(kind: str, reference: str):
    message = errors_of(evidence=[{"text": "t", "citations": [
        {"kind": kind, "reference": reference}]}])
    assert f"a {kind} citation's reference looks like" in message
    assert f"got '{reference}'" in message


def test_excerpts_stay_short():
    assert "quote at most 600" in errors_of(evidence=[{"text": "t", "citations": [
        {"kind": "sql", "reference": "sql:q1", "excerpt": "x" * 601}]}])


def test_a_needed_code_change_is_sketched():
    assert "sketch and the files" in errors_of(code_change={"needed": True})


def test_asset_ids_are_ids_not_prose():
    assert "asset ids (no spaces)" in errors_of(impacted_assets=["the orders mart"])


def test_severity_and_category_are_closed_lists():
    message = errors_of(severity="P1", root_cause={"node": "x", "category": "bug",
                                                   "explanation": "e"})
    assert message.startswith("severity: Input should be 'SEV1'")
    assert "root_cause.category: Input should be" in message


def test_unknown_fields_are_named():
    assert "root_causes: Extra inputs are not permitted" in errors_of(root_causes=[])


def test_report_categories_are_the_ground_truth_ones_plus_unknown():
    assert set(get_args(truth.Category)) | {"unknown"} == set(CATEGORIES)
    assert truth.SEVERITY_CRITERIA is SEVERITY_CRITERIA


def test_markdown_shows_every_part_a_human_needs():
    md = Report.model_validate(report_data(limits_hit="step limit")).to_markdown()
    assert md.startswith("# fct_orders revenue doubled")
    for part in ("**SEV1**", "confidence **high** (0.82)", "produced by offline policy",
                 "stopped by step limit", "## Root cause", "`sql:q1`", "> dupes=1000",
                 "## Rejected hypotheses", "duplicate delivery upstream: raw orders",
                 "## Fix\n1. Revert the join change", "## Code change", "+ on order_id"):
        assert part in md


def test_markdown_of_an_unknown_cause_lists_next_checks():
    report = Report.model_validate(report_data(
        root_cause={"node": None, "category": "unknown", "explanation": "Mixed."},
        confidence=0.2, evidence=[], next_checks=["Check the payments feed"]))
    md = report.to_markdown()
    assert "`unknown` · unknown: Mixed." in md
    assert "## Next checks\n- Check the payments feed" in md


# --- the case file

def case_file(**changes: Any) -> CaseFile:
    data: dict[str, Any] = {
        "meta": CaseMeta(investigation_id="inv-1", issue_id="ISS-7", title="revenue doubled",
                         started_at=datetime(2026, 11, 20, 2, 5, tzinfo=UTC),
                         produced_by="offline policy", status="done"),
        "steps": [Step(index=1, tool="run_sql", arguments={"sql": "SELECT 1",
                                                           "password": "hunter2"},
                       result_digest="1 row | from fct_orders", status="ok", tokens_in=120,
                       tokens_out=30, cost_usd=0.0012, latency_ms=40)],
        "queries": [QueryRecord(id="q1", sql="SELECT count(*) AS dupes FROM fct_orders",
                                columns=["dupes"], sample=[[1000]], row_count=1)],
        "logs": [LogExcerpt(file="logs/daily/run_dbt/attempt=1.log", start_line=30,
                            end_line=60, text="ERROR db url postgresql://u:s3cretpw@db/x")],
        "code": [CodeCitation(path="models/marts/fct_orders.sql", sha="1a2b3c4d5e6f",
                              start_line=10, end_line=12, excerpt="join payments using (id)")],
        "memory": [MemoryHit(issue_id="ISS-2", title="fan-out in fct_orders", similarity=0.91)],
        "report": Report.model_validate(report_data()),
    }
    data.update(changes)
    return CaseFile(**data)


def test_case_file_json_is_redacted_and_reads_back():
    case = case_file()
    text = case.to_json(known=["my-configured-token-123"])
    assert "hunter2" not in text and "s3cretpw" not in text
    back = CaseFile.from_json(text)
    assert back.steps[0].arguments["password"] == "[REDACTED:password]"
    assert back.report == case.report
    assert case.steps[0].arguments["password"] == "hunter2"  # the live object is untouched


def test_case_file_markdown_is_redacted_and_complete():
    md = case_file().to_markdown(known=["join payments using"])
    assert "hunter2" not in md and "s3cretpw" not in md and "join payments using" not in md
    for part in ("# Case inv-1: revenue doubled", "1 steps · 150 tokens · $0.0012",
                 "## fct_orders revenue doubled", "### Root cause",
                 "| 1 | orchestrator | run_sql | ok | 1 row \\| from fct_orders |",
                 "## `sql:q1`", "```sql\nSELECT count(*) AS dupes", "| dupes |\n| --- |\n| 1000 |",
                 "## `logs/daily/run_dbt/attempt=1.log#L30-L60`",
                 "## `models/marts/fct_orders.sql@1a2b3c4d5e6f#L10-L12`",
                 "`memory:ISS-2` (0.91) fan-out in fct_orders"):
        assert part in md


def test_citations_are_checked_against_what_the_case_recorded():
    assert case_file().unresolved_citations() == []
    report = Report.model_validate(report_data(evidence=[{"text": "t", "citations": [
        {"kind": "sql", "reference": "sql:q9"},
        {"kind": "log", "reference": "logs/daily/run_dbt/attempt=1.log#L55-L70"},
        {"kind": "code", "reference": "models/marts/fct_orders.sql@9999999"},
        {"kind": "memory", "reference": "memory:ISS-2"},
    ]}]))
    assert case_file(report=report).unresolved_citations() == [
        "sql:q9", "logs/daily/run_dbt/attempt=1.log#L55-L70",
        "models/marts/fct_orders.sql@9999999"]


def test_a_query_record_keeps_a_sample_of_a_real_result(tmp_path: Path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS id, DATE '2026-11-20' AS d, "
                    "'\\xFF\\x00'::BLOB AS b FROM range(50)")
    con = connect_readonly(path)
    guarded = guard_sql("SELECT id, d, b FROM t ORDER BY id", row_limit=30)
    record = QueryRecord.from_result("q1", guarded.sql, run_guarded(con, guarded, timeout_s=30))
    con.close()
    assert len(record.sample) == SAMPLE_ROWS and record.row_count == 30 and record.truncated
    back = CaseFile.from_json(case_file(queries=[record]).to_json())
    assert back.queries[0].sample[1] == [1, "2026-11-20", "_wA="]  # a blob, base64


from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field

from agents.tools.base import Tool, ToolOutput


def row_count(table: Annotated[str, Field(description="schema.table")], limit: int = 10
              ) -> ToolOutput:
    """Count the rows of a table."""
    if table == "boom":
        raise RuntimeError("the warehouse went away")
    return ToolOutput(status="ok", summary=f"count(*) of {table}", data={"rows": limit})


def test_the_schema_comes_from_the_signature_and_docstring() -> None:
    spec = Tool.of(row_count).spec()
    assert spec.name == "row_count" and spec.description == "Count the rows of a table."
    props = spec.input_schema["properties"]
    assert props["table"]["description"] == "schema.table" and props["limit"]["default"] == 10
    assert spec.input_schema["required"] == ["table"]


def test_bad_arguments_and_crashes_come_back_as_errors_not_exceptions() -> None:
    tool = Tool.of(row_count)
    assert tool.call({"table": "a.b"}).data == {"rows": 10}
    wrong = tool.call({"table": "a.b", "limit": "many", "drop": True})
    assert wrong.status == "error" and "limit" in (wrong.error or "") and "drop" in wrong.error
    crashed = tool.call({"table": "boom"})
    assert crashed.status == "error" and crashed.error == "RuntimeError: the warehouse went away"


def test_long_output_is_cut_with_a_marker_the_model_can_read() -> None:
    out = ToolOutput(status="ok", summary="big", data="x" * 50_000)
    text = out.for_model(limit=1000)
    assert len(text) < 1200 and "[truncated:" in text and "narrow the query" in text


def test_a_tool_without_docstring_or_hints_is_refused() -> None:
    def nodoc(x: int) -> ToolOutput:
        return ToolOutput(status="ok", summary="")

    with pytest.raises(ValueError, match="docstring"):
        Tool.of(nodoc)

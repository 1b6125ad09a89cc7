"""What a tool is to the agents: a typed, read-only function the model may call.

A tool is a plain Python function with type hints and a docstring written for the model;
`Tool.of(fn)` derives its input schema from the signature (pydantic), so the schema and the
code cannot drift. Calling a tool never raises into the agent loop: bad arguments, a refusal
(the SQL guard), a timeout or a crash come back as a `ToolOutput` with status `error` and a
message the model can act on. Every output carries a one-line `summary` for humans (the
Slack thread shows it) and the citations a report may quote.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agents.models import ToolSpec
from agents.report import Citation

MAX_OUTPUT_CHARS = 12_000  # what one tool result may put into the model's context
TRUNCATION_MARKER = "…[truncated: {dropped} more characters; narrow the query to see them]"


class ToolOutput(BaseModel):
    """The result of one tool call, as the loop, the trace and the case file see it."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "error", "no_data"]
    summary: str = Field(description="One line a human reads: what was asked, what came back.")
    data: Any = Field(None, description="JSON-able result for the model.")
    citations: list[Citation] = Field(default_factory=list)
    error: str | None = None

    @classmethod
    def fail(cls, summary: str, error: str) -> ToolOutput:
        return cls(status="error", summary=summary, error=error)

    def for_model(self, limit: int = MAX_OUTPUT_CHARS) -> str:
        """The text the model gets, cut at `limit` with an explicit marker."""
        body = {"status": self.status, "summary": self.summary}
        if self.error:
            body["error"] = self.error
        if self.data is not None:
            body["data"] = self.data
        if self.citations:
            body["citations"] = [c.model_dump() for c in self.citations]
        text = json.dumps(body, default=str, ensure_ascii=False)
        if len(text) <= limit:
            return text
        return text[:limit] + TRUNCATION_MARKER.format(dropped=len(text) - limit)


class Tool:
    """A named function with a schema; see the module docstring."""

    def __init__(self, fn: Callable[..., ToolOutput], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.description = inspect.cleandoc(fn.__doc__ or "").strip()
        if not self.description:
            raise ValueError(f"tool {self.name} needs a docstring: it is what the model reads")
        self.arguments = _arguments_model(fn, self.name)

    @classmethod
    def of(cls, fn: Callable[..., ToolOutput]) -> Tool:
        return cls(fn)

    def spec(self) -> ToolSpec:
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(name=self.name, description=self.description, input_schema=schema)

    def call(self, arguments: dict[str, Any]) -> ToolOutput:
        """Validate and run; every failure is an error output, never an exception."""
        try:
            parsed = self.arguments.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(arguments)'}: {e['msg']}"
                                 for e in exc.errors())
            return ToolOutput.fail(f"{self.name}: invalid arguments", problems)
        try:
            return self.fn(**dict(parsed))
        except Exception as exc:  # a tool's bug must not end the investigation
            return ToolOutput.fail(f"{self.name} failed", f"{type(exc).__name__}: {exc}")


def _arguments_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name not in hints:
            raise ValueError(f"tool {name}: parameter {param.name} needs a type hint")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (hints[param.name], default)
    model = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    return model

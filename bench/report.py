"""What every benchmark returns and how it is printed: a table, then one JSON line."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

# The benchmarks `python -m bench all` and `make bench` run, in this order.
BENCHMARKS: tuple[str, ...] = ("demo", "loghub", "throughput", "nab", "similarity", "grouping",
                               "investigate", "slack")


class Result(BaseModel):
    """A benchmark's outcome: rows for the table and the headline figures for the JSON line."""

    name: str
    columns: list[str]
    rows: list[list[Any]]
    figures: dict[str, Any] = Field(description="Headline figures; printed last as JSON.")
    notes: list[str] = Field(default_factory=list, description="Lines printed under the table.")


def print_result(result: Result, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"bench {result.name}")
    for column in result.columns:
        table.add_column(column)
    for row in result.rows:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)
    for note in result.notes:
        console.print(note)
    # Plain print: the JSON line must not be wrapped or styled by rich.
    print(json.dumps({"bench": result.name, **result.figures}, default=str))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)

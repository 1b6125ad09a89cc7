"""Run tools: a DAG's runs, a run's task tries, a try's log (its tail, cited by line)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import Field

from agents.tools.base import Tool, ToolOutput
from agents.tools.common import cite, clip, iso, make_tool, utc
from agents.world import RunHistory, TaskTry

MAX_RUNS = 60
LINE_CHARS = 400


def run_tools(runs: RunHistory, *, max_log_lines: int = 200,
              known_secrets: Iterable[str] = ()) -> list[Tool]:
    """The tools over the orchestrator's run records."""

    def dag_runs(dag_id: str, since: Annotated[datetime | None, Field(
                     description="ISO time; default 7 days ago.")] = None) -> ToolOutput:
        """The runs of a DAG since a time, oldest first, with their state: when did it start
        failing, and was the last good run recent?"""
        start = utc(since) or datetime.now(UTC) - timedelta(days=7)
        found = runs.runs(dag_id, start)
        if not found:
            return ToolOutput(status="no_data", summary=f"no runs of {dag_id} since {iso(start)}")
        shown = found[-MAX_RUNS:]
        states = Counter(r.state for r in found)
        good = [r for r in found if r.state == "success"]
        last = found[-1]
        summary = (f"{len(found)} runs of {dag_id} since {start:%Y-%m-%d}: "
                   + ", ".join(f"{n} {s}" for s, n in states.most_common())
                   + f"; last {last.run_id} {last.state}"
                   + (f"; last good {good[-1].run_id}" if good and good[-1] is not last else ""))
        return ToolOutput(status="ok", summary=summary,
                          data={"runs": [r.model_dump(mode="json") for r in shown],
                                "truncated": len(found) > len(shown)})

    def task_tries(dag_id: str, run_id: str, task_id: str | None = None) -> ToolOutput:
        """Every try of every task of a run (or of one task): state, times, duration,
        operator, host. Failed tries first in the summary."""
        found = runs.tries(dag_id, run_id, task_id)
        if not found:
            return ToolOutput(status="no_data", summary=f"no tries in {dag_id} {run_id}"
                              + (f" for {task_id}" if task_id else ""))
        failed = sorted({t.task_id for t in found if t.state in ("failed", "up_for_retry")})
        blocked = sorted({t.task_id for t in found if t.state == "upstream_failed"})
        summary = (f"{dag_id} {run_id}: {len({t.task_id for t in found})} tasks, "
                   f"failed: {', '.join(failed) or 'none'}"
                   + (f"; blocked: {', '.join(blocked[:5])}"
                      + (f" and {len(blocked) - 5} more" if len(blocked) > 5 else "")
                      if blocked else ""))
        return ToolOutput(status="ok", summary=summary,
                          data={"tries": [_try(t) for t in found]})

    def task_log(dag_id: str, run_id: str, task_id: str,
                 try_number: Annotated[int, Field(ge=1)] = 1,
                 tail: Annotated[int, Field(ge=1, le=500, description="Last lines to return."
                                            )] = 60) -> ToolOutput:
        """The last lines of one task try's log, numbered and cited by line."""
        found = runs.log(dag_id, run_id, task_id, try_number)
        if found is None:
            return ToolOutput(status="no_data",
                              summary=f"no log for {task_id} try {try_number} in {run_id}")
        lines = found.text.splitlines()
        count = min(tail, max_log_lines)
        first = max(len(lines) - count + 1, 1)
        chosen = lines[first - 1:]
        if not chosen:
            return ToolOutput(status="no_data", summary=f"{found.file} is empty")
        ref = f"{found.file}#L{first}-L{len(lines)}"
        text = "\n".join(f"{i:>5}  {clip(x, LINE_CHARS)[0]}" for i, x in enumerate(chosen, first))
        errors = [x for x in chosen if " ERROR " in x or "Error" in x.split(":", 1)[0]]
        summary = (f"log of {task_id} try {try_number}: lines {first}-{len(lines)}"
                   + (f"; {clip(errors[-1], 160)[0]}" if errors else ""))
        return ToolOutput(status="ok", summary=summary,
                          data={"file": found.file, "start": first, "end": len(lines),
                                "text": text, "truncated": first > 1},
                          citations=[cite("log", ref, "\n".join(chosen[-8:]), known_secrets)])

    tools = [dag_runs, task_tries, task_log]
    return [make_tool(fn, known_secrets) for fn in tools]


def _try(t: TaskTry) -> dict[str, object]:
    data = t.model_dump(mode="json", exclude_none=True)
    if t.map_index < 0:
        data.pop("map_index", None)
    return data


__all__ = ["run_tools"]

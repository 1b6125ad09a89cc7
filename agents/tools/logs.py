"""Log tools: search by task, run, time, pattern and level; error templates; first occurrence;
reading a file's lines. Lines cite `file#Lstart-Lend`, the file as the log store labels it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from agents.tools.base import Tool, ToolOutput
from agents.tools.common import cite, clip, fail, iso, make_tool, utc
from agents.world import LogLine, LogStore

MAX_CITED = 5  # lines cited per answer; the rest are in the data
LINE_CHARS = 400  # of one line in an answer

Task = Annotated[str | None, Field(description="Task id, or dag_id.task_id.")]
Since = Annotated[datetime | None, Field(description="ISO time; lines at or after it.")]
Until = Annotated[datetime | None, Field(description="ISO time; lines at or before it.")]


def log_tools(logs: LogStore, *, max_lines: int = 50, max_read: int = 200,
              known_secrets: Iterable[str] = ()) -> list[Tool]:
    """The logs subagent's tools over `logs`."""

    def search_logs(task: Task = None, run_id: str | None = None, since: Since = None,
                    until: Until = None,
                    pattern: Annotated[str | None, Field(
                        max_length=200,
                        description="Regular expression searched in each line, any case.")
                    ] = None,
                    level: Annotated[str | None, Field(
                        description="ERROR, WARNING, INFO: that level or worse.")] = None,
                    ) -> ToolOutput:
        """Search log lines by task, run, time window, pattern and level, oldest first.

        Without a pattern, each record is listed by its first line; with one, every matching
        line is (lines inside a traceback included). Read around a hit with read_log."""
        if (problem := _bad_regex(pattern)) is not None:
            return fail("search_logs: bad pattern", problem)
        found = logs.search(task=task, run_id=run_id, since=utc(since), until=utc(until),
                            pattern=pattern, level=level, limit=max_lines + 1)
        what = " ".join(x for x in (level and level.upper(), "lines") if x)
        scope = _scope(task, run_id, pattern)
        return _lines_output(f"{what}{scope}", found, max_lines, known_secrets)

    def error_templates(task: Task = None, since: Since = None, until: Until = None
                        ) -> ToolOutput:
        """Group the ERROR records of a task (or of every log) by message template, most
        frequent first: what keeps failing, how often, when first and last, and where."""
        found = logs.search(task=task, since=utc(since), until=utc(until), level="ERROR",
                            limit=2_000)
        if not found:
            return ToolOutput(status="no_data", summary=f"no ERROR records{_scope(task)}")
        groups: dict[str, dict[str, Any]] = {}
        for line in found:
            key = line.template_id or line.text
            group = groups.setdefault(key, {"template": line.template or _message(line.text),
                                            "count": 0, "first": line, "last": line})
            group["count"] += 1
            group["last"] = line
        ranked = sorted(groups.items(), key=lambda kv: -kv[1]["count"])
        data = [{"template_id": key if key != g["first"].text else None,
                 "template": clip(g["template"], LINE_CHARS)[0], "count": g["count"],
                 "first_seen": iso(g["first"].timestamp), "last_seen": iso(g["last"].timestamp),
                 "first_at": _ref(g["first"]), "last_at": _ref(g["last"])}
                for key, g in ranked[:20]]
        top = ranked[0][1]
        summary = (f"{len(groups)} error templates{_scope(task)}; top ×{top['count']}: "
                   f"{clip(top['template'], 120)[0]}")
        return ToolOutput(status="ok", summary=summary,
                          data={"templates": data, "records": len(found),
                                "more_templates": max(len(ranked) - 20, 0)},
                          citations=[cite("log", _ref(g["first"]), g["first"].text,
                                          known_secrets) for _, g in ranked[:MAX_CITED]])

    def first_occurrence(pattern: Annotated[str, Field(max_length=200,
                                                       description="Regular expression.")],
                         since: Since = None, task: Task = None) -> ToolOutput:
        """When and where a pattern first appears in the logs (since a time, for a task):
        the first line matching it, and how many lines match in all."""
        if (problem := _bad_regex(pattern)) is not None:
            return fail("first_occurrence: bad pattern", problem)
        found = logs.search(task=task, since=utc(since), pattern=pattern, limit=1_000)
        if not found:
            return ToolOutput(status="no_data", summary=f"{pattern!r} never appears"
                              f"{_scope(task)}")
        first, last = found[0], found[-1]
        more = "+" if len(found) >= 1_000 else ""
        return ToolOutput(
            status="ok",
            summary=f"{pattern!r} first at {iso(first.timestamp) or 'unknown time'} in "
                    f"{_ref(first)} ({len(found)}{more} matching lines)",
            data={"first": _line(first), "last": _line(last), "matches": len(found),
                  "files": sorted({x.file for x in found})[:20]},
            citations=[cite("log", _ref(first), first.text, known_secrets)])

    def read_log(file: Annotated[str, Field(description="A file as search_logs names it.")],
                 start: Annotated[int, Field(ge=1)] = 1,
                 end: Annotated[int | None, Field(ge=1, description="Default start + 49.")
                                ] = None) -> ToolOutput:
        """Read lines start..end of a log file named by search_logs (at most 200 lines)."""
        end = end or start + 49
        if end < start:
            return fail("read_log: bad range", f"end {end} is before start {start}")
        cut = end - start + 1 > max_read
        end = min(end, start + max_read - 1)
        found = logs.read(file, start, end)
        if not found:
            return fail(f"read_log {file}", "no such log file (use a file search_logs "
                        "returned), or no lines in that range")
        last = found[-1].line_no
        ref = f"{file}#L{start}-L{last}"
        text = "\n".join(clip(x.text, LINE_CHARS)[0] for x in found)
        return ToolOutput(
            status="ok", summary=f"read {ref} ({len(found)} lines)"
                                 + (f"; cut at {max_read} lines" if cut else ""),
            data={"file": file, "start": start, "end": last, "text": text, "truncated": cut},
            citations=[cite("log", ref, text, known_secrets)])

    tools = [search_logs, error_templates, first_occurrence, read_log]
    return [make_tool(fn, known_secrets) for fn in tools]


def _lines_output(what: str, found: list[LogLine], limit: int,
                  known: Iterable[str]) -> ToolOutput:
    if not found:
        return ToolOutput(status="no_data", summary=f"no {what}")
    more = len(found) > limit
    found = found[:limit]
    files = sorted({x.file for x in found})
    summary = (f"{len(found)}{'+' if more else ''} {what} in {len(files)} file(s); first at "
               f"{_ref(found[0])}: {clip(_message(found[0].text), 120)[0]}")
    return ToolOutput(status="ok", summary=summary,
                      data={"lines": [_line(x) for x in found], "truncated": more},
                      citations=[cite("log", _ref(x), x.text, known) for x in found[:MAX_CITED]])


def _line(line: LogLine) -> dict[str, Any]:
    return {"at": _ref(line), "time": iso(line.timestamp), "level": line.level,
            "text": clip(line.text, LINE_CHARS)[0],
            **({"template_id": line.template_id} if line.template_id else {})}


def _ref(line: LogLine) -> str:
    return f"{line.file}#L{line.line_no}"


_AIRFLOW_HEAD = re.compile(r"^\[[^\]]*\]\s*\{[^}]*\}\s*[A-Z]+\s*-\s*")


def _message(text: str) -> str:
    """A line without its Airflow header, for one-liners."""
    return _AIRFLOW_HEAD.sub("", text)


def _scope(task: str | None, run_id: str | None = None, pattern: str | None = None) -> str:
    parts = [f" of {task}" if task else "", f" in run {run_id}" if run_id else "",
             f" matching {pattern!r}" if pattern else ""]
    return "".join(parts)


def _bad_regex(pattern: str | None) -> str | None:
    if pattern is None:
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}; escape special characters with \\"
    return None


__all__ = ["log_tools"]

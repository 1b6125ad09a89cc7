"""Re-resolving a case file's citations against the world as it is now (`sleuth case verify`).

Each citation of the report is checked where it points: a query is guarded and run again
and every row of the recorded sample must still be in its result; a log citation's lines are read again and
must still hold the excerpt; a code citation's file is opened at its commit and must hold
the excerpt; a map citation's node must still exist. A citation that no longer holds is a
finding for the human reading the case, not a crash.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from agents.casefile import CaseFile
from agents.report import Citation
from agents.tools.sql_guard import guard_sql
from bot.world import World

Verdict = Literal["holds", "changed", "broken", "unchecked"]
_MAX_RERUN_ROWS = 1_000


class CitationCheck(BaseModel):
    citation: Citation
    verdict: Verdict
    note: str


def verify_case(case: CaseFile, world: World) -> list[CitationCheck]:
    """Every citation of the case's report, checked; see the module docstring."""
    citations = case.report.citations() if case.report is not None else []
    return [check_citation(c, case, world) for c in citations]


def check_citation(citation: Citation, case: CaseFile, world: World) -> CitationCheck:
    try:
        verdict, note = _CHECKS.get(citation.kind, _unchecked)(citation, case, world)
    except Exception as exc:  # a citation that does not resolve is what the check reports
        verdict, note = "broken", f"{type(exc).__name__}: {exc}"
    return CitationCheck(citation=citation, verdict=verdict, note=note)


def _sql(citation: Citation, case: CaseFile, world: World) -> tuple[Verdict, str]:
    query = next((q for q in case.queries if q.reference == citation.reference), None)
    if query is None:
        return "broken", "the case file holds no query with this id"
    limit = min(max(query.row_count, len(query.sample), 1), _MAX_RERUN_ROWS)
    guarded = guard_sql(query.sql, dialect=world.warehouse.dialect, row_limit=limit)
    result = world.warehouse.run(guarded, 30)
    now = {_as_recorded(row) for row in result.rows}
    missing = [row for row in query.sample if _as_recorded(row) not in now]
    if not missing:
        return "holds", f"re-ran: {result.row_count} row(s); the {len(query.sample)} recorded " \
                        "are all still there"
    return "changed", f"re-ran: {len(missing)} of the {len(query.sample)} recorded row(s) " \
                      "are no longer in the result"


def _as_recorded(row: list[Any]) -> str:
    """A row as the case file's JSON holds it (dates as text, decimals as numbers), so a
    re-run compares with what was written down, not with Python types."""
    return json.dumps(json.loads(json.dumps(list(row), default=str)), sort_keys=True)


def _log(citation: Citation, case: CaseFile, world: World) -> tuple[Verdict, str]:
    file, _, lines = citation.reference.rpartition("#L")
    start, _, end = lines.partition("-L")
    found = world.logs.read(file, int(start), int(end or start))
    if not found:
        return "broken", f"{file} has no lines {start}–{end or start}"
    text = "\n".join(line.text for line in found)
    return _holds_excerpt(citation, text, "the lines")


def _code(citation: Citation, case: CaseFile, world: World) -> tuple[Verdict, str]:
    if world.code is None:
        return "broken", "no git repository is configured"
    path, _, rest = citation.reference.partition("@")
    sha = rest.split("#")[0]
    verdict, note = _holds_excerpt(citation, world.code.read(path, sha), "the file")
    if verdict != "holds":  # an excerpt of the commit's change: check its patch instead
        _, patch = world.code.show(sha, path)
        verdict, note = _holds_excerpt(citation, patch, "the commit's patch")
    return verdict, note


def _map(citation: Citation, case: CaseFile, world: World) -> tuple[Verdict, str]:
    node = citation.reference.removeprefix("map:")
    return ("holds", "the node exists") if world.map.node(node) is not None else \
        ("broken", f"no node {node} in the map")


def _unchecked(citation: Citation, case: CaseFile, world: World) -> tuple[Verdict, str]:
    return "unchecked", f"{citation.kind} citations are not re-resolved yet"


def _holds_excerpt(citation: Citation, text: str, where: str) -> tuple[Verdict, str]:
    wanted = [line.strip() for line in citation.excerpt.splitlines() if line.strip()]
    if all(line in text for line in wanted):
        return "holds", f"{where} still read as cited"
    return "changed", f"{where} no longer hold the excerpt"


_CHECKS = {"sql": _sql, "log": _log, "code": _code, "map": _map}

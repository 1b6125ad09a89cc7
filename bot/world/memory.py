"""Issue memory: closed issues (summary, root cause, fix, outcome, fingerprint) in the vector
index's `memory` table under the home, searched by similarity to an investigation's text.

The resolver is its one writer (`remember`, when an issue is resolved); investigations only
search it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agents.world import MemoryHit
from bot.vectors.index import VectorIndex

TABLE = "memory"


class IssueMemory:
    """The `Memory` over a `VectorIndex`; see the module docstring."""

    def __init__(self, index: VectorIndex) -> None:
        self.index = index

    def search(self, text: str, k: int) -> list[MemoryHit]:
        return [MemoryHit(issue_id=hit.id, title=str(hit.metadata.get("summary") or hit.text),
                          similarity=round(hit.similarity, 4),
                          root_cause=hit.metadata.get("root_cause"),
                          fix=_with_outcome(hit.metadata.get("fix"), hit.metadata.get("outcome")))
                for hit in self.index.search(text, k=k)]

    def remember(self, issue_id: str | int, *, summary: str, root_cause: str, fix: str,
                 fingerprint: str | None = None, outcome: str | None = None) -> None:
        """Store a resolved issue (again: the same id replaces its row)."""
        text = "\n".join(part for part in (summary, f"Root cause: {root_cause}", f"Fix: {fix}",
                                           f"Resolution: {outcome}" if outcome else "") if part)
        self.index.upsert(str(issue_id), text, {
            "summary": summary, "root_cause": root_cause, "fix": fix,
            "fingerprint": fingerprint, "outcome": outcome, "status": "closed",
            "updated_at": datetime.now(UTC).isoformat()})


def _with_outcome(fix: str | None, outcome: str | None) -> str | None:
    """The fix, and the human's resolution line when it says something the fix does not."""
    if outcome and outcome not in (fix or ""):
        return f"{fix}. Resolution: {outcome}" if fix else outcome
    return fix

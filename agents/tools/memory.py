"""The memory tool: similar closed issues, with their root cause and fix. Cites `memory:<id>`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import Field

from agents.tools.base import Tool, ToolOutput
from agents.tools.common import clip, cite, make_tool
from agents.world import Memory


def memory_tools(memory: Memory, *, min_similarity: float = 0.2,
                 known_secrets: Iterable[str] = ()) -> list[Tool]:
    """The orchestrator's look into issue memory."""

    def search_memory(text: Annotated[str, Field(min_length=1, description=(
                          "The symptom: error message, asset, what broke."))],
                      k: Annotated[int, Field(ge=1, le=10)] = 5) -> ToolOutput:
        """Closed issues most similar to a text: their summary, root cause and fix. A past
        cause is a hypothesis to check, not evidence."""
        hits = [h for h in memory.search(text, k) if h.similarity >= min_similarity]
        if not hits:
            return ToolOutput(status="no_data", summary="no similar closed issue in memory")
        best = hits[0]
        summary = (f"{len(hits)} similar closed issues; best {best.similarity:.2f}: "
                   f"{clip(best.title, 100)[0]}"
                   + (f" (root cause: {clip(best.root_cause, 80)[0]})" if best.root_cause
                      else ""))
        return ToolOutput(status="ok", summary=summary,
                          data={"hits": [h.model_dump() for h in hits]},
                          citations=[cite("memory", h.reference,
                                          f"{h.title}; root cause: {h.root_cause or '-'}; "
                                          f"fix: {h.fix or '-'}", known_secrets) for h in hits])

    return [make_tool(search_memory, known_secrets)]


__all__ = ["memory_tools"]

"""Map tools: a node's neighbourhood in the system map (upstream, downstream, owners, code,
logs) and a search over the map's nodes. Citations are `map:<node id>`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import Field

from agents.tools.base import Tool, ToolOutput
from agents.tools.common import cite, fail, make_tool
from agents.world import MapNode, SystemMapView

MAX_NEIGHBOURS = 60
MAX_HITS = 20


def map_tools(system_map: SystemMapView, *, known_secrets: Iterable[str] = ()) -> list[Tool]:
    """The tools over the system map (the orchestrator's first look, and any subagent's)."""

    def system_map_tool(node: Annotated[str, Field(description=(
                            "A node id (model.<project>.<name>, source.…, "
                            "task.<dag>.<task>), a model name or a schema.table."))],
                        depth: Annotated[int, Field(ge=1, le=6)] = 2) -> ToolOutput:
        """A node of the system map and its neighbourhood: what it reads (upstream) and what
        reads it (downstream) up to `depth` hops, with owners, Slack channels, the files that
        define each, where its logs are, and every dashboard (exposure) it feeds."""
        found = system_map.node(node)
        if found is None:
            return _unknown(node, system_map)
        up = _walk(system_map, found, "upstream", depth)
        down = _walk(system_map, found, "downstream", depth)
        consumers = sorted(n.id for n in _walk(system_map, found, "downstream", 50)
                           if n.kind == "exposure")
        owners = sorted({n.owner for n in [found, *up] if n.owner})
        summary = (f"map of {found.name} ({found.kind}): {len(up)} upstream, {len(down)} "
                   f"downstream within {depth} hops; owner {found.owner or 'unknown'}"
                   + (f", {found.channel}" if found.channel else "")
                   + (f"; feeds {', '.join(c.split('.')[-1] for c in consumers)}"
                      if consumers else "")
                   + (f"; code {found.code_paths[0]}" if found.code_paths else ""))
        return ToolOutput(
            status="ok", summary=summary,
            data={"node": found.model_dump(), "upstream": [_brief(n) for n in up],
                  "downstream": [_brief(n) for n in down], "exposures": consumers,
                  "owners_upstream": owners, "places": system_map.places(),
                  "truncated": len(up) + len(down) >= 2 * MAX_NEIGHBOURS},
            citations=[cite("map", f"map:{found.id}", _excerpt(found), known_secrets)])

    system_map_tool.__name__ = "system_map"

    def search_nodes(text: Annotated[str, Field(min_length=1, description=(
                         "Words to look for in node ids, names, tables, owners, channels "
                         "and code paths."))]) -> ToolOutput:
        """Find nodes of the system map by name, table, owner, channel or code path."""
        words = [w.lower() for w in text.split()]
        scored = []
        for n in system_map.nodes():
            hay = " ".join([n.id, n.name, n.relation or "", n.owner or "", n.channel or "",
                            *n.code_paths]).lower()
            score = sum(w in hay for w in words)
            if score:
                scored.append((-score, n.kind == "test", n.id, n))
        if not scored:
            return ToolOutput(status="no_data", summary=f"no map node matches {text!r}")
        hits = [n for *_, n in sorted(scored)[:MAX_HITS]]
        return ToolOutput(status="ok",
                          summary=f"{len(scored)} map nodes match {text!r}; best {hits[0].id}",
                          data={"nodes": [_brief(n) for n in hits],
                                "truncated": len(scored) > MAX_HITS})

    return [make_tool(fn, known_secrets) for fn in (system_map_tool, search_nodes)]


def _walk(view: SystemMapView, start: MapNode, direction: str, depth: int) -> list[MapNode]:
    """Nodes within `depth` hops, nearest first; tests left to the end (they are many)."""
    seen, frontier, out = {start.id}, [start], []
    for _ in range(depth):
        layer = []
        for node in frontier:
            for nid in getattr(node, direction):
                if nid not in seen and (found := view.node(nid)) is not None:
                    seen.add(nid)
                    layer.append(found)
        out += layer
        frontier = layer
        if len(out) >= 4 * MAX_NEIGHBOURS:
            break
    ranked = sorted(out, key=lambda n: n.kind == "test")
    return ranked[:MAX_NEIGHBOURS]


def _brief(n: MapNode) -> dict[str, Any]:
    data = {"id": n.id, "kind": n.kind, "name": n.name, "relation": n.relation,
            "owner": n.owner, "channel": n.channel, "code": n.code_paths[:2]}
    return {k: v for k, v in data.items() if v}


def _excerpt(n: MapNode) -> str:
    return (f"{n.id}: {n.kind}, table {n.relation or '-'}, owner {n.owner or '-'}, "
            f"upstream {', '.join(n.upstream[:5]) or '-'}")


def _unknown(node: str, view: SystemMapView) -> ToolOutput:
    stem = node.lower().split(".")[-1]
    near = [n.id for n in view.nodes() if stem and stem in n.id.lower() and n.kind != "test"]
    return fail(f"no map node {node}", f"no node {node!r}; "
                + (f"did you mean: {', '.join(near[:10])}" if near else
                   "use search_nodes to find one"))


__all__ = ["map_tools"]

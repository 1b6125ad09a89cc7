"""The dbt project as a graph: who feeds whom, what a test tests, who hears about a node.

Built from one manifest. Edges come from `parent_map`/`child_map` when the manifest has them
(v11+ always, v10 optionally), else from each node's `depends_on`.

Which channel owns a node (`owning_channel`), in order:
1. the node's own: `meta.slack_channel`, else its group's channel;
2. a test's or unit test's: the channel of the node it tests (a test belongs to its model);
   a singular test over several nodes, none of them "the" subject: their owners';
3. the nearest *downstream* owners: the teams whose models and dashboards read the node are
   the ones whose numbers go wrong, and the ones who can say whether it matters;
4. else the nearest *upstream* owners: an unowned leaf is most likely built by whoever owns
   its inputs;
5. else None, and intake falls back to its default channel.
"Nearest" is by number of edges, tests left out (their channel is their model's). Several
owners at the same distance: the most common channel among them, then the alphabetically
first, so the choice never changes between runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from bot.sources.dbt_manifest import Manifest, ManifestNode, read_manifest

TEST_TYPES = frozenset({"test", "unit_test"})


class Lineage:
    """Parents, children, owners and display names of the nodes of one manifest."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._parents = _parent_map(manifest)
        self._children = manifest.child_map if manifest.child_map is not None \
            else _inverted(self._parents)

    @classmethod
    def read(cls, path: Path) -> Lineage:
        """The lineage of a `manifest.json`; `ArtifactError` if it cannot be read."""
        return cls(read_manifest(path))

    def __contains__(self, unique_id: object) -> bool:
        return isinstance(unique_id, str) and (
            unique_id in self._parents or unique_id in self._children
            or self.manifest.node(unique_id) is not None)

    def node(self, unique_id: str) -> ManifestNode | None:
        return self.manifest.node(unique_id)

    def resource_type(self, unique_id: str) -> str:
        node = self.node(unique_id)
        return node.resource_type if node else unique_id.split(".", 1)[0]

    # ------------------------------------------------------------ graph

    def parents(self, unique_id: str) -> list[str]:
        return list(self._parents.get(unique_id, ()))

    def children(self, unique_id: str) -> list[str]:
        return list(self._children.get(unique_id, ()))

    def upstream(self, unique_id: str, *, types: Collection[str] | None = None) -> list[str]:
        """Every node it reads from, directly or not; nearest first."""
        return [n for n, _ in self._walk(unique_id, self._parents) if self._is(n, types)]

    def downstream(self, unique_id: str, *, types: Collection[str] | None = None) -> list[str]:
        """Every node that reads from it, directly or not; nearest first."""
        return [n for n, _ in self._walk(unique_id, self._children) if self._is(n, types)]

    def exposures(self, unique_id: str) -> list[str]:
        """The exposures (dashboards, apps…) that depend on the node, directly or not."""
        return self.downstream(unique_id, types={"exposure"})

    def tested_node(self, unique_id: str) -> str | None:
        """The node a test or unit test is about; None for other nodes or when it is unclear.

        A generic test names it (`attached_node`). A singular test reading one node is about
        that node; reading several, about the one downstream of all the others, if there is one
        (`assert_revenue_reconciles_to_orders` reads orders to check revenue).
        """
        node = self.node(unique_id)
        if node is None or node.resource_type not in TEST_TYPES:
            return None
        if node.attached_node:
            return node.attached_node
        parents = self.parents(unique_id) or node.depends_on.nodes
        parents = [p for p in parents if not p.startswith("macro.")]
        if len(parents) <= 1:
            return parents[0] if parents else None
        feeding = {u for p in parents for u in self.upstream(p)}
        heads = [p for p in parents if p not in feeding]
        return heads[0] if len(heads) == 1 else None

    # ------------------------------------------------------------ ownership

    def channel(self, unique_id: str) -> str | None:
        """The node's declared channel only: its meta, else its group's."""
        node = self.node(unique_id)
        return self.manifest.slack_channel(node) if node else None

    def owner(self, unique_id: str) -> str | None:
        """The declared owner of the node, or of the node a test tests."""
        node = self.node(unique_id)
        if node is None:
            return None
        own = self.manifest.owner(node)
        tested = self.tested_node(unique_id)
        return own or (self.owner(tested) if tested else None)

    def owning_channel(self, unique_id: str) -> str | None:
        """The Slack channel that hears about the node; the rule is in the module docstring."""
        if own := self.channel(unique_id):
            return own
        if self.resource_type(unique_id) in TEST_TYPES:
            tested = self.tested_node(unique_id)
            return (self.owning_channel(tested) if tested
                    else self._nearest_channel(unique_id, self._parents))
        for edges in (self._children, self._parents):
            if found := self._nearest_channel(unique_id, edges):
                return found
        return None

    def _nearest_channel(self, unique_id: str, edges: Mapping[str, list[str]]) -> str | None:
        by_depth: dict[int, Counter[str]] = {}
        for node_id, depth in self._walk(unique_id, edges):
            if self.resource_type(node_id) in TEST_TYPES:
                continue
            if channel := self.channel(node_id):
                by_depth.setdefault(depth, Counter())[channel] += 1
        if not by_depth:
            return None
        counts = by_depth[min(by_depth)]
        return min(counts, key=lambda c: (-counts[c], c))

    # ------------------------------------------------------------ names

    def display_name(self, unique_id: str) -> str:
        """What people call the node: `stg_orders`, `shop.orders`, `not_null(stg_orders.id)`."""
        node = self.node(unique_id)
        if node is None:
            return name_from_id(unique_id)
        namer = _NAMERS.get(node.resource_type)
        return namer(self, node) if namer else _versioned(node)

    def _test_name(self, node: ManifestNode) -> str:
        if node.test_metadata is None:
            return node.name  # a singular test: its file name says what it checks
        tested = self.tested_node(node.unique_id)
        subject = self.display_name(tested) if tested else node.name
        column = node.column_name or node.test_metadata.arguments.get("column_name")
        if isinstance(column, str) and column:
            subject = f"{subject}.{column}"
        return f"{node.test_metadata.full_name}({subject})"

    # ------------------------------------------------------------ helpers

    def _is(self, unique_id: str, types: Collection[str] | None) -> bool:
        return types is None or self.resource_type(unique_id) in types

    @staticmethod
    def _walk(start: str, edges: Mapping[str, list[str]]) -> list[tuple[str, int]]:
        """Breadth-first from `start`: (node, distance), nearest first, ties by id."""
        seen, frontier, out, depth = {start}, [start], [], 0
        while frontier:
            depth += 1
            layer = sorted({n for f in frontier for n in edges.get(f, ()) if n not in seen})
            seen.update(layer)
            out += [(n, depth) for n in layer]
            frontier = layer
        return out


def _versioned(node: ManifestNode) -> str:
    return f"{node.name}.v{node.version}" if node.version else node.name


def _source_name(_: Lineage, node: ManifestNode) -> str:
    return f"{node.source_name}.{node.name}" if node.source_name else node.name


def _exposure_name(_: Lineage, node: ManifestNode) -> str:
    return node.label or node.name


def _unit_test_name(_: Lineage, node: ManifestNode) -> str:
    return f"{node.name} (unit test of {node.model})" if node.model else node.name


_NAMERS: dict[str, Callable[[Lineage, ManifestNode], str]] = {
    "source": _source_name,
    "exposure": _exposure_name,
    "test": Lineage._test_name,
    "unit_test": _unit_test_name,
}


def name_from_id(unique_id: str) -> str:
    """A name from the id alone, for nodes the manifest does not have."""
    parts = unique_id.split(".")
    if parts[0] == "source" and len(parts) >= 4:
        return ".".join(parts[2:])
    if parts[0] == "test" and len(parts) >= 4:
        return parts[2]  # test.<package>.<name>.<hash>
    return ".".join(parts[2:]) if len(parts) >= 3 else unique_id


def _parent_map(manifest: Manifest) -> dict[str, list[str]]:
    if manifest.parent_map is not None:
        return manifest.parent_map
    return {n.unique_id: list(n.depends_on.nodes) for n in manifest.all_nodes()}


def _inverted(parents: Mapping[str, list[str]]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {node: [] for node in parents}
    for node, ups in parents.items():
        for up in ups:
            children.setdefault(up, []).append(node)
    return children

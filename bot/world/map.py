"""The system map as the investigation sees it: `SystemMap` nodes with owners, channels, code
and logs.

Code paths: a dbt node's `original_file_path` (its SQL, or the YAML a source or exposure is
declared in); a task's DAG file and, for a load task, its loader config (the demo's
dag-factory layout: `dags/<dag_id>.yml`, `loaders/<loader>.yml`). Logs: for a task, its
Airflow log files under each configured Airflow log source; for a dbt node, those of the
task that runs dbt.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePath

from agents.world import MapNode
from bot.config import LogSourceConfig
from bot.sources.dbt_lineage import TEST_TYPES
from bot.systemmap import SystemMap

log = logging.getLogger(__name__)

_KINDS = {"model", "source", "seed", "snapshot", "test", "exposure"}


class MapView:
    """The `SystemMapView` of a `SystemMap`; nodes are built once."""

    def __init__(self, system_map: SystemMap, *, repo: Path | None = None,
                 logs: list[LogSourceConfig] | None = None,
                 places: dict[str, str] | None = None) -> None:
        self.map = system_map
        self.repo = repo
        self.log_roots = [_glob_root(p) for s in logs or [] if s.format == "airflow"
                          for p in s.paths]
        self._places = places or {}
        self._task_code = _task_code(repo, {t.dag_id for t in system_map.tasks.values()})
        self._nodes = {n: self._build(n) for n in sorted(system_map.graph.nodes)}

    # ------------------------------------------------------------ SystemMapView

    def node(self, node_id: str) -> MapNode | None:
        if node_id in self._nodes:
            return self._nodes[node_id]
        wanted = node_id.strip().lower().removeprefix("map:")
        if wanted in self._nodes:
            return self._nodes[wanted]
        hits = [n for n in self._nodes.values()
                if wanted in (n.name.lower(), (n.relation or "").lower(), n.id.lower())
                or (n.relation and n.relation.lower().endswith("." + wanted))]
        if len(hits) > 1:  # a model and the tests named after it: the model
            hits = [n for n in hits if n.kind != "test"] or hits
        return hits[0] if len(hits) == 1 else None

    def nodes(self) -> list[MapNode]:
        return list(self._nodes.values())

    def places(self) -> dict[str, str]:
        return dict(self._places)

    def code_paths(self) -> list[str]:
        """Every file the map names, and the folders holding them (their YAML lives there)."""
        files = {p for n in self._nodes.values() for p in n.code_paths}
        folders = {str(PurePath(p).parent) + "/" for p in files if "/" in p}
        return sorted(files | folders)

    # ------------------------------------------------------------ building

    def _build(self, node_id: str) -> MapNode:
        graph = self.map.graph
        common = {"id": node_id, "upstream": sorted(graph.predecessors(node_id)),
                  "downstream": sorted(graph.successors(node_id)),
                  "channel": self.map.channel(node_id), "name": self.map.display_name(node_id)}
        lineage = self.map.lineage
        if lineage is not None and (node := lineage.node(node_id)) is not None:
            kind = "test" if node.resource_type in TEST_TYPES else (
                node.resource_type if node.resource_type in _KINDS else "other")
            relation = ".".join(node.relation.split(".")[-2:]) if node.relation else None
            return MapNode(kind=kind, relation=relation, owner=lineage.owner(node_id),
                           code_paths=[node.original_file_path] if node.original_file_path
                           else [], logs=self._dbt_logs(), **common)
        task = self.map.tasks.get(node_id)
        if task is not None:
            code, owner = self._task_code.get((task.dag_id, task.task_id), ([], None))
            return MapNode(kind="task", owner=owner, code_paths=code,
                           relation=task.writes[0] if len(task.writes) == 1 else None,
                           logs=self._task_logs(task.dag_id, task.task_id), **common)
        if node_id.startswith("table:"):
            return MapNode(kind="table", relation=node_id.removeprefix("table:"), **common)
        return MapNode(kind="other", **common)

    def _task_logs(self, dag_id: str, task_id: str) -> list[str]:
        return [f"{root}/dag_id={dag_id}/run_id=*/task_id={task_id}/attempt=*.log"
                for root in self.log_roots]

    def _dbt_logs(self) -> list[str]:
        runners = [t for t in self.map.tasks.values() if t.runs_dbt]
        return [p for t in runners for p in self._task_logs(t.dag_id, t.task_id)]


def _task_code(repo: Path | None, dag_ids: set[str]
               ) -> dict[tuple[str, str], tuple[list[str], str | None]]:
    """(dag, task) -> (code paths, owner) from dag-factory files `dags/<dag_id>.yml`."""
    found: dict[tuple[str, str], tuple[list[str], str | None]] = {}
    if repo is None:
        return found
    from bot.demo.dagspec import DagSpecError, dag_file, load_dag

    for dag_id in sorted(dag_ids):
        path = dag_file(repo, dag_id)
        if not path.is_file():
            continue
        try:
            dag = load_dag(path, dag_id)
        except (DagSpecError, ValueError) as exc:
            log.warning("map: DAG file %s unreadable: %s", path, exc)
            continue
        dag_path = path.relative_to(repo).as_posix()
        for spec in dag.tasks.values():
            paths = [dag_path]
            loader = repo / "loaders" / f"{spec.loader}.yml" if spec.loader else None
            if loader is not None and loader.is_file():
                paths.append(loader.relative_to(repo).as_posix())
            found[(dag_id, spec.task_id)] = (paths, dag.default_args.owner)
    return found


def _glob_root(pattern: str) -> str:
    """A log glob's fixed folder as the log store labels it: its last fixed part (`logs`)."""
    parts = PurePath(os.path.expanduser(pattern)).parts
    fixed = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return fixed[-1] if fixed else "."

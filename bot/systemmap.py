"""The system map: every asset Sleuth knows and how data flows between them.

Assets are dbt nodes (by unique id), DAG tasks (`task.<dag_id>.<task_id>`) and warehouse
tables no dbt node describes (`table:<schema>.<table>`). An edge `a -> b` means "b reads
what a produced, or runs after it": dbt's lineage; a DAG's task dependencies; a load task
to the dbt source whose table it writes; every dbt node to the task that runs dbt (a failed
model fails that task), every dbt source to the task that checks source freshness; an
exposure to the task that publishes it.

Intake uses the map to file a symptom under the open issue upstream of it; the channel that
owns an asset comes from dbt's meta (see `dbt_lineage.owning_channel`), for a task from the
nearest owned asset it loads or runs. Investigations read the same map.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import networkx as nx
from pydantic import BaseModel, Field

from bot.sources.dbt_files import ArtifactError
from bot.sources.dbt_lineage import Lineage, name_from_id

log = logging.getLogger(__name__)


class TaskInfo(BaseModel):
    """One DAG task as the map needs it."""

    dag_id: str
    task_id: str
    upstream: list[str] = Field(default_factory=list, description="Task ids it runs after.")
    writes: list[str] = Field(default_factory=list,
                              description="Tables it writes, `schema.table` (load tasks).")
    runs_dbt: bool = Field(False, description="It runs dbt: every dbt node fails through it.")
    checks_sources: bool = Field(False, description="It runs `dbt source freshness`: every "
                                                    "dbt source fails through it.")
    publishes: str | None = Field(None, description="The dbt exposure it publishes.")

    @property
    def asset(self) -> str:
        return task_asset(self.dag_id, self.task_id)


def task_asset(dag_id: str, task_id: str) -> str:
    return f"task.{dag_id}.{task_id}"


_BUILT_BY_DBT = ("model.", "seed.", "snapshot.")  # dbt nodes a dbt run (re)builds


class SystemMap:
    """Assets and data flow; see the module docstring."""

    def __init__(self, lineage: Lineage | None = None, tasks: Iterable[TaskInfo] = ()) -> None:
        self.lineage = lineage
        self.tasks = {t.asset: t for t in tasks}
        self.graph: nx.DiGraph = nx.DiGraph()
        self._add_dbt()
        self._add_tasks()

    # ------------------------------------------------------------ building

    def _add_dbt(self) -> None:
        if self.lineage is None:
            return
        for node in self.lineage.manifest.all_nodes():
            self.graph.add_node(node.unique_id)
            for parent in self.lineage.parents(node.unique_id):
                self.graph.add_edge(parent, node.unique_id)

    def _add_tasks(self) -> None:
        dbt_nodes = [n for n in self.graph.nodes if self.lineage and n in self.lineage]
        by_relation = self._relations()
        for task in self.tasks.values():
            self.graph.add_node(task.asset)
            for upstream in task.upstream:
                self.graph.add_edge(task_asset(task.dag_id, upstream), task.asset)
            for table in task.writes:
                self.graph.add_edge(task.asset, by_relation.get(table.lower(), f"table:{table}"))
            if task.runs_dbt:
                for node in dbt_nodes:
                    if not node.startswith("exposure."):
                        self.graph.add_edge(node, task.asset)
            if task.checks_sources:
                for node in dbt_nodes:
                    if node.startswith("source."):
                        self.graph.add_edge(node, task.asset)
            if task.publishes:
                self.graph.add_edge(task.publishes, task.asset)

    def _relations(self) -> dict[str, str]:
        """`schema.table` (lower case) -> the dbt node that describes that table."""
        found: dict[str, str] = {}
        if self.lineage is None:
            return found
        for node in self.lineage.manifest.all_nodes():
            if node.relation:
                found[".".join(node.relation.lower().split(".")[-2:])] = node.unique_id
        return found

    # ------------------------------------------------------------ questions

    def __contains__(self, asset: object) -> bool:
        return asset in self.graph

    def find(self, name: str) -> list[str]:
        """Assets a person may mean by `name`: its id, or its short name (`fct_orders`,
        `shop.customers`, a task's id), tests left out; sorted."""
        if name in self.graph:
            return [name]
        wanted = name.lower()
        return sorted(a for a in self.graph if not a.startswith(("test.", "unit_test."))
                      and wanted in (name_from_id(a).lower(), a.rsplit(".", 1)[-1].lower()))

    def upstream_of(self, a: str, b: str) -> bool:
        """Does data flow from `a` to `b` (a != b)?"""
        return a != b and a in self.graph and b in self.graph and nx.has_path(self.graph, a, b)

    def shared_upstream(self, a: str, b: str, max_hops: int = 2) -> str | None:
        """The nearest dbt model both `a` and `b` read from, within `max_hops` edges of each:
        two checks failing below one model in the same run most likely share its cause.
        Sources are left out: every table of one upstream system shares nothing but a name."""
        near_a, near_b = self._models_above(a, max_hops), self._models_above(b, max_hops)
        shared = set(near_a) & set(near_b)
        return min(shared, key=lambda n: (near_a[n] + near_b[n], n)) if shared else None

    def _models_above(self, asset: str, max_hops: int) -> dict[str, int]:
        if asset not in self.graph:
            return {}
        hops = nx.single_source_shortest_path_length(self.graph.reverse(copy=False), asset,
                                                     cutoff=max_hops)
        return {n: d for n, d in hops.items() if n.startswith("model.")}

    def builders(self, asset: str) -> list[str]:
        """The tasks whose run refreshes `asset`: the tasks that run dbt, for a model, seed
        or snapshot; a load task, for the table it writes. (The map's edges go from a dbt
        node to the task that runs dbt, not back: see the module docstring.)"""
        if asset not in self.graph or asset in self.tasks:
            return []
        if asset.startswith(_BUILT_BY_DBT):
            return sorted(t.asset for t in self.tasks.values() if t.runs_dbt)
        return sorted(t for t in self.graph.predecessors(asset) if t in self.tasks)

    def subject(self, asset: str) -> str:
        """What a problem at `asset` is about: a test's is the node it tests (a failed test
        says its model's data is wrong, and the model's consumers read that data)."""
        if self.lineage is not None and asset.startswith(("test.", "unit_test.")):
            return self.lineage.tested_node(asset) or asset
        return asset

    def downstream(self, asset: str) -> set[str]:
        return set(nx.descendants(self.graph, asset)) if asset in self.graph else set()

    def upstream(self, asset: str) -> set[str]:
        return set(nx.ancestors(self.graph, asset)) if asset in self.graph else set()

    def exposures(self, asset: str) -> list[str]:
        """The consumers (dbt exposures) the asset feeds, itself included if it is one."""
        reach = self.downstream(asset) | {asset}
        tasks = {t for t in reach if t in self.tasks}
        return sorted({*(n for n in reach if n.startswith("exposure.")),
                       *(self.tasks[t].publishes for t in tasks if self.tasks[t].publishes)})

    def channel(self, asset: str) -> str | None:
        """The Slack channel that owns the asset, or None (then intake's default)."""
        if self.lineage is None:
            return None
        if asset in self.lineage:
            return self.lineage.owning_channel(asset)
        task = self.tasks.get(asset)
        if task is not None and not task.runs_dbt:
            for node in sorted(self.graph.successors(asset)):
                if node in self.lineage and (found := self.lineage.owning_channel(node)):
                    return found
        return None

    def display_name(self, asset: str) -> str:
        if self.lineage is not None and asset in self.lineage:
            return self.lineage.display_name(asset)
        return asset.removeprefix("table:")


def demo_tasks(repo: Path, dag_id: str) -> list[TaskInfo]:
    """The demo platform's DAG as map tasks: dependencies from the DAG file, tables written
    from each loader's config."""
    from bot.demo.dagspec import dag_file, load_dag
    from bot.demo.loaders import load_config
    from bot.demo.paths import DBT_PROJECT_NAME

    dag = load_dag(dag_file(repo, dag_id), dag_id)
    tasks = []
    for spec in dag.tasks.values():
        writes = [load_config(repo, spec.loader).target] if spec.loader else []
        tasks.append(TaskInfo(
            dag_id=dag_id, task_id=spec.task_id, upstream=list(spec.dependencies),
            writes=writes, runs_dbt=spec.operator == "dbt_build",
            checks_sources=spec.operator == "dbt_source_freshness",
            publishes=f"exposure.{DBT_PROJECT_NAME}.{spec.exposure}" if spec.exposure else None,
        ))
    return tasks


def read_lineage(artifacts_dir: Path | None) -> Lineage | None:
    """The lineage of the newest manifest in `artifacts_dir`, or None (logged) if unreadable."""
    if artifacts_dir is None:
        return None
    path = artifacts_dir / "manifest.json"
    try:
        return Lineage.read(path)
    except ArtifactError as exc:
        log.warning("no lineage from %s: %s", path, exc)
        return None

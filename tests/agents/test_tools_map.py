"""Map and memory tools over a real SystemMap (a small dbt manifest and a DAG file) and a real
LanceDB memory table."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.tools.base import Tool
from agents.tools.map import map_tools
from agents.tools.memory import memory_tools
from bot.config import EmbeddingsConfig, LogSourceConfig
from bot.sources.dbt_lineage import Lineage
from bot.systemmap import SystemMap, TaskInfo
from bot.vectors.embedders import make_embedder
from bot.vectors.index import VectorIndex
from bot.world.map import MapView
from bot.world.memory import IssueMemory

MANIFEST = Path(__file__).parents[1] / "sources" / "fixtures" / "target_v6" / "manifest.json"
DAG = """daily:
  default_args: {owner: data-platform}
  tasks:
    load_orders: {operator: load, loader: shop_orders}
    dbt_build: {operator: dbt_build, bash_command: dbt build, dependencies: [load_orders]}
"""


@pytest.fixture
def view(tmp_path: Path) -> MapView:
    repo = tmp_path / "repo"
    (repo / "dags").mkdir(parents=True)
    (repo / "loaders").mkdir()
    (repo / "dags" / "daily.yml").write_text(DAG)
    (repo / "loaders" / "shop_orders.yml").write_text("table: orders\n")
    tasks = [TaskInfo(dag_id="daily", task_id="load_orders", writes=["raw.orders"]),
             TaskInfo(dag_id="daily", task_id="dbt_build", upstream=["load_orders"],
                      runs_dbt=True)]
    logs = [LogSourceConfig(name="airflow", paths=[f"{tmp_path}/airflow/logs/**/*.log"])]
    return MapView(SystemMap(Lineage.read(MANIFEST), tasks), repo=repo, logs=logs,
                   places={"code": str(repo)})


def tools(view: MapView) -> dict[str, Tool]:
    return {t.name: t for t in map_tools(view)}


def test_a_models_neighbourhood_owners_code_and_consumers(view) -> None:
    out = tools(view)["system_map"].call({"node": "stg_orders", "depth": 2})
    node = out.data["node"]
    assert node["id"] == "model.shop.stg_orders" and node["relation"] == "staging.stg_orders"
    assert node["owner"] == "Commerce Analytics" and node["channel"] == "#data-commerce"
    assert node["code_paths"] == ["models/staging/stg_orders.sql"]
    assert node["logs"] == ["logs/dag_id=daily/run_id=*/task_id=dbt_build/attempt=*.log"]
    up = {n["id"] for n in out.data["upstream"]}
    assert up == {"source.shop.raw.orders", "task.daily.load_orders"}
    down = {n["id"] for n in out.data["downstream"]}
    assert {"model.shop.orders_enriched", "task.daily.dbt_build"} <= down
    assert out.data["exposures"] == ["exposure.shop.revenue_dashboard"]
    assert out.citations[0].reference == "map:model.shop.stg_orders"
    assert "feeds revenue_dashboard" in out.summary


def test_a_task_names_its_dag_file_and_loader(view) -> None:
    node = view.node("task.daily.load_orders")
    assert node is not None and node.owner == "data-platform"
    assert node.code_paths == ["dags/daily.yml", "loaders/shop_orders.yml"]
    assert "source.shop.raw.orders" in node.downstream
    assert {"dags/", "loaders/", "models/staging/stg_orders.sql"} <= set(view.code_paths())


def test_unknown_nodes_get_suggestions_and_search_finds_by_owner(view) -> None:
    t = tools(view)
    out = t["system_map"].call({"node": "model.shop.orders"})
    assert out.status == "error" and "stg_orders" in (out.error or "")
    found = t["search_nodes"].call({"text": "finance revenue"})
    assert found.data["nodes"][0]["id"] in ("model.shop.fct_revenue",
                                            "exposure.shop.revenue_dashboard")


def test_memory_remembers_resolved_issues_and_finds_them(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path / "vectors", "memory", make_embedder(EmbeddingsConfig()))
    memory = IssueMemory(index)
    memory.remember(41, summary="orders loader failed: customer_id renamed upstream",
                    root_cause="shop export renamed customer_id to customer_ref",
                    fix="map customer_ref in loaders/shop_orders.yml", fingerprint="fp1")
    memory.remember(42, summary="marketing events doubled", root_cause="file delivered twice",
                    fix="dedupe on event_id")
    t = {x.name: x for x in memory_tools(memory)}["search_memory"]
    out = t.call({"text": "Binder Error: column customer_id not found in orders loader"})
    best = out.data["hits"][0]
    assert best["issue_id"] == "41" and best["fix"].startswith("map customer_ref")
    assert out.citations[0].reference == "memory:41" and "customer_ref" in out.summary
    empty = IssueMemory(VectorIndex(tmp_path / "v2", "memory",
                                    make_embedder(EmbeddingsConfig())))
    assert {x.name: x for x in memory_tools(empty)}["search_memory"].call(
        {"text": "anything"}).status == "no_data"

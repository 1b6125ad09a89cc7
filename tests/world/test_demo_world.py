"""The investigation's tools over the real demo platform: each scenario's evidence is found
where its ground truth says it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.report import Citation
from agents.tools.base import Tool, ToolOutput
from bot.config import Settings
from bot.demo.edits import EDITS
from bot.demo.paths import PlatformPaths
from bot.demo.platform import ScenarioOutcome, run_scenario
from bot.demo.scenarios import get_scenario
from bot.world import World, build_world

from tests.conftest import DEMO_DAYS, DEMO_SEED

pytestmark = pytest.mark.slow
ENRICHED = "models/intermediate/commerce/int_orders_enriched.sql"


def world_after(name: str, demo_platform: tuple[PlatformPaths, Path]
                ) -> tuple[World, ScenarioOutcome]:
    paths, cache = demo_platform
    outcome = run_scenario(get_scenario(name), paths=paths, days=DEMO_DAYS, seed=DEMO_SEED,
                           cache=cache)
    return build_world(Settings(home=paths.root.parents[1])), outcome


def tools_of(world: World) -> dict[str, Tool]:
    subagents, orchestrator = world.toolsets()
    return {t.name: t for tools in [*subagents.values(), orchestrator] for t in tools}


def call(tools: dict[str, Tool], name: str, **arguments: object) -> ToolOutput:
    out = tools[name].call(arguments)
    assert out.status == "ok", (name, out.summary, out.error)
    for c in out.citations:  # every citation holds as the report will validate it
        Citation.model_validate(c.model_dump())
    return out


def test_data_tools_find_the_null_customer_ids(demo_platform) -> None:
    world, _ = world_after("null_customer_ids", demo_platform)
    tools = tools_of(world)
    out = call(tools, "null_rates", table="staging.stg_shop__orders", columns=["customer_id"])
    latest = out.data["rows"][0]
    assert latest[2] > 0.25 and all(r[2] == 0 for r in out.data["rows"][1:])
    assert out.summary.startswith("null rates on staging.stg_shop__orders in _partition_date=")
    assert "customer_id 3" in out.summary and out.citations[0].kind == "sql"
    diff = call(tools, "compare_values", table="staging.stg_shop__orders", column="customer_id")
    assert "null_rate 0.0% -> 3" in diff.summary


def test_code_tools_find_the_commit_that_fanned_out_the_join(demo_platform) -> None:
    world, outcome = world_after("fanout_commit", demo_platform)
    tools = tools_of(world)
    (cause,) = outcome.truth.root_causes
    node = call(tools, "system_map", node="int_orders_enriched").data["node"]
    assert node["code_paths"] == [ENRICHED]
    log = call(tools, "git_log", paths=node["code_paths"])
    newest = log.data["commits"][0]
    assert cause.culprit.sha and cause.culprit.sha.startswith(newest["sha"])
    assert newest["summary"] == EDITS["fanout"].message.splitlines()[0]
    show = call(tools, "git_show", sha=newest["sha"])
    assert "-    where payment_status = 'succeeded'" in show.data["patch"]
    assert show.citations[0].reference.startswith(f"{ENRICHED}@{newest['sha']}#L")


def test_log_tools_find_the_binder_exception_with_file_and_line(demo_platform) -> None:
    world, outcome = world_after("schema_change", demo_platform)
    tools = tools_of(world)
    out = call(tools, "search_logs", task="load_shop_orders", run_id=outcome.fault.run_id,
               pattern="BinderException")
    first = out.data["lines"][0]
    assert "customer_id" in first["text"]
    file, line = first["at"].split("#L")
    assert file.startswith("logs/dag_id=daily_warehouse/") and "task_id=load_shop_orders" in file
    read = call(tools, "read_log", file=file, start=int(line), end=int(line))
    assert "BinderException" in read.data["text"]
    templates = call(tools, "error_templates", task="load_shop_orders")
    assert "BinderException" in templates.data["templates"][0]["template"]
    tries = call(tools, "task_tries", dag_id="daily_warehouse", run_id=outcome.fault.run_id)
    assert "failed: load_shop_orders" in tries.summary


def test_the_map_gives_a_models_lineage_and_owners(demo_platform) -> None:
    world, _ = world_after("null_customer_ids", demo_platform)
    out = call(tools_of(world), "system_map", node="model.sleuth_demo.stg_shop__orders")
    node = out.data["node"]
    assert node["owner"] == "commerce-analytics" and node["channel"] == "#data-commerce"
    assert node["relation"] == "staging.stg_shop__orders"
    assert "source.sleuth_demo.shop.orders" in node["upstream"]
    assert "model.sleuth_demo.int_orders_enriched" in node["downstream"]
    assert out.data["exposures"] == ["exposure.sleuth_demo.revenue_dashboard"]
    up = {n["id"]: n for n in out.data["upstream"]}
    assert up["task.daily_warehouse.load_shop_orders"]["code"] == [
        "dags/daily_warehouse.yml", "loaders/shop_orders.yml"]

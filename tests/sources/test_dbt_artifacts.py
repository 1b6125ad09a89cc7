"""The dbt artifacts source: typed readers, lineage, signals, cursor, prerequisite check.

Fast tests read small hand-made artifacts (`fixtures/`, shaped after dbt's published schemas:
run-results v4/v5/v6, sources v3, manifest v10/v12). The slow ones read what dbt itself wrote
in the demo platform for three fault scenarios, built once per session.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.demo.paths import PlatformPaths
from tests.conftest import DEMO_DAYS, DEMO_SEED
from bot.errors import SleuthError
from bot.intake.signals import RawSignal
from bot.sources.dbt_artifacts import DbtArtifactsSource, DbtCursor, headline
from bot.sources.dbt_files import ArtifactError, ArtifactSchemaWarning, json_path_at
from bot.sources.dbt_lineage import Lineage
from bot.sources.dbt_manifest import Manifest, read_manifest
from bot.sources.dbt_results import read_run_results, read_sources

FIXTURES = Path(__file__).parent / "fixtures"
TARGET = FIXTURES / "target_v6"

STG_ORDERS = "model.shop.stg_orders"
STG_PAYMENTS = "model.shop.stg_payments"
ENRICHED = "model.shop.orders_enriched"
FCT_REVENUE = "model.shop.fct_revenue"
DASHBOARD = "exposure.shop.revenue_dashboard"
NOT_NULL = "test.shop.not_null_stg_orders_customer_id.5f2a9c1e3b"
ACCEPTED = "test.shop.accepted_values_stg_payments_method__card__paypal.0c9e6f2d71"
SINGULAR = "test.shop.assert_revenue_matches_orders"
UNIT = "unit_test.shop.fct_revenue.test_refunds_are_subtracted"
RAW_ORDERS = "source.shop.raw.orders"
RAW_PAYMENTS = "source.shop.raw.payments"
RAW_CUSTOMERS = "source.shop.raw.customers"  # in sources.json, not in the manifest


def by_kind(signals: list[RawSignal]) -> dict[tuple[str, str], RawSignal]:
    return {(s.kind, s.asset): s for s in signals}


def copy_target(tmp_path: Path, name: str = "target") -> Path:
    return Path(shutil.copytree(TARGET, tmp_path / name))


def edited(tmp_path: Path, source: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of `source` (JSON) changed by `edit(data)`, under the same file name."""
    data = json.loads(source.read_text())
    edit(data)
    path = tmp_path / "edited" / source.name
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data))
    return path


# --------------------------------------------------------------------------- readers


def test_run_results_v4_reads_without_the_compiled_fields() -> None:
    results = read_run_results(FIXTURES / "run_results_v4.json")
    assert results.metadata.dbt_version == "1.5.4"
    assert results.metadata.invocation_id == "0f6c3a52-1d8e-4b7f-a1c9-5e2d7b3a9c40"
    assert results.metadata.invocation_started_at is None  # v6 only
    assert results.command == "build"
    error, fail, skipped, success = results.results
    assert (error.status, fail.status, skipped.status, success.status) == (
        "error", "fail", "skipped", "success")
    assert error.compiled_code is None and error.relation_name is None and error.compiled is None
    assert fail.failures == 7
    assert skipped.message is None and skipped.failures is None  # left out in v4
    assert error.finished_at == datetime(2023, 6, 14, 4, 12, 41, 4718, tzinfo=UTC)


def test_run_results_v5_reads_compiled_code_and_relation() -> None:
    results = read_run_results(FIXTURES / "run_results_v5.json")
    warn, error, success = results.results
    assert warn.status == "warn" and warn.failures == 3
    assert warn.compiled is True and "not in ('card','paypal')" in (warn.compiled_code or "")
    assert error.relation_name == '"analytics"."marts"."fct_revenue"'
    assert error.compiled_code is None
    # Never executed: the end of compilation is when it finished.
    assert error.finished_at == datetime(2024, 2, 2, 3, 7, 14, 204411, tzinfo=UTC)
    assert success.relation_name == '"analytics"."staging"."stg_payments"'


def test_run_results_v6_reads_invocation_start_and_normalises_blank_strings(
        tmp_path: Path) -> None:
    results = read_run_results(TARGET / "run_results.json")
    assert results.metadata.invocation_started_at == datetime(2025, 3, 10, 6, 2, 3, 1245,
                                                               tzinfo=UTC)
    assert [r.status for r in results.results].count("skipped") == 5

    def blank(data: dict) -> None:  # what dbt's own upgrade of an old file writes
        data["results"][0].update(compiled_code="", relation_name="")

    first = read_run_results(edited(tmp_path, TARGET / "run_results.json", blank)).results[0]
    assert first.compiled_code is None and first.relation_name is None


def test_sources_json_reads_freshness_and_runtime_errors() -> None:
    fresh, stale, broken = read_sources(TARGET / "sources.json").results
    assert fresh.status == "pass"
    assert stale.status == "warn" and stale.max_loaded_at_time_ago_in_s == pytest.approx(47818.7,
                                                                                         abs=0.1)
    assert stale.criteria is not None and str(stale.criteria.warn_after) == "12 hours"
    assert stale.max_loaded_at == datetime(2025, 3, 9, 16, 45, tzinfo=UTC)
    assert broken.status == "runtime error" and broken.max_loaded_at is None
    assert "_loaded_at" in (broken.error or "")


@pytest.mark.parametrize("path", [TARGET / "manifest.json", FIXTURES / "manifest_v10.json"])
def test_manifest_nodes_carry_what_sleuth_reads(path: Path) -> None:
    manifest = read_manifest(path)
    payments = manifest.node(STG_PAYMENTS)
    assert payments is not None and payments.resource_type == "model"
    assert payments.original_file_path == "models/staging/stg_payments.sql"
    assert payments.relation == "analytics.staging.stg_payments"
    assert manifest.owner(payments) == "finance-analytics"
    assert manifest.slack_channel(payments) == "#data-finance"  # its own meta
    assert payments.depends_on.nodes == [RAW_PAYMENTS]
    not_null = manifest.node(NOT_NULL)
    assert not_null is not None and not_null.attached_node == STG_ORDERS
    assert not_null.test_metadata is not None and not_null.test_metadata.name == "not_null"
    assert not_null.column_name == "customer_id"
    orders = manifest.node(STG_ORDERS)
    assert orders is not None and orders.group_name == "commerce"
    assert manifest.owner(orders) == "Commerce Analytics"  # from its group


def test_group_channel_comes_from_group_config_meta_from_v12() -> None:
    v12 = read_manifest(TARGET / "manifest.json")
    v10 = read_manifest(FIXTURES / "manifest_v10.json")
    assert v12.slack_channel(v12.nodes[STG_ORDERS]) == "#data-commerce"
    assert v10.slack_channel(v10.nodes[STG_ORDERS]) is None  # v10 groups have no config
    assert v12.unit_tests[UNIT].model == "fct_revenue" and v10.unit_tests == {}


# --------------------------------------------------------------------------- errors


def test_a_status_out_of_the_schema_names_file_field_and_choices(tmp_path: Path) -> None:
    def explode(data: dict) -> None:
        data["results"][3]["status"] = "exploded"

    with pytest.raises(ArtifactError) as caught:
        read_run_results(edited(tmp_path, TARGET / "run_results.json", explode))
    assert str(caught.value) == (
        "run_results.json: results.3.status: found 'exploded', expected one of success, error, "
        "fail, warn, skipped, pass, partial success, no-op, runtime error")
    assert isinstance(caught.value, SleuthError)


def test_a_wrong_type_names_file_and_field(tmp_path: Path) -> None:
    def many(data: dict) -> None:
        data["results"][2]["failures"] = "many"

    with pytest.raises(ArtifactError) as caught:
        read_run_results(edited(tmp_path, TARGET / "run_results.json", many))
    assert str(caught.value).startswith(
        "run_results.json: results.2.failures: found 'many', expected a valid integer")


def test_a_manifest_problem_brackets_the_unique_id(tmp_path: Path) -> None:
    def nameless(data: dict) -> None:
        del data["nodes"][STG_ORDERS]["name"]
        data["nodes"][FCT_REVENUE]["depends_on"] = "model.shop.orders_enriched"

    with pytest.raises(ArtifactError) as caught:
        read_manifest(edited(tmp_path, TARGET / "manifest.json", nameless))
    assert str(caught.value) == ("manifest.json: nodes['model.shop.stg_orders'].name: "
                                 "missing (required) (and 1 more problem)")


def test_a_truncated_file_names_the_field_it_broke_off_in(tmp_path: Path) -> None:
    text = (TARGET / "run_results.json").read_text()
    cut = text.index("Got 42 results") + 5  # inside results[2].message
    path = tmp_path / "run_results.json"
    path.write_text(text[:cut])
    with pytest.raises(ArtifactError) as caught:
        read_run_results(path)
    assert str(caught.value) == ("run_results.json: results.2.message: truncated JSON: the file "
                                 "ends early (is dbt still writing it?)")
    assert caught.value.path == path


def test_a_missing_file_and_a_file_of_another_kind_are_named(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"^run_results.json: file not found: .*run_results"):
        read_run_results(tmp_path / "run_results.json")
    manifest_as_results = tmp_path / "run_results.json"
    shutil.copy(TARGET / "manifest.json", manifest_as_results)
    with pytest.raises(ArtifactError, match=r"^run_results.json: metadata.dbt_schema_version: "
                                            r"found '.*/manifest/v12.json', expected a dbt "
                                            r"run-results schema$"):
        read_run_results(manifest_as_results)


@pytest.mark.parametrize(("content", "message"), [
    ("", "sources.json: empty file (is dbt still writing it?)"),
    ("[1, 2]", "sources.json: found a list, expected a JSON object"),
    ('{"metadata": {}, "results": []}',
     "sources.json: metadata.dbt_schema_version: missing (is this a dbt sources artifact?)"),
    ('{"metadata": {"dbt_schema_version": "x"}, "results": [}',
     "sources.json: results.0: invalid JSON at line 1 column 55: Expecting value"),
])
def test_malformed_files_give_one_clear_message(tmp_path: Path, content: str,
                                                message: str) -> None:
    path = tmp_path / "sources.json"
    path.write_text(content)
    with pytest.raises(ArtifactError) as caught:
        read_sources(path)
    assert str(caught.value) == message


def test_json_path_at_follows_objects_arrays_and_strings() -> None:
    text = '{"a": [1, {"b": "x,y:[z", "c": {"d": [0, 0, "unfinished'
    assert json_path_at(text, len(text)) == "a.1.c.d.2"
    assert json_path_at('{"nodes": {"model.p.x": {"name": ', 33) == "nodes['model.p.x'].name"


def test_an_unknown_schema_version_is_read_as_far_as_it_fits_with_one_warning(
        tmp_path: Path) -> None:
    def future(data: dict) -> None:
        data["metadata"]["dbt_schema_version"] = "https://schemas.getdbt.com/dbt/run-results/v7.json"
        data["results"][0]["status"] = "deferred"  # a status Sleuth does not know
        data["results"][1]["new_field"] = {"nested": True}  # extra fields are fine anyway

    path = edited(tmp_path, TARGET / "run_results.json", future)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            results = read_run_results(path)
    assert [r.unique_id for r in results.results][:1] == [STG_PAYMENTS]  # the misfit left out
    assert len(results.results) == 8
    messages = [str(w.message) for w in caught if w.category is ArtifactSchemaWarning]
    assert len([m for m in messages if "v7 is not one Sleuth knows" in m]) == 1
    assert len([m for m in messages if "left out 1 entries" in m]) == 1


def test_a_known_version_that_does_not_fit_is_an_error_not_a_warning(tmp_path: Path) -> None:
    def deferred(data: dict) -> None:
        data["results"][0]["status"] = "deferred"

    with pytest.raises(ArtifactError, match=r"results.0.status: found 'deferred'"):
        read_run_results(edited(tmp_path, TARGET / "run_results.json", deferred))


# --------------------------------------------------------------------------- lineage


@pytest.fixture(scope="module")
def lineage() -> Lineage:
    return Lineage.read(TARGET / "manifest.json")


def test_lineage_parents_children_and_transitive_neighbours(lineage: Lineage) -> None:
    assert lineage.parents(ENRICHED) == [STG_ORDERS, STG_PAYMENTS]
    assert set(lineage.children(STG_ORDERS)) == {ENRICHED, NOT_NULL,
                                                 "test.shop.unique_stg_orders_order_id.8d41b0e7aa"}
    assert lineage.upstream(FCT_REVENUE) == [ENRICHED, STG_ORDERS, STG_PAYMENTS, RAW_ORDERS,
                                             RAW_PAYMENTS]
    assert lineage.downstream(RAW_ORDERS, types={"model", "exposure"}) == [
        STG_ORDERS, ENRICHED, FCT_REVENUE, DASHBOARD]
    assert lineage.exposures(RAW_PAYMENTS) == [DASHBOARD]
    assert lineage.exposures(DASHBOARD) == []


def test_lineage_without_parent_maps_is_derived_from_depends_on(lineage: Lineage) -> None:
    v10 = Lineage.read(FIXTURES / "manifest_v10.json")
    assert v10.manifest.parent_map is None
    for node in (RAW_ORDERS, STG_ORDERS, ENRICHED, FCT_REVENUE, DASHBOARD):
        assert v10.upstream(node) == lineage.upstream(node)
        assert v10.downstream(node) == lineage.downstream(node)


def test_what_a_test_is_about(lineage: Lineage) -> None:
    assert lineage.tested_node(NOT_NULL) == STG_ORDERS  # attached_node
    assert lineage.tested_node(SINGULAR) == FCT_REVENUE  # downstream of its other parent
    assert lineage.tested_node(UNIT) == FCT_REVENUE
    assert lineage.tested_node(STG_ORDERS) is None


def test_display_names(lineage: Lineage) -> None:
    assert lineage.display_name(STG_ORDERS) == "stg_orders"
    assert lineage.display_name(RAW_ORDERS) == "raw.orders"
    assert lineage.display_name(DASHBOARD) == "Revenue dashboard"
    assert lineage.display_name(NOT_NULL) == "not_null(stg_orders.customer_id)"
    assert lineage.display_name(SINGULAR) == "assert_revenue_matches_orders"
    assert lineage.display_name(UNIT) == "test_refunds_are_subtracted (unit test of fct_revenue)"
    assert lineage.display_name("test.other.unique_x_id.abc123") == "unique_x_id"
    assert lineage.display_name("source.other.crm.accounts") == "crm.accounts"


def test_owning_channel_own_then_tested_then_downstream(lineage: Lineage) -> None:
    assert lineage.owning_channel(STG_PAYMENTS) == "#data-finance"  # meta
    assert lineage.owning_channel(STG_ORDERS) == "#data-commerce"  # group config.meta
    assert lineage.owning_channel(DASHBOARD) == "#exec-dashboards"
    assert lineage.owning_channel(NOT_NULL) == "#data-commerce"  # its model's
    assert lineage.owning_channel(SINGULAR) == "#data-finance"  # fct_revenue's
    assert lineage.owning_channel(ENRICHED) == "#data-finance"  # unowned: nearest consumer
    assert lineage.owning_channel(RAW_ORDERS) == "#data-commerce"  # unowned source: its reader
    assert lineage.owning_channel(RAW_PAYMENTS) == "#data-payments"


def _graph(edges: dict[str, list[str]], channels: dict[str, str]) -> Lineage:
    """A manifest of models `model.p.<name>`; `edges` maps a model to its parents."""
    nodes = {f"model.p.{n}": {"unique_id": f"model.p.{n}", "resource_type": "model", "name": n,
                              "meta": {"slack_channel": channels[n]} if n in channels else {},
                              "depends_on": {"nodes": [f"model.p.{p}" for p in parents]}}
             for n, parents in edges.items()}
    return Lineage(Manifest.model_validate({
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
        "nodes": nodes}))


def test_owning_channel_falls_back_upstream_and_breaks_ties_the_same_way_every_time() -> None:
    chain = _graph({"a": [], "b": ["a"], "c": ["b"]}, {"a": "#a"})
    assert chain.owning_channel("model.p.c") == "#a"  # a leaf: whoever owns its inputs
    fan = _graph({"x": [], "k1": ["x"], "k2": ["x"], "k3": ["x"], "far": ["k1"]},
                 {"k1": "#zeta", "k2": "#alpha", "k3": "#zeta", "far": "#alpha"})
    assert fan.owning_channel("model.p.x") == "#zeta"  # nearest, most common
    tie = _graph({"x": [], "k1": ["x"], "k2": ["x"]}, {"k1": "#zeta", "k2": "#alpha"})
    assert tie.owning_channel("model.p.x") == "#alpha"
    assert _graph({"x": []}, {}).owning_channel("model.p.x") is None


# --------------------------------------------------------------------------- signals


def test_a_build_with_a_model_error_a_failed_test_and_stale_sources(tmp_path: Path) -> None:
    signals, _ = DbtArtifactsSource("dbt", copy_target(tmp_path)).poll()
    got = by_kind(signals)
    assert set(got) == {("source_stale", RAW_PAYMENTS), ("source_stale", RAW_CUSTOMERS),
                        ("model_error", STG_PAYMENTS), ("test_failed", STG_ORDERS)}
    # In the order dbt wrote them: freshness ran before the build.
    assert [s.kind for s in signals][:2] == ["source_stale", "source_stale"]

    error = got["model_error", STG_PAYMENTS]
    assert error.title == ('dbt model stg_payments failed: relation "raw.payments" does not exist')
    assert error.observed_at == datetime(2025, 3, 10, 6, 2, 12, 201876, tzinfo=UTC)
    assert error.run_id == "4c1b3c0e-6f2a-4d59-9a57-3c2f7f1e0a01"  # target/: the invocation
    assert error.dedup_key == f"dbt:4c1b3c0e-6f2a-4d59-9a57-3c2f7f1e0a01:{STG_PAYMENTS}"
    assert error.detail["relation"] == '"analytics"."staging"."stg_payments"'
    assert error.detail["compiled_path"] == ("target/compiled/shop/models/staging/"
                                             "stg_payments.sql")
    assert "does not exist" in error.detail["message"]
    assert error.detail["slack_channel"] == "#data-finance"
    assert set(error.detail["skipped_descendants"]) == {ENRICHED, FCT_REVENUE, SINGULAR, ACCEPTED,
                                                       DASHBOARD}
    assert error.detail["skipped_count"] == 5

    failed = got["test_failed", STG_ORDERS]
    assert failed.title == "dbt test not_null(stg_orders.customer_id) failed: 42 failing rows"
    assert failed.detail.items() >= {
        "test_id": NOT_NULL, "test_name": "not_null", "column": "customer_id", "failures": 42,
        "tested": STG_ORDERS, "status": "fail", "slack_channel": "#data-commerce"}.items()
    # Its model's own tests ran; what it stopped is downstream of the model.
    assert set(failed.detail["skipped_descendants"]) == {ENRICHED, FCT_REVENUE, SINGULAR,
                                                        DASHBOARD}


def test_stale_sources_say_how_stale_and_against_what(tmp_path: Path) -> None:
    got = by_kind(DbtArtifactsSource("dbt", copy_target(tmp_path)).poll()[0])
    warn = got["source_stale", RAW_PAYMENTS]
    assert warn.title == ("Source raw.payments is stale: last loaded 13.3 h ago "
                          "(warn, warn after 12 hours)")
    assert warn.detail.items() >= {
        "status": "warn", "warn_after": "12 hours", "error_after": "24 hours",
        "max_loaded_at": "2025-03-09T16:45:00+00:00", "slack_channel": "#data-payments"}.items()
    assert warn.observed_at == datetime(2025, 3, 10, 6, 1, 58, 720331, tzinfo=UTC)
    broken = got["source_stale", RAW_CUSTOMERS]
    assert broken.detail["status"] == "runtime error"
    assert broken.title == ('Freshness check of source raw.customers failed: '
                            'column "_loaded_at" does not exist')


def test_a_warned_test_is_test_warned_on_its_model(tmp_path: Path) -> None:
    archive = tmp_path / "artifacts" / "manual__2024-02-02"
    archive.mkdir(parents=True)
    shutil.copy(FIXTURES / "run_results_v5.json", archive / "run_results.json")
    shutil.copy(TARGET / "manifest.json", archive / "manifest.json")
    source = DbtArtifactsSource("dbt", tmp_path / "target", tmp_path / "artifacts")
    got = by_kind(source.poll()[0])
    warned = got["test_warned", STG_PAYMENTS]
    assert warned.title == ("dbt test accepted_values(stg_payments.method) warned: "
                            "3 failing rows")
    assert warned.detail["severity"] == "warn" and "skipped_count" not in warned.detail
    assert warned.run_id == "manual__2024-02-02"  # archived: the DAG run
    compile_error = got["model_error", FCT_REVENUE]
    assert compile_error.title.endswith("depends on a node named 'orders_enrichd' which was not "
                                        "found")


def test_without_a_manifest_a_test_is_its_own_asset(tmp_path: Path) -> None:
    run = tmp_path / "archive" / "scheduled__2023-06-13"
    run.mkdir(parents=True)
    shutil.copy(FIXTURES / "run_results_v4.json", run / "run_results.json")
    got = by_kind(DbtArtifactsSource("dbt", tmp_path / "target", tmp_path / "archive").poll()[0])
    assert set(got) == {("model_error", STG_PAYMENTS), ("test_failed", NOT_NULL)}
    failed = got["test_failed", NOT_NULL]
    assert failed.title == "dbt test not_null_stg_orders_customer_id failed: 7 failing rows"
    assert failed.detail["failures"] == 7 and failed.detail["tested"] is None
    assert "skipped_descendants" not in failed.detail
    assert got["model_error", STG_PAYMENTS].detail["compiled_code"] is None  # v4 has none


def test_repolling_yields_nothing_new_and_the_same_keys_without_a_cursor(tmp_path: Path) -> None:
    source = DbtArtifactsSource("dbt", copy_target(tmp_path))
    first, cursor = source.poll()
    assert len(first) == 4
    saved = cursor.model_dump_json()
    again, cursor_again = source.poll(DbtCursor.model_validate_json(saved))
    assert again == [] and cursor_again == cursor
    fresh = DbtArtifactsSource("dbt", tmp_path / "target").poll()[0]  # a restarted bot
    assert [s.dedup_key for s in fresh] == [s.dedup_key for s in first]


def test_an_archive_is_read_in_time_order_and_target_is_not_read_twice(tmp_path: Path) -> None:
    archive = tmp_path / "artifacts"
    old, new = archive / "scheduled__2023-06-14", archive / "scheduled__2025-03-10"
    old.mkdir(parents=True)
    shutil.copy(FIXTURES / "run_results_v4.json", old / "run_results.json")
    shutil.copytree(TARGET, new)
    target = copy_target(tmp_path)  # the latest invocation, also archived
    source = DbtArtifactsSource("dbt", target, archive)
    signals, cursor = source.poll()
    assert [s.run_id for s in signals] == ["scheduled__2023-06-14"] * 2 + \
        ["scheduled__2025-03-10"] * 4
    assert len({s.dedup_key for s in signals}) == 6
    assert len(cursor.seen) == 3  # two builds and one freshness check

    # A new invocation lands in target/: the next poll reads only it.
    def rerun(data: dict) -> None:
        data["metadata"].update(invocation_id="new-invocation",
                                generated_at="2025-03-10T07:00:00Z")

    shutil.copy(edited(tmp_path, TARGET / "run_results.json", rerun), target / "run_results.json")
    later, _ = source.poll(cursor)
    assert {s.run_id for s in later} == {"new-invocation"}
    assert {s.kind for s in later} == {"model_error", "test_failed"}


def test_a_file_dbt_is_still_writing_is_skipped_until_it_is_whole(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = copy_target(tmp_path)
    whole = (target / "run_results.json").read_text()
    (target / "run_results.json").write_text(whole[: len(whole) // 2])
    source = DbtArtifactsSource("dbt", target)
    signals, cursor = source.poll()
    assert {s.kind for s in signals} == {"source_stale"}
    assert "run_results.json: results" in caplog.text and "truncated JSON" in caplog.text
    (target / "run_results.json").write_text(whole)
    later, _ = source.poll(cursor)
    assert {s.kind for s in later} == {"model_error", "test_failed"}


def test_the_cursor_stays_small_and_a_floor_skips_history(tmp_path: Path) -> None:
    target = copy_target(tmp_path)
    source = DbtArtifactsSource("dbt", target)
    signals, cursor = source.poll(DbtCursor(keep=1))
    assert len(signals) == 4
    assert list(cursor.seen) == ["4c1b3c0e-6f2a-4d59-9a57-3c2f7f1e0a01"]
    assert cursor.floor == datetime(2025, 3, 10, 6, 1, 58, 902117, tzinfo=UTC)  # the older one
    assert source.poll(cursor)[0] == []
    assert source.poll(DbtCursor(floor=datetime(2030, 1, 1, tzinfo=UTC)))[0] == []


def test_headline_finds_the_databases_words() -> None:
    assert headline("Runtime Error in model x (models/x.sql)\n  Binder Error: no column y") == \
        "Binder Error: no column y"
    assert headline("Got 3 results, configured to fail if != 0") == \
        "Got 3 results, configured to fail if != 0"
    assert headline(None) == "no message"


# --------------------------------------------------------------------------- check


def test_check_reports_what_stops_the_source(tmp_path: Path) -> None:
    assert DbtArtifactsSource("dbt", tmp_path / "nope").check() == [
        f"dbt artifacts folder {tmp_path / 'nope'} does not exist"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (problem,) = DbtArtifactsSource("dbt", empty).check()
    assert problem.startswith(f"no dbt artifacts yet in {empty}")
    runs = tmp_path / "runs"
    shutil.copytree(TARGET, runs / "run_1")
    (problem,) = DbtArtifactsSource("dbt", runs).check()
    assert "holds run folders: pass it as the archive folder" in problem
    assert DbtArtifactsSource("dbt", empty, runs).check() == []


def test_check_names_unreadable_files_and_a_missing_manifest(tmp_path: Path) -> None:
    target = copy_target(tmp_path)
    (target / "manifest.json").unlink()
    text = (target / "sources.json").read_text()
    (target / "sources.json").write_text(text[:text.index("47818")])
    problems = DbtArtifactsSource("dbt", target).check()
    assert problems == [
        "sources.json: results.1.max_loaded_at_time_ago_in_s: truncated JSON: the file ends early "
        "(is dbt still writing it?) "
        f"({target / 'sources.json'})",
        f"{target}: run_results.json without manifest.json: failed tests cannot be tied to "
        "their models, nor skipped nodes to their cause",
    ]
    assert DbtArtifactsSource("dbt", TARGET).check() == []


# --------------------------------------------------------------------------- the demo platform


@dataclass(frozen=True)
class DemoRun:
    artifacts: Path  # the archive: one folder per DAG run
    target: Path     # dbt's target/ after the fault day
    fault_run: str
    history_runs: list[str]

    def source(self) -> DbtArtifactsSource:
        return DbtArtifactsSource("dbt", self.target, self.artifacts)


DEMO_SCENARIOS = ("cascade", "null_customer_ids", "late_partition")


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory,
         demo_platform: tuple[PlatformPaths, Path]) -> dict[str, DemoRun]:
    """Each scenario's artifacts, kept apart: the platform folder is rebuilt for each one."""
    # Imported here: the platform pulls in dbt, and the fast tests should not pay for it.
    from bot.demo.platform import run_scenario
    from bot.demo.scenarios import get_scenario

    base = tmp_path_factory.mktemp("dbt_demo")
    paths, cache = demo_platform
    runs = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
        for name in DEMO_SCENARIOS:
            outcome = run_scenario(get_scenario(name), paths=paths, days=DEMO_DAYS,
                                   seed=DEMO_SEED, cache=cache)
            kept = base / name
            shutil.copytree(paths.artifacts, kept / "artifacts")
            (kept / "target").mkdir()
            for artifact in paths.dbt_target.glob("*.json"):
                shutil.copy2(artifact, kept / "target" / artifact.name)
            runs[name] = DemoRun(kept / "artifacts", kept / "target", outcome.fault.run_id,
                                 [d.run_id for d in outcome.history])
    return runs


@pytest.mark.slow
def test_demo_cascade_is_one_model_error_with_its_skipped_descendants(
        demo: dict[str, DemoRun]) -> None:
    run = demo["cascade"]
    signals, _ = run.source().poll()
    assert {s.run_id for s in signals} == {run.fault_run}  # the healthy days give nothing
    (error,) = [s for s in signals if s.kind == "model_error"]
    assert error.asset == "model.sleuth_demo.stg_shop__customers"
    assert "Conversion Error" in error.title and "signup_date" in error.title
    assert error.detail["skipped_count"] >= 5
    skipped = {r.unique_id for r in read_run_results(run.artifacts / run.fault_run /
                                                     "run_results.json").results
               if r.status == "skipped"}
    assert set(error.detail["skipped_descendants"]) == skipped
    assert {"model.sleuth_demo.fct_orders", "model.sleuth_demo.dim_customers",
            "exposure.sleuth_demo.revenue_dashboard"} <= skipped
    assert error.detail["slack_channel"] == "#data-commerce"
    assert error.detail["relation"] == '"warehouse"."staging"."stg_shop__customers"'


@pytest.mark.slow
def test_demo_null_customer_ids_is_a_not_null_failure_on_stg_shop_orders(
        demo: dict[str, DemoRun]) -> None:
    run = demo["null_customer_ids"]
    signals, cursor = run.source().poll()
    failed = by_kind(signals)["test_failed", "model.sleuth_demo.stg_shop__orders"]
    assert failed.detail["test_id"].startswith(
        "test.sleuth_demo.not_null_stg_shop__orders_customer_id.")
    assert failed.detail["column"] == "customer_id" and failed.detail["test_name"] == "not_null"
    results = read_run_results(run.artifacts / run.fault_run / "run_results.json").results
    (raw,) = [r for r in results if r.unique_id == failed.detail["test_id"]]
    assert raw.failures is not None and raw.failures > 0
    assert failed.detail["failures"] == raw.failures
    assert f"{raw.failures:,} failing rows" in failed.title
    assert "model.sleuth_demo.fct_orders" in failed.detail["skipped_descendants"]
    assert run.source().poll(cursor)[0] == []


@pytest.mark.slow
def test_demo_healthy_runs_give_no_signals(demo: dict[str, DemoRun], tmp_path: Path) -> None:
    run = demo["cascade"]
    for run_id in run.history_runs:
        shutil.copytree(run.artifacts / run_id, tmp_path / "archive" / run_id)
    source = DbtArtifactsSource("dbt", tmp_path / "no-target", tmp_path / "archive")
    signals, cursor = source.poll()
    assert signals == [] and len(cursor.seen) == len(run.history_runs)


@pytest.mark.slow
def test_demo_late_partition_makes_payments_stale(demo: dict[str, DemoRun]) -> None:
    run = demo["late_partition"]
    got = by_kind(run.source().poll()[0])
    stale = got["source_stale", "source.sleuth_demo.payments.payments"]
    assert stale.detail["status"] == "error" and stale.detail["error_after"] == "18 hours"
    assert stale.detail["max_loaded_at_time_ago_in_s"] > 18 * 3600
    assert stale.title.startswith("Source payments.payments is stale: last loaded")
    assert stale.detail["slack_channel"] == "#data-finance"
    assert [k for k in got if k[0] == "source_stale"] == [("source_stale",
                                                           "source.sleuth_demo.payments.payments")]


@pytest.mark.slow
def test_demo_lineage_and_check(demo: dict[str, DemoRun]) -> None:
    run = demo["late_partition"]
    source = run.source()
    assert source.check() == []
    lineage = source.lineage()
    assert lineage is not None
    revenue = "model.sleuth_demo.fct_daily_revenue"
    payments = "source.sleuth_demo.payments.payments"
    assert revenue in lineage.downstream(payments)
    assert payments in lineage.upstream(revenue)
    assert lineage.exposures(revenue) == ["exposure.sleuth_demo.revenue_dashboard"]
    assert lineage.display_name("exposure.sleuth_demo.revenue_dashboard") == "Revenue dashboard"
    assert lineage.owning_channel(revenue) == "#data-finance"
    assert lineage.owning_channel("model.sleuth_demo.stg_shop__orders") == "#data-commerce"
    assert lineage.owning_channel("source.sleuth_demo.marketing.events") == "#data-marketing"
    assert lineage.owner(revenue) == "finance-analytics"

"""The LanceDB vector index: round trip, filters, replace, delete, reopen, one embedder a table."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import lancedb
import pytest

from bot.config import load_settings
from bot.errors import SleuthError
from bot.vectors.embedders import HashingEmbedder
from bot.vectors.index import Record, VectorIndex, open_index, vectors_dir

REPO = Path(__file__).resolve().parents[2]

ORDERS = "dbt test not_null failed: 12 rows with null order_id in model.shop.fct_orders"
CUSTOMERS = "dbt test unique failed: duplicate customer_id in model.shop.dim_customers"
HEARTBEAT = "Airflow scheduler heartbeat missed, restarting the executor"


@pytest.fixture
def index(tmp_path: Path) -> VectorIndex:
    index = VectorIndex(tmp_path / "vectors", "open_issues", HashingEmbedder())
    index.upsert_many([
        Record(id="orders", text=ORDERS, metadata={"status": "open", "channel": "#data"}),
        Record(id="customers", text=CUSTOMERS, metadata={"status": "acked"}),
        Record(id="heartbeat", text=HEARTBEAT, metadata={"status": "resolved"}),
    ])
    return index


def test_search_returns_the_most_similar_rows_first_with_their_metadata(index) -> None:
    hits = index.search("dbt test not_null failed: 3 rows with null order_id in "
                        "model.shop.fct_orders", k=2)
    assert [h.id for h in hits] == ["orders", "customers"]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert hits[0].similarity > hits[1].similarity >= 0.0
    assert hits[0].text == ORDERS
    assert hits[0].metadata == {"status": "open", "channel": "#data"}
    assert index.count() == 3


def test_min_similarity_and_k_bound_the_hits(index) -> None:
    assert [h.id for h in index.search(ORDERS, k=1)] == ["orders"]
    assert [h.id for h in index.search(ORDERS, min_similarity=0.9)] == ["orders"]
    assert index.search("completely different words here", min_similarity=0.99) == []


def test_where_filters_on_status_before_ranking(index) -> None:
    assert [h.id for h in index.search(ORDERS, where={"status": "resolved"})] == ["heartbeat"]
    found = index.search(ORDERS, where={"status": ["acked", "resolved"]})
    assert {h.id for h in found} == {"customers", "heartbeat"}
    assert index.search(ORDERS, where={"status": []}) == []
    assert [h.id for h in index.search(ORDERS, where={"id": "customers"})] == ["customers"]
    # Quotes in a value are data, not SQL.
    assert index.search(ORDERS, where={"status": "x' OR '1'='1"}) == []
    with pytest.raises(SleuthError, match="channel"):
        index.search(ORDERS, where={"channel": "#data"})


def test_upsert_replaces_the_row_of_the_same_id(index) -> None:
    index.upsert("orders", HEARTBEAT + " again", {"status": "resolved"})
    assert index.count() == 3
    hit = index.search(HEARTBEAT + " again", k=1)[0]
    assert hit.id == "orders" and hit.metadata == {"status": "resolved"}
    assert [h.id for h in index.search(ORDERS, where={"status": "open"})] == []
    index.upsert_many([Record(id="n", text="first"), Record(id="n", text="last")])
    assert [h.text for h in index.search("last", where={"id": "n"})] == ["last"]


def test_delete_removes_one_row_and_ignores_unknown_ids(index) -> None:
    index.delete("customers")
    index.delete("no-such-id")
    index.delete("it's quoted")
    assert index.count() == 2
    assert "customers" not in {h.id for h in index.search(CUSTOMERS)}


def test_empty_and_absent_tables_search_to_nothing(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, "memory", HashingEmbedder())
    assert index.count() == 0 and index.search(ORDERS) == []
    index.delete("x")  # no table yet: nothing to do
    index.upsert("x", ORDERS)
    index.delete("x")
    assert index.count() == 0 and index.search(ORDERS) == []


def test_rows_persist_across_reopen_and_other_processes(index, tmp_path: Path) -> None:
    again = VectorIndex(tmp_path / "vectors", "open_issues", HashingEmbedder())
    assert again.count() == 3
    assert again.search(CUSTOMERS, k=1)[0].id == "customers"
    # An open instance sees another instance's writes without reopening.
    again.upsert("new", "disk full on warehouse node", {"status": "open"})
    assert index.search("disk full on warehouse node", k=1)[0].id == "new"
    script = (
        "import sys; from pathlib import Path\n"
        "from bot.vectors import HashingEmbedder, VectorIndex\n"
        "i = VectorIndex(Path(sys.argv[1]), 'open_issues', HashingEmbedder())\n"
        "print(i.count(), i.search(sys.argv[2], k=1)[0].id)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "vectors"), HEARTBEAT],
                          capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.split() == ["4", "heartbeat"]


def test_an_index_opened_before_the_table_exists_sees_it_once_written(tmp_path: Path) -> None:
    early = VectorIndex(tmp_path, "memory", HashingEmbedder())
    stranger = VectorIndex(tmp_path, "memory", HashingEmbedder(dim=64))
    VectorIndex(tmp_path, "memory", HashingEmbedder()).upsert("a", ORDERS)
    assert [h.id for h in early.search(ORDERS)] == ["a"]
    with pytest.raises(SleuthError, match="hashing-v1-64"):
        stranger.upsert("b", CUSTOMERS)


def test_another_embedder_is_refused_unless_the_table_is_rebuilt(index, tmp_path: Path) -> None:
    with pytest.raises(SleuthError, match=r"hashing-v1-1024.*hashing-v1-256.*rebuild"):
        VectorIndex(tmp_path / "vectors", "open_issues", HashingEmbedder(dim=256))
    rebuilt = VectorIndex(tmp_path / "vectors", "open_issues", HashingEmbedder(dim=256),
                          rebuild=True)
    assert rebuilt.count() == 3
    hit = rebuilt.search(ORDERS, k=1)[0]
    assert hit.id == "orders" and hit.metadata["channel"] == "#data"
    assert hit.similarity == pytest.approx(1.0, abs=1e-4)
    # Now the old embedder is the stranger; another table is independent.
    with pytest.raises(SleuthError):
        VectorIndex(tmp_path / "vectors", "open_issues", HashingEmbedder())
    VectorIndex(tmp_path / "vectors", "memory", HashingEmbedder()).upsert("m", ORDERS)


def test_optimize_keeps_rows_and_the_embedder_check(index, tmp_path: Path) -> None:
    for i in range(5):
        index.upsert(f"extra{i}", f"{HEARTBEAT} {i}")
    index.optimize()
    assert index.count() == 8
    with pytest.raises(SleuthError):
        VectorIndex(tmp_path / "vectors", "open_issues", HashingEmbedder(dim=64))


def test_updated_at_comes_from_metadata_and_must_be_a_time(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, "memory", HashingEmbedder())
    when = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    index.upsert("a", ORDERS, {"updated_at": when.isoformat()})
    index.upsert("b", CUSTOMERS, {"updated_at": when})
    stored = lancedb.connect(tmp_path).open_table("memory").to_arrow()["updated_at"].to_pylist()
    assert stored == [when, when]
    with pytest.raises(SleuthError, match="updated_at"):
        index.upsert("c", HEARTBEAT, {"updated_at": 12})


def test_open_index_uses_the_home_and_the_configured_embedder(tmp_path: Path) -> None:
    path = tmp_path / "sleuth.yaml"
    path.write_text("embeddings: {dim: 128}\n")
    settings = load_settings(path)
    index = open_index(settings, "memory")
    index.upsert("a", ORDERS)
    assert index.embedder.name == "hashing-v1-128"
    assert (vectors_dir(settings.home) / "memory.lance").is_dir()


def test_table_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(SleuthError, match="table name"):
        VectorIndex(tmp_path, "../escape", HashingEmbedder())


def test_automatic_compaction_keeps_every_row(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("bot.vectors.index.OPTIMIZE_EVERY", 3)
    index = VectorIndex(tmp_path, "memory", HashingEmbedder())
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]
    for word in words:  # 7 writes: compacted after the 3rd and the 6th
        index.upsert(word, f"{ORDERS} in batch {word}", {"status": "open"})
    index.delete("alpha")
    assert index.count() == 6
    assert index.search(f"{ORDERS} in batch golf", k=1, where={"status": "open"})[0].id == "golf"

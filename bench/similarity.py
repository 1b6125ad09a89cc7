"""How well each embedder tells near-duplicate problem texts from unrelated ones.

Pairs from Loghub-2k's labelled `Content` column, all 16 systems, a fixed seed:
- near-duplicate: two lines of the same ground-truth event template with different text
  (identical texts are left out: the deterministic fingerprint already joins those);
- unrelated: two lines of different templates of the same system (the hard negatives:
  same vocabulary, same style).
Both are drawn line-weighted, as repeats arrive. One threshold for all systems.

Per embedder: ROC AUC; the threshold with the best accuracy (Youden's J, the two sets are
the same size) and that accuracy; the recommended grouping threshold, the lowest at which
at most 1% of unrelated pairs would be joined (a false merge hides an issue, a missed one
only duplicates it) and the share of near-duplicates it joins; embed throughput; search
latency over a 5,000-row `VectorIndex` (query embedding included). The reference row is
the Jaccard similarity of raw lowercase word sets, the classic near-duplicate measure.
"""

from __future__ import annotations

import random
import re
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.markup import escape

from bench.loghub import dataset_dir, load_structured, systems
from bench.report import Result
from bot.errors import SleuthError
from bot.vectors.embedders import MINILM_INSTALL, Embedder, HashingEmbedder, MiniLMEmbedder
from bot.vectors.index import Record, VectorIndex

SEED = 20261124
PAIRS_PER_SYSTEM = 250  # of each kind
INDEX_ROWS = 5_000
QUERIES = 50
MAX_FALSE_MERGES = 0.01

Pair = tuple[str, str]


@dataclass
class Sample:
    positives: list[Pair] = field(default_factory=list)
    negatives: list[Pair] = field(default_factory=list)
    positive_system: list[str] = field(default_factory=list)
    negative_system: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # every content line, for the index


def sample_pairs(root: Path, rng: random.Random) -> Sample:
    """Near-duplicate and unrelated pairs of every system, and every content line."""
    sample = Sample()
    for system in systems(root):
        rows = [(r["EventId"], r["Content"]) for r in load_structured(root, system)]
        sample.lines += [content for _, content in rows]
        by_event: dict[str, list[str]] = defaultdict(list)
        for event, content in rows:
            by_event[event].append(content)
        positives = _draw(rows, rng, lambda e, c: [x for x in by_event[e] if x != c])
        negatives = _draw(rows, rng, lambda e, c: [x for ev, x in rows if ev != e])
        sample.positives += positives
        sample.negatives += negatives
        sample.positive_system += [system] * len(positives)
        sample.negative_system += [system] * len(negatives)
    return sample


def _draw(rows: list[tuple[str, str]], rng: random.Random,
          partners: Callable[[str, str], list[str]]) -> list[Pair]:
    pairs: list[Pair] = []
    for _ in range(PAIRS_PER_SYSTEM * 20):  # lines of singleton templates have no partner
        if len(pairs) == PAIRS_PER_SYSTEM:
            break
        event, content = rng.choice(rows)
        options = partners(event, content)
        if options:
            pairs.append((content, rng.choice(options)))
    return pairs


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a near-duplicate scores above an unrelated pair), ties half (Mann-Whitney U)."""
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def thresholds(pos: np.ndarray, neg: np.ndarray) -> dict[str, float]:
    candidates = np.unique(np.concatenate([pos, neg]))
    tpr = np.array([(pos >= t).mean() for t in candidates])
    fpr = np.array([(neg >= t).mean() for t in candidates])
    best = int(np.argmax(tpr - fpr))
    safe = candidates[fpr <= MAX_FALSE_MERGES]
    grouping = float(safe.min()) if len(safe) else 1.0
    return {
        "best_threshold": float(candidates[best]),
        "best_accuracy": float((tpr[best] + 1 - fpr[best]) / 2),
        "grouping_threshold": grouping,
        "joined_at_grouping": float((pos >= grouping).mean()),
        "false_merges_at_grouping": float((neg >= grouping).mean()),
    }


def _embed_pairs(embedder: Embedder, pairs: list[Pair]) -> tuple[np.ndarray, float]:
    """The cosine of each pair, and the embedder's throughput (texts/s) on these texts."""
    texts = [text for pair in pairs for text in pair]
    embedder.embed(texts[:32])  # loads a model; the timing is of embedding only
    start = time.perf_counter()
    vectors = embedder.embed(texts)
    rate = len(texts) / (time.perf_counter() - start)
    return (vectors[0::2] * vectors[1::2]).sum(axis=1), rate


def _jaccard(pairs: list[Pair]) -> np.ndarray:
    def words(text: str) -> set[str]:
        return set(re.findall(r"\w+", text.lower()))

    out = []
    for a, b in pairs:
        x, y = words(a), words(b)
        out.append(len(x & y) / len(x | y) if x | y else 1.0)
    return np.array(out)


def _search_latency(embedder: Embedder, rows: list[str], queries: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sleuth-vectors-") as tmp:
        index = VectorIndex(Path(tmp), "bench", embedder)
        statuses = ("open", "acked", "resolved")
        for start in range(0, len(rows), 1000):
            index.upsert_many(
                Record(id=str(i), text=text, metadata={"status": statuses[i % 3]})
                for i, text in enumerate(rows[start : start + 1000], start)
            )
        index.optimize()
        index.search(queries[0])
        plain, filtered, embed = [], [], []
        for query in queries:
            t = time.perf_counter()
            embedder.embed([query])
            embed.append(time.perf_counter() - t)
            t0 = time.perf_counter()
            index.search(query, k=5)
            t1 = time.perf_counter()
            index.search(query, k=5, where={"status": "open"})
            plain.append(t1 - t0)
            filtered.append(time.perf_counter() - t1)
        return {
            "search_ms_p50": 1000 * statistics.median(plain),
            "search_ms_p95": 1000 * sorted(plain)[int(0.95 * len(plain))],
            "search_where_ms_p50": 1000 * statistics.median(filtered),
            "query_embed_ms_p50": 1000 * statistics.median(embed),
            "rows": index.count(),
        }


def _embedders() -> dict[str, Embedder | str]:
    """Each embedder, or why it cannot run here."""
    found: dict[str, Embedder | str] = {"hashing": HashingEmbedder()}
    try:
        found["minilm"] = MiniLMEmbedder()
    except SleuthError:
        found["minilm"] = f"not installed ({MINILM_INSTALL})"
    return found


def run() -> Result:
    rng = random.Random(SEED)
    sample = sample_pairs(dataset_dir(), rng)
    positives, negatives, every = sample.positives, sample.negatives, sample.lines
    rng.shuffle(every)
    index_rows, queries = every[:INDEX_ROWS], every[INDEX_ROWS : INDEX_ROWS + QUERIES]
    rows: list[list[object]] = []
    missing: list[str] = []
    figures: dict[str, object] = {"pairs": len(positives) + len(negatives)}
    for name, embedder in _embedders().items():
        if isinstance(embedder, str):
            missing.append(escape(f"{name}: {embedder}"))  # `[minilm]` is not markup
            continue
        similarity, rate = _embed_pairs(embedder, positives + negatives)
        pos, neg = similarity[: len(positives)], similarity[len(positives) :]
        row = _figures(pos, neg, sample) | {"texts_per_s": rate}
        row |= _search_latency(embedder, index_rows, queries)
        figures[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        rows.append(_row(name, row))
        figures[name]["embedder"] = embedder.name  # type: ignore[index]
    reference = _figures(_jaccard(positives), _jaccard(negatives), sample)
    figures["jaccard_reference"] = {k: round(v, 4) if isinstance(v, float) else v
                                    for k, v in reference.items()}
    rows.append(_row("Jaccard (ref)", reference))
    return Result(
        name="similarity",
        columns=["embedder", "AUC (worst system)", "best thr (acc)", "grouping thr (joined)",
                 "texts/s", "search ms p50/p95", "where ms"],
        rows=rows,
        figures=figures,
        notes=[
            f"Loghub-2k Content, {len(systems(dataset_dir()))} systems, "
            f"{len(positives)} near-duplicate and {len(negatives)} unrelated pairs "
            f"(same system, other template), seed {SEED}; one threshold for all systems.",
            "best thr: the most accurate threshold (accuracy); grouping thr: the lowest "
            f"joining at most {MAX_FALSE_MERGES:.0%} of unrelated pairs (share of "
            "near-duplicates it joins).",
            f"Search: {INDEX_ROWS} rows in a VectorIndex (flat scan), k=5, {QUERIES} queries, "
            "query embedding included (its p50 alone is query_embed_ms_p50 in the JSON); "
            "where: status = 'open' (a third of the rows).",
            "Jaccard (ref): word sets of the raw lines, no embedding.",
            *missing,
        ],
    )


def _figures(pos: np.ndarray, neg: np.ndarray, sample: Sample) -> dict[str, float]:
    by_system = {}
    for system in sorted(set(sample.positive_system)):
        p = pos[np.array(sample.positive_system) == system]
        n = neg[np.array(sample.negative_system) == system]
        by_system[system] = roc_auc(p, n)
    worst = min(by_system, key=by_system.__getitem__)
    return ({"roc_auc": roc_auc(pos, neg), "worst_system_auc": by_system[worst],
             "worst_system": worst} | thresholds(pos, neg))


def _row(label: str, f: dict[str, float]) -> list[object]:
    search = (f"{f['search_ms_p50']:.1f} / {f['search_ms_p95']:.1f}"
              if "search_ms_p50" in f else "")
    return [label, f"{f['roc_auc']:.3f} ({f['worst_system_auc']:.3f} {f['worst_system']})",
            f"{f['best_threshold']:.3f} ({f['best_accuracy']:.3f})",
            f"{f['grouping_threshold']:.3f} ({f['joined_at_grouping']:.3f})",
            round(f["texts_per_s"]) if "texts_per_s" in f else "", search,
            f"{f['search_where_ms_p50']:.1f}" if "search_where_ms_p50" in f else ""]

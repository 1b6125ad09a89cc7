"""Gemini embeddings through the real google-genai SDK against a local server that speaks the
Gemini wire format, and into the LanceDB index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.config import EmbeddingsConfig
from bot.errors import SleuthError
from bot.vectors.embedders import GEMINI_DIM, make_embedder
from bot.vectors.index import VectorIndex
from tests.fakes.gemini_server import GeminiServer

KEY = "g-embed-key-0123456789"


def test_without_a_key_the_error_says_which_variable(monkeypatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(SleuthError, match="GEMINI_API_KEY"):
        make_embedder(EmbeddingsConfig(kind="gemini"))


def test_texts_are_masked_embedded_normalised_and_searchable(monkeypatch, tmp_path: Path
                                                             ) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer(api_key=KEY) as server:
        embedder = make_embedder(EmbeddingsConfig(kind="gemini", base_url=server.url))
        texts = ["task load_orders failed: connection refused by 10.0.0.7 (password=hunter22)",
                 "task load_orders failed: connection refused by 10.0.0.9 (password=hunter22)"]
        rows = embedder.embed(texts)
        assert rows.shape == (2, GEMINI_DIM)
        assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
        assert float(rows[0] @ rows[1]) > 0.999  # masked: the two repeats embed alike
        sent = json.dumps([r.body for r in server.requests])
        assert "hunter22" not in sent and "10.0.0.7" not in sent
        index = VectorIndex(tmp_path / "vectors", "memory", embedder)
        index.upsert("1", texts[0])
        [hit] = index.search(texts[1], k=1)
        assert hit.id == "1" and hit.similarity > 0.99

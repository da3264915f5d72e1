"""The embedder's extra classifier features (a middle layer's mean) and how the index uses them."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from chatbot.engine import FaqEntry, IndexConfig, KnowledgeIndex, build_index
from chatbot.engine.embeddings import FeatureEmbedder, SentenceTransformerEmbedder, feature_encoder
from chatbot.engine.index import ENGINE_REVISION
from tests.chatbot.engine.conftest import ARTICLES, ENTRIES

TEXTS = ["how long until my order gets here", "BX-4471", "what is the capital of australia"]


class Plain:
    """A wrapper that forwards only `encode` (like a caller's own caching wrapper) and exposes `inner`."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner, self.name = inner, inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode(texts)


def test_features_start_with_the_embedding_and_come_from_one_forward_pass(embedder) -> None:
    model = SentenceTransformerEmbedder(embedder.model_path, cache_size=16, quantize=embedder.quantize)
    assert isinstance(model, FeatureEmbedder)
    full = model.encode_features(TEXTS)
    assert full.shape == (3, 2 * model.dim) and model.feature_dim == 2 * model.dim
    # Another instance, the texts in one batch as here (int8 activations are scaled per batch: the session
    # embedder may have cached some of these texts from other batches, a little different).
    again = SentenceTransformerEmbedder(embedder.model_path, cache_size=0, quantize=embedder.quantize)
    np.testing.assert_allclose(full[:, : model.dim], again.encode(TEXTS), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(full[:, model.dim :], axis=1), 1.0, rtol=1e-5)
    # The embedding equals sentence-transformers' own encode (mean pooling, normalised).
    reference = model._load().encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(full[:, : model.dim], reference, atol=1e-5)


def test_recent_texts_are_not_run_through_the_model_again(embedder, monkeypatch) -> None:
    model = SentenceTransformerEmbedder(embedder.model_path, cache_size=2, quantize=embedder.quantize)
    calls: list[list[str]] = []
    forward = model._forward
    monkeypatch.setattr(model, "_forward", lambda texts: calls.append(list(texts)) or forward(texts))
    first = model.encode(["hello", "where is my order"])
    again = model.encode_features(["where is my order", "hello", "hello"])
    assert calls == [["hello", "where is my order"]]
    np.testing.assert_array_equal(again[1], again[2])
    np.testing.assert_array_equal(again[:2, : model.dim], first[::-1])
    model.encode(["a third text"])  # the cache keeps 2: the least recently used ("where is my order") goes
    model.encode(["hello"])
    model.encode(["where is my order"])
    assert calls[1:] == [["a third text"], ["where is my order"]]


def test_index_trains_on_the_features_and_finds_them_through_a_wrapper(semantic_index, embedder) -> None:
    assert semantic_index.stats["extra_features"] == embedder.dim
    direct = semantic_index.scores(TEXTS)
    # Sentence-only embeddings passed in (a batching caller): the features are looked up, scores unchanged.
    np.testing.assert_allclose(semantic_index.scores(TEXTS, embedder.encode(TEXTS)), direct, rtol=1e-5)
    wrapped = KnowledgeIndex.from_bytes(semantic_index.to_bytes(), embedder=Plain(embedder))
    assert feature_encoder(wrapped.embedder) is embedder
    np.testing.assert_allclose(wrapped.scores(TEXTS), direct, rtol=1e-5)
    assert wrapped.search("when will my beans arrive")[0].entry_id == "shipping"


def test_without_features_the_index_is_built_as_before(embedder) -> None:
    index = build_index(ENTRIES, ARTICLES, embedder=embedder, config=IndexConfig(feature_weight=0))
    assert index.stats["extra_features"] == 0
    assert index.search("when will my beans arrive")[0].entry_id == "shipping"


def test_an_index_stored_by_the_previous_version_still_loads_and_answers(embedder) -> None:
    index = build_index(ENTRIES, ARTICLES, embedder=embedder, config=IndexConfig(feature_weight=0))
    state = dict(index._s)
    del state["extra_dim"], state["engine_revision"]  # the previous version's state had neither
    buffer = io.BytesIO()
    pickle.dump({"format": 1, "state": state}, buffer)
    old = KnowledgeIndex.from_bytes(buffer.getvalue(), embedder=embedder)
    np.testing.assert_allclose(old.scores(TEXTS), index.scores(TEXTS), rtol=1e-5)
    assert old.search("can I pay using paypal")[0].entry_id == "payment"
    assert old.engine_revision == 1 < ENGINE_REVISION == index.engine_revision  # a rebuild would improve it


def test_a_single_entry_index_with_features_answers(embedder) -> None:
    one = build_index([FaqEntry("only", "How do I reset my password?")], embedder=embedder)
    assert one.search("forgot my password")[0].entry_id == "only"


def test_the_batcher_answers_texts_just_embedded_without_queueing(embedder, monkeypatch) -> None:
    from chatbot.engine import BatchingEmbedder

    model = SentenceTransformerEmbedder(embedder.model_path, quantize=embedder.quantize)
    batcher = BatchingEmbedder(model, window_ms=50)
    first = batcher.encode(["is the shop open on sunday"])
    assert batcher.batches == 1
    monkeypatch.setattr(model, "_forward", lambda texts: pytest.fail("ran the model again"))
    again = batcher.encode_features(["is the shop open on sunday"])
    np.testing.assert_array_equal(again[:, : model.dim], first)
    assert batcher.batches == 1 and batcher.feature_dim == model.feature_dim

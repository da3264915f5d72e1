"""The int8 embedding model (CX_BOT_MODEL_QUANTIZE; by default where the CPU has AVX-512 VNNI): what it runs, how
close it stays to the float model, and that an index records which variant built it."""

from __future__ import annotations

import numpy as np
import pytest

from chatbot.engine import KnowledgeIndex, build_index, embeddings, get_embedder
from chatbot.engine.embeddings import INT8_SUFFIX, SentenceTransformerEmbedder
from tests.chatbot.engine.conftest import ARTICLES, ENTRIES

CHAT = [
    "hi",
    "where is my order",
    "how long does shipping take to germany?",
    "I was charged twice for the same subscription, can you refund one of them please",
    "BX-4471",
    "do u have decaf",
    "what is the capital of australia",
    "my grinder makes a weird noise when I grind for espresso, is it broken or is that normal?",
]


@pytest.fixture(scope="module")
def float_model(embedder) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder.model_path, quantize=False)


@pytest.fixture(scope="module")
def int8_model(embedder) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder.model_path, quantize=True)


def test_int8_replaces_every_linear_and_says_so_in_its_name(int8_model) -> None:
    import torch

    assert int8_model.name == int8_model.model_path + INT8_SUFFIX
    int8_model.encode(["hello"])
    modules = list(int8_model._load().modules())
    assert not any(type(m) is torch.nn.Linear for m in modules)  # every Linear was replaced
    assert sum(type(m).__name__ == "Int8Linear" for m in modules) == 6 * 6 + 1  # 6 per layer, the pooler's


def test_the_setting_picks_the_variant_and_auto_follows_the_cpu(embedder, monkeypatch) -> None:
    monkeypatch.setenv("CX_BOT_MODEL_QUANTIZE", "false")
    assert get_embedder().name == embedder.model_path  # the float model, named as before
    monkeypatch.setenv("CX_BOT_MODEL_QUANTIZE", "true")
    assert get_embedder().name == embedder.model_path + INT8_SUFFIX
    monkeypatch.delenv("CX_BOT_MODEL_QUANTIZE")
    assert embedder.quantize is embeddings._int_mm_is_fast()  # the default is auto
    for fast in (True, False):
        monkeypatch.setattr(embeddings, "_int_mm_is_fast", lambda fast=fast: fast)
        assert embeddings.quantize_wanted("auto") is fast and embeddings.quantize_wanted(" Auto ") is fast
    assert embeddings.quantize_wanted("on") is True and embeddings.quantize_wanted(False) is False
    with pytest.raises(ValueError, match="must be one of auto, true, false"):
        embeddings.quantize_wanted("int4")


@pytest.fixture(scope="module", params=["default", "float32 product"])
def uncached(request, embedder) -> SentenceTransformerEmbedder:
    """The int8 model without a cache, with its int8 products in `torch._int_mm` where this CPU runs it in oneDNN
    ("default"), or as float32 products of the same int8 values (what a CPU without AVX-512 VNNI runs)."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param != "default":
            patch.setattr(embeddings, "_int_mm_is_fast", lambda: False)
        model = SentenceTransformerEmbedder(embedder.model_path, cache_size=0, quantize=True)
        model.encode(["load the model"])
    return model


def test_a_messages_vector_does_not_depend_on_what_it_is_batched_with(uncached) -> None:
    """The same question gets the same vector (so the same reply) alone or among other visitors' messages,
    longer and shorter: each token's activations are quantized with their own scale, attention ignores padding."""
    batch = uncached.encode_features(CHAT)
    for i, text in enumerate(CHAT):
        alone = uncached.encode_features([text])[0]
        np.testing.assert_allclose(alone, batch[i], rtol=0, atol=1e-6, err_msg=text)
    again = uncached.encode_features([CHAT[1], CHAT[7], CHAT[0]])
    np.testing.assert_allclose(again, batch[[1, 7, 0]], rtol=0, atol=1e-6)


def test_int8_vectors_are_the_same_on_every_cpu_and_close_to_the_float_models(
    embedder, int8_model, uncached, float_model
) -> None:
    """Both ways of summing the int8 products give the same integers, so the same vectors; both stay close to
    the float model's."""
    quantized, exact = uncached.encode_features(CHAT), float_model.encode_features(CHAT)
    assert quantized.shape == exact.shape == (len(CHAT), 2 * embedder.dim)
    if embeddings._int_mm_is_fast():  # else the default runs the float32 product too
        np.testing.assert_array_equal(quantized, int8_model.encode_features(CHAT))
    dim = embedder.dim
    np.testing.assert_allclose(np.linalg.norm(quantized[:, :dim], axis=1), 1.0, rtol=1e-5)
    cosine = (quantized[:, :dim] * exact[:, :dim]).sum(1)
    features = (quantized[:, dim:] * exact[:, dim:]).sum(1)
    assert cosine.min() > 0.98 and cosine.mean() > 0.99, cosine
    assert features.min() > 0.98, features


class Named:
    """An embedder of another model (same vectors, another name)."""

    def __init__(self, inner: SentenceTransformerEmbedder, name: str) -> None:
        self.inner, self.name = inner, name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode(texts)


def test_an_index_of_the_other_precision_still_answers_semantically(int8_model, float_model) -> None:
    """Switching CX_BOT_MODEL_QUANTIZE changes the embedder's name, so knowledge.index_rebuild rebuilds the
    index; until then the index built with the other variant keeps answering with embeddings."""
    quantized = build_index(ENTRIES, ARTICLES, embedder=int8_model)
    exact = build_index(ENTRIES, ARTICLES, embedder=float_model)
    assert quantized.stats["model"] == int8_model.name != exact.stats["model"] == float_model.name
    for index, other in ((exact, int8_model), (quantized, float_model)):
        loaded = KnowledgeIndex.from_bytes(index.to_bytes(), embedder=other)
        assert loaded.mode == "semantic"
        assert loaded.search("when will my beans arrive")[0].entry_id == "shipping"
        np.testing.assert_allclose(loaded.scores(CHAT), index.scores(CHAT), atol=0.1)
    with pytest.raises(ValueError, match="index was built with"):
        KnowledgeIndex.from_bytes(exact.to_bytes(), embedder=Named(float_model, "another/model"))


@pytest.mark.parametrize(("value", "read"), [("auto", "auto"), ("1", "true"), ("Yes", "true"), ("off", "false")])
def test_the_setting_reads_auto_and_the_booleans_it_took_before(value: str, read: str) -> None:
    assert _settings_value(value) == read


def test_a_bad_setting_stops_the_settings() -> None:
    assert "CX_BOT_MODEL_QUANTIZE must be auto, true or false, not 'int4'" in _settings_value("int4")


def _settings_value(value: str) -> str:
    """CX_BOT_MODEL_QUANTIZE as cxplatform/settings.py reads `value`, in a fresh process (or its error)."""
    import os
    import subprocess
    import sys

    code = "from django.conf import settings\nprint(settings.CX_BOT_MODEL_QUANTIZE)"
    env = {**os.environ, "CX_BOT_MODEL_QUANTIZE": value, "DJANGO_SETTINGS_MODULE": "cxplatform.settings"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return (done.stdout.strip().splitlines() or [""])[-1] if done.returncode == 0 else done.stderr

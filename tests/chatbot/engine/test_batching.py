"""BatchingEmbedder: concurrent callers share model calls and each gets exactly its own rows."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from chatbot.engine import BatchingEmbedder


class Recording:
    """A fake model: a text's vector is [len(text), first char code]; records each call's batch."""

    name = "fake"
    dim = 2

    def __init__(self, delay: float = 0.02, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.delay, self.fail = delay, fail

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model failed")
        return np.array([[len(t), ord(t[0]) if t else 0] for t in texts], dtype=np.float32).reshape(-1, 2)


def _run_concurrently(embedder: BatchingEmbedder, inputs: list[list[str]]) -> list[object]:
    results: list[object] = [None] * len(inputs)
    barrier = threading.Barrier(len(inputs))

    def call(i: int) -> None:
        barrier.wait()
        try:
            results[i] = embedder.encode(inputs[i])
        except RuntimeError as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_concurrent_calls_share_batches_and_get_their_own_rows() -> None:
    inner = Recording()
    embedder = BatchingEmbedder(inner, window_ms=20)
    inputs = [[f"{chr(97 + i)}" * (i + 1)] if i % 3 else [f"{chr(97 + i)}" * (i + 1), "zz"] for i in range(24)]
    results = _run_concurrently(embedder, inputs)
    for texts, got in zip(inputs, results, strict=True):
        assert isinstance(got, np.ndarray)
        expected = np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)
        np.testing.assert_array_equal(got, expected)
    assert sum(len(c) for c in inner.calls) == sum(len(t) for t in inputs)  # each text encoded once
    assert len(inner.calls) < len(inputs) / 2  # and in far fewer model calls than callers
    assert embedder.batches == len(inner.calls)


def test_a_failure_reaches_every_caller_of_the_batch_and_the_next_call_works() -> None:
    inner = Recording(fail=True)
    embedder = BatchingEmbedder(inner, window_ms=20)
    results = _run_concurrently(embedder, [["a"], ["b"], ["c"]])
    assert all(isinstance(r, RuntimeError) for r in results)
    inner.fail = False
    np.testing.assert_array_equal(embedder.encode(["abc"]), [[3, 97]])


def test_a_lone_caller_and_empty_input() -> None:
    embedder = BatchingEmbedder(Recording(delay=0), window_ms=1)
    np.testing.assert_array_equal(embedder.encode(["hi", "x"]), [[2, 104], [1, 120]])
    assert embedder.encode([]).shape == (0, 2)
    assert embedder.name == "fake" and embedder.dim == 2


@pytest.mark.parametrize("window", [0.0, 5.0])
def test_no_window_still_serialises_model_calls(window: float) -> None:
    inner = Recording(delay=0.01)
    embedder = BatchingEmbedder(inner, window_ms=window)
    active = {"now": 0, "max": 0}
    original = inner.encode

    def tracked(texts: list[str]) -> np.ndarray:
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        try:
            return original(texts)
        finally:
            active["now"] -= 1

    inner.encode = tracked  # type: ignore[method-assign]
    _run_concurrently(embedder, [[f"t{i}"] for i in range(10)])
    assert active["max"] == 1  # never two model calls at once (they would fight over the same cores)

"""Bot quality and latency on CLINC150 used as a business FAQ.

Each of the 150 intents becomes one FAQ entry whose question and phrasings are its first 10 training
utterances. Scored: the full test split (4,500 in-scope) and oos_test (1,000 out-of-scope).
"answered" means the policy's action is `answer` with that entry; out-of-scope recall is the share of
out-of-scope messages for which no entry was answered.

    .venv/bin/python bench/bench_bot_clinc150.py [--cache /tmp/clinc_emb.npz] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatbot.engine import (
    FaqEntry,
    KnowledgeIndex,
    Thresholds,
    build_index,
    decide,
    get_embedder,
)

DATA = Path(__file__).resolve().parents[2] / "shared/benchdata/clinc150/data_full.json"


class CachingEmbedder:
    """Wraps an embedder with an on-disk text->vector cache, so re-runs while tuning skip the model."""

    def __init__(self, inner, path: str | None) -> None:
        self.inner, self.name, self.path = inner, inner.name, path
        self.cache: dict[str, np.ndarray] = {}
        if path and os.path.exists(path):
            with np.load(path, allow_pickle=False) as z:
                self.cache = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self.cache})
        if todo:
            for t, v in zip(todo, self.inner.encode(todo), strict=True):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def save(self) -> None:
        if self.path:
            texts = list(self.cache)
            np.savez(self.path, texts=np.array(texts), vectors=np.stack([self.cache[t] for t in texts]))


def load() -> tuple[list[FaqEntry], list[tuple[str, str | None]]]:
    data = json.loads(DATA.read_text())
    first: dict[str, list[str]] = {}
    for text, label in data["train"]:
        bucket = first.setdefault(label, [])
        if len(bucket) < 10:
            bucket.append(text)
    entries = [FaqEntry(id=label, question=texts[0], phrasings=tuple(texts[1:])) for label, texts in first.items()]
    queries: list[tuple[str, str | None]] = [(t, lab) for t, lab in data["test"]]
    queries += [(t, None) for t, _ in data["oos_test"]]
    return entries, queries


def quality(index: KnowledgeIndex, queries: list[tuple[str, str | None]], thresholds: Thresholds) -> None:
    texts = [t for t, _ in queries]
    gold = [g for _, g in queries]
    started = time.perf_counter()
    conf = index.scores(texts)
    print(f"scored {len(texts)} messages in {time.perf_counter() - started:.1f}s (batched)")
    best = conf.argmax(1)
    top = conf.max(1)
    ids = np.array(index.entry_ids)
    gold_arr = np.array([g or "" for g in gold])
    ins = np.array([g is not None for g in gold])
    right = ids[best] == gold_arr
    print(f"top-1 in-scope accuracy (no threshold): {right[ins].mean():.3f}")
    print("answer threshold -> in-scope accuracy / out-of-scope recall")
    for t in [0.15, 0.18, 0.2, 0.22, 0.24, 0.25, 0.26, 0.27, 0.28, 0.29, 0.3, 0.32, 0.35, 0.4, 0.5]:
        answered = top >= t
        print(f"  {t:4.2f}  {np.mean(right[ins] & answered[ins]):.3f} / {np.mean(~answered[~ins]):.3f}")
    answered = top >= thresholds.answer
    print(
        f"DEFAULT answer={thresholds.answer}: in-scope accuracy {np.mean(right[ins] & answered[ins]):.3f}, "
        f"out-of-scope recall {np.mean(~answered[~ins]):.3f}"
    )
    # Through the policy itself (same numbers unless intents or sentiment intervene), on a sample.
    rng = np.random.default_rng(0)
    sample = rng.choice(len(queries), size=600, replace=False)
    agree = 0
    for i in sample:
        d = decide(texts[i], [], index, thresholds)
        policy_answered = d.action == "answer" and d.entry_id is not None
        agree += policy_answered == bool(answered[i])
    print(f"policy vs threshold agreement on 600 sampled messages: {agree / 600:.3f}")


def latency(embedder, thresholds: Thresholds) -> None:
    entries, queries = load()
    rng = np.random.default_rng(1)
    # 500 entries: the 150 intents plus 350 synthetic ones made of other intents' training utterances.
    data = json.loads(DATA.read_text())
    pool = [t for t, _ in data["train"]]
    big = list(entries)
    for i in range(350):
        picks = rng.choice(len(pool), size=6, replace=False)
        texts = [pool[j] for j in picks]
        big.append(FaqEntry(id=f"synthetic-{i}", question=texts[0], phrasings=tuple(texts[1:])))
    started = time.perf_counter()
    index = build_index(big, embedder=embedder)
    build_s = time.perf_counter() - started
    blob = index.to_bytes()
    started = time.perf_counter()
    index = KnowledgeIndex.from_bytes(blob, embedder=embedder)
    load_ms = (time.perf_counter() - started) * 1000
    print(f"500-entry index: build {build_s:.1f}s, {len(blob) / 1e6:.1f} MB serialised, load {load_ms:.0f} ms")
    msgs = [queries[i][0] for i in rng.choice(len(queries), size=300, replace=False)]
    history: list = []
    for m in msgs[:10]:
        decide(m, history, index, thresholds)  # warm up
    times = []
    for m in msgs[10:]:
        started = time.perf_counter()
        decide(m, history, index, thresholds)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(
        f"decide() latency, 500 entries, single message incl. embedding: "
        f"p50 {statistics.median(times):.1f} ms, p99 {times[int(0.99 * len(times)) - 1]:.1f} ms"
    )
    if embedder is not None:
        inner = embedder
        for batch in (1, 32):
            chunk = msgs[:batch] if batch > 1 else msgs[:1]
            runs = 20 if batch == 1 else 3
            started = time.perf_counter()
            for _ in range(runs):
                inner.encode(chunk)
            per = (time.perf_counter() - started) * 1000 / (runs * len(chunk))
            print(f"embedding cost per message, batch of {batch}: {per:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default=None, help="npz file caching embeddings between runs")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (2 cores here)")
    parser.add_argument("--lexical", action="store_true", help="no embeddings")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--latency-only", action="store_true")
    args = parser.parse_args()
    base = None if args.lexical else get_embedder(None, args.threads)
    embedder = CachingEmbedder(base, args.cache) if base is not None else None
    print(f"mode: {'semantic ' + base.name if base else 'lexical'}; torch threads {args.threads}")
    entries, queries = load()
    thresholds = Thresholds()
    if args.latency_only:
        latency(base, thresholds)
        return
    started = time.perf_counter()
    index = build_index(entries, embedder=embedder)
    print(f"150-entry index built in {time.perf_counter() - started:.1f}s, {len(index.to_bytes()) / 1e6:.1f} MB")
    quality(index, queries, thresholds)
    if embedder is not None:
        embedder.save()
    if not args.skip_latency:
        latency(base, thresholds)


if __name__ == "__main__":
    main()

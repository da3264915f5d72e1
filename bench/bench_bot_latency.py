"""Server-side bot reply latency: `chatbot.bot.bot_reply` on a 500-entry knowledge base, with and without
the embedding model. Includes everything the chat service pays per message: the active-index check, the
tenant's thresholds, retrieval + intents + sentiment, and loading the answer text.

The knowledge base is the 150 CLINC150 intents (10 phrasings each) plus 350 synthetic entries made of
other training utterances; messages are a fixed random sample of the CLINC150 test and out-of-scope sets.
Runs on DATABASE_URL if set (in a throwaway tenant that is deleted afterwards), else a temporary SQLite file.

    .venv/bin/python bench/bench_bot_latency.py [--messages 300] [--threads 1] [--lexical-only]

The embedding model runs as in the product (CX_BOT_MODEL_QUANTIZE, auto: int8 where the CPU has AVX-512 VNNI,
else float; CX_BOT_MODEL_RUNTIME, auto: the float model in ONNX Runtime where installed); CX_BOT_MODEL_QUANTIZE=true
or false and CX_BOT_MODEL_RUNTIME=torch or onnx in the environment pick a variant.

Target: p99 <= 50 ms. The machine is shared: the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared/benchdata/clinc150/data_full.json"


def _setup_django() -> str:
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='cx-bench-bot-')}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["CX_TASKS_INLINE"] = "true"
    import django

    django.setup()
    from django.core.management import call_command

    if os.environ["DATABASE_URL"].startswith("sqlite"):
        call_command("migrate", verbosity=0)
    return os.environ["DATABASE_URL"].split("@")[-1]


def _knowledge_base(rng: object) -> tuple[list[tuple[str, list[str], str]], list[str]]:
    import numpy as np

    assert isinstance(rng, np.random.Generator)
    data = json.loads(DATA.read_text())
    first: dict[str, list[str]] = {}
    for text, label in data["train"]:
        bucket = first.setdefault(label, [])
        if len(bucket) < 10:
            bucket.append(text)
    entries = [(texts[0], texts[1:], f"Answer about {label.replace('_', ' ')}.") for label, texts in first.items()]
    pool = [t for t, _ in data["train"]]
    for i in range(500 - len(entries)):
        picks = [pool[j] for j in rng.choice(len(pool), size=6, replace=False)]
        entries.append((f"{picks[0]} (#{i})", picks[1:], f"Synthetic answer {i}."))
    queries = [t for t, _ in data["test"]] + [t for t, _ in data["oos_test"]]
    return entries, queries


def run(mode: str, messages: int, threads: int) -> dict[str, float]:
    import numpy as np
    from django.conf import settings
    from django.db.models import F

    from chatbot.bot import bot_reply, index_cache_clear
    from chatbot.engine import get_embedder
    from chatbot.knowledge import bot_settings_get, faq_entry_create, index_rebuild
    from chatbot.models import BotSettings
    from tenants.context import all_tenants, tenant_context
    from tenants.models import Tenant

    settings.CX_BOT_EMBEDDINGS = mode == "semantic"
    settings.CX_BOT_TORCH_THREADS = threads
    embedder = get_embedder(None, threads) if mode == "semantic" else None
    if mode == "semantic" and embedder is None:
        print("semantic: skipped (the embeddings extra is not installed)")
        return {}
    if embedder is not None:
        print(f"semantic: model {embedder.name}, {getattr(embedder, 'runtime', '?')} runtime (CX_BOT_MODEL_RUNTIME)")
    rng = np.random.default_rng(7)
    entries, queries = _knowledge_base(rng)
    tenant = Tenant.objects.create(name=f"Bench bot {mode}", slug=f"bench-bot-{uuid.uuid4().hex[:10]}")
    try:
        with tenant_context(tenant):
            for question, phrasings, answer in entries:
                faq_entry_create(question=question, phrasings=phrasings, answer=answer, rebuild=False)
            bot_settings_get()
            BotSettings.objects.update(kb_revision=F("kb_revision") + 1)
            started = time.perf_counter()
            version = index_rebuild()
            build_s = time.perf_counter() - started
            assert version is not None
            index_cache_clear()
            sample = [queries[i] for i in rng.choice(len(queries), size=messages + 20, replace=False)]
            started = time.perf_counter()
            bot_reply(customer=None, history=[], text=sample[0])  # first reply loads the index (and model)
            first_ms = (time.perf_counter() - started) * 1000
            for text in sample[1:20]:
                bot_reply(customer=None, history=[], text=text)
            times, actions = [], {}
            for text in sample[20:]:
                started = time.perf_counter()
                reply = bot_reply(customer=None, history=[], text=text)
                times.append((time.perf_counter() - started) * 1000)
                actions[reply.decision["action"]] = actions.get(reply.decision["action"], 0) + 1
        times.sort()
        result = {
            "p50": statistics.median(times),
            "p90": times[int(0.90 * len(times)) - 1],
            "p99": times[int(0.99 * len(times)) - 1],
            "max": times[-1],
        }
        print(
            f"{mode:8} 500 entries ({version.stats.get('phrasings')} phrasings), index build {build_s:.1f}s, "
            f"{version.stats.get('bytes', 0) / 1e6:.1f} MB; first reply (loads index) {first_ms:.0f} ms; "
            f"{len(times)} replies: p50 {result['p50']:.1f} ms, p90 {result['p90']:.1f} ms, "
            f"p99 {result['p99']:.1f} ms, max {result['max']:.1f} ms; actions {actions}"
        )
        return result
    finally:
        with all_tenants():
            tenant.delete()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for the embedding model")
    parser.add_argument("--lexical-only", action="store_true")
    args = parser.parse_args()
    db = _setup_django()
    print(f"bot_reply latency on {db}; torch threads {args.threads}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (shared machine: figures are noisy)")  # fmt: skip
    modes = ["lexical"] if args.lexical_only else ["lexical", "semantic"]
    results = {mode: run(mode, args.messages, args.threads) for mode in modes}
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    for mode, result in results.items():
        if result:
            verdict = "meets" if result["p99"] <= 50 else "MISSES"
            print(f"{mode}: p99 {result['p99']:.1f} ms {verdict} the 50 ms target")


if __name__ == "__main__":
    main()

"""How fast this machine runs Python right now, so figures from different days can be compared.

Shared 2-core machines differ from day to day (the same code measured 1.9 and 4.0 ms of server CPU a
request on two days). Every bench that prints CPU or latency figures prints this beside them: the
CPU time of a fixed pure-Python workload (dicts, strings, JSON: what a request does), best of a
few runs. Twice the milliseconds means half the speed, for the server, the workers and the load
generator alike.
"""

from __future__ import annotations

import json
import time


def _workload() -> int:
    total = 0
    for i in range(20_000):
        row = {"id": i, "kind": "bench.export", "status": "succeeded", "params": {"rows": i * 100}}
        text = json.dumps(row, separators=(",", ":"))
        total += len(json.loads(text)["kind"]) + len(f"{row['status']}:{i}".upper())
    return total


def reference_ms(runs: int = 7) -> float:
    """CPU milliseconds of the reference workload, the best of `runs`."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        _workload()
        best = min(best, time.process_time() - start)
    return round(1000 * best, 1)


def describe(ms: float) -> str:
    return f"machine speed: reference workload {ms:.1f} ms of CPU (bench/common/speed.py; lower is faster)"

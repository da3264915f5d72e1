#!/usr/bin/env python3
"""Event ingestion through the API: POST /api/v1/events/ in batches of 1,000 against gunicorn
(uvicorn workers) on PostgreSQL, sustained over 1,000,000 events; then a raw PostgreSQL COPY of the
same rows into a real table shaped like the events table (logged, same columns and indexes, no RLS) and
the ratio. The rate is also given per interval (default 10 s), to show whether it holds over the run.

    DATABASE_URL=postgres://cx@127.0.0.1:5432/cx .venv/bin/python bench/bench_ingest.py [--events 1000000]

Creates a tenant "Bench ingest" with create_tenant --api-key and deletes its rows at the end. The
server runs as docker-compose's web service does: persistent connections (DB_CONN_MAX_AGE=60) on the ASGI
threads, no pool (DB_POOL=true in the environment runs it with one). Server, PostgreSQL and
this load generator share the machine's cores: on a busy machine the figure says more about the machine.
Target: >= 20,000 events/s. Results also go to bench/out/ingest.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
DEFAULT_DB = "postgres://cx@127.0.0.1:5432/cx"
TARGET = 20_000
TYPES = ["page_view", "product_view", "add_to_cart", "checkout_started", "search", "email_open"]


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def make_batches(n_events: int, batch: int, customers: int, run: str) -> list[bytes]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for b in range(0, n_events, batch):
        items = []
        for i in range(b, min(b + batch, n_events)):
            item: dict[str, Any] = {
                "idempotency_key": f"{run}-{i}",
                "type": TYPES[i % len(TYPES)],
                "occurred_at": (base + timedelta(seconds=i * 7)).isoformat(),
                "url": f"https://shop.example.com/p/{i % 500}",
                "channel": "web",
                "properties": {"sku": f"SKU-{i % 40}", "session": i // 6},
            }
            if i % 10 == 0:
                item["anonymous_id"] = f"anon-{i % 20000}"
            else:
                item["customer"] = f"cust-{i % customers}"
            items.append(item)
        out.append(json.dumps({"events": items}).encode())
    return out


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not start")


def send_all(
    port: int, key: str, payloads: list[bytes], connections: int, done: list[tuple[float, int]] | None = None
) -> tuple[float, int, int, list[str]]:
    """POST every payload over `connections` keep-alive connections; `done` receives (time, events stored)
    per answered request, to show whether the rate holds over the run."""
    work: queue.Queue[bytes] = queue.Queue()
    for p in payloads:
        work.put(p)
    stored = duplicates = 0
    errors: list[str] = []
    lock = threading.Lock()
    done = done if done is not None else []

    def worker() -> None:
        nonlocal stored, duplicates
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            conn.request("POST", "/api/v1/events/", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            with lock:
                if response.status != 200:
                    errors.append(f"{response.status}: {data[:200]!r}")
                else:
                    result = json.loads(data)
                    stored += result["stored"]
                    duplicates += result["duplicates"]
                    done.append((time.monotonic(), result["stored"]))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started, stored, duplicates, errors


def intervals(started: float, done: list[tuple[float, int]], seconds: float) -> list[tuple[float, float]]:
    """(interval end in seconds since the start, events/s stored in that interval), per `seconds`."""
    buckets: dict[int, int] = {}
    for at, n in done:
        buckets[int((at - started) // seconds)] = buckets.get(int((at - started) // seconds), 0) + n
    last = max(buckets, default=-1)
    return [((i + 1) * seconds, buckets.get(i, 0) / seconds) for i in range(last + 1)]


def raw_copy(env: dict[str, str], tenant_id: int, payloads: list[bytes]) -> float:
    """COPY the same rows into a real table shaped like journeys_event: logged (not temporary), with the
    same columns, defaults, constraints and indexes (no row-level security), created for the run and dropped
    after. The time covers the COPY and its commit."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection, transaction

    from journeys.models import Customer
    from tenants.context import all_tenants

    with all_tenants():
        ids = dict(Customer.all_tenants.filter(tenant_id=tenant_id).values_list("external_id", "id"))
    rows = []
    now = datetime.now(UTC)
    for payload in payloads:
        for e in json.loads(payload)["events"]:
            rows.append(
                (tenant_id, ids.get(e.get("customer", "")), e.get("anonymous_id", ""), e["type"], "",
                 json.dumps(e["properties"]), e["url"], e["channel"], e["occurred_at"], now, e["idempotency_key"])
            )  # fmt: skip
    cols = ("tenant_id, customer_id, anonymous_id, type, name, properties, url, channel, occurred_at, received_at,"
            " idempotency_key")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_event_copy")
        cursor.execute("CREATE TABLE bench_event_copy (LIKE journeys_event INCLUDING ALL)")
        cursor.execute(
            "SELECT relpersistence, (SELECT count(*) FROM pg_index WHERE indrelid = c.oid) FROM pg_class c"
            " WHERE relname = 'bench_event_copy'"
        )
        persistence, indexes = cursor.fetchone()
        print(f"COPY target: bench_event_copy, persistence {persistence!r} (p = permanent), {indexes} indexes")
    try:
        started = time.monotonic()
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.copy(f"COPY bench_event_copy ({cols}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        elapsed = time.monotonic() - started
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_event_copy")
    return elapsed


def cleanup(env: dict[str, str], tenant_id: int) -> None:
    """Delete the run's rows, then VACUUM the tables as autovacuum would (a machine may run PostgreSQL with
    it off), so that the next run does not start on a million dead rows."""
    code = (
        "from django.db import connection\n"
        "from tenants.context import all_tenants\n"
        "tables = ('journeys_event', 'journeys_visitoridentity', 'journeys_customer')\n"
        "with all_tenants(), connection.cursor() as c:\n"
        "    for t in tables:\n"
        f"        c.execute(f'DELETE FROM {{t}} WHERE tenant_id = {tenant_id}')\n"
        "with connection.cursor() as c:\n"
        "    c.execute('VACUUM ' + ', '.join(tables))\n"
    )
    manage("shell", "-c", code, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--interval", type=float, default=10.0, help="Seconds per reported interval")
    parser.add_argument("--keep", action="store_true", help="Keep the bench tenant's rows")
    args = parser.parse_args()

    # Connections as docker-compose's web service has them: persistent per ASGI thread, no pool.
    env = {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DB), "DEBUG": "false",
           "API_THROTTLE_RATE": "1000000/min", "LOG_LEVEL": "WARNING",
           "DB_POOL": os.environ.get("DB_POOL", "false"), "DB_CONN_MAX_AGE": "60",
           "CX_BOT_REPLIES": "worker"}  # fmt: skip  # as compose's web: no bot model to load in the server
    if not env["DATABASE_URL"].startswith("postgres"):
        print("bench_ingest needs PostgreSQL (DATABASE_URL=postgres://...)")
        return 2
    manage("migrate", "-v0", env=env)
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    out = manage("create_tenant", f"Bench ingest {run}", "--owner", "bench@x.test", "--api-key", env=env)
    key = out.strip().splitlines()[-1]
    tenant_id = int(out.split("id ")[1].split(")")[0])
    print(f"tenant {tenant_id}; building {args.events:,} events in batches of {args.batch} ...", flush=True)
    payloads = make_batches(args.events, args.batch, args.customers, run)
    print(f"payload: {sum(map(len, payloads)) / 1e6:.0f} MB JSON", flush=True)

    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "cxplatform.asgi:application", "-k", "cxplatform.server.UvicornWorker",
         "-w", str(args.workers), "-b", f"127.0.0.1:{args.port}", "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        wait_ready(args.port)
        # Warm up each worker (imports, connections) with one small batch outside the measurement.
        send_all(args.port, key, make_batches(2000, 1000, args.customers, run + "w"), args.workers)
        done: list[tuple[float, int]] = []
        started = time.monotonic()
        elapsed, stored, duplicates, errors = send_all(args.port, key, payloads, args.connections, done)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    rate = stored / elapsed if elapsed else 0
    if errors:
        print("first errors:", errors[:3])
    print(
        f"API ingestion: {stored:,} events in {elapsed:.1f} s = {rate:,.0f} events/s (target >= {TARGET:,})", flush=True
    )
    per = intervals(started, done, args.interval)
    rates = sorted(rate for _, rate in per[:-1]) or [rate]  # the last interval is cut short
    print(f"per {args.interval:.0f} s interval (events/s): " + ", ".join(f"{r:,.0f}" for _, r in per))
    print(f"intervals: min {rates[0]:,.0f}, median {rates[len(rates) // 2]:,.0f}, max {rates[-1]:,.0f} events/s")
    copy_s = raw_copy(env, tenant_id, payloads)
    result = {
        "events": args.events, "batch": args.batch, "workers": args.workers, "connections": args.connections,
        "stored": stored, "duplicates": duplicates, "errors": len(errors), "seconds": round(elapsed, 2),
        "events_per_s": round(rate), "copy_seconds": round(copy_s, 2),
        "copy_events_per_s": round(args.events / copy_s), "ratio_ours_to_copy": round(elapsed / copy_s, 2),
        "target_events_per_s": TARGET, "interval_s": args.interval,
        "interval_events_per_s": [round(r) for _, r in per],
    }  # fmt: skip
    print(f"raw COPY of the same rows: {copy_s:.1f} s = {args.events / copy_s:,.0f} events/s")
    print(f"ratio (ours / COPY time): {elapsed / copy_s:.2f}x")
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "ingest.json").write_text(json.dumps(result, indent=2))
    if not args.keep:
        cleanup(env, tenant_id)
    return 0 if not errors and stored == args.events else 1


if __name__ == "__main__":
    sys.exit(main())

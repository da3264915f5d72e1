"""The whole segments-and-predictions pipeline at scale, on a real Celery worker against PostgreSQL.

One tenant with 100,000 customers and 1,000,000 orders from the demo generator (`seed_demo`), seeded once into a
dedicated database and reused. A fresh `ml` worker (solo pool, one process) runs the training job: features, RFM,
clusters, BG/NBD + Gamma-Gamma, churn model, activation, scoring, bulk score writes, dynamic rule segments.
Prints each stage's wall and CPU time, the worker's RSS when the stage began and the stage's own peak RSS (the
high-water mark restarted at each stage: /proc/self/clear_refs), and the highest of them. Targets: <= 60 s in
all, <= 2 GB. Run: `.venv/bin/python bench/bench_pipeline.py [--database-url ...] [--customers N --orders N]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS, TARGET_MB = 60.0, 2048.0


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://cx@127.0.0.1:5432/cx_pers_bench")
    )
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"))
    p.add_argument("--tenant", default="bench-roasters")
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=1, help="training runs in a row (the first one may warm caches)")
    return p.parse_args()  # fmt: skip


def _ensure_database(url: str) -> None:
    """Create the bench database if it does not exist (PostgreSQL only)."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def _setup(args: argparse.Namespace) -> None:
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["CELERY_BROKER_URL"] = args.redis_url
    os.environ["CX_TASKS_INLINE"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _ensure_data(args: argparse.Namespace) -> Any:
    from django.core.management import call_command

    from journeys.models import Customer, Order
    from tenants.context import tenant_context
    from tenants.models import Tenant

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.filter(slug=args.tenant).first()
    if tenant is None:
        call_command("create_tenant", "Bench Roasters", owner="bench@example.com")
        tenant = Tenant.objects.get(slug="bench-roasters")
    with tenant_context(tenant):
        customers, orders = Customer.objects.count(), Order.objects.count()
    if customers == 0:
        print(f"seeding {args.customers:,} customers and {args.orders:,} orders (takes several minutes, once)")
        started = time.monotonic()
        call_command("seed_demo", tenant=tenant.slug, customers=args.customers, orders=args.orders)
        print(f"seeded in {time.monotonic() - started:.0f} s")
        with tenant_context(tenant):
            customers, orders = Customer.objects.count(), Order.objects.count()
    print(f"tenant {tenant.slug}: {customers:,} customers, {orders:,} orders")
    return tenant


# Dynamic rule segments the run refreshes at its end (created when missing): behaviour, orders, computed features
# and predictions, so that the refresh stage does the work a real tenant's would.
RULE_SEGMENTS: dict[str, dict[str, Any]] = {
    "bench: browsed 7d, no order 7d": {"all": [
        {"field": "event", "event_type": "product_view", "days": 7, "op": "at_least", "value": 1},
        {"field": "orders_in_window", "days": 7, "op": "none"}]},
    "bench: lapsed high value": {"all": [
        {"field": "revenue", "op": "gte", "value": 150}, {"field": "days_since_last_order", "op": "gt", "value": 90}]},
    "bench: high churn risk, valuable": {"all": [
        {"field": "churn_band", "op": "in", "value": ["high"]},
        {"field": "predicted_value_365d", "op": "gte", "value": 100}]},
    "bench: support-heavy or unhappy": {"any": [
        {"field": "support_contacts", "op": "gte", "value": 2}, {"field": "avg_csat", "op": "lte", "value": 2}]},
}  # fmt: skip


def _ensure_rule_segments(tenant: Any) -> None:
    from personalization.models import RuleSegment
    from personalization.rules.services import rule_segment_create
    from tenants.context import tenant_context

    with tenant_context(tenant):
        existing = set(RuleSegment.objects.values_list("name", flat=True))
        for name, definition in RULE_SEGMENTS.items():
            if name not in existing:
                rule_segment_create(name=name, definition=definition, created_by=None)


def _worker(log: Path) -> subprocess.Popen[str]:
    name = f"bench-pipeline-{os.getpid()}@%h"
    cmd = [sys.executable, "-m", "celery", "-A", "cxplatform", "worker", "-Q", "ml", "-c", "1", "-P", "solo",
           "--without-mingle", "--without-gossip", "-l", "warning", "-n", name]  # fmt: skip
    out = log.open("w")
    return subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT, text=True)


def _run_once(tenant: Any) -> dict[str, Any]:
    from personalization import services
    from tenants.context import tenant_context
    from tenants.models import Job

    with tenant_context(tenant):
        job = services.pipeline_start(params={"reason": "bench"})
        sent = time.monotonic()
        while True:
            job = Job.objects.get(pk=job.pk)
            if job.is_finished:
                break
            time.sleep(0.5)
        if job.status != "succeeded":
            raise SystemExit(f"the training job failed: {job.message}\n{job.error[-3000:]}")
        result = dict(job.result)
        result["job_seconds"] = (job.finished_at - job.started_at).total_seconds()
        result["end_to_end_seconds"] = time.monotonic() - sent
        return result


def _report(result: dict[str, Any]) -> None:
    own = all(t.get("own_peak") for t in result["timings"])
    print(f"{'stage':<32}{'wall s':>9}{'cpu s':>9}{'RSS at start':>14}{'own peak MB':>13}")
    for t in result["timings"]:
        start = t.get("start_mb")
        print(f"{t['stage']:<32}{t['seconds']:>9.2f}{t.get('cpu_seconds', float('nan')):>9.2f}"
              f"{start if start is not None else float('nan'):>14.0f}{t['peak_mb']:>13.0f}")  # fmt: skip
    print("own peak = the worker's peak RSS during that stage alone" if own else
          "peak = the worker's running peak RSS (this OS cannot restart the count per stage)")  # fmt: skip
    total, peak = result["job_seconds"], result["peak_mb"]
    print(f"{'sum of stages':<32}{result['total_seconds']:>9.2f}")
    print(f"{'job (started -> finished)':<32}{total:>9.2f}")
    print(f"{'end to end (queued -> seen done)':<32}{result['end_to_end_seconds']:>9.2f}")
    print(f"worker peak RSS {peak:.0f} MB; customers scored {result['scored']:,}")
    print(f"versions: { {k: v['status'] for k, v in result['versions'].items()} }; skipped: {result['skipped']}")
    print(f"rule segments: {result['rule_segments']}")
    ok_t, ok_m = total <= TARGET_SECONDS, peak <= TARGET_MB
    verdict = {True: "met", False: "NOT met"}
    print(f"target <= {TARGET_SECONDS:.0f} s: {verdict[ok_t]}; <= {TARGET_MB:.0f} MB: {verdict[ok_m]}")


def main() -> None:
    args = _args()
    _ensure_database(args.database_url)
    _setup(args)
    tenant = _ensure_data(args)
    _ensure_rule_segments(tenant)
    with open("/proc/loadavg") as fh:
        print(f"load average before: {fh.read().split()[:3]} on {os.cpu_count()} cores (shared machine)")
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-pipeline-worker-{os.getpid()}.log"
    worker = _worker(log)
    try:
        time.sleep(3)
        for n in range(args.runs):
            print(f"== training run {n + 1} of {args.runs} on one ml worker (solo pool), started for this bench")
            _report(_run_once(tenant))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    with open("/proc/loadavg") as fh:
        print(f"load average after: {fh.read().split()[:3]}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Rule segments at benchmark size: live-count latency and bulk refresh time of representative
definitions on one tenant seeded with `seed_demo` (default 100,000 customers, 1,000,000 orders).

    DATABASE_URL=postgres://cx@127.0.0.1:5432/cx_seg .venv/bin/python bench/bench_rule_segments.py \
        [--customers N] [--orders N] [--fresh]

The seeded tenant (slug starting "bench-rules") is kept and reused by later runs of the same size
(--fresh seeds a new one; --tenant SLUG uses an existing tenant, such as bench_pipeline.py's `bench-roasters` in
its database). Prints one line per measure; results also go to bench/out/rule_segments.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DB = "postgres://cx@127.0.0.1:5432/cx_seg"
NAME = "Bench rules"


def seed(customers: int, orders: int, env: dict[str, str]) -> str:
    stamp = f"{datetime.now(UTC):%Y%m%d%H%M%S}"
    out = subprocess.run(
        [PYTHON, "manage.py", "create_tenant", f"{NAME} {customers} {stamp}", "--owner", "bench-rules@x.test"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    slug = out.split("slug ")[1].split(",")[0]
    started = time.monotonic()
    subprocess.run(
        [PYTHON, "manage.py", "seed_demo", "--tenant", slug, "--customers", str(customers), "--orders", str(orders),
         "--seed", "7"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    print(f"seeded {slug}: {customers:,} customers, {orders:,} orders in {time.monotonic() - started:.0f} s")
    return slug


def timed(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="seed a new tenant even if one of this size exists")
    parser.add_argument("--tenant", help="use this tenant (slug), e.g. bench_pipeline's bench-roasters, instead")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DB)
    if not os.environ["DATABASE_URL"].startswith("postgres"):
        print("bench_rule_segments needs PostgreSQL (DATABASE_URL=postgres://...)")
        return 2
    env = dict(os.environ)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings")
    import django

    django.setup()
    from journeys.models import Customer, Order, Product
    from personalization.models import RuleSegment
    from personalization.rules import selectors, services
    from tenants.context import all_tenants, tenant_context
    from tenants.models import Tenant

    slug = args.tenant
    if slug is None and not args.fresh:
        with all_tenants():
            for tenant in Tenant.objects.filter(name__startswith=f"{NAME} {args.customers} ").order_by("-pk"):
                if Customer.all_tenants.filter(tenant=tenant).count() >= args.customers:
                    slug = tenant.slug
                    break
    slug = slug or seed(args.customers, args.orders, env)
    with all_tenants():
        tenant = Tenant.objects.get(slug=slug)
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics after the bulk load, as autovacuum would give them
        for table in ("journeys_customer", "journeys_order", "journeys_orderline", "journeys_event"):
            cursor.execute(f"ANALYZE {table}")

    with tenant_context(tenant):
        n_customers, n_orders = Customer.objects.count(), Order.objects.count()
    print(f"tenant {tenant.slug}: {n_customers:,} customers, {n_orders:,} orders")
    results: dict[str, Any] = {"customers": n_customers, "orders": n_orders, "measures": {}}
    with tenant_context(tenant):
        RuleSegment.objects.all().delete()
        category = Product.objects.exclude(category="").values_list("category", flat=True).order_by("category")[0]
        definitions: dict[str, Any] = {
            "browsed 7d, no order 7d": {"all": [
                {"field": "event", "event_type": "product_view", "days": 7, "op": "at_least", "value": 1},
                {"field": "orders_in_window", "days": 7, "op": "none"}]},
            "lapsed high value": {"all": [
                {"field": "revenue", "op": "gte", "value": 150},
                {"field": "days_since_last_order", "op": "gt", "value": 90}]},
            "nested and/or/not": {"all": [
                {"field": "consent_marketing", "op": "is_true"},
                {"any": [{"field": "categories_bought", "op": "includes_any", "value": [category]},
                         {"field": "aov", "op": "gt", "value": 30}]},
                {"not": {"field": "attribute", "path": "city", "type": "text", "op": "eq", "value": "Lisbon"}}]},
            "cart abandoners 30d": {"all": [
                {"field": "event", "event_type": "add_to_cart", "days": 30, "op": "at_least", "value": 2},
                {"field": "orders_in_window", "days": 30, "op": "none"}]},
        }  # fmt: skip
        for name, definition in definitions.items():
            seconds, count = timed(lambda d=definition: selectors.definition_count(definition=d), repeat=3)
            results["measures"][f"count: {name}"] = {"seconds": round(seconds, 3), "members": count}
            print(f"live count   {name:<26} {count:>8,} members  {seconds * 1000:8.0f} ms (median of 3)")
        segments = {}
        for name, definition in definitions.items():
            seconds, segment = timed(
                lambda n=name, d=definition: services.rule_segment_create(name=n, definition=d, created_by=None)
            )
            segments[name] = segment
            results["measures"][f"create: {name}"] = {"seconds": round(seconds, 3), "members": segment.member_count}
            print(f"create+fill  {name:<26} {segment.member_count:>8,} members  {seconds * 1000:8.0f} ms")
        lapsed, nested = segments["lapsed high value"].pk, segments["nested and/or/not"].pk
        combo_def = {
            "all": [
                {"field": "segment", "op": "in", "value": lapsed},
                {"field": "segment", "op": "not_in", "value": nested},
            ]
        }
        seconds, combo = timed(
            lambda: services.rule_segment_create(name="segment of segments", definition=combo_def, created_by=None)
        )
        combo_result = {"seconds": round(seconds, 3), "members": combo.member_count}
        results["measures"]["create: segment of segments"] = combo_result
        print(f"create+fill  {'segment of segments':<26} {combo.member_count:>8,} members  {seconds * 1000:8.0f} ms")
        seconds, refreshed = timed(lambda: services.rule_segments_refresh(tenant=tenant))
        results["measures"]["refresh all dynamic (no change)"] = {"seconds": round(seconds, 3), "segments": refreshed}
        print(f"refresh all  {refreshed} dynamic segments, nothing changed: {seconds:.2f} s")
        RuleSegment.objects.all().delete()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["peak_mb"] = round(peak_mb)
    print(f"peak memory of this process: {peak_mb:.0f} MB (shared 2-core machine, figures are noisy)")
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "rule_segments.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

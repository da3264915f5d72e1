#!/usr/bin/env python3
"""CSV import of 1,000,000 order lines (about 400,000 orders of 1–4 lines) into a tenant with 20,000
customers and the demo catalogue: wall time and peak memory (max RSS) of the process running the import.

    DATABASE_URL=postgres://cx@127.0.0.1:5432/cx .venv/bin/python bench/bench_import.py [--lines 1000000]

Runs the import in a child process through the real job path: the upload is stored (import_start) and the
job runs on the in-process job thread, as in the embedded mode (see child() for what is not covered).
Target: <= 90 s and <= 500 MB. Results also go to bench/out/import.json. Deletes its tenant's rows after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DB = "postgres://cx@127.0.0.1:5432/cx"


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def child(path: str, slug: str) -> None:
    """Import the file the way the dashboard and the API do, and print the figures as JSON: import_start
    stores the upload in MEDIA_ROOT and creates the job; with no broker the job runs on the in-process job
    thread (the embedded mode's worker), through the same JobTask and import_csv_task as a Celery worker.
    Not covered: the HTTP request itself (the web process streams a multipart upload to a temporary file
    before the view hands it over). Peak memory is this process's max RSS: storing the upload and the job."""
    os.environ["CELERY_BROKER_URL"] = ""  # the in-process job thread instead of a Celery worker
    os.environ["CX_TASKS_INLINE"] = "false"
    setup_django()
    from django.core.files import File

    from journeys.imports import import_start
    from tenants.context import tenant_context
    from tenants.models import JobStatus, Tenant

    tenant = Tenant.objects.get(slug=slug)
    started = time.monotonic()
    progress: list[tuple[float, int]] = []
    with tenant_context(tenant):
        with open(path, "rb") as fh:
            job = import_start(kind="orders", upload=File(fh, name="orders.csv"), user=None)
        stored_at = time.monotonic()
        while True:
            time.sleep(0.5)
            job.refresh_from_db()
            if not progress or progress[-1][1] != job.progress:
                progress.append((round(time.monotonic() - started, 1), job.progress))
            if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                break
        default_storage_delete(job.params["path"])
    elapsed = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = job.result or {}
    print(json.dumps({"seconds": elapsed, "upload_seconds": stored_at - started, "peak_mb": peak_mb,
                      "status": job.status, "message": job.message, "rows": result.get("rows", 0),
                      "stored": result.get("stored", 0), "errors": result.get("error_count", 0),
                      "progress": progress, "job": job.pk}))  # fmt: skip


def default_storage_delete(path: str) -> None:
    from django.core.files.storage import default_storage

    default_storage.delete(path)


def write_csv(path: str, lines: int, customers: int, skus: list[str]) -> int:
    rng = random.Random(1)
    written = order = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("order_id,customer_id,placed_at,status,currency,sku,quantity,unit_price\n")
        while written < lines:
            order += 1
            customer = f"DW{10000 + rng.randrange(customers)}"
            placed = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(7, 22):02d}:15:00-06:00"
            status = "fulfilled" if rng.random() < 0.96 else "refunded"
            for _ in range(min(rng.randint(1, 4), lines - written)):
                price = f"{rng.randint(3, 60)},{rng.choice(['00', '50', '95'])}"  # decimal commas, quoted below
                fh.write(
                    f'IMP-{order},{customer},{placed},{status},USD,{rng.choice(skus)},{rng.randint(1, 3)},"{price}"\n'
                )
                written += 1
    return order


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--child", nargs=2, metavar=("PATH", "SLUG"), help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    os.environ["DATABASE_URL"] = os.environ.get("DATABASE_URL", DEFAULT_DB)
    if not os.environ["DATABASE_URL"].startswith("postgres"):
        print("bench_import needs PostgreSQL (DATABASE_URL=postgres://...)")
        return 2
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    setup_django()
    from django.core.management import call_command

    from journeys.demo.generator import PRODUCTS
    from tenants.models import User
    from tenants.services import tenant_create

    owner, _ = User.objects.get_or_create(email="bench@x.test")
    tenant = tenant_create(name=f"Bench import {datetime.now(UTC):%Y%m%d%H%M%S}", owner=owner)
    print(f"tenant {tenant.slug}: seeding {args.customers:,} customers and the catalogue ...", flush=True)
    call_command("seed_demo", "--tenant", tenant.slug, "--customers", str(args.customers), "--orders", "0")
    skus = [p.sku for p in PRODUCTS]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "orders.csv")
        orders = write_csv(path, args.lines, args.customers, skus)
        size_mb = os.path.getsize(path) / 1e6
        print(f"file: {args.lines:,} lines, {orders:,} orders, {size_mb:.0f} MB; importing ...", flush=True)
        wall_start = time.monotonic()
        done = subprocess.run(
            [PYTHON, __file__, "--child", path, tenant.slug], cwd=ROOT, capture_output=True, text=True, check=False
        )
        wall = time.monotonic() - wall_start
    if done.returncode:
        print(done.stderr[-3000:])
        return 1
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update({"lines": args.lines, "orders": orders, "file_mb": round(size_mb), "process_wall_s": round(wall, 1)})
    print(f"job {result['job']}: {result['status']} ({result['message']}); progress (s, %): {result['progress']}")
    print(f"import: {result['stored']:,} of {result['rows']:,} rows stored, {result['errors']} errors")
    print(f"storing the upload took {result['upload_seconds']:.1f} s of the wall time")
    print(
        f"wall time {result['seconds']:.1f} s (target <= 90 s); "
        f"peak memory {result['peak_mb']:.0f} MB (target <= 500 MB)"
    )
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "import.json").write_text(json.dumps(result, indent=2))
    if not args.keep:
        from django.db import connection

        from tenants.context import all_tenants

        tables = ("journeys_orderline", "journeys_order", "journeys_feedback", "journeys_event",
                  "journeys_visitoridentity", "journeys_customer", "journeys_product")  # fmt: skip
        with all_tenants(), connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [tenant.pk])
        with connection.cursor() as cursor:  # as autovacuum would (a machine may run without it)
            cursor.execute("VACUUM " + ", ".join(tables))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

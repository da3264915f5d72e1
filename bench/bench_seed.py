#!/usr/bin/env python3
"""Demo generation at benchmark size: `seed_demo --customers 100000 --orders 1000000` on PostgreSQL,
wall time and peak memory of the command.

    DATABASE_URL=postgres://cx@127.0.0.1:5432/cx .venv/bin/python bench/bench_seed.py [--customers N] [--orders N]

Results also go to bench/out/seed.json. Deletes its tenant's rows after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DB = "postgres://cx@127.0.0.1:5432/cx"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    env = {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DB)}
    if not env["DATABASE_URL"].startswith("postgres"):
        print("bench_seed needs PostgreSQL (DATABASE_URL=postgres://...)")
        return 2
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    name = f"Bench seed {datetime.now(UTC):%Y%m%d%H%M%S}"
    out = subprocess.run([PYTHON, "manage.py", "create_tenant", name, "--owner", "bench@x.test"], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    slug = out.split("slug ")[1].split(",")[0]
    tenant_id = int(out.split("id ")[1].split(")")[0])
    started = time.monotonic()
    done = subprocess.run(
        [PYTHON, "manage.py", "seed_demo", "--tenant", slug, "--customers", str(args.customers),
         "--orders", str(args.orders), "--seed", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(done.stdout.strip() or done.stderr[-3000:])
    result = {"customers": args.customers, "orders": args.orders, "seconds": round(wall, 1), "peak_mb": round(peak_mb),
              "output": done.stdout.strip()}  # fmt: skip
    print(f"seed_demo {args.customers:,} customers / {args.orders:,} orders: {wall:.1f} s wall, peak {peak_mb:.0f} MB")
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "seed.json").write_text(json.dumps(result, indent=2))
    if not args.keep:
        code = (
            "from django.db import connection\nfrom tenants.context import all_tenants\n"
            "tables = ('journeys_orderline','journeys_feedback','journeys_event','journeys_visitoridentity',"
            "'journeys_order','journeys_customer','journeys_product')\n"
            "with all_tenants(), connection.cursor() as c:\n"
            "    for t in tables:\n"
            f"        c.execute(f'DELETE FROM {{t}} WHERE tenant_id = {tenant_id}')\n"
            "with connection.cursor() as c:  # as autovacuum would (a machine may run without it)\n"
            "    c.execute('VACUUM ' + ', '.join(tables))\n"
        )
        subprocess.run([PYTHON, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=False, capture_output=True)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

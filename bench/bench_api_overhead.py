#!/usr/bin/env python3
"""Request overhead of the API: p50/p99 latency and requests/s of an authenticated
`GET /api/v1/jobs/` (20 jobs) under 32 concurrent clients, against gunicorn with uvicorn
workers on PostgreSQL, next to a trivial baseline (`GET /healthz`) measured in the same run.

    .venv/bin/python bench/bench_api_overhead.py [--workers 2,3] [--duration 20] [--connections 32] [--threads N]

Needs PostgreSQL (database `cx`, role `cx`, created when missing) and wrk (installed with
apt-get when missing and running as root). Uses Redis for the throttle cache when it answers,
as production does. wrk runs on the same 2 cores as the server, so it takes part of them.
Target: p99 <= 50 ms and >= 500 requests/s. Results also go to bench/out/api_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from common.speed import describe, reference_ms

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
TARGET_P99_MS = 50.0
TARGET_RPS = 500.0

# Counts non-2xx answers and prints wrk's own percentiles in a line we parse.
WRK_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d "
    .. "socket_errors=%d\\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.max, bad, e.connect + e.read + e.write + e.timeout))
end
"""


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def busy_cores(seconds: float = 2.0) -> float:
    """Cores kept busy by everything on the machine over `seconds` (from /proc/stat; 0 where unavailable)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields[:8]) - idle, sum(fields[:8])

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except OSError:
        return 0.0
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(total1 - total0, 1)


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None and os.geteuid() == 0:
        log("installing wrk (apt-get)")
        apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=apt_env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=apt_env, stdout=subprocess.DEVNULL)
        wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is missing: apt-get install wrk")
    return wrk


def ensure_database(database_url: str) -> None:
    """Create role cx and database cx (as in .ci/run) when the default URL is used and they are missing."""
    if database_url != "postgres://cx@127.0.0.1:5432/cx" or shutil.which("psql") is None:
        return

    def admin(sql: str) -> str:
        cmd = ["psql", "-X", "-q", "-U", "postgres", "-h", "127.0.0.1", "-d", "postgres", "-tAc", sql]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()

    if admin("SELECT 1 FROM pg_roles WHERE rolname = 'cx'") != "1":
        admin("CREATE ROLE cx LOGIN CREATEDB")
    if admin("SELECT 1 FROM pg_database WHERE datname = 'cx'") != "1":
        admin("CREATE DATABASE cx OWNER cx")


def redis_answers(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except Exception:
        return False


def manage(env: dict[str, str], *args: str, timeout: int = 300) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


SEED_JOBS = """
from datetime import timedelta
from django.utils import timezone
from tenants.context import tenant_context
from tenants.models import Job, JobStatus, Tenant
tenant = Tenant.objects.get(pk={tenant_id})
now = timezone.now()
statuses = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.RUNNING, JobStatus.QUEUED]
with tenant_context(tenant):
    Job.objects.bulk_create([
        Job(tenant=tenant, kind="bench.export", status=statuses[i % 4], progress=(i * 5) % 101,
            message=f"step {{i}}", params={{"rows": i * 100}}, result={{"written": i * 100}},
            created=now - timedelta(minutes=i), started_at=now - timedelta(minutes=i))
        for i in range({count})
    ])
    print(Job.objects.count())
"""


CLEAN_UP = """
from tenants.context import all_tenants
from tenants.models import Tenant, User
with all_tenants():
    Tenant.objects.filter(pk={tenant_id}).delete()
User.objects.filter(email="{email}").delete()
"""


def prepare(env: dict[str, str], jobs: int) -> tuple[str, str]:
    """Migrate, create a tenant with an API key, seed its jobs; return the key and the clean-up script."""
    manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
    stamp = time.strftime("%Y%m%d%H%M%S")
    out = manage(env, "create_tenant", f"Bench Bakery {stamp}", "--owner", f"bench-{stamp}@bench.test", "--api-key")
    lines = out.strip().splitlines()
    match = re.search(r"\bid (\d+)\)", out)
    if match is None:
        sys.exit(f"could not read the tenant id from create_tenant:\n{out}")
    seeded = manage(env, "shell", "-v", "0", "-c", SEED_JOBS.format(tenant_id=match.group(1), count=jobs))
    count = seeded.strip().splitlines()[-1]
    log(f"tenant id {match.group(1)} with {count} jobs")
    return lines[-1].strip(), CLEAN_UP.format(tenant_id=match.group(1), email=f"bench-{stamp}@bench.test")


class Server:
    """gunicorn, in its own process group so that it can always be stopped whole."""

    def __init__(self, env: dict[str, str], workers: int, port: int, logfile: Path, kind: str = "asgi") -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.logfile = logfile.open("w")
        # asgi: what production runs (docker-compose's web). wsgi: threaded sync workers, for comparison only.
        if kind == "asgi":
            app = ["cxplatform.asgi:application", "-k", "cxplatform.server.UvicornWorker"]
        else:
            app = ["cxplatform.wsgi:application", "-k", "gthread", "--threads", "8"]
        cmd = [
            str(BIN / "gunicorn"), *app,
            "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.logfile, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.logfile.name}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer within {timeout} s; see {self.logfile.name}")

    def cpu_seconds(self) -> float:
        """CPU time used so far by gunicorn and its workers (its process group), from /proc."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[2]) == self.proc.pid:  # fields[2] is the process group id
                total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.logfile.close()


def get_json(url: str, key: str) -> dict[str, object]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def run_wrk(wrk: str, lua: Path, url: str, key: str | None, connections: int, seconds: int) -> dict[str, float]:
    cmd = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency", "-s", str(lua)]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    result = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^RESULT (.*)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    raw = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non2xx": raw["non2xx"],
        "socket_errors": raw["socket_errors"],
    }


def env_conn_max_age(args: argparse.Namespace) -> str:
    return str(args.conn_max_age if args.conn_max_age is not None else os.environ.get("DB_CONN_MAX_AGE", "default"))


def report(results: list[dict[str, Any]], args: argparse.Namespace, use_redis: bool) -> None:
    log("")
    log(
        f"GET under {args.connections} connections, {args.duration} s each, gunicorn + "
        f"{'uvicorn (ASGI)' if args.server == 'asgi' else 'gthread (WSGI)'} workers, "
        f"PostgreSQL{' + Redis throttle cache' if use_redis else ''}, "
        + ("psycopg pool (DB_POOL=true)" if args.pool else f"DB_CONN_MAX_AGE={env_conn_max_age(args)}")
        + (f", ASGI_THREADS={args.threads or os.environ.get('ASGI_THREADS', 'default')}" * (args.server == "asgi"))
    )
    background = ", ".join(f"{r['busy_before']:.2f}" for r in results if r["endpoint"] == "healthz")
    log(
        f"wrk (2 threads) shares the machine's {os.cpu_count()} cores with the server. Cores already busy with "
        f"other work just before each server started: {background} (0 on an idle machine)."
    )
    log(", ".join(sorted({describe(r["reference_ms"]) for r in results})) + ", just before each server started")
    log(
        "srv cpu: CPU time of gunicorn and its workers per request (PostgreSQL, Redis and wrk not included), "
        "a figure that depends little on what else the machine runs."
    )
    header = ("workers", "endpoint", "p50 ms", "p99 ms", "max ms", "req/s", "non-2xx", "errors", "srv cpu ms")
    log("{:>7} {:<9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10}".format(*header))
    for r in results:
        log(
            f"{r['workers']:>7.0f} {r['endpoint']:<9} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.1f} "
            f"{r['rps']:>8.0f} {r['non2xx']:>8.0f} {r['socket_errors']:>7.0f} {r['server_cpu_ms']:>10.2f}"
        )
    for workers in sorted({r["workers"] for r in results}):
        base = next(r for r in results if r["workers"] == workers and r["endpoint"] == "healthz")
        jobs = next(r for r in results if r["workers"] == workers and r["endpoint"] == "jobs")
        met = jobs["p99_ms"] <= TARGET_P99_MS and jobs["rps"] >= TARGET_RPS and jobs["non2xx"] == 0
        log(
            f"{workers:.0f} workers: jobs vs healthz: p50 x{jobs['p50_ms'] / base['p50_ms']:.1f}, "
            f"req/s x{jobs['rps'] / base['rps']:.2f}; target (p99 <= {TARGET_P99_MS:.0f} ms, "
            f">= {TARGET_RPS:.0f} req/s, no errors): {'MET' if met else 'MISSED'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="2,3", help="gunicorn worker counts to try, comma-separated")
    parser.add_argument("--duration", type=int, default=20, help="seconds of measured load per endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up load before each measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=20, help="job rows to seed for the bench tenant")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://cx@127.0.0.1:5432/cx")
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"))
    parser.add_argument("--server", choices=["asgi", "wsgi"], default="asgi", help="uvicorn workers, or gthread (WSGI)")
    parser.add_argument("--conn-max-age", help="DB_CONN_MAX_AGE for the server (default: the app's own default)")
    parser.add_argument("--pool", action="store_true", help="a psycopg pool instead of persistent connections")
    parser.add_argument("--threads", type=int, help="ASGI_THREADS: threads per worker running Django code")
    args = parser.parse_args()

    wrk = ensure_wrk()
    ensure_database(args.database_url)
    use_redis = bool(args.redis_url) and redis_answers(args.redis_url)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "cxplatform.settings"),
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url if use_redis else "",
        "CELERY_BROKER_URL": args.redis_url if use_redis else "",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "API_THROTTLE_RATE": "100000000/s",
        "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "LOG_LEVEL": "WARNING",
        "DB_POOL": "true" if args.pool else "false",  # docker-compose's web keeps persistent connections
        "CX_BOT_REPLIES": "worker",  # as docker-compose's web: the bot's model is loaded by chat_bot_worker, not here
    }
    if args.conn_max_age is not None:
        env["DB_CONN_MAX_AGE"] = args.conn_max_age
    if args.threads:
        env["ASGI_THREADS"] = str(args.threads)
    key, clean_up = prepare(env, args.jobs)

    lua = Path(tempfile.mkstemp(suffix=".lua")[1])
    lua.write_text(WRK_LUA)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    try:
        for workers in [int(w) for w in args.workers.split(",")]:
            background = busy_cores()
            speed = reference_ms()
            server = Server(env, workers, free_port(), out_dir / f"gunicorn-{workers}w.log", args.server)
            try:
                server.wait_ready()
                listing = get_json(server.url + "/api/v1/jobs/", key)
                if listing.get("count") != args.jobs:
                    raise RuntimeError(f"expected {args.jobs} jobs, the API returned {listing.get('count')}")
                for name, path, auth in (("healthz", "/healthz", None), ("jobs", "/api/v1/jobs/", key)):
                    run_wrk(wrk, lua, server.url + path, auth, args.connections, args.warmup)
                    cpu_before = server.cpu_seconds()
                    figures = run_wrk(wrk, lua, server.url + path, auth, args.connections, args.duration)
                    figures["server_cpu_ms"] = 1000 * (server.cpu_seconds() - cpu_before) / max(figures["requests"], 1)
                    results.append(
                        {
                            "workers": workers,
                            "endpoint": name,
                            "busy_before": background,
                            "reference_ms": speed,
                            **figures,
                        }
                    )
            finally:
                server.stop()
    finally:
        lua.unlink(missing_ok=True)
        try:
            manage(env, "shell", "-v", "0", "-c", clean_up)  # the bench tenant, its jobs and its owner
        except SystemExit as exc:
            log(f"warning: could not delete the bench tenant: {exc}")

    report(results, args, use_redis)
    (out_dir / "api_overhead.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A real Celery worker in a subprocess, on the test database and the Redis broker, for tests about the worker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

needs_worker = [
    pytest.mark.worker,
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL,
        reason="needs PostgreSQL and a Redis broker (set DATABASE_URL and REDIS_URL)",
    ),
]


@contextmanager
def celery_worker(
    log_dir: Path, *, queue: str, env: dict[str, str] | None = None, imports: str | None = None, pool: str = "solo"
) -> Iterator[subprocess.Popen[str]]:
    """Run one worker process (solo pool, or `pool` with one child) on `queue` until the block ends; its log's
    tail is printed afterwards. `env` adds variables (PYTHONPATH for a module of test tasks named by `imports`)."""
    db = connection.settings_dict
    full_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,  # this pytest-xdist process's broker (tests/conftest.py)
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "celery", "-A", "cxplatform", "worker", "-Q", queue, "-c", "1", "-P", pool,
           "--without-mingle", "--without-gossip", "-l", "info"]  # fmt: skip
    if imports:
        cmd += ["-I", imports]
    log_path = log_dir / "worker.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(log_path.read_text()[-3000:])

"""A real Celery worker process, on Redis and PostgreSQL, runs jobs and records their outcome."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tenants.context import tenant_context
from tenants.jobs import job_start
from tenants.models import Job, JobStatus, Tenant
from tenants.tasks import AUDIT_EXPORT
from tests.celery_worker import ROOT, celery_worker, needs_worker

pytestmark = needs_worker

HERE = Path(__file__).resolve().parent


@pytest.fixture
def worker(transactional_db: None, tmp_path: Path, settings: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    settings.CX_TASKS_INLINE = False  # type: ignore[attr-defined]
    settings.MEDIA_ROOT = str(tmp_path)  # type: ignore[attr-defined]
    env = {"MEDIA_ROOT": str(tmp_path), "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    with celery_worker(tmp_path, queue="default", env=env, imports="worker_jobs") as proc:
        yield proc


def _wait_finished(job: Job, timeout: float = 90) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job.kind} still {job.status} after {timeout}s: {job.message}")


def test_real_worker_runs_success_failure_and_retry(worker: subprocess.Popen[str], tenant: Tenant) -> None:
    import worker_jobs  # noqa: F401 - registers the test job kinds in this process too

    with tenant_context(tenant):
        ok = job_start(kind=AUDIT_EXPORT)
        bad = job_start(kind="test.worker_fails")
        flaky = job_start(kind="test.worker_flaky")
        assert Job.objects.get(pk=ok.pk).status == JobStatus.QUEUED  # nothing ran in this process

        ok = _wait_finished(ok)
        assert ok.status == JobStatus.SUCCEEDED, ok.error
        assert ok.progress == 100
        assert ok.result["rows"] >= 1
        assert (Path(settings.MEDIA_ROOT) / ok.result["file"]).exists()

        bad = _wait_finished(bad)
        assert bad.status == JobStatus.FAILED
        assert "ValueError: cannot parse row 7" in bad.error
        assert "Traceback" in bad.error

        flaky = _wait_finished(flaky)
        assert flaky.status == JobStatus.SUCCEEDED, flaky.error
        assert flaky.attempts == 2  # retried once, with backoff, after the simulated connection drop
        assert flaky.result == {"attempts": 2}
    assert worker.poll() is None, "the worker survived the failing job"

"""Job tasks used only by the worker test (loaded into the worker with `--include worker_jobs`)."""

from __future__ import annotations

from django.db import OperationalError

from tenants.jobs import job_task
from tenants.models import Job


@job_task(kind="test.worker_fails", queue="default")
def worker_fails(job: Job) -> dict[str, object]:
    raise ValueError("cannot parse row 7: 'abc' is not a number")


@job_task(kind="test.worker_flaky", queue="default")
def worker_flaky(job: Job) -> dict[str, object]:
    if job.attempts == 1:
        raise OperationalError("server closed the connection unexpectedly")
    return {"attempts": job.attempts}

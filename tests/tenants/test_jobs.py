"""Jobs run inline here (or on the in-process thread pool); status, progress, result and errors are recorded."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from tenants.context import tenant_context
from tenants.jobs import JobFailed, job_start, job_task
from tenants.models import Job, JobStatus, Tenant
from tests.tenants.stepped_jobs import STEPPED, Stepper


@job_task(kind="test.fails", queue="default")
def _failing_job(job: Job) -> dict[str, object]:
    raise ValueError("the input was bad on purpose")


@job_task(kind="test.refuses", queue="default")
def _refusing_job(job: Job) -> dict[str, object]:
    raise JobFailed("Nothing to export yet.")


def test_audit_export_job_succeeds_with_a_downloadable_file(owner_client: Client, tenant: Tenant) -> None:
    owner_client.post("/settings/jobs/")
    with tenant_context(tenant):
        job = Job.objects.get()
    assert job.status == JobStatus.SUCCEEDED and job.progress == 100 and job.attempts == 1
    assert job.started_at and job.finished_at and job.result["rows"] >= 1
    assert default_storage.exists(job.result["file"])
    download = owner_client.get(f"/settings/jobs/{job.pk}/download/")
    assert b"tenant.created" in b"".join(download.streaming_content)  # type: ignore[attr-defined]


def test_failing_job_is_recorded_with_its_error(tenant: Tenant) -> None:
    with tenant_context(tenant):
        job = job_start(kind="test.fails")
    assert job.status == JobStatus.FAILED
    assert "ValueError: the input was bad on purpose" in job.error
    assert "Traceback" in job.error and job.finished_at


def test_job_failed_gives_a_user_message_without_traceback(tenant: Tenant) -> None:
    with tenant_context(tenant):
        job = job_start(kind="test.refuses")
    assert (job.status, job.error, job.message) == (
        JobStatus.FAILED,
        "Nothing to export yet.",
        "Nothing to export yet.",
    )


def test_jobs_page_polls_slowly_when_idle_and_every_second_while_a_job_runs(
    owner_client: Client, tenant: Tenant
) -> None:
    page = owner_client.get("/settings/jobs/").content.decode()
    assert 'hx-trigger="every 5s"' in page  # so a job started elsewhere appears by itself
    with tenant_context(tenant):
        job = Job.objects.create(kind="audit_log.export", status=JobStatus.RUNNING, progress=40, message="halfway")
    partial = owner_client.get("/settings/jobs/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in partial and 'value="40"' in partial and "<html" not in partial
    with tenant_context(tenant):
        Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, progress=100)
    done = owner_client.get("/settings/jobs/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 5s"' in done and "Succeeded" in done


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def job_now(tenant: Tenant, pk: int) -> Job:
    with tenant_context(tenant):
        return Job.objects.get(pk=pk)


@pytest.fixture
def thread_pool_jobs(settings) -> None:  # type: ignore[no-untyped-def]
    """The embedded default: no broker and no inline mode, so jobs go to the in-process thread pool."""
    settings.CX_TASKS_INLINE = False
    settings.CELERY_BROKER_URL = ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("thread_pool_jobs")
def test_without_a_broker_a_job_runs_in_a_background_thread(tenant: Tenant) -> None:
    stepper = Stepper()
    with tenant_context(tenant):
        job = job_start(kind=STEPPED, params=stepper.params)
    assert job.status == JobStatus.QUEUED  # job_start returned at once: the job waits for its first step
    wait_for(lambda: job_now(tenant, job.pk).status == JobStatus.RUNNING)
    stepper.step(30)
    wait_for(lambda: job_now(tenant, job.pk).progress == 30)
    assert job_now(tenant, job.pk).status == JobStatus.RUNNING
    stepper.finish()
    wait_for(lambda: job_now(tenant, job.pk).status == JobStatus.SUCCEEDED)
    done = job_now(tenant, job.pk)
    assert done.progress == 100 and done.result["steps"] == 1 and done.result["thread"].startswith("cx-job")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("thread_pool_jobs")
def test_without_a_broker_the_page_answers_before_the_job_finishes(owner_client: Client, tenant: Tenant) -> None:
    response = owner_client.post("/settings/jobs/")
    assert response.status_code == 302
    with tenant_context(tenant):
        job = Job.objects.get()
    wait_for(lambda: job_now(tenant, job.pk).status == JobStatus.SUCCEEDED)
    assert default_storage.exists(job_now(tenant, job.pk).result["file"])


def test_stale_running_jobs_are_failed(tenant: Tenant) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from tenants.jobs import jobs_fail_stale

    with tenant_context(tenant):
        job = Job.objects.create(kind="x", status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=2))
    assert jobs_fail_stale() == 1
    with tenant_context(tenant):
        job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "worker" in job.error

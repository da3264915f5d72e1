"""Jobs run in-process here; their status, progress, result and errors are recorded."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.test import Client

from tenants.context import tenant_context
from tenants.jobs import JobFailed, job_start, job_task
from tenants.models import Job, JobStatus, Tenant


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


def test_jobs_page_polls_only_while_something_runs(owner_client: Client, tenant: Tenant) -> None:
    page = owner_client.get("/settings/jobs/").content.decode()
    assert "hx-trigger" not in page
    with tenant_context(tenant):
        Job.objects.create(kind="audit_log.export", status=JobStatus.RUNNING, progress=40, message="halfway")
    partial = owner_client.get("/settings/jobs/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in partial and 'value="40"' in partial and "<html" not in partial


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

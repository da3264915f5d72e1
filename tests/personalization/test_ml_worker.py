"""A real Celery worker on the `ml` queue runs the training pipeline against PostgreSQL and Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from personalization import services
from personalization.models import CustomerScore, ModelStatus, ModelVersion
from tenants.context import tenant_context
from tenants.models import Job, JobStatus, Tenant
from tests.celery_worker import celery_worker, needs_worker
from tests.personalization.conftest import DEMO_END, seed

pytestmark = needs_worker


@pytest.fixture
def ml_worker(transactional_db: None, tmp_path: Path, settings: pytest.FixtureRequest) -> Iterator[None]:
    settings.CX_TASKS_INLINE = False  # type: ignore[attr-defined]
    with celery_worker(tmp_path, queue="ml"):
        yield


def test_worker_trains_and_scores_and_refuses_a_second_run(ml_worker: None, tenant: Tenant) -> None:
    seed(tenant, 700)
    with tenant_context(tenant):
        job = services.pipeline_start(params={"cutoff": DEMO_END.isoformat()})
        assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED  # nothing ran in this process
        with pytest.raises(services.PipelineBusyError):
            services.pipeline_start()
        deadline = time.monotonic() + 240
        progress_seen = set()
        while time.monotonic() < deadline:
            job.refresh_from_db()
            progress_seen.add(job.progress)
            if job.is_finished:
                break
            time.sleep(0.2)
        assert job.status == JobStatus.SUCCEEDED, job.error or job.message
        assert len(progress_seen) >= 3  # progress moved through stages, not straight from 0 to 100
        assert ModelVersion.objects.filter(status=ModelStatus.ACTIVE).count() == 4
        assert CustomerScore.objects.count() == 700
        assert job.result["model_versions_used"]["churn"] != "fallback"


def test_worker_lost_and_transient_failures_are_retried_and_leave_no_candidates(
    transactional_db: None, tmp_path: Path, settings: pytest.FixtureRequest, tenant: Tenant
) -> None:
    """Attempt 1: the worker process dies while training churn (after RFM, clusters and CLV were written); the
    message is redelivered. Attempt 2: a transient database error; retried with backoff. Attempt 3 succeeds."""
    settings.CX_TASKS_INLINE = False  # type: ignore[attr-defined]
    seed(tenant, 700)
    faults = {"CX_TEST_FAULTS": f"{tmp_path / 'attempts'}:kill,transient"}
    with celery_worker(tmp_path, queue="ml", env=faults, imports="tests.personalization.worker_faults",
                       pool="prefork"), tenant_context(tenant):  # fmt: skip
        job = services.pipeline_start(params={"cutoff": DEMO_END.isoformat()})
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.is_finished:
                break
            time.sleep(0.5)
        assert job.status == JobStatus.SUCCEEDED, job.error or job.message
        assert job.attempts == 3
        assert (tmp_path / "attempts").read_text() == "xxx"
        versions = ModelVersion.objects.filter(job=job)
        assert versions.filter(status=ModelStatus.ACTIVE).count() == 4
        # The two interrupted attempts each wrote RFM, clusters and CLV: none is left as a candidate.
        assert versions.filter(status=ModelStatus.REJECTED).count() == 6
        assert not ModelVersion.objects.filter(status=ModelStatus.CANDIDATE).exists()
        killed = versions.filter(status=ModelStatus.REJECTED).order_by("pk")[:3]
        assert all(v.checks[-1]["name"] == "run finished" for v in killed)  # rejected when the job was redelivered
        assert CustomerScore.objects.count() == 700

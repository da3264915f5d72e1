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

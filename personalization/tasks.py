"""Celery tasks of personalization: thin wrappers that run the pipeline service in the job's tenant."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from celery import shared_task
from django.db import connection

from personalization import services
from personalization.models import PersonalizationSettings
from tenants.context import all_tenants, tenant_context
from tenants.jobs import JobFailed, job_progress, job_task
from tenants.models import Job, Tenant

logger = logging.getLogger(__name__)

_LOCK_CLASS = 7305  # first key of the per-tenant advisory lock (second key: tenant id)


@contextmanager
def _tenant_lock(tenant_id: int) -> Iterator[None]:
    """One pipeline per tenant at a time, also across workers and redeliveries (PostgreSQL advisory lock)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_CLASS, tenant_id])
        if not cursor.fetchone()[0]:
            raise JobFailed("Another training run of this tenant is running; this one was not started.")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_CLASS, tenant_id])


def _run(job: Job, *, train: bool) -> dict[str, Any]:
    cutoff = job.params.get("cutoff")
    with _tenant_lock(job.tenant_id):
        return services.pipeline_run(
            job=job,
            train=train,
            cutoff=date.fromisoformat(cutoff) if cutoff else None,
            progress=lambda pct, msg: job_progress(job, pct, msg),
        )


@job_task(kind=services.PIPELINE_KIND, label="Train and score models", queue="ml", time_limit=3600)
def pipeline_task(job: Job) -> dict[str, Any]:
    """Train every model the tenant's data supports, activate the ones that pass, score every customer."""
    return _run(job, train=True)


@job_task(kind=services.SCORE_KIND, label="Score customers", queue="ml", time_limit=3600)
def score_task(job: Job) -> dict[str, Any]:
    """Score every customer with the active model versions (after an approval)."""
    return _run(job, train=False)


@shared_task(name="personalization.tasks.pipeline_nightly_task", queue="ml")
def pipeline_nightly_task() -> dict[str, int]:
    """Queue a training run for every tenant that has customers and has not turned nightly retraining off."""
    from journeys.models import Customer

    with all_tenants():
        off = set(PersonalizationSettings.all_tenants.filter(nightly_retrain=False).values_list("tenant_id", flat=True))
        with_customers = set(Customer.all_tenants.values_list("tenant_id", flat=True).distinct())
        tenants = list(Tenant.objects.filter(pk__in=with_customers - off))
    started = busy = 0
    for tenant in tenants:
        with tenant_context(tenant):
            try:
                services.pipeline_start(params={"reason": "nightly"})
                started += 1
            except services.PipelineBusyError:
                busy += 1
    logger.info("nightly retrain: %s started, %s already running", started, busy)
    return {"started": started, "busy": busy}

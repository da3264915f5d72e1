"""Celery tasks of the tenants app: thin wrappers around services."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from tenants.context import all_tenants
from tenants.jobs import job_progress, job_task, jobs_fail_stale
from tenants.models import AuditLogEntry, Invitation, Job

AUDIT_EXPORT = "audit_log.export"


@job_task(kind=AUDIT_EXPORT, label="Audit log export", queue="default", time_limit=600)
def audit_log_export_task(job: Job) -> dict[str, Any]:
    """Write the tenant's audit log to a CSV file the jobs page links to."""
    entries = AuditLogEntry.objects.select_related("actor", "api_key").order_by("created", "pk")
    total = entries.count()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["time_utc", "action", "actor", "api_key", "target", "ip", "data"])
    for n, entry in enumerate(entries.iterator(chunk_size=2000), start=1):
        writer.writerow(
            [
                entry.created.isoformat(),
                entry.action,
                entry.actor.email if entry.actor else "",
                entry.api_key.prefix if entry.api_key else "",
                entry.target,
                entry.ip or "",
                entry.data,
            ]
        )
        if n % 2000 == 0:
            job_progress(job, 100 * n / max(total, 1), f"{n} of {total} entries")
    path = default_storage.save(
        f"exports/{job.tenant_id}/audit-log-{job.pk}.csv", ContentFile(buffer.getvalue().encode())
    )
    return {"rows": total, "file": path}


@shared_task(name="tenants.tasks.jobs_fail_stale_task", queue="default")
def jobs_fail_stale_task() -> int:
    return jobs_fail_stale()


@shared_task(name="tenants.tasks.invitations_purge_expired_task", queue="default")
def invitations_purge_expired_task() -> int:
    """Delete invitations that expired more than 30 days ago. Crosses tenants."""
    with all_tenants():
        deleted, _ = Invitation.all_tenants.filter(
            accepted_at=None, expires_at__lt=timezone.now() - timedelta(days=30)
        ).delete()
    return deleted

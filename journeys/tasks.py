"""Celery tasks of journeys: thin wrappers that run a service in the job's tenant (set by JobTask)."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage

from journeys.exports import EXPORT_KIND, export_table
from journeys.imports import IMPORT_KIND, ImportFileError, import_run
from tenants.jobs import JobFailed, job_progress, job_task
from tenants.models import Job

__all__ = ["EXPORT_KIND", "IMPORT_KIND", "export_csv_task", "import_csv_task"]


@job_task(kind=IMPORT_KIND, queue="default", time_limit=3 * 3600)
def import_csv_task(job: Job) -> dict[str, Any]:
    """Import the uploaded file `params.path` as `params.kind`; the result is the row-by-row report."""
    path, kind = job.params["path"], job.params["kind"]
    if not default_storage.exists(path):
        raise JobFailed("The uploaded file is gone; upload it again.")
    size = default_storage.size(path)
    with default_storage.open(path, "rb") as fh:
        try:
            report, report_path = import_run(
                kind=kind, fh=fh, size=size, progress=lambda pct, msg: job_progress(job, pct, msg)
            )
        except ImportFileError as exc:
            raise JobFailed(str(exc)) from exc
    result = report.as_result()
    result["filename"] = job.params.get("filename", "")
    if report_path:
        result["file"] = report_path  # the jobs page offers it as a download
    return result


@job_task(kind=EXPORT_KIND, queue="default", time_limit=3600)
def export_csv_task(job: Job) -> dict[str, Any]:
    """Write the table `params.table` to a CSV file the jobs and import pages link to."""
    path, rows = export_table(
        table=job.params["table"], job_id=job.pk, progress=lambda pct, msg: job_progress(job, pct, msg)
    )
    return {"table": job.params["table"], "rows": rows, "file": path}

"""Background jobs: the Job record, how a job is started, and the Celery task base that runs it.

A job task is written as `def run(job: Job) -> dict` and decorated with `@job_task(kind=..., queue=...)`.
The base loads the job, sets its tenant, marks it running, records progress, result or error, and
retries transient failures with backoff. With no broker, jobs run in-process on a thread pool.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone

from tenants.context import all_tenants, tenant_context
from tenants.models import Job, JobStatus, User

logger = logging.getLogger(__name__)

_REGISTRY: dict[str, Task] = {}
_LABELS: dict[str, str] = {}
_executor: ThreadPoolExecutor | None = None

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


class JobFailed(Exception):
    """Raised by a job to fail with a message meant for the user (no retry)."""


def job_kind_label(kind: str) -> str:
    """The human name of a job kind ("Audit log export"), or the kind itself."""
    return _LABELS.get(kind, kind)


def job_progress(job: Job, percent: float, message: str = "") -> None:
    """Record progress (0–100) and a short message; doubles as the job's heartbeat."""
    job.progress = max(0, min(100, int(percent)))
    job.message = message[:255] if message else job.message
    job.heartbeat_at = timezone.now()
    Job.objects.filter(pk=job.pk).update(progress=job.progress, message=job.message, heartbeat_at=job.heartbeat_at)


class JobTask(Task):  # type: ignore[misc]
    """Celery task base for tenant jobs: tenant set, late ack, retry with backoff, failure recorded."""

    acks_late = True
    reject_on_worker_lost = True
    max_retries = 3
    retry_backoff_base = 5  # seconds; doubles per attempt, capped below
    retry_backoff_max = 300

    def execute(self, job_id: int, fn: Callable[[Job], dict[str, Any]]) -> None:
        with all_tenants():
            job = Job.all_tenants.select_related("tenant").filter(pk=job_id).first()
        if job is None:
            logger.warning("job %s does not exist; dropped", job_id)
            return
        if job.is_finished:  # idempotent: a redelivered message for a finished job does nothing
            return
        with tenant_context(job.tenant):
            self._run_job(job, fn)

    def _run_job(self, job: Job, fn: Callable[[Job], dict[str, Any]]) -> None:
        job.status, job.attempts = JobStatus.RUNNING, job.attempts + 1
        job.started_at = job.started_at or timezone.now()
        job.heartbeat_at, job.error, job.message = timezone.now(), "", "Running"
        job.save(update_fields=["status", "attempts", "started_at", "heartbeat_at", "error", "message"])
        try:
            result = fn(job)
        except TRANSIENT_ERRORS as exc:
            retries = getattr(self.request, "retries", 0) or 0
            if retries < self.max_retries and not getattr(self.request, "is_eager", False):
                countdown = min(self.retry_backoff_max, self.retry_backoff_base * 2**retries)
                close_old_connections()
                Job.objects.filter(pk=job.pk).update(
                    status=JobStatus.QUEUED, message=f"Temporary error, retrying in {countdown}s: {exc}"[:255]
                )
                raise self.retry(exc=exc, countdown=countdown) from exc
            self._fail(job, exc)
        except JobFailed as exc:
            self._fail(job, exc, with_traceback=False)
        except Exception as exc:
            self._fail(job, exc)
            raise
        else:
            job.status, job.progress, job.finished_at = JobStatus.SUCCEEDED, 100, timezone.now()
            job.result = result or {}
            job.message = "Done"
            job.save(update_fields=["status", "progress", "finished_at", "result", "message"])

    def _fail(self, job: Job, exc: BaseException, *, with_traceback: bool = True) -> None:
        if isinstance(exc, DatabaseError) and connection.in_atomic_block is False:
            close_old_connections()
        detail = "".join(traceback.format_exception(exc)) if with_traceback else ""
        error = f"{type(exc).__name__}: {exc}" if with_traceback else str(exc)
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            error=(error + ("\n\n" + detail if detail else ""))[:20000],
            message=str(exc)[:255] or type(exc).__name__,
        )
        job.status = JobStatus.FAILED


def job_task(
    *, kind: str, label: str = "", queue: str = "default", time_limit: int = 3600
) -> Callable[[Callable[[Job], dict[str, Any]]], Task]:
    """Register `fn(job) -> result dict` as the Celery task for jobs of `kind` (shown as `label`)."""

    def decorate(fn: Callable[[Job], dict[str, Any]]) -> Task:
        @shared_task(
            base=JobTask,
            bind=True,
            name=f"{fn.__module__}.{fn.__name__}",
            queue=queue,
            time_limit=time_limit,
            soft_time_limit=max(1, time_limit - 30),
        )
        def task(self: JobTask, job_id: int) -> None:
            self.execute(job_id, fn)

        _REGISTRY[kind] = task
        _LABELS[kind] = label or kind
        return task

    return decorate


def _run_in_process(task: Task, args: list[Any]) -> None:
    try:
        task.apply(args=args)
    finally:
        connection.close()


def job_start(
    *, kind: str, params: dict[str, Any] | None = None, created_by: User | None = None, run_now: bool = False
) -> Job:
    """Create a queued job for the current tenant and send it to its worker after commit; with `run_now`
    (operator commands, whose process would end before a background thread finished) run it here first."""
    task = _REGISTRY.get(kind)
    if task is None:
        raise KeyError(f"No job task registered for kind {kind!r}")
    job = Job.objects.create(kind=kind, params=params or {}, created_by=created_by, message="Waiting for a worker")
    if run_now or settings.CX_TASKS_INLINE:  # tests too: run now, inside the caller's transaction
        task.apply(args=[job.pk])
        job.refresh_from_db()
    else:
        transaction.on_commit(lambda: task_dispatch(task, job.pk))
    return job


def task_dispatch(task: Task, *args: Any) -> None:
    """Send `task` to a worker; with no broker (the embedded default) run it on this process's own small
    thread pool, and with CX_TASKS_INLINE (tests) here and now: both eagerly, so once (tasks retry only on a
    worker)."""
    global _executor
    if settings.CX_TASKS_INLINE:
        task.apply(args=list(args))
    elif settings.CELERY_BROKER_URL:
        task.apply_async(args=list(args))
    else:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cx-job")
        _executor.submit(_run_in_process, task, list(args))


def jobs_fail_stale(*, older_than: timedelta = timedelta(minutes=30)) -> int:
    """Fail running jobs whose worker stopped sending heartbeats (crashed or killed). Crosses tenants."""
    cutoff = timezone.now() - older_than
    with all_tenants():
        return Job.all_tenants.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            message="The worker stopped responding",
            error=f"No heartbeat since before {cutoff:%Y-%m-%d %H:%M:%S} UTC; the worker was lost.",
        )

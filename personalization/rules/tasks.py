"""Celery tasks of rule segments: thin wrappers that find the tenant and call the refresh service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from personalization.models import RuleSegment, SegmentKind
from personalization.rules.services import rule_segments_refresh
from tenants.context import all_tenants
from tenants.models import Tenant

logger = logging.getLogger(__name__)


@shared_task(
    name="personalization.rules.tasks.rule_segments_refresh_task",
    queue="ml",
    acks_late=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=3,
    time_limit=1800,
    soft_time_limit=1770,
)
def rule_segments_refresh_task(tenant_id: int) -> int:
    """Refresh the dynamic rule segments of one tenant; returns how many were refreshed."""
    with all_tenants():
        tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    return rule_segments_refresh(tenant=tenant)


@shared_task(name="personalization.rules.tasks.rule_segments_refresh_all_task", queue="ml")
def rule_segments_refresh_all_task() -> int:
    """From beat: one refresh task per tenant that has dynamic segments (crosses tenants to find them)."""
    with all_tenants():
        tenant_ids = sorted(
            set(RuleSegment.all_tenants.filter(kind=SegmentKind.DYNAMIC).values_list("tenant_id", flat=True))
        )
    for tenant_id in tenant_ids:
        if settings.CELERY_BROKER_URL:
            rule_segments_refresh_task.delay(tenant_id)
        else:  # embedded mode: no broker, refresh here
            rule_segments_refresh_task.apply(args=[tenant_id])
    return len(tenant_ids)

"""A real Celery worker (Redis broker, PostgreSQL) delivers a webhook, retrying a failing endpoint (a real local
HTTP server) with exponential backoff until it answers 200."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenants.context import tenant_context
from tenants.models import Tenant, WebhookDelivery, WebhookDeliveryStatus
from tenants.webhooks import SIGNATURE_HEADER, verify_signature, webhook_emit, webhook_endpoint_create
from tests.celery_worker import celery_worker, needs_worker
from tests.tenants.test_webhooks import Receiver

pytestmark = needs_worker


@pytest.fixture
def worker(transactional_db: None, tmp_path: Path, settings: pytest.FixtureRequest) -> Iterator[None]:
    settings.CX_TASKS_INLINE = False  # type: ignore[attr-defined]
    settings.WEBHOOK_RETRY_BASE_SECONDS = 1  # type: ignore[attr-defined]
    with celery_worker(tmp_path, queue="default", env={"WEBHOOK_RETRY_BASE_SECONDS": "1"}):
        yield


def test_worker_retries_a_failing_endpoint_with_backoff(worker: None, tenant: Tenant) -> None:
    with Receiver([500, 502]) as receiver, tenant_context(tenant):
        _, secret = webhook_endpoint_create(url=receiver.url, events=["conversation.resolved"])
        [delivery] = webhook_emit(event="conversation.resolved", payload={"conversation": 42})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            delivery = WebhookDelivery.objects.get(pk=delivery.pk)
            if delivery.status == WebhookDeliveryStatus.SUCCEEDED:
                break
            time.sleep(0.3)
        assert delivery.status == WebhookDeliveryStatus.SUCCEEDED, (delivery.status, delivery.error)
        assert delivery.attempts == 3 and delivery.response_code == 200
        times = [r["at"] for r in receiver.requests]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) == 3
        assert 0.9 <= gaps[0] < gaps[1]  # 1 s, then 2 s: exponential
        assert gaps[1] >= 1.9
        for request in receiver.requests:  # every attempt is signed afresh
            verify_signature(secret=secret, body=request["body"], header=request["headers"][SIGNATURE_HEADER])

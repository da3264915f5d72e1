"""Signed webhooks: endpoints per tenant, one delivery per (event, endpoint), sent by Celery with retries.

Each request carries `CX-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the endpoint's
secret>`, plus `CX-Event` and `CX-Delivery` (the event id, stable across retries, to de-duplicate on).
Receivers check it with `verify_signature` (or the recipe in docs/webhooks.md), rejecting timestamps
outside a tolerance window so a captured request cannot be replayed later. A failed attempt (network
error, timeout, any non-2xx answer) is retried with exponential backoff: base, 2x base, 4x base, ...
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from tenants.context import all_tenants, current_tenant, tenant_context
from tenants.models import Tenant, User, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "CX-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_BACKOFF_SECONDS = 6 * 3600
EVENTS: dict[str, str] = {
    "conversation.created": "A visitor started a conversation",
    "conversation.handoff_requested": "The visitor or the bot asked for a person",
    "conversation.assigned": "A conversation was assigned to an agent",
    "conversation.resolved": "A conversation was resolved",
    "message.created": "A message was sent in a conversation",
    "feedback.created": "A visitor rated a conversation (CSAT)",
}
TEST_EVENT = "webhook.test"


class WebhookError(ValueError):
    """An endpoint change that cannot be made; the message is meant for the user."""


class InvalidSignature(Exception):
    """The request's signature is missing, malformed, wrong, or outside the tolerance window (a replay)."""


# -- signing -------------------------------------------------------------------------------------------
def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of "<timestamp>.<body>" with `secret`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `CX-Signature` value for `body` signed now (or at `timestamp`)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={sign(secret=secret, timestamp=ts, body=body)}"


def verify_signature(
    *, secret: str, body: bytes, header: str, tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None
) -> int:
    """Check a `CX-Signature` header against the raw request body; returns the signed timestamp.

    Raises InvalidSignature when the header is malformed, no v1 signature matches (compared in constant
    time), or the timestamp is more than `tolerance` seconds away from now (a replayed or stale request).
    """
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise InvalidSignature("the signature header has no valid timestamp (t=...)") from exc
    if not parts.get("v1"):
        raise InvalidSignature("the signature header has no v1 signature")
    expected = sign(secret=secret, timestamp=timestamp, body=body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts["v1"]):
        raise InvalidSignature("the signature does not match the body")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature(f"the timestamp is {int(current - timestamp)}s old, outside the {tolerance}s window")
    return timestamp


# -- endpoints -----------------------------------------------------------------------------------------
def _clean_events(events: Sequence[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise WebhookError(f"Unknown event(s): {', '.join(unknown)}.")
    return sorted(set(events))


def _check_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("https://", "http://")):
        raise WebhookError("The URL must start with https:// (or http:// for testing).")
    return url


def webhook_endpoint_create(
    *, url: str, events: Sequence[str] = (), description: str = "", created_by: User | None = None
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint with a fresh secret; returns it and the secret (to show the user once)."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint.objects.create(
        url=_check_url(url),
        events=_clean_events(events),
        description=description.strip()[:200],
        secret=secret,
        created_by=created_by,
    )
    return endpoint, secret


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    events: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> WebhookEndpoint:
    if url is not None:
        endpoint.url = _check_url(url)
    if events is not None:
        endpoint.events = _clean_events(events)
    if description is not None:
        endpoint.description = description.strip()[:200]
    if active is not None:
        endpoint.active = active
    endpoint.save()
    return endpoint


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """Replace the signing secret; returns the new one (shown once). Deliveries from now on use it."""
    endpoint.secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint.save(update_fields=["secret"])
    return endpoint.secret


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


# -- which events a tenant's endpoints want (cached: most tenants have none, and chat emits per message) ------
SUBSCRIBED_CACHE_SECONDS = 600
ALL_EVENTS = "*"


def _subscribed_keys(tenant_id: int) -> tuple[str, str]:
    # The database's name keeps tenants of different databases (test runs in parallel) apart.
    where = f"{connection.settings_dict['NAME']}:{tenant_id}"
    return f"cx:wh:gen:{where}", f"cx:wh:events:{where}"


def _subscribed_events(tenant_id: int) -> frozenset[str]:
    """The events some active endpoint of the current tenant subscribes to (ALL_EVENTS: every event).

    Kept in the shared cache with the tenant's endpoint generation at the time it was read; any change to an
    endpoint sets a new generation (`_endpoints_changed`), so a value read before the change is never used
    after it, in any process. Without the cache (Redis down) it is read from the database."""
    gen_key, events_key = _subscribed_keys(tenant_id)
    try:
        found: dict[str, Any] | None = cache.get_many([gen_key, events_key])
    except Exception:  # noqa: BLE001 - the database answers instead
        found = None
    generation = found.get(gen_key, "") if found is not None else None
    cached = found.get(events_key) if found else None
    if cached is not None and cached[0] == generation:
        return frozenset(cached[1])
    events: set[str] = set()
    for subscribed in WebhookEndpoint.objects.filter(active=True).values_list("events", flat=True):
        events.update(subscribed or [ALL_EVENTS])
    if generation is not None:
        with contextlib.suppress(Exception):  # read from the database next time
            cache.set(events_key, (generation, sorted(events)), timeout=SUBSCRIBED_CACHE_SECONDS)
    return frozenset(events)


def _new_generation(tenant_id: int) -> None:
    try:
        cache.set(_subscribed_keys(tenant_id)[0], uuid.uuid4().hex, timeout=None)
    except Exception:
        logger.warning("could not invalidate the webhook endpoints of tenant %s", tenant_id, exc_info=True)


@receiver(post_save, sender=WebhookEndpoint, dispatch_uid="webhook_endpoints_changed_save")
@receiver(post_delete, sender=WebhookEndpoint, dispatch_uid="webhook_endpoints_changed_delete")
def _endpoints_changed(sender: Any, instance: WebhookEndpoint, **kwargs: Any) -> None:
    """However an endpoint changes (services, admin, a cascade): a new generation now, so nobody caches the
    state before the commit from here on, and again after the commit, for whoever read meanwhile."""
    tenant_id = instance.tenant_id
    _new_generation(tenant_id)
    transaction.on_commit(lambda: _new_generation(tenant_id))


# -- emitting and delivering ---------------------------------------------------------------------------
def _body(*, event: str, event_id: str, payload: dict[str, Any]) -> str:
    tenant = current_tenant()
    document = {
        "id": event_id,
        "type": event,
        "created": timezone.now().isoformat(),
        "tenant": tenant.slug,
        "data": payload,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True)


def webhook_emit(*, event: str, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """Store one delivery per active endpoint of the current tenant subscribed to `event`; send after commit.

    Raises KeyError for an event name not in EVENTS (a programming error).
    """
    return webhook_emit_many(event=event, payloads=[payload])


def webhook_emit_many(
    *, event: str, payloads: Sequence[dict[str, Any]], subscribed: frozenset[str] | None = None
) -> list[WebhookDelivery]:
    """`webhook_emit` for several events of one kind (each its own event id), in one look-up and one INSERT.
    `subscribed`: the current tenant's subscribed events as just read (else they are looked up here)."""
    if event not in EVENTS:
        raise KeyError(f"Unknown webhook event {event!r}")
    if subscribed is None:
        subscribed = _subscribed_events(current_tenant().pk)
    if not payloads or (event not in subscribed and ALL_EVENTS not in subscribed):
        return []
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if e.subscribes_to(event)]
    if not endpoints:
        return []
    now = timezone.now()
    rows = []
    for payload in payloads:
        event_id = "evt_" + uuid.uuid4().hex
        body = _body(event=event, event_id=event_id, payload=payload)
        rows += [
            WebhookDelivery(
                tenant_id=e.tenant_id, endpoint=e, event=event, event_id=event_id, body=body, next_attempt_at=now
            )
            for e in endpoints
        ]
    deliveries = WebhookDelivery.objects.bulk_create(rows)
    for delivery in deliveries:
        _enqueue(delivery, countdown=0)
    return deliveries


class _Lookup:
    """The webhook events one transaction's emits share: read once, by the first of them to run after the commit."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.first: Callable[[], None] | None = None  # the first emit registered: while it waits, so may others
        self.subscribed: frozenset[str] | None = None


_lookups = threading.local()


def webhook_emit_on_commit(event: str, payloads: Callable[[], Sequence[dict[str, Any]]]) -> None:
    """Emit `event` for the current tenant with `payloads()` once the current transaction commits (at once
    outside one), as `transaction.on_commit` would, a savepoint rolled back taking its emits along. The emits of
    one transaction share one look-up of the events the tenant's endpoints want, read after the commit; a
    payload is built only when some endpoint wants the event."""
    tenant = current_tenant()
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        webhook_emit_many(event=event, payloads=payloads())
        return
    lookup: _Lookup | None = getattr(_lookups, "current", None)
    if (
        lookup is None
        or lookup.tenant.pk != tenant.pk
        or not any(entry[1] is lookup.first for entry in conn.run_on_commit)  # (sids, func, robust)
    ):
        lookup = _lookups.current = _Lookup(tenant)  # (one whose emits were all rolled back or have run is done)

    def emit() -> None:
        with tenant_context(lookup.tenant):  # a commit may end outside the tenant's block
            if lookup.subscribed is None:
                lookup.subscribed = _subscribed_events(lookup.tenant.pk)
            if event in lookup.subscribed or ALL_EVENTS in lookup.subscribed:
                webhook_emit_many(event=event, payloads=payloads(), subscribed=lookup.subscribed)

    lookup.first = lookup.first or emit
    transaction.on_commit(emit)


def webhook_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a `webhook.test` event to one endpoint (whatever it subscribes to)."""
    event_id = "evt_" + uuid.uuid4().hex
    body = _body(event=TEST_EVENT, event_id=event_id, payload={"message": "This is a test event from CX Platform."})
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event=TEST_EVENT, event_id=event_id, body=body, next_attempt_at=timezone.now()
    )
    _enqueue(delivery, countdown=0)
    return delivery


def backoff_seconds(attempts: int) -> float:
    """Delay before the next attempt after `attempts` failed ones: base * 2**(attempts-1), capped at 6 hours."""
    base = float(getattr(settings, "WEBHOOK_RETRY_BASE_SECONDS", 30))
    return float(min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempts - 1)))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer like any other non-2xx: recorded, retried


_opener = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
    try:
        with _opener.open(request, timeout=timeout) as response:
            return int(response.status), response.read(500).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(500).decode("utf-8", "replace") if exc.fp else ""


def webhook_deliver(*, delivery: WebhookDelivery) -> float | None:
    """Make one attempt; record its outcome. Returns the seconds until the next attempt, or None when done."""
    if delivery.status in (WebhookDeliveryStatus.SUCCEEDED, WebhookDeliveryStatus.FAILED):
        return None
    endpoint = delivery.endpoint
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "CX-Platform-Webhooks/1",
        SIGNATURE_HEADER: signature_header(secret=endpoint.secret, body=body),
        "CX-Event": delivery.event,
        "CX-Delivery": delivery.event_id,
    }
    started = time.perf_counter()
    code: int | None = None
    response_body, error = "", ""
    try:
        code, response_body = _post(endpoint.url, body, headers, float(getattr(settings, "WEBHOOK_TIMEOUT", 10.0)))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    delivery.attempts += 1
    delivery.duration_ms = int((time.perf_counter() - started) * 1000)
    delivery.last_attempt_at = timezone.now()
    delivery.response_code, delivery.response_body, delivery.error = code, response_body[:500], error[:500]
    retry_in: float | None = None
    if code is not None and 200 <= code < 300:
        delivery.status, delivery.next_attempt_at = WebhookDeliveryStatus.SUCCEEDED, None
    elif delivery.attempts >= int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 8)) or not endpoint.active:
        delivery.status, delivery.next_attempt_at = WebhookDeliveryStatus.FAILED, None
    else:
        retry_in = backoff_seconds(delivery.attempts)
        delivery.status = WebhookDeliveryStatus.RETRYING
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
    delivery.save(
        update_fields=[
            "attempts", "duration_ms", "last_attempt_at", "response_code", "response_body", "error", "status",
            "next_attempt_at",
        ]
    )  # fmt: skip
    return retry_in


@shared_task(name="tenants.webhooks.webhook_deliver_task", queue="default", acks_late=True, ignore_result=True)
def webhook_deliver_task(tenant_id: int, delivery_id: int) -> None:
    """One delivery attempt in the delivery's tenant; schedules the next attempt when it failed."""
    with all_tenants():
        delivery = WebhookDelivery.all_tenants.select_related("tenant", "endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.tenant_id != tenant_id:
        return
    with tenant_context(delivery.tenant):
        retry_in = webhook_deliver(delivery=delivery)
        if retry_in is not None:
            _enqueue(delivery, countdown=retry_in)


def _run_later(tenant_id: int, delivery_id: int, countdown: float) -> None:
    def run() -> None:
        from django.db import connection

        try:
            webhook_deliver_task.apply(args=[tenant_id, delivery_id])
        finally:
            connection.close()

    timer = threading.Timer(countdown, run)
    timer.daemon = True
    timer.start()


def _enqueue(delivery: WebhookDelivery, *, countdown: float) -> None:
    """Send an attempt to a worker (after commit). Inline mode (tests) makes the first attempt now and leaves
    retries to the caller; with no broker (embedded default) attempts run on a background thread."""
    tenant_id, delivery_id = delivery.tenant_id, delivery.pk
    if settings.CX_TASKS_INLINE:
        if countdown == 0:
            webhook_deliver(delivery=delivery)
        return
    if settings.CELERY_BROKER_URL:
        transaction.on_commit(
            lambda: webhook_deliver_task.apply_async(args=[tenant_id, delivery_id], countdown=countdown)
        )
    else:
        transaction.on_commit(lambda: _run_later(tenant_id, delivery_id, countdown))


@shared_task(name="tenants.webhooks.webhook_retry_overdue_task", queue="default", ignore_result=True)
def webhook_retry_overdue_task() -> int:
    """Re-send deliveries whose next attempt is 10 minutes overdue (a lost broker message). Crosses tenants."""
    cutoff = timezone.now() - timedelta(minutes=10)
    with all_tenants():
        overdue = list(
            WebhookDelivery.all_tenants.filter(
                status__in=[WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.RETRYING],
                created__lt=cutoff,
            )
            .filter(next_attempt_at__lt=cutoff)
            .values_list("tenant_id", "pk")[:1000]
        )
    for tenant_id, delivery_id in overdue:
        webhook_deliver_task.apply_async(args=[tenant_id, delivery_id])
    return len(overdue)


def webhook_deliveries_recent(*, endpoint: WebhookEndpoint | None = None, limit: int = 50) -> list[WebhookDelivery]:
    """The latest deliveries of the current tenant (of one endpoint), newest first."""
    deliveries = WebhookDelivery.objects.select_related("endpoint").order_by("-created", "-pk")
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    return list(deliveries.defer("body")[:limit])

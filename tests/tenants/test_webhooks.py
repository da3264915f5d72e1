"""Signed webhooks: the signature verifies and a replay is rejected; a failing endpoint (a real local HTTP
server) is retried with exponential backoff until it answers; deliveries stay within their tenant."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tenants.context import tenant_context
from tenants.models import Tenant, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from tenants.webhooks import (
    SIGNATURE_HEADER,
    InvalidSignature,
    WebhookError,
    backoff_seconds,
    signature_header,
    verify_signature,
    webhook_deliver,
    webhook_emit,
    webhook_endpoint_create,
    webhook_send_test,
)

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP server that answers each POST with the next status code of `codes` (then 200)."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = list(codes)
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": self.headers, "body": body, "at": time.time()})
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"try again later")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([]) as r:
        yield r


def test_signature_verifies_and_tampering_or_replay_is_rejected() -> None:
    body = b'{"type":"message.created"}'
    header = signature_header(secret="whsec_a", body=body, timestamp=1_700_000_000)
    assert verify_signature(secret="whsec_a", body=body, header=header, now=1_700_000_100) == 1_700_000_000
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(secret="whsec_a", body=body + b" ", header=header, now=1_700_000_100)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(secret="whsec_other", body=body, header=header, now=1_700_000_100)
    with pytest.raises(InvalidSignature, match="outside the 300s window"):  # the same request, replayed later
        verify_signature(secret="whsec_a", body=body, header=header, now=1_700_000_000 + 301)
    forged_time = header.replace("t=1700000000", f"t={1_700_000_000 + 600}")  # a fresh timestamp breaks the MAC
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(secret="whsec_a", body=body, header=forged_time, now=1_700_000_600)
    with pytest.raises(InvalidSignature, match="timestamp"):
        verify_signature(secret="whsec_a", body=body, header="v1=abc", now=1_700_000_000)


def test_emitted_event_arrives_signed(in_tenant: Tenant, receiver: Receiver) -> None:
    _endpoint, secret = webhook_endpoint_create(url=receiver.url, events=["message.created"])
    webhook_endpoint_create(url=receiver.url + "/other", events=["feedback.created"])  # not subscribed
    [delivery] = webhook_emit(event="message.created", payload={"conversation": 7, "text": "hi"})
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED and delivery.response_code == 200
    [request] = receiver.requests
    verify_signature(secret=secret, body=request["body"], header=request["headers"][SIGNATURE_HEADER])
    document = json.loads(request["body"])
    assert document["type"] == "message.created"
    assert document["data"] == {"conversation": 7, "text": "hi"}
    assert document["tenant"] == in_tenant.slug
    assert request["headers"]["CX-Delivery"] == document["id"] == delivery.event_id
    with pytest.raises(InvalidSignature):
        verify_signature(secret=secret, body=request["body"], header=request["headers"][SIGNATURE_HEADER],
                         now=time.time() + 3600)  # fmt: skip


def test_failing_endpoint_is_retried_with_exponential_backoff(in_tenant: Tenant, settings: Any) -> None:
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    with Receiver([500, 503, 429]) as receiver:
        webhook_endpoint_create(url=receiver.url)
        [delivery] = webhook_emit(event="conversation.resolved", payload={"conversation": 1})
        delivery.refresh_from_db()
        delays = []
        while delivery.status == WebhookDeliveryStatus.RETRYING:
            assert delivery.next_attempt_at is not None and delivery.last_attempt_at is not None
            delays.append(round((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()))
            webhook_deliver(delivery=delivery)  # what the scheduled task does when the delay is over
            delivery.refresh_from_db()
    assert delays == [30, 60, 120]
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED
    assert delivery.attempts == 4 and delivery.response_code == 200
    assert [json.loads(r["body"])["id"] for r in receiver.requests] == [delivery.event_id] * 4  # same event id


def test_gives_up_after_max_attempts_and_unreachable_is_recorded(in_tenant: Tenant, settings: Any) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    with Receiver([]) as receiver:
        url = receiver.url  # closed below: nothing listens there any more
    webhook_endpoint_create(url=url)
    [delivery] = webhook_emit(event="feedback.created", payload={"score": 5})
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.RETRYING and "Connection refused" in delivery.error
    webhook_deliver(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.FAILED and delivery.attempts == 2


def test_backoff_is_capped() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert backoff_seconds(40) == 6 * 3600


def test_events_stay_in_their_tenant(tenant: Tenant, other_tenant: Tenant, receiver: Receiver) -> None:
    with tenant_context(other_tenant):
        webhook_endpoint_create(url=receiver.url)
    with tenant_context(tenant):
        assert webhook_emit(event="message.created", payload={}) == []
    assert receiver.requests == []
    with tenant_context(other_tenant):
        assert len(webhook_emit(event="message.created", payload={})) == 1
        assert WebhookDelivery.objects.count() == 1
    with tenant_context(tenant):
        assert WebhookDelivery.objects.count() == 0


def test_invalid_endpoints_are_refused(in_tenant: Tenant) -> None:
    with pytest.raises(WebhookError, match="https://"):
        webhook_endpoint_create(url="ftp://example.com/hook")
    with pytest.raises(WebhookError, match="Unknown event"):
        webhook_endpoint_create(url="https://example.com/hook", events=["order.exploded"])


def test_send_test_reaches_an_endpoint_subscribed_to_other_events(in_tenant: Tenant, receiver: Receiver) -> None:
    endpoint, _ = webhook_endpoint_create(url=receiver.url, events=["feedback.created"])
    delivery = webhook_send_test(endpoint=endpoint)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED
    assert json.loads(receiver.requests[0]["body"])["type"] == "webhook.test"


def test_settings_page_shows_the_secret_once_and_logs_deliveries(
    owner_client: Any, tenant: Tenant, receiver: Receiver
) -> None:
    response = owner_client.post(
        "/settings/webhooks/", {"url": receiver.url, "description": "CRM", "events": ["message.created"]}
    )
    assert response.status_code == 302
    page = owner_client.get("/settings/webhooks/")
    with tenant_context(tenant):
        endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.encode() in page.content and b"shown only once" in page.content
    again = owner_client.get("/settings/webhooks/")
    assert endpoint.secret.encode() not in again.content  # never shown a second time
    assert owner_client.post(f"/settings/webhooks/{endpoint.pk}/test/").status_code == 302
    log = owner_client.get("/settings/webhooks/deliveries/")
    assert b"webhook.test" in log.content and b"HTTP 200" in log.content
    assert owner_client.post(f"/settings/webhooks/{endpoint.pk}/toggle/").status_code == 302
    with tenant_context(tenant):
        assert WebhookEndpoint.objects.get().active is False
    bad = owner_client.post("/settings/webhooks/", {"url": "not a url"})
    assert bad.status_code == 200 and b"Enter a valid URL" in bad.content


def test_webhook_pages_are_tenant_scoped_and_need_settings_role(
    owner_client: Any, other_client: Any, analyst: Any, tenant: Tenant
) -> None:
    from tests.conftest import client_for

    with tenant_context(tenant):
        endpoint, secret = webhook_endpoint_create(url="https://example.com/hook")
    for action in ("test", "toggle", "rotate", "delete"):
        assert other_client.post(f"/settings/webhooks/{endpoint.pk}/{action}/").status_code == 404
    assert endpoint.url.encode() not in other_client.get("/settings/webhooks/").content
    assert client_for(analyst).get("/settings/webhooks/").status_code == 403
    assert owner_client.post(f"/settings/webhooks/{endpoint.pk}/rotate/").status_code == 302
    with tenant_context(tenant):
        assert WebhookEndpoint.objects.get().secret != secret

"""Batch events (validation per item, idempotency, visitor linking, cursor pages) and feedback."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from journeys.models import Customer, Event
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.journeys.conftest import EventFactory, api_queries

pytestmark = pytest.mark.django_db


def _events(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"idempotency_key": f"k-{i}", "customer": f"c-{i % 3}", "type": "product_view",
         "occurred_at": f"2025-06-01T10:{i % 60:02d}:00Z", "properties": {"sku": "BEAN"}, **extra}
        for i in range(n)
    ]  # fmt: skip


def _count(tenant: Tenant) -> int:
    with tenant_context(tenant):
        return Event.objects.count()


def test_batch_is_stored_and_resending_stores_nothing_twice(api_client: APIClient, tenant: Tenant) -> None:
    batch = _events(50)
    first = api_client.post("/api/v1/events/", {"events": batch}, format="json").json()
    assert (first["received"], first["stored"], first["duplicates"], first["rejected"]) == (50, 50, 0, 0)
    again = api_client.post("/api/v1/events/", batch, format="json").json()  # a bare list works too
    assert (again["stored"], again["duplicates"]) == (0, 50)
    assert {r["status"] for r in again["results"]} == {"duplicate"}
    assert _count(tenant) == 50
    with tenant_context(tenant):  # unknown customers were created, bare
        assert set(Customer.objects.values_list("external_id", flat=True)) == {"c-0", "c-1", "c-2"}


def test_items_without_key_are_idempotent_by_content(api_client: APIClient, tenant: Tenant) -> None:
    batch = [{"customer": "c-1", "type": "page_view", "url": "/", "occurred_at": "2025-06-01T10:00:00Z"}]
    api_client.post("/api/v1/events/", batch, format="json")
    result = api_client.post("/api/v1/events/", batch, format="json").json()
    assert result["results"][0]["status"] == "duplicate"
    assert _count(tenant) == 1


def test_each_rejected_item_says_why_and_the_rest_are_stored(api_client: APIClient, tenant: Tenant) -> None:
    batch = [
        *_events(3),
        {"customer": "c-1", "type": "teleport"},
        {"type": "page_view"},
        {"customer": "c-1", "type": "page_view", "occurred_at": "yesterday"},
        {"customer": "c-1", "type": "custom"},
        {"customer": "c-1", "type": "page_view", "properties": [1, 2]},
        "not an object",
    ]
    result = api_client.post("/api/v1/events/", batch, format="json").json()
    assert (result["stored"], result["rejected"]) == (3, 6)
    errors = {r["index"]: r["errors"] for r in result["results"] if r["status"] == "rejected"}
    assert "Unknown type 'teleport'" in errors[3]["type"][0]
    assert "customer" in errors[4]
    assert "occurred_at" in errors[5]
    assert "name" in errors[6]
    assert "properties" in errors[7]
    assert "non_field_errors" in errors[8]
    assert _count(tenant) == 3


def test_same_key_twice_in_one_batch_is_stored_once(api_client: APIClient, tenant: Tenant) -> None:
    item = _events(1)[0]
    result = api_client.post("/api/v1/events/", [item, item], format="json").json()
    assert [r["status"] for r in result["results"]] == ["stored", "duplicate"]
    assert _count(tenant) == 1


def test_more_than_1000_items_is_refused(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/events/", _events(1001), format="json")
    assert response.status_code == 400
    assert "1000" in response.json()["error"]["message"] or "1000" in str(response.json()["error"]["fields"])


def test_anonymous_events_are_linked_when_the_visitor_is_identified(api_client: APIClient, tenant: Tenant) -> None:
    anon = [{"anonymous_id": "v-42", "type": "page_view", "url": f"/p{i}", "occurred_at": "2025-06-01T10:00:00Z"}
            for i in range(3)]  # fmt: skip
    api_client.post("/api/v1/events/", anon, format="json")
    assert api_client.get("/api/v1/events/?customer=c-7").json()["results"] == []
    # Signing up: an event carrying both ids identifies the visitor.
    identify = {"anonymous_id": "v-42", "customer": "c-7", "type": "sign_up", "occurred_at": "2025-06-01T10:05:00Z"}
    api_client.post("/api/v1/events/", [identify], format="json")
    assert len(api_client.get("/api/v1/events/?customer=c-7").json()["results"]) == 4
    # Later anonymous events of that visitor are linked on arrival.
    later = {"anonymous_id": "v-42", "type": "product_view", "occurred_at": "2025-06-02T10:00:00Z"}
    api_client.post("/api/v1/events/", [later], format="json")
    assert len(api_client.get("/api/v1/events/?customer=c-7").json()["results"]) == 5
    customer = api_client.get("/api/v1/customers/c-7/").json()
    assert customer["last_seen"] == "2025-06-02T10:00:00Z"


def test_identify_endpoint_links_past_events(api_client: APIClient) -> None:
    api_client.put("/api/v1/customers/c-8/", {"name": "Hal"}, format="json")
    api_client.post("/api/v1/events/", [{"anonymous_id": "v-1", "type": "search", "name": "decaf"}], format="json")
    response = api_client.post("/api/v1/events/identify/", {"anonymous_id": "v-1", "customer": "c-8"}, format="json")
    assert response.json() == {"linked_events": 1}
    assert api_client.get("/api/v1/events/?customer=c-8").json()["results"][0]["name"] == "decaf"


def test_cursor_pagination_walks_every_event_once(api_client: APIClient) -> None:
    api_client.post("/api/v1/events/", _events(25), format="json")
    seen: list[int] = []
    url: str | None = "/api/v1/events/?page_size=10"
    while url:
        page = api_client.get(url).json()
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 25


def test_events_are_tenant_isolated(
    api_client: APIClient, other_api_client: APIClient, other_tenant: Tenant, tenant_data: dict[str, Any]
) -> None:
    event = tenant_data["event"]
    assert other_api_client.get(f"/api/v1/events/{event.pk}/").status_code == 404
    assert other_api_client.get("/api/v1/events/").json()["results"] == []
    # The same idempotency key in another tenant is another event.
    result = other_api_client.post("/api/v1/events/", _events(1), format="json").json()
    api_client.post("/api/v1/events/", _events(1), format="json")
    assert result["stored"] == 1
    assert _count(other_tenant) == 1


def test_event_list_query_count(api_client: APIClient, tenant: Tenant, django_assert_num_queries: Any) -> None:
    with tenant_context(tenant):
        EventFactory.create_batch(30)
    api_client.get("/api/v1/events/")
    with django_assert_num_queries(api_queries(2)):  # key lookup, page (events joined to customers)
        assert len(api_client.get("/api/v1/events/").json()["results"]) == 30


def test_read_only_key_cannot_send_events(read_api_client: APIClient) -> None:
    assert read_api_client.post("/api/v1/events/", _events(1), format="json").status_code == 403


# --- feedback ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "score", "allowed"), [("csat", 6, "1 to 5"), ("nps", 11, "0 to 10"), ("ces", 0, "1 to 7")]
)
def test_feedback_score_outside_scale_names_the_range(
    api_client: APIClient, kind: str, score: int, allowed: str
) -> None:
    response = api_client.post("/api/v1/feedback/", {"kind": kind, "score": score}, format="json")
    assert response.status_code == 400
    assert allowed in response.json()["error"]["fields"]["score"][0]


def test_feedback_about_an_order_is_linked_to_its_customer(api_client: APIClient, tenant_data: dict[str, Any]) -> None:
    response = api_client.post(
        "/api/v1/feedback/", {"kind": "nps", "score": 0, "order": "A-100", "comment": "Late again"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["customer"] == "a-1"
    listed = api_client.get("/api/v1/feedback/?kind=nps").json()
    assert [f["comment"] for f in listed["results"]] == ["Late again"]


def test_feedback_tenant_isolation(
    other_api_client: APIClient, tenant_data: dict[str, Any], other_data: dict[str, Any]
) -> None:
    feedback = tenant_data["feedback"]
    assert other_api_client.get(f"/api/v1/feedback/{feedback.pk}/").status_code == 404
    assert other_api_client.delete(f"/api/v1/feedback/{feedback.pk}/").status_code == 404
    assert [f["customer"] for f in other_api_client.get("/api/v1/feedback/").json()["results"]] == ["b-1"]
    bad = other_api_client.post("/api/v1/feedback/", {"kind": "csat", "score": 3, "customer": "a-1"}, format="json")
    assert bad.status_code == 400  # A's customer does not exist for B


def test_feedback_list_query_count(
    api_client: APIClient, tenant_data: dict[str, Any], django_assert_num_queries: Any
) -> None:
    api_client.get("/api/v1/feedback/")
    with django_assert_num_queries(api_queries(2)):  # key lookup, page (not full: no COUNT)
        assert api_client.get("/api/v1/feedback/").json()["count"] == 1

"""The fast paths of ingestion and import (raw SQL, orjson, caches) keep the behaviour users rely on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from journeys import bulk, imports, services
from journeys.models import Customer, Order, OrderLine
from tenants.context import tenant_context
from tenants.models import Job, Tenant
from tests.journeys.conftest import CustomerFactory

pytestmark = pytest.mark.django_db

PRODUCTS = "sku,name,price\nBEAN,House Blend,14.00\nMUG,Mug,9.50\n"
CUSTOMERS = "external_id,name\nc-1,Ann\nc-2,Bo\n"


def test_raw_cursor_queries_run_in_the_current_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    """The connection may still hold another tenant's row-level-security scope from its last query."""
    with tenant_context(other_tenant):
        CustomerFactory(external_id="b-1")
    with tenant_context(tenant):
        CustomerFactory(external_id="a-1")
        assert Customer.objects.count() == 1  # the connection now holds tenant A's scope
    with tenant_context(other_tenant):
        assert list(bulk.fetch_pairs(Customer, "external_id", "external_id", ["b-1", "a-1"])) == ["b-1"]


def test_widening_first_and_last_seen_by_id_cannot_reach_another_tenants_customer(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """The statement finds customers by id alone; row-level security keeps it inside the current tenant."""
    with tenant_context(other_tenant):
        theirs = CustomerFactory(external_id="b-1")
        before = (theirs.first_seen, theirs.last_seen)
    with tenant_context(tenant):
        ours = CustomerFactory(external_id="a-1")
        at = datetime(2031, 1, 1, tzinfo=UTC)
        services.customers_touch({theirs.pk: (at, at), ours.pk: (at, at)})
        ours.refresh_from_db()
    assert ours.last_seen == at
    with tenant_context(other_tenant):
        theirs.refresh_from_db()
    assert (theirs.first_seen, theirs.last_seen) == before


def test_a_batch_widens_first_and_last_seen_to_its_earliest_and_latest_event(
    api_client: APIClient, tenant: Tenant
) -> None:
    times = ["2025-06-03T10:00:00Z", "2025-06-01T08:00:00+02:00", "2025-06-02T10:00:00Z"]
    batch = [{"customer": "c-9", "type": "page_view", "occurred_at": t, "idempotency_key": t} for t in times]
    assert api_client.post("/api/v1/events/", batch, format="json").json()["stored"] == 3
    with tenant_context(tenant):
        customer = Customer.objects.get(external_id="c-9")
    assert customer.first_seen == datetime(2025, 6, 1, 6, tzinfo=UTC)
    assert customer.last_seen == datetime(2025, 6, 3, 10, tzinfo=UTC)
    older = {"customer": "c-9", "type": "page_view", "occurred_at": "2025-05-01T00:00:00Z"}
    api_client.post("/api/v1/events/", [older], format="json")
    with tenant_context(tenant):
        customer.refresh_from_db()
    assert (customer.first_seen, customer.last_seen) == (
        datetime(2025, 5, 1, tzinfo=UTC),
        datetime(2025, 6, 3, 10, tzinfo=UTC),
    )


def test_a_batch_widens_a_customer_named_and_seen_through_an_identified_visitor_to_both(
    api_client: APIClient, tenant: Tenant
) -> None:
    identify = {"anonymous_id": "v-5", "customer": "c-5", "type": "sign_up", "occurred_at": "2025-06-01T10:00:00Z"}
    api_client.post("/api/v1/events/", [identify], format="json")
    batch = [
        {"customer": "c-5", "type": "page_view", "occurred_at": "2025-05-30T09:00:00Z"},
        {"anonymous_id": "v-5", "type": "page_view", "occurred_at": "2025-06-04T12:00:00Z"},
        {"customer": "c-6", "type": "page_view", "occurred_at": "2025-06-02T00:00:00Z"},
    ]
    assert api_client.post("/api/v1/events/", batch, format="json").json()["stored"] == 3
    with tenant_context(tenant):
        spans = dict(Customer.objects.values_list("external_id", "first_seen"))
        last = dict(Customer.objects.values_list("external_id", "last_seen"))
    assert spans["c-5"] == datetime(2025, 5, 30, 9, tzinfo=UTC)
    assert last["c-5"] == datetime(2025, 6, 4, 12, tzinfo=UTC)
    assert spans["c-6"] == last["c-6"] == datetime(2025, 6, 2, tzinfo=UTC)


def test_values_the_database_cannot_store_are_rejected_per_item(api_client: APIClient, tenant: Tenant) -> None:
    batch = [
        {"customer": "c-1", "type": "page_view", "url": "/a\u0000b"},
        {"customer": "c-1", "type": "page_view", "properties": {"q": "nul \u0000 here"}},
        {"customer": "c-1", "type": "page_view", "properties": {"blob": "x" * 20000}},
        {"customer": 42, "type": "page_view", "properties": {"nested": {"list": [1, 2.5, None, True]}}},
    ]
    result = api_client.post("/api/v1/events/", batch, format="json").json()
    assert [r["status"] for r in result["results"]] == ["rejected", "rejected", "rejected", "stored"]
    assert "NUL" in result["results"][0]["errors"]["url"][0]
    assert "NUL" in result["results"][1]["errors"]["properties"][0]
    assert "16 KB" in result["results"][2]["errors"]["properties"][0]
    events = api_client.get("/api/v1/events/?customer=42").json()["results"]
    assert events[0]["properties"] == {"nested": {"list": [1, 2.5, None, True]}}


def test_malformed_json_is_a_400_in_the_api_error_format(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/events/", b'{"events": [', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["error"]["message"]


def test_an_order_split_across_chunks_keeps_all_its_lines_and_a_reimport_replaces_them(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant, monkeypatch: Any
) -> None:
    run_import(api_client, "products", PRODUCTS)
    run_import(api_client, "customers", CUSTOMERS)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    head = "order_id,customer_id,placed_at,sku,quantity,unit_price\n"
    text = head + (
        "O-1,c-1,2025-02-01,BEAN,1,\n"
        'O-2,c-2,2025-02-02,MUG,1,"9,00"\n'
        "O-2,c-2,2025-02-02,BEAN,1,\n"
        "O-1,c-1,2025-02-01,MUG,3,\n"  # O-1 again, in the next chunk: its lines add up
    )
    assert run_import(api_client, "orders", text).result["stored"] == 4
    with tenant_context(tenant):
        assert Order.objects.get(external_id="O-1").total == Decimal("42.50")
        assert Order.objects.get(external_id="O-2").total == Decimal("23.00")
        assert OrderLine.objects.count() == 4
    # Re-importing O-1 with one line replaces its lines; O-2 is untouched.
    assert run_import(api_client, "orders", head + "O-1,c-1,2025-02-01,BEAN,2,\n").result["stored"] == 1
    with tenant_context(tenant):
        assert list(OrderLine.objects.filter(order__external_id="O-1").values_list("quantity", flat=True)) == [2]
        assert Order.objects.get(external_id="O-1").total == Decimal("28.00")
        assert OrderLine.objects.count() == 3
        c1 = Customer.objects.get(external_id="c-1")
        assert c1.last_seen == datetime(2025, 2, 1, tzinfo=c1.last_seen.tzinfo)


def test_repeated_bad_values_are_reported_on_every_line(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant
) -> None:
    """Parsed values are cached by their text; the cached error must still be reported each time."""
    run_import(api_client, "products", PRODUCTS)
    run_import(api_client, "customers", CUSTOMERS)
    text = "order_id,customer_id,placed_at,sku,quantity,unit_price\n" + "".join(
        f"O-{i},c-1,2025-02-01,BEAN,-1,abc\n" for i in range(3)
    )
    job = run_import(api_client, "orders", text)
    errors = [(e["line"], e["column"]) for e in job.result["errors"]]
    assert errors == [(line, col) for line in (2, 3, 4) for col in ("quantity", "unit_price")]
    assert "at least 1" in job.result["errors"][0]["reason"]


def test_statistics_are_refreshed_each_time_a_writer_has_grown_a_table_fourfold() -> None:
    growth = bulk.Growth(first=10)
    assert [growth.add(n) for n in (5, 4, 1, 29, 1, 120, 1)] == [False, False, True, False, True, True, False]

"""Tenant isolation where one tenant names another tenant's objects: in a request body, a URL key, a CSV
file or a filter. Tenant A (api_client, owner_client) holds a-1 / BEAN-1 / A-100; tenant B (other_*)
holds b-1 / B-SKU / B-100. A never reaches B's rows and B's rows never change."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from journeys.models import Customer, Event, Feedback, Order, Product, VisitorIdentity
from tenants.context import tenant_context
from tenants.models import Job, Tenant
from tests.journeys.conftest import csv_upload

pytestmark = pytest.mark.django_db


def test_identify_with_another_tenants_customer_is_refused_like_an_unknown_one(
    api_client: APIClient, tenant: Tenant, other_tenant: Tenant, tenant_data: dict[str, Any], other_data: dict[str, Any]
) -> None:
    api_client.post("/api/v1/events/", {"events": [{"anonymous_id": "v-1", "type": "page_view"}]}, format="json")
    theirs = api_client.post("/api/v1/events/identify/", {"anonymous_id": "v-1", "customer": "b-1"}, format="json")
    unknown = api_client.post("/api/v1/events/identify/", {"anonymous_id": "v-1", "customer": "zz"}, format="json")
    assert theirs.status_code == unknown.status_code == 400
    message = unknown.json()["error"]["fields"]["customer"][0].replace("zz", "b-1")
    assert theirs.json()["error"]["fields"]["customer"] == [message]  # says nothing about B's customer
    for t in (tenant, other_tenant):
        with tenant_context(t):
            assert not VisitorIdentity.objects.exists()
    with tenant_context(tenant):
        assert Event.objects.get(anonymous_id="v-1").customer_id is None


def test_put_of_another_tenants_sku_creates_our_own_product_and_leaves_theirs(
    api_client: APIClient, tenant: Tenant, other_tenant: Tenant, other_data: dict[str, Any]
) -> None:
    assert api_client.patch("/api/v1/products/B-SKU/", {"name": "Mine"}, format="json").status_code == 404
    assert api_client.delete("/api/v1/products/B-SKU/").status_code == 404
    response = api_client.put("/api/v1/products/B-SKU/", {"name": "Our scarf", "price": "3.00"}, format="json")
    assert response.status_code == 201  # created: the SKU was free in tenant A
    with tenant_context(tenant):
        ours = Product.objects.get(sku="B-SKU")
    with tenant_context(other_tenant):
        theirs = Product.objects.get(sku="B-SKU")
    assert ours.pk != theirs.pk
    assert (ours.name, ours.price) == ("Our scarf", Decimal("3.00"))
    assert (theirs.name, theirs.price) == ("Boutique Scarf", Decimal("12.50"))


def test_feedback_about_another_tenants_order_or_customer_is_refused(
    api_client: APIClient, other_tenant: Tenant, tenant_data: dict[str, Any], other_data: dict[str, Any]
) -> None:
    for body in ({"order": "B-100"}, {"customer": "b-1"}, {"order": "A-100", "customer": "b-1"}):
        response = api_client.post("/api/v1/feedback/", {"kind": "csat", "score": 2, **body}, format="json")
        assert response.status_code == 400, body
        assert "does not exist" in str(response.json())
    with tenant_context(other_tenant):
        assert list(Feedback.objects.values_list("score", flat=True)) == [1]  # only B's own answer


def test_orders_import_naming_another_tenants_customer_or_sku_stores_nothing(
    api_client: APIClient,
    run_import: Callable[..., Job],
    tenant: Tenant,
    other_tenant: Tenant,
    tenant_data: dict[str, Any],
    other_data: dict[str, Any],
) -> None:
    text = (
        "order_id,customer_id,placed_at,sku,quantity\n"
        "X-1,b-1,2025-02-01,BEAN-1,1\n"  # B's customer
        "X-2,a-1,2025-02-01,B-SKU,1\n"  # B's product
        "B-100,a-1,2025-02-01,BEAN-1,1\n"  # B's order id: for A, a new order of its own
    )
    job = run_import(api_client, "orders", text)
    assert (job.result["stored"], job.result["failed"]) == (1, 2)
    reasons = {e["line"]: e["reason"] for e in job.result["errors"]}
    assert reasons == {2: "Unknown customer 'b-1'; import customers first.",
                       3: "Unknown product sku 'B-SKU'; import products first."}  # fmt: skip
    with tenant_context(tenant):
        assert set(Order.objects.values_list("external_id", flat=True)) == {"A-100", "B-100"}
    with tenant_context(other_tenant):
        order = Order.objects.get()
        assert (order.external_id, order.customer.external_id, order.lines.count()) == ("B-100", "b-1", 1)
        assert list(Customer.objects.values_list("external_id", flat=True)) == ["b-1"]


def test_imports_page_and_api_list_only_our_jobs(
    api_client: APIClient,
    other_api_client: APIClient,
    owner_client: Client,
    other_client: Client,
    run_import: Callable[..., Job],
) -> None:
    ours = run_import(api_client, "customers", "external_id\nc-1\n")
    upload = {"kind": "customers", "file": csv_upload("external_id\nb-9\n", name="theirs-secret-list.csv")}
    assert other_api_client.post("/api/v1/imports/", upload, format="multipart").status_code == 202
    page = owner_client.get("/imports/").content.decode()
    assert f'href="/imports/{ours.pk}/"' in page
    assert "theirs-secret-list" not in page
    assert re.findall(r'href="/imports/(\d+)/"', page) == [str(ours.pk)]
    their_page = other_client.get("/imports/").content.decode()
    assert "theirs-secret-list" in their_page and f'href="/imports/{ours.pk}/"' not in their_page
    assert [j["id"] for j in api_client.get("/api/v1/imports/").json()["results"]] == [ours.pk]


def test_events_customer_filter_does_not_cross_tenants(
    api_client: APIClient, other_api_client: APIClient, tenant_data: dict[str, Any], other_data: dict[str, Any]
) -> None:
    assert api_client.get("/api/v1/events/?customer=b-1").json()["results"] == []
    assert other_api_client.get("/api/v1/events/?customer=a-1").json()["results"] == []
    mine = api_client.get("/api/v1/events/?customer=a-1").json()["results"]
    assert [e["customer"] for e in mine] == ["a-1"]
    # Same for the other filters that name a customer.
    assert api_client.get("/api/v1/orders/?customer=b-1").json()["results"] == []
    assert api_client.get("/api/v1/feedback/?customer=b-1").json()["results"] == []

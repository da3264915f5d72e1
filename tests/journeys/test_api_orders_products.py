"""Products and orders API: upsert by sku / external id, lines replaced, revenue excludes refunds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from journeys.models import Order, OrderLine
from journeys.selectors import customer_summary
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.journeys.conftest import CustomerFactory, OrderFactory, OrderLineFactory, ProductFactory, api_queries

pytestmark = pytest.mark.django_db


def _catalog(api_client: APIClient) -> None:
    api_client.put("/api/v1/customers/c-1/", {"name": "Ann"}, format="json")
    api_client.put("/api/v1/products/BEAN/", {"name": "Beans", "price": "14.00", "category": "Coffee"}, format="json")
    api_client.put("/api/v1/products/MUG/", {"name": "Mug", "price": "9.50", "category": "Merch"}, format="json")


def test_product_put_upserts_by_sku(api_client: APIClient) -> None:
    created = api_client.put("/api/v1/products/BEAN/", {"name": "Beans", "price": "14.00"}, format="json")
    assert created.status_code == 201
    assert created.json()["currency"] == "USD"  # the business's currency
    replaced = api_client.put("/api/v1/products/BEAN/", {"name": "Beans 1kg", "price": "40"}, format="json")
    assert replaced.status_code == 200
    assert replaced.json()["price"] == "40.00"
    assert api_client.get("/api/v1/products/").json()["count"] == 1


def test_product_rejects_negative_price_and_filters(api_client: APIClient) -> None:
    bad = api_client.put("/api/v1/products/X/", {"name": "X", "price": "-1"}, format="json")
    assert bad.status_code == 400
    assert "price" in bad.json()["error"]["fields"]
    _catalog(api_client)
    assert [p["sku"] for p in api_client.get("/api/v1/products/?category=Merch").json()["results"]] == ["MUG"]
    assert [p["sku"] for p in api_client.get("/api/v1/products/?ordering=-price").json()["results"]] == ["BEAN", "MUG"]


def test_order_with_lines_total_defaults_to_sum(api_client: APIClient) -> None:
    _catalog(api_client)
    body = {
        "external_id": "O-1", "customer": "c-1", "placed_at": "2025-05-01T09:30:00+02:00", "status": "paid",
        "lines": [{"sku": "BEAN", "quantity": 2}, {"sku": "MUG", "quantity": 1, "unit_price": "8.00"}],
    }  # fmt: skip
    response = api_client.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["total"] == "36.00"
    assert data["placed_at"] == "2025-05-01T07:30:00Z"
    assert [(line["sku"], line["unit_price"]) for line in data["lines"]] == [("BEAN", "14.00"), ("MUG", "8.00")]
    customer = api_client.get("/api/v1/customers/c-1/").json()
    assert customer["last_seen"] == "2025-05-01T07:30:00Z"


def test_order_put_replaces_lines(api_client: APIClient, tenant: Tenant) -> None:
    _catalog(api_client)
    body: dict[str, Any] = {
        "customer": "c-1",
        "placed_at": "2025-05-01T09:30:00Z",
        "lines": [{"sku": "BEAN", "quantity": 1}],
    }
    assert api_client.put("/api/v1/orders/O-1/", body, format="json").status_code == 201
    body["lines"] = [{"sku": "MUG", "quantity": 3}]
    response = api_client.put("/api/v1/orders/O-1/", body, format="json")
    assert response.status_code == 200
    assert response.json()["lines"] == [{"sku": "MUG", "product_name": "Mug", "quantity": 3, "unit_price": "9.50"}]
    with tenant_context(tenant):
        assert OrderLine.objects.count() == 1
        assert Order.objects.count() == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"sku": "NOPE", "quantity": 1}, "unknown product"),
        ({"sku": "BEAN", "quantity": -2}, "greater than or equal to 1"),
    ],
)
def test_order_rejects_unknown_product_and_bad_quantity(
    api_client: APIClient, line: dict[str, Any], message: str
) -> None:
    _catalog(api_client)
    body = {"external_id": "O-2", "customer": "c-1", "placed_at": "2025-05-01T09:30:00Z", "lines": [line]}
    response = api_client.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 400
    assert message in str(response.json()["error"]["fields"]).lower()


def test_order_unknown_customer_rejected(api_client: APIClient) -> None:
    _catalog(api_client)
    body = {"external_id": "O-3", "customer": "ghost", "placed_at": "2025-05-01T09:30:00Z",
            "lines": [{"sku": "BEAN", "quantity": 1}]}  # fmt: skip
    response = api_client.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 400
    assert "customer" in response.json()["error"]["fields"]


def test_refunded_and_cancelled_orders_stay_but_do_not_count_as_revenue(api_client: APIClient, tenant: Tenant) -> None:
    _catalog(api_client)
    for ext, status in [("O-1", "fulfilled"), ("O-2", "refunded"), ("O-3", "cancelled")]:
        body = {"customer": "c-1", "placed_at": "2025-05-01T09:30:00Z", "status": status,
                "lines": [{"sku": "BEAN", "quantity": 1}]}  # fmt: skip
        api_client.put(f"/api/v1/orders/{ext}/", body, format="json")
    orders = api_client.get("/api/v1/orders/?customer=c-1").json()
    assert orders["count"] == 3
    assert {o["external_id"]: o["counts_as_revenue"] for o in orders["results"]} == {
        "O-1": True, "O-2": False, "O-3": False,
    }  # fmt: skip
    with tenant_context(tenant):
        summary = customer_summary(customer=Order.objects.get(external_id="O-1").customer)
    assert summary.orders == 3
    assert summary.revenue == Decimal("14.00")


def test_order_cannot_reference_another_tenants_customer(
    api_client: APIClient, other_data: dict[str, Any], tenant: Tenant
) -> None:
    with tenant_context(tenant):
        ProductFactory(sku="BEAN")
    body = {"external_id": "O-9", "customer": "b-1", "placed_at": "2025-05-01T09:30:00Z",
            "lines": [{"sku": "BEAN", "quantity": 1}]}  # fmt: skip
    assert api_client.post("/api/v1/orders/", body, format="json").status_code == 400


def test_other_tenant_gets_404(
    other_api_client: APIClient, tenant_data: dict[str, Any], other_data: dict[str, Any]
) -> None:
    for path in ("/api/v1/orders/A-100/", "/api/v1/products/BEAN-1/"):
        assert other_api_client.get(path).status_code == 404
        assert other_api_client.delete(path).status_code == 404
    assert other_api_client.patch("/api/v1/products/BEAN-1/", {"name": "x"}, format="json").status_code == 404
    assert [o["external_id"] for o in other_api_client.get("/api/v1/orders/").json()["results"]] == ["B-100"]
    assert [p["sku"] for p in other_api_client.get("/api/v1/products/").json()["results"]] == ["B-SKU"]


def test_order_list_query_count_is_constant(
    api_client: APIClient, tenant: Tenant, django_assert_num_queries: Any
) -> None:
    with tenant_context(tenant):
        product = ProductFactory()
        for _ in range(20):
            order = OrderFactory(customer=CustomerFactory())
            OrderLineFactory.create_batch(3, order=order, product=product)
    api_client.get("/api/v1/orders/")
    # key lookup, orders with customers, lines with products (a page that is not full needs no COUNT)
    with django_assert_num_queries(api_queries(3)):
        response = api_client.get("/api/v1/orders/")
    assert len(response.json()["results"]) == 20
    assert all(len(o["lines"]) == 3 for o in response.json()["results"])


def test_product_list_query_count(api_client: APIClient, tenant: Tenant, django_assert_num_queries: Any) -> None:
    with tenant_context(tenant):
        ProductFactory.create_batch(25)
    api_client.get("/api/v1/products/")
    with django_assert_num_queries(api_queries(2)):  # key lookup, page (not full: no COUNT)
        assert api_client.get("/api/v1/products/").json()["count"] == 25

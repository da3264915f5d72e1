"""Dashboard pages: customers, customer profile, products, import and export; tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from journeys.models import Customer
from tenants.context import tenant_context
from tenants.models import Job, Tenant, User
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_customer_list_search_filter_and_isolation(
    owner_client: Client, tenant_data: dict[str, Any], other_data: dict[str, Any]
) -> None:
    page = owner_client.get("/customers/")
    assert page.status_code == 200
    assert b"Ann A" in page.content
    assert b"Bob B" not in page.content
    assert b"Ann A" not in owner_client.get("/customers/?q=zzz").content
    assert b"Ann A" in owner_client.get("/customers/?q=ann&sort=name").content
    assert b"Ann A" not in owner_client.get("/customers/?consent=marketing").content


def test_customer_page_shows_profile_orders_and_timeline(owner_client: Client, tenant_data: dict[str, Any]) -> None:
    page = owner_client.get(f"/customers/{tenant_data['customer'].pk}/")
    assert page.status_code == 200
    for text in (b"ann@example.com", b"A-100", b"Page view", b"CSAT 5", b"Consent"):
        assert text in page.content


def test_consent_change_from_the_dashboard_is_recorded(
    owner_client: Client, tenant: Tenant, tenant_data: dict[str, Any]
) -> None:
    pk = tenant_data["customer"].pk
    assert owner_client.post(f"/customers/{pk}/", {"consent_marketing": "on"}).status_code == 302
    with tenant_context(tenant):
        customer = Customer.objects.get(pk=pk)
    assert customer.consent_marketing is True
    assert customer.consent_marketing_source == "dashboard"


def test_analyst_can_read_but_not_change_consent(analyst: User, tenant_data: dict[str, Any]) -> None:
    client = client_for(analyst)
    pk = tenant_data["customer"].pk
    assert client.get(f"/customers/{pk}/").status_code == 200
    assert client.post(f"/customers/{pk}/", {"consent_marketing": "on"}).status_code == 403


def test_other_tenant_gets_404_on_pages(
    other_client: Client, tenant_data: dict[str, Any], other_data: dict[str, Any]
) -> None:
    assert other_client.get(f"/customers/{tenant_data['customer'].pk}/").status_code == 404
    assert (
        other_client.post(f"/customers/{tenant_data['customer'].pk}/", {"consent_marketing": "on"}).status_code == 404
    )
    products = other_client.get("/products/")
    assert b"Boutique Scarf" in products.content
    assert b"House Blend" not in products.content


def test_product_list_filters(owner_client: Client, tenant_data: dict[str, Any]) -> None:
    assert b"House Blend" in owner_client.get("/products/?category=Coffee&sort=-price").content
    assert b"House Blend" not in owner_client.get("/products/?category=Tea").content


def test_pages_need_a_sign_in(client: Client) -> None:
    for path in ("/customers/", "/products/", "/imports/"):
        assert client.get(path).status_code == 302


def test_export_from_the_dashboard_writes_a_csv(
    owner_client: Client, tenant: Tenant, tenant_data: dict[str, Any]
) -> None:
    assert owner_client.post("/exports/", {"table": "orders"}).status_code == 302
    with tenant_context(tenant):
        job = Job.objects.get(kind="journeys.export")
    assert job.status == "succeeded", job.error
    with default_storage.open(job.result["file"]) as fh:
        lines = fh.read().decode().splitlines()
    assert lines[0].startswith("order_id,customer_id,placed_at")
    assert lines[1].startswith("A-100,a-1,")
    listing = owner_client.get("/imports/")
    assert b"Download" in listing.content


def test_analyst_cannot_export(analyst: User, tenant_data: dict[str, Any]) -> None:
    assert client_for(analyst).post("/exports/", {"table": "customers"}).status_code == 403


@pytest.mark.parametrize("table", ["customers", "products", "events", "feedback"])
def test_every_table_exports(
    owner_client: Client, tenant: Tenant, tenant_data: dict[str, Any], other_data: dict[str, Any], table: str
) -> None:
    owner_client.post("/exports/", {"table": table})
    with tenant_context(tenant):
        job = Job.objects.get(kind="journeys.export")
    with default_storage.open(job.result["file"]) as fh:
        text = fh.read().decode()
    assert job.result["rows"] == 1
    assert "b-1" not in text and "Bob" not in text


def test_pages_show_times_in_the_tenants_time_zone(
    owner_client: Client, tenant: Tenant, tenant_data: dict[str, Any]
) -> None:
    tenant.timezone = "America/Chicago"  # UTC-6 in March
    tenant.save(update_fields=["timezone"])
    customer = tenant_data["customer"]
    with tenant_context(tenant):
        Customer.objects.filter(pk=customer.pk).update(
            first_seen=datetime(2025, 3, 1, 18, 30, tzinfo=UTC), last_seen=datetime(2025, 3, 2, 3, 15, tzinfo=UTC)
        )
    detail = owner_client.get(f"/customers/{customer.pk}/").content.decode()
    assert "Mar 1, 2025 12:30" in detail  # first seen, 18:30 UTC
    assert "Mar 1, 2025 21:15" in detail  # last seen: still March 1st in Chicago
    listing = owner_client.get("/customers/").content.decode()
    assert 'datetime="2025-03-01T21:15:00-06:00"' in listing

"""CSV import. Rule under test: every valid row is stored and every bad row reported (line, column,
reason); a bad line rejects its whole order; file-level problems fail the job and store nothing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from rest_framework.test import APIClient

from journeys.models import Customer, Order, OrderLine, Product
from tenants.context import tenant_context
from tenants.models import Job, Tenant
from tests.journeys.conftest import csv_upload

pytestmark = pytest.mark.django_db

PRODUCTS = "sku,name,price,category\nBEAN,House Blend,14.00,Coffee\nMUG,Mug,9.50,Merch\n"
CUSTOMERS = "external_id,email,name,consent_marketing\nc-1,ann@example.com,Ann,yes\nc-2,bo@example.com,Bo,no\n"


def _errors(job: Job) -> list[tuple[int, str]]:
    return [(e["line"], e["column"]) for e in job.result["errors"]]


@pytest.fixture
def catalog(api_client: APIClient, run_import: Callable[..., Job]) -> None:
    assert run_import(api_client, "products", PRODUCTS).result["stored"] == 2
    assert run_import(api_client, "customers", CUSTOMERS).result["stored"] == 2


def test_customers_import_records_consent_source_and_keeps_extra_columns(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant
) -> None:
    job = run_import(
        api_client, "customers", "external_id,email,consent_marketing,loyalty_tier\nc-1,ann@example.com,yes,gold\n"
    )
    assert job.status == "succeeded"
    with tenant_context(tenant):
        ann = Customer.objects.get(external_id="c-1")
    assert ann.consent_marketing is True
    assert ann.consent_marketing_source == "import"
    assert ann.consent_marketing_at is not None
    assert ann.attributes == {"loyalty_tier": "gold"}


def test_every_valid_row_stored_every_bad_row_reported(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant
) -> None:
    text = (
        "external_id,email,first_seen,consent_marketing\n"
        "c-1,ann@example.com,2024-01-02,yes\n"
        "c-2,not-an-email,2024-01-02,no\n"
        "c-3,cy@example.com,02/30/2024,no\n"
        "c-4,dee@example.com,2024-01-05,maybe\n"
        ",nobody@example.com,,\n"
        "c-6,ann@example.com,,\n"
        "c-7,eve@example.com,2024-03-01T10:00:00+01:00,1\n"
    )
    job = run_import(api_client, "customers", text)
    assert job.status == "succeeded"
    assert (job.result["rows"], job.result["stored"], job.result["failed"]) == (7, 2, 5)
    assert _errors(job) == [(3, "email"), (4, "first_seen"), (5, "consent_marketing"), (6, "external_id"), (7, "email")]
    with tenant_context(tenant):
        assert set(Customer.objects.values_list("external_id", flat=True)) == {"c-1", "c-7"}
        assert Customer.objects.get(external_id="c-7").first_seen.isoformat() == "2024-03-01T09:00:00+00:00"
    # The full report is a downloadable CSV.
    with default_storage.open(job.result["file"]) as fh:
        report = fh.read().decode()
    assert report.splitlines()[0] == "line,column,reason"
    assert len(report.splitlines()) == 6


def test_orders_import_with_bom_decimal_commas_semicolons_and_time_zones(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant, catalog: None
) -> None:
    text = (
        "\ufefforder_id;customer_id;placed_at;status;sku;quantity;unit_price\n"
        "O-1;c-1;2025-02-01T08:15:00-05:00;paid;BEAN;2;13,50\n"
        "O-1;c-1;2025-02-01T08:15:00-05:00;paid;MUG;1;\n"
        "O-2;c-2;2025-02-03 10:00;fulfilled;BEAN;1;1.014,00\n"
    )
    job = run_import(api_client, "orders", text)
    assert job.status == "succeeded", job.error
    assert (job.result["stored"], job.result["failed"]) == (3, 0)
    with tenant_context(tenant):
        o1 = Order.objects.get(external_id="O-1")
        o2 = Order.objects.get(external_id="O-2")
    assert o1.total == Decimal("36.50")  # 2 × 13.50 + the mug at its list price
    assert o1.placed_at.isoformat() == "2025-02-01T13:15:00+00:00"
    assert o2.total == Decimal("1014.00")
    assert o2.placed_at.isoformat() == "2025-02-03T10:00:00+00:00"  # the business's zone (UTC here)


def test_each_order_error_path_is_reported_and_a_bad_line_rejects_its_order(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant, catalog: None
) -> None:
    text = (
        "order_id,customer_id,placed_at,sku,quantity\n"
        "O-1,c-1,2025-02-01,BEAN,1\n"  # good order
        "O-2,c-1,31/02/2025,BEAN,1\n"  # bad date
        "O-3,c-1,2025-02-01,NOPE,1\n"  # unknown product
        "O-4,c-1,2025-02-01,BEAN,-3\n"  # negative quantity
        "O-5,c-1,2025-02-01,BEAN,1\n"  # good line of an order with a bad line
        "O-5,c-1,2025-02-01,MUG,two\n"
        "O-6,ghost,2025-02-01,BEAN,1\n"  # unknown customer
    )
    job = run_import(api_client, "orders", text)
    assert job.status == "succeeded"
    assert (job.result["stored"], job.result["failed"]) == (1, 6)
    assert _errors(job) == [(3, "placed_at"), (4, "sku"), (5, "quantity"), (7, "quantity"), (6, ""), (8, "customer_id")]
    reasons = {e["line"]: e["reason"] for e in job.result["errors"]}
    assert "unknown product" in reasons[4].lower()
    assert "at least 1" in reasons[5]
    assert "O-5" in reasons[6]
    with tenant_context(tenant):
        assert list(Order.objects.values_list("external_id", flat=True)) == ["O-1"]
        assert OrderLine.objects.count() == 1


def test_reimporting_the_same_file_creates_no_duplicates(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant, catalog: None
) -> None:
    text = "order_id,customer_id,placed_at,sku,quantity\nO-1,c-1,2025-02-01,BEAN,1\nO-1,c-1,2025-02-01,MUG,2\n"
    for _ in range(2):
        assert run_import(api_client, "orders", text).result["stored"] == 2
        assert run_import(api_client, "products", PRODUCTS).result["stored"] == 2
        assert run_import(api_client, "customers", CUSTOMERS).result["stored"] == 2
    with tenant_context(tenant):
        assert (Customer.objects.count(), Product.objects.count()) == (2, 2)
        assert (Order.objects.count(), OrderLine.objects.count()) == (1, 2)
        assert Order.objects.get().total == Decimal("33.00")


def test_missing_column_fails_the_job_and_stores_nothing(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant
) -> None:
    job = run_import(api_client, "products", "sku,name\nBEAN,House Blend\n")
    assert job.status == "failed"
    assert "Missing required column(s): price" in job.message
    with tenant_context(tenant):
        assert not Product.objects.exists()


def test_wrong_encoding_fails_the_job_and_stores_nothing(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant
) -> None:
    text = "external_id,name\nc-1,Ann\nc-2,José Müller\n"
    job = run_import(api_client, "customers", text, encoding="latin-1")
    assert job.status == "failed"
    assert "not UTF-8" in job.message
    assert "line 3" in job.message
    with tenant_context(tenant):
        assert not Customer.objects.exists()


def test_import_needs_write_permission(read_api_client: APIClient, analyst: Any) -> None:
    from tests.conftest import client_for

    upload = csv_upload(CUSTOMERS)
    assert (
        read_api_client.post("/api/v1/imports/", {"kind": "customers", "file": upload}, format="multipart").status_code
        == 403
    )
    page = client_for(analyst).post("/imports/", {"kind": "customers", "file": csv_upload(CUSTOMERS)})
    assert page.status_code == 403


def test_import_from_the_dashboard_shows_progress_and_report(owner_client: Client, tenant: Tenant) -> None:
    response = owner_client.post("/imports/", {"kind": "customers", "file": csv_upload("external_id,email\nc-1,bad\n")})
    assert response.status_code == 302
    page = owner_client.get(response["Location"])
    assert page.status_code == 200
    assert b"Succeeded" in page.content
    assert b"Not an email address" in page.content
    listing = owner_client.get("/imports/")
    assert b"1 error" in listing.content


def test_other_tenant_cannot_see_an_import(
    api_client: APIClient, other_api_client: APIClient, other_client: Client, run_import: Callable[..., Job]
) -> None:
    job = run_import(api_client, "customers", CUSTOMERS)
    assert other_api_client.get(f"/api/v1/imports/{job.pk}/").status_code == 404
    assert other_api_client.get("/api/v1/imports/").json()["count"] == 0
    assert other_client.get(f"/imports/{job.pk}/").status_code == 404
    assert api_client.get(f"/api/v1/imports/{job.pk}/").json()["result"]["stored"] == 2

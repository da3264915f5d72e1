"""The customers and products pages with several rows: search, each filter, and each sort, with the
order of the rows asserted as the page shows them."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from journeys.models import Customer
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.journeys.conftest import CustomerFactory, OrderFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _customers(client: Client, query: str = "") -> list[str]:
    page = client.get(f"/customers/?{query}")
    assert page.status_code == 200
    return re.findall(r'<a href="/customers/\d+/">([^<]+)</a>', page.content.decode())


def _products(client: Client, query: str = "") -> list[str]:
    page = client.get(f"/products/?{query}")
    assert page.status_code == 200
    return re.findall(r"<tr><td>([^<]+)", page.content.decode())


@pytest.fixture
def people(tenant: Tenant, other_tenant: Tenant) -> None:
    """Five customers of tenant A seen at different times, with different consent and orders."""
    now = timezone.now()
    with tenant_context(tenant):
        ann = CustomerFactory(name="Ann Archer", email="ann@example.com", last_seen=now - timedelta(days=2),
                              consent_marketing=True, consent_personalization=True)  # fmt: skip
        CustomerFactory(name="Cyd Cole", email="cyd@example.net", last_seen=now - timedelta(days=20),
                        consent_personalization=True)  # fmt: skip
        bea = CustomerFactory(name="Bea Brown", email="bea@example.org", last_seen=now - timedelta(days=60),
                              consent_marketing=True)  # fmt: skip
        CustomerFactory(name="Dan Dale", email="dan@example.com", last_seen=now - timedelta(days=200), phone="555-0199")
        CustomerFactory(name="Eve East", email="eve@example.com", last_seen=None)
        OrderFactory(customer=ann)
        OrderFactory(customer=bea)
    with tenant_context(other_tenant):
        CustomerFactory(name="Zed Other", email="zed@example.com", last_seen=now)


def test_customers_default_sort_is_last_seen_newest_first_never_seen_last(owner_client: Client, people: None) -> None:
    assert _customers(owner_client) == ["Ann Archer", "Cyd Cole", "Bea Brown", "Dan Dale", "Eve East"]
    assert _customers(owner_client, "sort=name") == ["Ann Archer", "Bea Brown", "Cyd Cole", "Dan Dale", "Eve East"]
    assert _customers(owner_client, "sort=email") == ["Ann Archer", "Bea Brown", "Cyd Cole", "Dan Dale", "Eve East"]
    # Created in this order: newest first is the reverse.
    assert _customers(owner_client, "sort=-created") == ["Eve East", "Dan Dale", "Bea Brown", "Cyd Cole", "Ann Archer"]
    assert _customers(owner_client, "sort=nonsense") == _customers(owner_client)


def test_customers_search_by_name_email_and_phone(owner_client: Client, people: None) -> None:
    assert _customers(owner_client, "q=bea") == ["Bea Brown"]
    assert _customers(owner_client, "q=example.com&sort=name") == ["Ann Archer", "Dan Dale", "Eve East"]
    assert _customers(owner_client, "q=555-01") == ["Dan Dale"]
    assert _customers(owner_client, "q=zed") == []  # the other tenant's customer


def test_customers_filter_by_last_seen(owner_client: Client, people: None) -> None:
    assert _customers(owner_client, "seen=7d") == ["Ann Archer"]
    assert _customers(owner_client, "seen=30d") == ["Ann Archer", "Cyd Cole"]
    assert _customers(owner_client, "seen=90d") == ["Ann Archer", "Cyd Cole", "Bea Brown"]
    assert _customers(owner_client, "seen=lapsed") == ["Dan Dale"]
    assert _customers(owner_client, "seen=never") == ["Eve East"]
    page = owner_client.get("/customers/?seen=30d").content.decode()
    assert "2 customers match of 5" in page
    assert '<option value="30d" selected>' in page


def test_customers_filter_by_consent_and_orders_combined_with_search_and_sort(
    owner_client: Client, people: None
) -> None:
    assert _customers(owner_client, "consent=marketing") == ["Ann Archer", "Bea Brown"]
    assert _customers(owner_client, "consent=personalization&sort=name") == ["Ann Archer", "Cyd Cole"]
    assert _customers(owner_client, "consent=none") == ["Dan Dale", "Eve East"]
    assert _customers(owner_client, "orders=yes") == ["Ann Archer", "Bea Brown"]
    assert _customers(owner_client, "orders=no&sort=-created") == ["Eve East", "Dan Dale", "Cyd Cole"]
    assert _customers(owner_client, "orders=yes&consent=marketing&seen=30d") == ["Ann Archer"]
    assert _customers(owner_client, "q=example.com&orders=no&sort=name") == ["Dan Dale", "Eve East"]


def test_customers_pages_keep_the_filters(owner_client: Client, tenant: Tenant) -> None:
    with tenant_context(tenant):
        for n in range(55):
            CustomerFactory(name=f"Pat {n:02d}", consent_marketing=True)
        CustomerFactory(name="Quiet Quinn")
    first = owner_client.get("/customers/?consent=marketing&sort=name").content.decode()
    assert 'href="?q=&amp;consent=marketing&amp;seen=&amp;orders=&amp;sort=name&page=2"' in first
    assert _customers(owner_client, "consent=marketing&sort=name&page=2") == [f"Pat {n}" for n in range(50, 55)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
def test_customers_default_order_is_read_from_an_index(tenant: Tenant, people: None) -> None:
    from journeys.selectors import customer_list

    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        plan = customer_list().explain()
    assert "customer_tenant_last_seen_idx" in plan
    assert "Sort" not in plan.replace("Sort Key", "")


@pytest.fixture
def catalogue(tenant: Tenant, other_tenant: Tenant) -> None:
    with tenant_context(tenant):
        ProductFactory(name="Kenya AA", sku="KEN-1", category="Coffee", price=Decimal("19.50"))
        ProductFactory(name="Chemex", sku="CHX-6", category="Gear", price=Decimal("52.00"))
        ProductFactory(name="Decaf", sku="DEC-1", category="Coffee", price=Decimal("16.00"))
        ProductFactory(name="Mug", sku="MUG-1", category="Merch", price=Decimal("18.00"))
    with tenant_context(other_tenant):
        ProductFactory(name="Kenya Scarf", sku="KEN-9", category="Coffee", price=Decimal("1.00"))


def test_products_sorts(owner_client: Client, catalogue: None) -> None:
    assert _products(owner_client) == ["Chemex", "Decaf", "Kenya AA", "Mug"]
    assert _products(owner_client, "sort=price") == ["Decaf", "Mug", "Kenya AA", "Chemex"]
    assert _products(owner_client, "sort=-price") == ["Chemex", "Kenya AA", "Mug", "Decaf"]
    assert _products(owner_client, "sort=category") == ["Kenya AA", "Decaf", "Chemex", "Mug"]  # then by id
    assert _products(owner_client, "sort=-id") == _products(owner_client)  # not offered: by name


def test_products_search_and_category(owner_client: Client, catalogue: None) -> None:
    assert _products(owner_client, "q=ken") == ["Kenya AA"]  # not the other tenant's Kenya Scarf
    assert _products(owner_client, "q=chx") == ["Chemex"]  # by SKU
    assert _products(owner_client, "q=coffee&sort=-price") == ["Kenya AA", "Decaf"]  # by category
    assert _products(owner_client, "category=Coffee&sort=price") == ["Decaf", "Kenya AA"]
    assert _products(owner_client, "q=zzz") == []


def test_customer_page_counts_orders_of_each_row(owner_client: Client, people: None, tenant: Tenant) -> None:
    with tenant_context(tenant):
        ann = Customer.objects.get(name="Ann Archer")
        OrderFactory(customer=ann, total=Decimal("10.00"), status="refunded")
    page = owner_client.get("/customers/?q=ann").content.decode()
    cells = re.findall(r'<td class="num">([^<]+)</td>', page)
    assert cells == ["2", "25.00"]  # two orders; the refunded one is not revenue

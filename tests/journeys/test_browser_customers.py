"""The customers page in a real browser: the filters are chosen in the form and the table follows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.context import tenant_context
from tenants.services import tenant_create
from tests.browser.conftest import browser, page, screenshot  # noqa: F401 - fixtures
from tests.browser.test_platform_walkthrough import sign_in
from tests.conftest import make_user
from tests.journeys.conftest import CustomerFactory, OrderFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customers_filters_and_sort_from_the_form(page, live_server, settings) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from playwright.sync_api import expect

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user("lists@x.test")
    tenant = tenant_create(name="Lists Roastery", owner=user)
    now = timezone.now()
    with tenant_context(tenant):
        ann = CustomerFactory(name="Ann Archer", last_seen=now - timedelta(days=2), consent_marketing=True)
        CustomerFactory(name="Cyd Cole", last_seen=now - timedelta(days=20))
        bea = CustomerFactory(name="Bea Brown", last_seen=now - timedelta(days=60), consent_marketing=True)
        CustomerFactory(name="Dan Dale", last_seen=now - timedelta(days=200))
        OrderFactory(customer=ann)
        OrderFactory(customer=bea)
    sign_in(page, "lists@x.test")
    page.get_by_role("heading", name="Lists Roastery").wait_for()
    page.goto("/customers/")
    names = page.locator("table.table tbody tr td:first-child a")
    expect(names).to_have_text(["Ann Archer", "Cyd Cole", "Bea Brown", "Dan Dale"])
    page.get_by_label("Last seen").select_option("90d")
    page.get_by_label("Orders").select_option("yes")
    page.get_by_label("Sort by").select_option("name")
    page.get_by_role("button", name="Apply").click()
    expect(names).to_have_text(["Ann Archer", "Bea Brown"])
    expect(page.locator(".lede")).to_have_text("2 customers match of 4.")
    expect(page.get_by_label("Last seen")).to_have_value("90d")  # the form keeps what was chosen
    screenshot(page, "customers-filters")

"""A new business signs up, verifies its email, lands on the dashboard and creates an API key."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from rest_framework.test import APIClient

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_signup_dashboard_and_api_key(page, live_server, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    page.goto("/accounts/signup/")
    screenshot(page, "signup")
    page.get_by_label("Email").fill("maria@beanstalk.test")
    page.get_by_label("Your name").fill("Maria Bean")
    page.get_by_label("Business name").fill("Beanstalk Roasters")
    page.get_by_label("Time zone").select_option("Europe/Lisbon")
    page.get_by_label("Currency").select_option("EUR")
    page.get_by_label("Password:", exact=True).fill("espresso-doppio-42")
    page.get_by_label("Password (again):").fill("espresso-doppio-42")
    page.get_by_role("button", name="Sign Up").click()
    page.get_by_text("Verify Your Email Address").wait_for()

    link = re.search(r"https?://[^/]+(/accounts/confirm-email/\S+)", mail.outbox[-1].body).group(1)  # type: ignore[union-attr]
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()

    page.get_by_role("heading", name="Beanstalk Roasters", level=1).wait_for()
    assert "Getting started" in page.content()
    screenshot(page, "dashboard-home")

    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Key name").fill("Shop sync")
    page.get_by_label("Access").select_option("write")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key").inner_text().strip()
    assert secret.startswith("cx_")
    screenshot(page, "api-key-created")

    client = APIClient()
    response = client.get(f"{live_server.url}/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    assert response.json()["name"] == "Beanstalk Roasters"

    page.reload()  # shown once: gone after a reload
    assert secret not in page.content()
    assert page.get_by_role("cell", name="Shop sync").is_visible()


def test_jobs_page_shows_live_progress(page, live_server, settings) -> None:  # type: ignore[no-untyped-def]
    from tenants.services import tenant_create
    from tests.conftest import make_user

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user("jobs@x.test")
    tenant_create(name="Job Shop", owner=user)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("jobs@x.test")
    page.get_by_label("Password:").fill("correct-horse-battery-9")
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Job Shop").wait_for()
    page.goto("/settings/jobs/")
    page.get_by_role("button", name="Export audit log (CSV)").click()
    page.get_by_role("link", name="Download").wait_for()
    assert "Succeeded" in page.locator("#jobs-table").inner_text()
    screenshot(page, "jobs")

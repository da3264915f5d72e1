"""A new business signs up, verifies its email, lands on the dashboard and creates an API key; jobs
show live progress; an owner turns on two-factor sign-in."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect
from rest_framework.test import APIClient

from tenants.context import tenant_context
from tenants.jobs import job_start
from tenants.services import tenant_create
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD, make_user
from tests.tenants.stepped_jobs import STEPPED, Stepper
from tests.tenants.test_two_factor import totp_now, totp_wrong

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


def sign_in(page, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()


def test_jobs_page_shows_live_progress(page, live_server, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CX_TASKS_INLINE, settings.CELERY_BROKER_URL = False, ""  # the in-process thread pool, as embedded
    user = make_user("jobs@x.test")
    tenant = tenant_create(name="Job Shop", owner=user)
    sign_in(page, "jobs@x.test")
    page.get_by_role("heading", name="Job Shop").wait_for()
    page.goto("/settings/jobs/")
    page.get_by_text("No jobs yet.").wait_for()
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    stepper = Stepper()
    with tenant_context(tenant):  # started elsewhere (API, schedule): the idle page picks it up
        job = job_start(kind=STEPPED, params=stepper.params, created_by=user)
    row = page.locator(f"#job-{job.pk}")
    expect(row.locator(".badge")).to_have_text("Running", timeout=15_000)
    bar = row.locator("progress")
    seen = [int(bar.get_attribute("value") or -1)]
    for percent in (25, 60, 90):
        stepper.step(percent)
        expect(bar).to_have_attribute("value", str(percent))
        seen.append(int(bar.get_attribute("value") or -1))
        if percent == 60:
            expect(row).to_contain_text("step 2")
            screenshot(page, "jobs-progress")
    assert seen == [0, 25, 60, 90]
    stepper.finish()
    expect(row.locator(".badge")).to_have_text("Succeeded")
    expect(bar).to_have_attribute("value", "100")
    assert page.evaluate("window.loadedOnce") is True  # all of it without a reload

    page.get_by_role("button", name="Export audit log (CSV)").click()
    page.get_by_role("link", name="Download").wait_for()
    assert "Audit log export" in page.locator("#jobs-table").inner_text()
    screenshot(page, "jobs")


def test_owner_turns_on_two_factor_and_signs_in_with_a_code(page, live_server, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user("twofa@x.test")
    tenant_create(name="Safe Shop", owner=user)
    sign_in(page, "twofa@x.test")
    page.get_by_role("heading", name="Safe Shop").wait_for()
    page.locator("details.user-menu summary").click()
    page.get_by_role("menuitem", name="Two-factor authentication").click()
    page.get_by_role("heading", name="Two-Factor Authentication").wait_for()
    screenshot(page, "two-factor")

    page.get_by_role("link", name="Activate").click()
    page.get_by_label("Password:").fill(PASSWORD)  # asked again before turning it on
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Activate Authenticator App").wait_for()
    secret = page.get_by_label("Authenticator secret").input_value()
    screenshot(page, "two-factor-activate")
    page.get_by_label("Authenticator code").fill(totp_now(secret))
    page.get_by_role("button", name="Activate").click()
    page.get_by_role("heading", name="Recovery Codes").wait_for()  # shown right after activation
    screenshot(page, "two-factor-recovery-codes")
    page.goto("/accounts/2fa/")
    page.get_by_text("Authentication using an authenticator app is active.").wait_for()

    page.context.clear_cookies()
    sign_in(page, "twofa@x.test")
    page.get_by_text("Please enter an authenticator code").wait_for()
    screenshot(page, "two-factor-sign-in")
    page.get_by_label("Code").fill(totp_wrong(secret))
    page.get_by_role("button", name="Sign In").click()
    page.get_by_text("Incorrect code.").wait_for()
    page.get_by_label("Code").fill(totp_now(secret))
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Safe Shop").wait_for()

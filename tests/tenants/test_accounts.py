"""Sign-up creates the business; email verification; password reset; login rate limit; MFA page."""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client

from tenants.context import tenant_context
from tenants.models import Membership, Role, Tenant, User
from tests.conftest import PASSWORD, client_for

SIGNUP = {
    "email": "founder@roastery.test",
    "password1": PASSWORD,
    "password2": PASSWORD,
    "name": "Fran Founder",
    "business_name": "Roastery & Co",
    "timezone": "Europe/Berlin",
    "currency": "EUR",
}


def test_signup_creates_business_with_owner_and_requires_verification(client: Client, db: None) -> None:
    response = client.post("/accounts/signup/", SIGNUP)
    assert response.status_code == 302
    user = User.objects.get(email="founder@roastery.test")
    tenant = Tenant.objects.get(name="Roastery & Co")
    assert (tenant.timezone, tenant.currency) == ("Europe/Berlin", "EUR")
    with tenant_context(tenant):
        assert Membership.objects.get(user=user).role == Role.OWNER
    assert client.get("/").status_code == 302  # not signed in until the address is verified
    link = re.search(r"http://[^/]+(/accounts/confirm-email/[^\s]+)", mail.outbox[0].body).group(1)  # type: ignore[union-attr]
    client.post(link)
    assert "<h1>Roastery &amp; Co</h1>" in client.get("/").content.decode()


def test_signup_requires_the_business_name(client: Client, db: None) -> None:
    response = client.post("/accounts/signup/", {**SIGNUP, "business_name": ""})
    assert response.status_code == 200
    assert not User.objects.exists()


def test_password_reset_sends_a_link(client: Client, owner: User) -> None:
    client.post("/accounts/password/reset/", {"email": owner.email})
    assert len(mail.outbox) == 1 and "/accounts/password/reset/key/" in mail.outbox[0].body


def test_failed_logins_are_rate_limited(client: Client, owner: User) -> None:
    pages = [
        client.post("/accounts/login/", {"login": owner.email, "password": "wrong-password"}).content.decode()
        for _ in range(6)
    ]
    assert "Too many failed login attempts" not in pages[0]
    assert "Too many failed login attempts" in pages[-1]
    blocked = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    assert "Too many failed login attempts" in blocked.content.decode()  # even the right password, for a while
    assert "_auth_user_id" not in client.session


def test_owner_can_open_two_factor_setup(owner: User, tenant: Tenant) -> None:
    client = client_for(owner)
    page = client.get("/accounts/2fa/")
    assert page.status_code == 200 and "Authenticator" in page.content.decode()
    # Turning it on asks for the password again first, as it should.
    assert client.get("/accounts/2fa/totp/activate/")["Location"].startswith("/accounts/reauthenticate/")

"""Invitations: email with an expiring link; accepting creates the membership (and the account)."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core import mail
from django.test import Client
from django.utils import timezone

from tenants.context import tenant_context
from tenants.models import Invitation, Membership, Role, Tenant, User
from tests.conftest import PASSWORD, client_for, make_user


def _invite(owner_client: Client, email: str, capture, role: str = "agent") -> str:  # type: ignore[no-untyped-def]
    with capture(execute=True):  # the email is sent after the invitation commits
        owner_client.post("/settings/team/", {"email": email, "role": role})
    assert len(mail.outbox) == 1
    assert "Tenant A Coffee" in mail.outbox[0].subject
    return re.search(r"http://[^/]+(/invite/[^/\s]+/)", mail.outbox[0].body).group(1)  # type: ignore[union-attr]


def test_new_person_accepts_and_gets_an_account(
    owner_client: Client, tenant: Tenant, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    link = _invite(owner_client, "newbie@x.test", django_capture_on_commit_callbacks, "analyst")
    client = Client()
    page = client.get(link).content.decode()
    assert "Join Tenant A Coffee" in page and "Analyst" in page
    response = client.post(link, {"name": "New Bie", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    user = User.objects.get(email="newbie@x.test")
    with tenant_context(tenant):
        assert Membership.objects.get(user=user).role == Role.ANALYST
    assert "<h1>Tenant A Coffee</h1>" in client.get("/").content.decode()
    assert client.get(link).status_code == 404  # used up


def test_existing_user_signs_in_and_joins(
    owner_client: Client, tenant: Tenant, other_tenant: Tenant, other_owner: User, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    link = _invite(owner_client, other_owner.email, django_capture_on_commit_callbacks, "agent")
    assert "Sign in" in Client().get(link).content.decode()
    client = client_for(other_owner)
    assert client.post(link).status_code == 302
    with tenant_context(tenant):
        assert Membership.objects.get(user=other_owner).role == Role.AGENT


def test_wrong_account_cannot_accept(owner_client: Client, tenant: Tenant, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    link = _invite(owner_client, "intended@x.test", django_capture_on_commit_callbacks)
    intruder = make_user("intruder@x.test")
    page = client_for(intruder).post(link, follow=True).content.decode()
    assert "This invitation is for intended@x.test" in page
    with tenant_context(tenant):
        assert not Membership.objects.filter(user=intruder).exists()


def test_expired_and_revoked_links_are_refused(
    owner_client: Client, tenant: Tenant, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    link = _invite(owner_client, "late@x.test", django_capture_on_commit_callbacks)
    with tenant_context(tenant):
        Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = Client().get(link)
    assert response.status_code == 404 and "expired" in response.content.decode()
    with tenant_context(tenant):
        inv = Invitation.objects.get()
        Invitation.objects.update(expires_at=timezone.now() + timedelta(days=1))
    owner_client.post(f"/settings/invitations/{inv.pk}/revoke/")
    assert Client().get(link).status_code == 404


def test_inviting_a_member_again_is_refused(owner_client: Client, owner: User) -> None:
    page = owner_client.post("/settings/team/", {"email": owner.email, "role": "agent"}).content.decode()
    assert "already a member" in page
    assert not mail.outbox

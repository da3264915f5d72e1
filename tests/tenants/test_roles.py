"""Roles are enforced on every page and endpoint."""

from __future__ import annotations

import pytest
from django.test import Client

from tenants.context import tenant_context
from tenants.models import ApiKey, Membership, Role, Tenant, User
from tests.conftest import client_for

MANAGER_PAGES = ["/settings/", "/settings/team/", "/settings/api-keys/", "/settings/audit-log/"]


@pytest.mark.parametrize("url", MANAGER_PAGES)
def test_agent_and_analyst_cannot_open_management_pages(agent: User, analyst: User, url: str) -> None:
    assert client_for(agent).get(url).status_code == 403
    assert client_for(analyst).get(url).status_code == 403


@pytest.mark.parametrize("url", MANAGER_PAGES)
def test_owner_and_admin_can(owner_client: Client, admin: User, url: str) -> None:
    assert owner_client.get(url).status_code == 200
    assert client_for(admin).get(url).status_code == 200


def test_agent_cannot_create_or_revoke_api_keys(agent: User, tenant: Tenant, owner_client: Client) -> None:
    client = client_for(agent)
    assert client.post("/settings/api-keys/", {"name": "sneaky", "scope": "write"}).status_code == 403
    owner_client.post("/settings/api-keys/", {"name": "real", "scope": "read"})
    with tenant_context(tenant):
        key = ApiKey.objects.get()
    assert client.post(f"/settings/api-keys/{key.pk}/revoke/").status_code == 403
    with tenant_context(tenant):
        assert ApiKey.objects.get().revoked_at is None
        assert ApiKey.objects.count() == 1


def test_analyst_cannot_change_anything(analyst: User, owner: User, tenant: Tenant) -> None:
    client = client_for(analyst)
    with tenant_context(tenant):
        owner_membership = Membership.objects.get(user=owner)
    attempts = [
        ("/settings/", {"name": "Renamed", "timezone": "UTC", "currency": "EUR"}),
        ("/settings/team/", {"email": "x@y.test", "role": "admin"}),
        (f"/settings/team/{owner_membership.pk}/role/", {"role": "analyst"}),
        (f"/settings/team/{owner_membership.pk}/remove/", {}),
        ("/settings/api-keys/", {"name": "k", "scope": "write"}),
        ("/settings/jobs/", {}),
    ]
    for url, data in attempts:
        assert client.post(url, data).status_code == 403, url
    tenant.refresh_from_db()
    assert tenant.name == "Tenant A Coffee"
    with tenant_context(tenant):
        assert Membership.objects.get(user=owner).role == Role.OWNER


def test_analyst_reads_the_dashboard_and_jobs(analyst: User) -> None:
    client = client_for(analyst)
    assert client.get("/").status_code == 200
    assert client.get("/settings/jobs/").status_code == 200


def test_analyst_session_cannot_write_through_the_api(analyst: User) -> None:
    client = client_for(analyst)
    assert client.get("/api/v1/jobs/").status_code == 200
    response = client.post("/api/v1/jobs/audit-log-export/")
    assert response.status_code == 403  # CSRF passes for force_login test clients; the role does not


def test_admin_cannot_make_owners_or_touch_owners(admin: User, owner: User, tenant: Tenant) -> None:
    client = client_for(admin)
    with tenant_context(tenant):
        owner_m = Membership.objects.get(user=owner)
        admin_m = Membership.objects.get(user=admin)
    client.post(f"/settings/team/{admin_m.pk}/role/", {"role": "owner"})
    client.post(f"/settings/team/{owner_m.pk}/remove/")
    with tenant_context(tenant):
        assert Membership.objects.get(pk=admin_m.pk).role == Role.ADMIN
        assert Membership.objects.filter(pk=owner_m.pk).exists()


def test_last_owner_cannot_be_demoted(owner_client: Client, owner: User, tenant: Tenant) -> None:
    with tenant_context(tenant):
        m = Membership.objects.get(user=owner)
    response = owner_client.post(f"/settings/team/{m.pk}/role/", {"role": "admin"}, follow=True)
    assert "at least one owner" in response.content.decode()
    with tenant_context(tenant):
        assert Membership.objects.get(pk=m.pk).role == Role.OWNER


def test_anonymous_is_sent_to_login(client: Client, db: None) -> None:
    response = client.get("/settings/team/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_user_without_business_is_asked_to_create_one(db: None) -> None:
    from tests.conftest import make_user

    client = client_for(make_user("lonely@x.test"))
    assert client.get("/").url == "/business/new/"
    response = client.post("/business/new/", {"business_name": "Lonely Gym", "timezone": "UTC", "currency": "EUR"})
    assert response.status_code == 302
    assert "<h1>Lonely Gym</h1>" in client.get("/").content.decode()

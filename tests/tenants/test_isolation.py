"""Another tenant's objects are 404 on every page and endpoint; lists never show its rows."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tenants.context import tenant_context
from tenants.jobs import job_start
from tenants.models import AuditLogEntry, Invitation, Job, Membership, Tenant, User
from tenants.services import api_key_create, invitation_create
from tenants.tasks import AUDIT_EXPORT


@pytest.fixture
def b_objects(other_tenant: Tenant, other_owner: User) -> dict[str, int]:
    """One object of every kind, all belonging to tenant B."""
    with tenant_context(other_tenant):
        membership = Membership.objects.get(user=other_owner)
        key = api_key_create(name="b key", scope="read", created_by=other_owner).api_key
        invitation = invitation_create(actor_membership=membership, email="new@b.test", role="agent")
        job = job_start(kind=AUDIT_EXPORT, created_by=other_owner)
    return {"membership": membership.pk, "key": key.pk, "invitation": invitation.pk, "job": job.pk}


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/settings/team/{membership}/role/"),
        ("post", "/settings/team/{membership}/remove/"),
        ("post", "/settings/invitations/{invitation}/revoke/"),
        ("post", "/settings/api-keys/{key}/revoke/"),
        ("get", "/settings/jobs/{job}/download/"),
    ],
)
def test_pages_answer_404_for_other_tenants_objects(
    owner_client: Client, b_objects: dict[str, int], other_tenant: Tenant, method: str, url: str
) -> None:
    response = getattr(owner_client, method)(url.format(**b_objects), {"role": "agent"} if method == "post" else None)
    assert response.status_code == 404
    with tenant_context(other_tenant):  # and nothing changed
        assert Membership.objects.count() == 1
        assert Invitation.objects.get(pk=b_objects["invitation"]).revoked_at is None


@pytest.mark.parametrize("url", ["/api/v1/members/{membership}/", "/api/v1/jobs/{job}/"])
def test_api_answers_404_for_other_tenants_objects(api_client: APIClient, b_objects: dict[str, int], url: str) -> None:
    response = api_client.get(url.format(**b_objects))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("url", "model"),
    [("/api/v1/members/", Membership), ("/api/v1/jobs/", Job), ("/api/v1/audit-log/", AuditLogEntry)],
)
def test_api_lists_never_show_other_tenants_rows(
    api_client: APIClient, b_objects: dict[str, int], tenant: Tenant, other_tenant: Tenant, url: str, model: type
) -> None:
    with tenant_context(tenant):
        job_start(kind=AUDIT_EXPORT)
    with tenant_context(other_tenant):
        b_ids = set(model.objects.values_list("pk", flat=True))
    assert b_ids
    ids = {r["id"] for r in api_client.get(url).json()["results"]}
    assert ids, "tenant A has rows of its own"
    assert not ids & b_ids


def test_api_tenant_is_the_keys_tenant(api_client: APIClient, other_api_client: APIClient, tenant: Tenant) -> None:
    assert api_client.get("/api/v1/tenant/").json()["id"] == tenant.pk
    assert other_api_client.get("/api/v1/tenant/").json()["id"] != tenant.pk


@pytest.mark.parametrize(
    "url", ["/", "/settings/", "/settings/team/", "/settings/api-keys/", "/settings/jobs/", "/settings/audit-log/"]
)
def test_pages_never_show_other_tenants_rows(owner_client: Client, b_objects: dict[str, int], url: str) -> None:
    body = owner_client.get(url).content.decode()
    assert "Tenant B Boutique" not in body
    assert "owner@tenant-b.test" not in body
    assert "new@b.test" not in body
    assert "b key" not in body


def test_switching_to_a_tenant_you_do_not_belong_to_is_404(owner_client: Client, other_tenant: Tenant) -> None:
    assert owner_client.post("/business/switch/", {"tenant": other_tenant.pk}).status_code == 404


def test_member_of_two_tenants_switches_between_them(owner: User, tenant: Tenant, other_tenant: Tenant) -> None:
    from tests.conftest import add_member, client_for

    add_member(other_tenant, owner, "analyst")
    client = client_for(owner)
    assert "Tenant A Coffee" in client.get("/").content.decode()
    assert client.post("/business/switch/", {"tenant": other_tenant.pk}).status_code == 302
    page = client.get("/").content.decode()
    assert "<h1>Tenant B Boutique</h1>" in page
    assert client.get("/settings/api-keys/").status_code == 403  # analyst there

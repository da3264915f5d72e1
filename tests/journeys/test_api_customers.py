"""Customers API: upsert by external id, consent recorded with its source, filters, tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from journeys.models import Customer
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.conftest import client_for
from tests.journeys.conftest import api_queries

pytestmark = pytest.mark.django_db


def test_post_creates_and_refuses_an_existing_external_id(api_client: APIClient) -> None:
    body = {"external_id": "c-1", "email": "Ann@Example.com", "name": "Ann", "attributes": {"tier": "gold"}}
    response = api_client.post("/api/v1/customers/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["email"] == "ann@example.com"
    again = api_client.post("/api/v1/customers/", body, format="json")
    assert again.status_code == 400
    assert "PUT" in again.json()["error"]["fields"]["external_id"][0]


def test_put_creates_then_replaces(api_client: APIClient, tenant: Tenant) -> None:
    first = api_client.put("/api/v1/customers/c-9/", {"name": "Cleo", "phone": "555-1234"}, format="json")
    assert first.status_code == 201
    second = api_client.put("/api/v1/customers/c-9/", {"name": "Cleo Park"}, format="json")
    assert second.status_code == 200
    assert second.json()["name"] == "Cleo Park"
    assert second.json()["phone"] == ""  # PUT replaces: a field left out is reset
    with tenant_context(tenant):
        assert Customer.objects.filter(external_id="c-9").count() == 1


def test_put_rejects_a_body_with_another_external_id(api_client: APIClient) -> None:
    response = api_client.put("/api/v1/customers/c-9/", {"external_id": "c-10"}, format="json")
    assert response.status_code == 400
    assert "external_id" in response.json()["error"]["fields"]


def test_patch_changes_only_given_fields_and_404s_for_unknown(api_client: APIClient) -> None:
    api_client.put("/api/v1/customers/c-2/", {"name": "Dev", "phone": "1"}, format="json")
    response = api_client.patch("/api/v1/customers/c-2/", {"name": "Devi"}, format="json")
    assert response.status_code == 200
    assert response.json()["phone"] == "1"
    assert api_client.patch("/api/v1/customers/nope/", {"name": "x"}, format="json").status_code == 404


def test_consent_change_records_time_and_source(api_client: APIClient) -> None:
    created = api_client.put("/api/v1/customers/c-3/", {"consent_marketing": True}, format="json").json()
    assert created["consent_marketing"] is True
    assert created["consent_marketing_source"] == "api"
    assert created["consent_marketing_at"] is not None
    assert created["consent_personalization_at"] is None  # never given, never changed

    changed = api_client.patch(
        "/api/v1/customers/c-3/", {"consent_marketing": False, "consent_source": "widget"}, format="json"
    ).json()
    assert changed["consent_marketing"] is False
    assert changed["consent_marketing_source"] == "widget"
    assert changed["consent_marketing_at"] > created["consent_marketing_at"]

    # A PUT that does not mention consent leaves it, and its history, alone.
    kept = api_client.put("/api/v1/customers/c-3/", {"name": "Eve"}, format="json").json()
    assert kept["consent_marketing"] is False
    assert kept["consent_marketing_at"] == changed["consent_marketing_at"]


def test_email_unique_per_tenant_only(api_client: APIClient, other_api_client: APIClient) -> None:
    api_client.put("/api/v1/customers/c-1/", {"email": "same@example.com"}, format="json")
    clash = api_client.put("/api/v1/customers/c-2/", {"email": "SAME@example.com"}, format="json")
    assert clash.status_code == 400
    assert "c-1" in clash.json()["error"]["fields"]["email"][0]
    assert (
        other_api_client.put("/api/v1/customers/c-2/", {"email": "same@example.com"}, format="json").status_code == 201
    )


def test_filters_and_ordering(api_client: APIClient) -> None:
    for ext, name, email in [("1", "Zed", "z@example.com"), ("2", "Amy", "amy@example.com"), ("3", "Bo", "")]:
        api_client.put(f"/api/v1/customers/{ext}/", {"name": name, "email": email}, format="json")
    assert [c["name"] for c in api_client.get("/api/v1/customers/?ordering=name").json()["results"]] == [
        "Amy", "Bo", "Zed",
    ]  # fmt: skip
    assert api_client.get("/api/v1/customers/?email=AMY@example.com").json()["count"] == 1
    assert api_client.get("/api/v1/customers/?q=ze").json()["results"][0]["name"] == "Zed"
    assert api_client.get("/api/v1/customers/?updated_since=2999-01-01T00:00:00Z").json()["count"] == 0
    assert api_client.get("/api/v1/customers/?updated_since=2000-01-01T00:00:00Z").json()["count"] == 3


def test_delete(api_client: APIClient, tenant_data: dict[str, Any]) -> None:
    assert api_client.delete("/api/v1/customers/a-1/").status_code == 204
    assert api_client.get("/api/v1/customers/a-1/").status_code == 404
    assert api_client.get("/api/v1/orders/A-100/").status_code == 404


def test_read_only_key_and_analyst_cannot_write(read_api_client: APIClient, analyst: User) -> None:
    assert read_api_client.get("/api/v1/customers/").status_code == 200
    assert read_api_client.put("/api/v1/customers/x/", {"name": "x"}, format="json").status_code == 403
    session = client_for(analyst)
    assert session.get("/api/v1/customers/").status_code == 200
    response = session.post("/api/v1/customers/", {"external_id": "x"}, content_type="application/json")
    assert response.status_code == 403


def test_anonymous_request_is_refused(client: Client) -> None:
    assert client.get("/api/v1/customers/").status_code in (401, 403)


def test_other_tenant_gets_404_and_never_sees_rows(
    other_api_client: APIClient, tenant: Tenant, tenant_data: dict[str, Any], other_data: dict[str, Any]
) -> None:
    listed = other_api_client.get("/api/v1/customers/").json()
    assert [c["external_id"] for c in listed["results"]] == ["b-1"]
    assert other_api_client.get("/api/v1/customers/a-1/").status_code == 404
    assert other_api_client.patch("/api/v1/customers/a-1/", {"name": "x"}, format="json").status_code == 404
    assert other_api_client.delete("/api/v1/customers/a-1/").status_code == 404
    # PUT of the same external id creates B's own customer; A's is untouched.
    assert other_api_client.put("/api/v1/customers/a-1/", {"name": "B's"}, format="json").status_code == 201
    with tenant_context(tenant):
        assert Customer.objects.get(external_id="a-1").name == "Ann A"


def test_list_query_count_is_constant(api_client: APIClient, tenant: Tenant, django_assert_num_queries: Any) -> None:
    from tests.journeys.conftest import CustomerFactory

    with tenant_context(tenant):
        CustomerFactory.create_batch(30)
    api_client.get("/api/v1/customers/")  # warm the API key's last-used stamp
    # key lookup, page (not full, so it gives the count: no COUNT query)
    with django_assert_num_queries(api_queries(2)):
        response = api_client.get("/api/v1/customers/")
    assert response.json()["count"] == 30

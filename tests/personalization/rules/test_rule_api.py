"""The rule segments API: CRUD, preview count, members, refresh, fields; errors; tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from personalization.models import RuleSegment
from tenants.context import tenant_context
from tests.personalization.rules.conftest import World

pytestmark = pytest.mark.django_db

BASE = "/api/v1/rule-segments/"
BROWSED = {
    "all": [
        {"field": "event", "event_type": "product_view", "days": 7, "op": "at_least", "value": 1},
        {"field": "orders_in_window", "days": 7, "op": "none"},
    ]
}


def create(client: APIClient, name: str = "Browsed, no order", definition: Any = None, **extra: Any) -> Any:
    body = {"name": name, "definition": definition or BROWSED, **extra}
    return client.post(BASE, body, format="json")


def test_create_read_update_delete(world: World, api_client: APIClient) -> None:
    response = create(api_client, description="for a win-back email")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["member_count"] == 1 and body["kind"] == "dynamic" and body["last_refreshed_at"]
    assert body["definition"] == BROWSED
    pk = body["id"]

    listing = api_client.get(BASE).json()
    assert [s["name"] for s in listing["results"]] == ["Browsed, no order"]
    assert api_client.get(f"{BASE}{pk}/").json()["description"] == "for a win-back email"

    members = api_client.get(f"{BASE}{pk}/members/").json()
    assert [m["name"] for m in members["results"]] == ["Dee"] and members["count"] == 1

    wider = {"any": [{"field": "event", "event_type": "product_view", "days": 7, "op": "at_least", "value": 1}]}
    response = api_client.patch(f"{BASE}{pk}/", {"definition": wider}, format="json")
    assert response.status_code == 200 and response.json()["member_count"] == 2
    response = api_client.patch(f"{BASE}{pk}/", {"kind": "static", "name": "Browsers"}, format="json")
    assert response.json()["kind"] == "static" and response.json()["name"] == "Browsers"

    assert api_client.post(f"{BASE}{pk}/refresh/").json() == {"added": 0, "removed": 0, "members": 2}
    assert api_client.delete(f"{BASE}{pk}/").status_code == 204
    assert api_client.get(f"{BASE}{pk}/").status_code == 404


def test_count_previews_without_saving(world: World, api_client: APIClient) -> None:
    response = api_client.post(f"{BASE}count/", {"definition": BROWSED}, format="json")
    assert response.status_code == 200 and response.json() == {"count": 1}
    assert api_client.post(f"{BASE}count/", {"definition": {"all": []}}, format="json").json() == {"count": 4}
    with tenant_context(world.tenant):
        assert not RuleSegment.objects.exists()


def test_invalid_definition_is_a_400_naming_field_operator_and_value(world: World, api_client: APIClient) -> None:
    bad = {"all": [{"field": "revenue", "op": "gt", "value": "lots"}, {"any": [{"field": "tier", "op": "eq"}]}]}
    for response in (create(api_client, definition=bad), api_client.post(f"{BASE}count/", {"definition": bad},
                                                                          format="json")):  # fmt: skip
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_definition"
        assert error["message"].startswith('The segment definition is not valid (at all[0]): "Revenue" is greater')
        assert "'lots'" in error["message"] and "1 more problem" in error["message"]
        assert [p["path"] for p in error["fields"]["definition"]] == ["all[0]", "all[1].any[0]"]
        assert "Unknown field 'tier'" in error["fields"]["definition"][1]["message"]


def test_other_errors_are_clear_400s(world: World, api_client: APIClient) -> None:
    assert create(api_client).status_code == 201
    duplicate = create(api_client, name="browsed, NO order")
    assert duplicate.status_code == 400
    assert "already exists" in duplicate.json()["error"]["fields"]["name"][0]
    kind = create(api_client, name="x", kind="weekly")
    assert kind.status_code == 400 and "kind" in kind.json()["error"]["fields"]
    missing = api_client.post(BASE, {"name": "no definition"}, format="json")
    assert missing.status_code == 400 and "definition" in missing.json()["error"]["fields"]
    empty = create(api_client, name="empty", definition={"all": []})
    assert empty.status_code == 400 and "Add at least one condition" in empty.json()["error"]["message"]


def test_deleting_a_segment_in_use_is_refused(world: World, api_client: APIClient) -> None:
    base = create(api_client).json()["id"]
    create(api_client, name="Uses it", definition={"all": [{"field": "segment", "op": "not_in", "value": base}]})
    response = api_client.delete(f"{BASE}{base}/")
    assert response.status_code == 400
    assert '"Browsed, no order" is used by "Uses it"' in response.json()["error"]["message"]


def test_fields_catalog_lists_operators_and_choices(world: World, api_client: APIClient) -> None:
    body = api_client.get(f"{BASE}fields/").json()
    by_key = {f["key"]: f for f in body["fields"]}
    assert by_key["revenue"]["ops"][:3] == ["eq", "neq", "gt"]
    assert ["2", "Gear heads"] in [[str(k), v] for k, v in by_key["cluster"]["choices"]]
    assert body["categories"] == ["Coffee", "Equipment", "Tea"]
    assert "product_view" in [k for k, _ in body["event_types"]]


def test_read_only_key_reads_but_cannot_write(world: World, read_api_client: APIClient, api_client: APIClient) -> None:
    pk = create(api_client).json()["id"]
    assert read_api_client.get(f"{BASE}{pk}/members/").status_code == 200
    response = create(read_api_client, name="nope")
    assert response.status_code == 403 and "read-only" in response.json()["error"]["message"]


def test_another_tenants_segment_is_404_on_every_endpoint(
    world: World, api_client: APIClient, other_api_client: APIClient
) -> None:
    pk = create(api_client).json()["id"]
    for method, path in [
        ("get", f"{BASE}{pk}/"), ("patch", f"{BASE}{pk}/"), ("put", f"{BASE}{pk}/"), ("delete", f"{BASE}{pk}/"),
        ("get", f"{BASE}{pk}/members/"), ("post", f"{BASE}{pk}/refresh/"),
    ]:  # fmt: skip
        response = getattr(other_api_client, method)(path, {"name": "x", "definition": BROWSED}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert other_api_client.get(BASE).json()["results"] == []
    # tenant B cannot point a definition at tenant A's segment: it does not exist for B
    response = other_api_client.post(
        f"{BASE}count/", {"definition": {"all": [{"field": "segment", "op": "in", "value": pk}]}}, format="json"
    )
    assert response.status_code == 400 and "does not exist" in response.json()["error"]["message"]
    # and B's count over the same conditions sees only B's customers (Eve)
    everyone = other_api_client.post(f"{BASE}count/", {"definition": {"all": []}}, format="json")
    assert everyone.json() == {"count": 1}


def test_openapi_schema_describes_the_endpoints(api_client: APIClient) -> None:
    schema = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in ("/api/v1/rule-segments/", "/api/v1/rule-segments/count/", "/api/v1/rule-segments/{id}/members/",
                 "/api/v1/rule-segments/{id}/refresh/", "/api/v1/rule-segments/fields/"):  # fmt: skip
        assert path in paths, path
    assert "post" in paths["/api/v1/rule-segments/count/"]

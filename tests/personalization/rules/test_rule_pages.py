"""Dashboard pages of rule segments: list, builder (save, errors), live count, members, CSV, refresh,
delete; roles; another tenant's segment is a 404 everywhere."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client

from personalization.models import RuleSegment
from personalization.rules import services
from tenants.context import tenant_context
from tenants.models import User
from tests.conftest import client_for
from tests.personalization.rules.conftest import World

pytestmark = pytest.mark.django_db

BROWSED = {
    "all": [
        {"field": "event", "event_type": "product_view", "days": 7, "op": "at_least", "value": 1},
        {"field": "orders_in_window", "days": 7, "op": "none"},
    ]
}


def segments_of_a(world: World) -> list[RuleSegment]:
    with tenant_context(world.tenant):
        return list(RuleSegment.objects.order_by("pk"))


def make(world: World, name: str = "Browsed, no order", **extra: object) -> RuleSegment:
    with tenant_context(world.tenant):
        return services.rule_segment_create(name=name, definition=BROWSED, created_by=None, **extra)  # type: ignore[arg-type]


def test_builder_saves_a_segment_and_shows_its_members(world: World, owner_client: Client) -> None:
    page = owner_client.get("/segments/rules/new/")
    assert page.status_code == 200
    assert b'id="rule-catalog"' in page.content and b"segment-builder.js" in page.content
    response = owner_client.post(
        "/segments/rules/new/",
        {"name": "Browsed, no order", "description": "win-back", "kind": "dynamic", "definition": json.dumps(BROWSED)},
    )
    [segment] = segments_of_a(world)
    assert response.status_code == 302 and response["Location"] == f"/segments/rules/{segment.pk}/"
    detail = owner_client.get(response["Location"])
    assert detail.status_code == 200
    text = detail.content.decode()
    assert ">Dee</a>" in text and ">Ana</a>" not in text
    assert "saved with 1 member." in text
    listing = owner_client.get("/segments/rules/").content.decode()
    assert "Browsed, no order" in listing and "dynamic" in listing


def test_builder_shows_problems_inline_and_keeps_the_input(world: World, owner_client: Client) -> None:
    bad = {"all": [{"field": "revenue", "op": "gt", "value": "lots"}]}
    response = owner_client.post(
        "/segments/rules/new/", {"name": "Bad", "kind": "dynamic", "definition": json.dumps(bad)}
    )
    assert response.status_code == 200
    problems = json.loads(response.content.decode().split('id="rule-problems" type="application/json">')[1]
                          .split("</script>")[0])  # fmt: skip
    assert problems[0]["path"] == "all[0]" and "'lots'" in problems[0]["message"]
    assert "Some conditions need fixing" in response.content.decode()
    assert segments_of_a(world) == []
    not_json = owner_client.post("/segments/rules/new/", {"name": "X", "kind": "dynamic", "definition": "{all"})
    assert "not valid JSON" in not_json.content.decode()
    make(world)
    clash = owner_client.post(
        "/segments/rules/new/", {"name": "browsed, no order", "kind": "dynamic", "definition": json.dumps(BROWSED)}
    )
    assert "already exists" in clash.content.decode()


def test_live_count_endpoint(world: World, owner_client: Client, analyst: User) -> None:
    url = "/segments/rules/count/"
    ok = owner_client.post(url, json.dumps({"definition": BROWSED}), content_type="application/json")
    assert ok.status_code == 200 and ok.json() == {"count": 1}
    bad = owner_client.post(url, json.dumps({"definition": {"all": [{"field": "x"}]}}),
                            content_type="application/json")  # fmt: skip
    assert bad.status_code == 400 and bad.json()["problems"][0]["path"] == "all[0]"
    garbage = owner_client.post(url, "{", content_type="application/json")
    assert garbage.status_code == 400 and "JSON" in garbage.json()["error"]
    # an analyst may preview counts (read-only), but not open the builder
    analyst_client = client_for(analyst)
    assert analyst_client.post(url, json.dumps({"definition": BROWSED}), content_type="application/json").json() == {
        "count": 1
    }
    assert analyst_client.get("/segments/rules/new/").status_code == 403


def test_edit_refresh_export_and_delete(world: World, owner_client: Client) -> None:
    segment = make(world)
    edit = owner_client.get(f"/segments/rules/{segment.pk}/edit/")
    assert edit.status_code == 200 and "Browsed, no order" in edit.content.decode()
    wider = {"any": [{"field": "event", "event_type": "product_view", "days": 7, "op": "at_least", "value": 1}]}
    owner_client.post(f"/segments/rules/{segment.pk}/edit/",
                      {"name": "Browsers", "kind": "static", "definition": json.dumps(wider)})  # fmt: skip
    [segment] = segments_of_a(world)
    assert (segment.name, segment.kind, segment.member_count) == ("Browsers", "static", 2)

    response = owner_client.post(f"/segments/rules/{segment.pk}/refresh/", follow=True)
    assert "0 joined, 0 left, 2 members now" in response.content.decode()

    export = owner_client.get(f"/segments/rules/{segment.pk}/members.csv")
    assert export.status_code == 200 and export["Content-Type"] == "text/csv"
    assert 'filename="segment-browsers-' in export["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))  # type: ignore[attr-defined]
    assert rows[0][:3] == ["external_id", "email", "name"]
    assert sorted(r[2] for r in rows[1:]) == ["Ana", "Dee"]

    response = owner_client.post(f"/segments/rules/{segment.pk}/delete/", follow=True)
    assert "Browsers&quot; deleted." in response.content.decode()
    assert segments_of_a(world) == []


def test_members_page_paginates(world: World, owner_client: Client) -> None:
    from journeys.models import Customer

    with tenant_context(world.tenant):
        Customer.objects.bulk_create(
            [Customer(external_id=f"bulk-{i}", name=f"Bulk {i:03}", tenant=world.tenant) for i in range(60)]
        )
        segment = services.rule_segment_create(
            name="Bulk", definition={"all": [{"field": "external_id", "op": "starts_with", "value": "bulk-"}]},
            created_by=None,
        )  # fmt: skip
    first = owner_client.get(f"/segments/rules/{segment.pk}/").content.decode()
    assert "Page 1 of 2" in first and first.count("Bulk ") >= 50
    second = owner_client.get(f"/segments/rules/{segment.pk}/?page=2").content.decode()
    assert "Page 2 of 2" in second


def test_analyst_reads_but_cannot_change(world: World, analyst: User) -> None:
    segment = make(world)
    client = client_for(analyst)
    assert client.get("/segments/rules/").status_code == 200
    page = client.get(f"/segments/rules/{segment.pk}/").content.decode()
    assert ">Dee</a>" in page and "Refresh now" not in page and "Edit</a>" not in page
    assert client.get(f"/segments/rules/{segment.pk}/members.csv").status_code == 200
    for path in (f"/segments/rules/{segment.pk}/refresh/", f"/segments/rules/{segment.pk}/delete/"):
        assert client.post(path).status_code == 403


def test_another_tenants_segment_is_404_on_every_page(world: World, other_client: Client) -> None:
    segment = make(world)
    for method, path in [
        ("get", f"/segments/rules/{segment.pk}/"), ("get", f"/segments/rules/{segment.pk}/edit/"),
        ("post", f"/segments/rules/{segment.pk}/edit/"), ("get", f"/segments/rules/{segment.pk}/members.csv"),
        ("post", f"/segments/rules/{segment.pk}/refresh/"), ("post", f"/segments/rules/{segment.pk}/delete/"),
    ]:  # fmt: skip
        assert getattr(other_client, method)(path).status_code == 404, path
    response = other_client.post("/segments/rules/count/", json.dumps({"definition": BROWSED, "segment": segment.pk}),
                                 content_type="application/json")  # fmt: skip
    assert response.status_code == 404
    assert "Browsed, no order" not in other_client.get("/segments/rules/").content.decode()
    assert segments_of_a(world) == [segment]


def test_csv_cells_never_run_as_formulas(world: World, owner_client: Client) -> None:
    from journeys.models import Customer

    with tenant_context(world.tenant):
        Customer.objects.filter(name="Dee").update(name='=HYPERLINK("http://evil.test")', phone="+351 1")
    segment = make(world)
    export = owner_client.get(f"/segments/rules/{segment.pk}/members.csv")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))  # type: ignore[attr-defined]
    assert rows[1][2] == '\'=HYPERLINK("http://evil.test")' and rows[1][3] == "'+351 1"


def test_live_count_queries_do_not_grow_with_segments(world: World, owner_client: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = json.dumps({"definition": BROWSED})

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert owner_client.post("/segments/rules/count/", body, content_type="application/json").status_code == 200
        return len(ctx.captured_queries)

    make(world)
    queries()  # the first request of a session does some one-off work
    with_one = queries()
    for i in range(15):
        make(world, name=f"Segment {i}")
    assert queries() == with_one

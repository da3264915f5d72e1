"""Rule fields over the computed features (tenure, days between orders, recent events, support contacts, CSAT),
filled by a real scoring run from the customers' orders, events and feedback."""

from __future__ import annotations

from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from django.test import Client

from journeys.models import Customer, Event, Feedback
from personalization import services
from personalization.models import CustomerScore, SegmentMember
from personalization.rules.language import FIELDS_BY_KEY, TYPE_OPS, DefinitionError, describe
from personalization.rules.selectors import definition_parse, rule_catalog
from personalization.rules.services import rule_segment_create
from tenants.context import tenant_context
from tests.personalization.rules.conftest import World

FEATURE_FIELDS = ("tenure_days", "avg_days_between_orders", "events_30d", "support_contacts", "avg_csat")


@pytest.fixture
def scored(world: World) -> World:
    """World A plus two support chats on one day and CSAT answers, then a scoring run (no training)."""
    with tenant_context(world.tenant):
        ana = Customer.objects.get(pk=world.ids["Ana"])
        bob = Customer.objects.get(pk=world.ids["Bob"])
        for key, hours in (("chat-1", 50), ("chat-2", 49)):
            Event.objects.create(customer=ana, type="chat_started", occurred_at=world.now - timedelta(hours=hours),
                                 idempotency_key=key)  # fmt: skip
        Feedback.objects.create(kind="csat", score=2, customer=ana)
        Feedback.objects.create(kind="csat", score=4, customer=ana)
        Feedback.objects.create(kind="csat", score=5, customer=bob)
        report = services.pipeline_run(train=False)
        assert report["scored"] == 4
    return world


def leaf(field: str, op: str, value: Any = None) -> dict[str, Any]:
    node: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        node["value"] = value
    return {"all": [node]}


def test_feature_fields_are_offered_with_their_operators() -> None:
    for key in FEATURE_FIELDS:
        spec = FIELDS_BY_KEY[key]
        assert spec.group == "Features" and spec.nullable
        assert TYPE_OPS[spec.type] == ("eq", "neq", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set")


def test_scoring_stores_the_features(scored: World) -> None:
    with tenant_context(scored.tenant):
        ana = CustomerScore.objects.get(customer_id=scored.ids["Ana"])
        cy = CustomerScore.objects.get(customer_id=scored.ids["Cy"])
    assert ana.support_contacts == 2  # two chats on the same day are two contacts
    assert ana.events_30d == 5  # three product views and two chats in the last 30 days
    assert ana.avg_csat == pytest.approx(3.0)
    assert 199 <= ana.tenure_days <= 201  # type: ignore[operator]
    assert ana.avg_days_between_orders == pytest.approx(97.5, abs=0.6)
    assert cy.tenure_days is None and cy.avg_days_between_orders is None and cy.avg_csat is None
    assert cy.events_30d == 0 and cy.support_contacts == 0


NESTED = {"any": [{"field": "avg_csat", "op": "lt", "value": 3.5},
                  {"all": [{"field": "support_contacts", "op": "eq", "value": 0},
                           {"field": "tenure_days", "op": "lt", "value": 10}]}]}  # fmt: skip


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (leaf("tenure_days", "gt", 150), {"Ana"}),
        (leaf("tenure_days", "between", [30, 60]), {"Bob"}),
        (leaf("tenure_days", "lte", 5), {"Dee"}),
        (leaf("tenure_days", "is_not_set"), {"Cy"}),
        (leaf("avg_days_between_orders", "lt", 100), {"Ana"}),
        (leaf("avg_days_between_orders", "gte", 98), set()),
        (leaf("avg_days_between_orders", "is_set"), {"Ana"}),
        (leaf("avg_days_between_orders", "is_not_set"), {"Bob", "Cy", "Dee"}),
        (leaf("events_30d", "gte", 5), {"Ana"}),
        (leaf("events_30d", "eq", 2), {"Dee"}),
        (leaf("events_30d", "neq", 0), {"Ana", "Dee"}),
        (leaf("events_30d", "lt", 1), {"Bob", "Cy"}),
        (leaf("support_contacts", "eq", 2), {"Ana"}),
        (leaf("support_contacts", "lte", 1), {"Bob", "Cy", "Dee"}),
        (leaf("support_contacts", "between", [1, 3]), {"Ana"}),
        (leaf("avg_csat", "gt", 4), {"Bob"}),
        (leaf("avg_csat", "between", [2.5, 3.5]), {"Ana"}),
        (leaf("avg_csat", "is_set"), {"Ana", "Bob"}),
        (leaf("avg_csat", "neq", 3), {"Bob", "Cy", "Dee"}),
        (NESTED, {"Ana", "Dee"}),
    ],
)
def test_feature_conditions(scored: World, definition: dict[str, Any], expected: set[str]) -> None:
    assert scored.match(definition) == expected  # Eve (tenant B) never, though her scores match many


def test_a_scoring_run_refreshes_dynamic_rule_segments(scored: World) -> None:
    definition = {"all": [{"field": "support_contacts", "op": "gte", "value": 3}]}
    with tenant_context(scored.tenant):
        dynamic = rule_segment_create(name="Many contacts", definition=definition, created_by=None)
        static = rule_segment_create(name="Many contacts (snapshot)", definition=definition, kind="static",
                                     created_by=None)  # fmt: skip
        assert dynamic.member_count == 0 and static.member_count == 0
        ana = Customer.objects.get(pk=scored.ids["Ana"])
        Event.objects.create(customer=ana, type="chat_started", occurred_at=scored.now - timedelta(hours=3),
                             idempotency_key="chat-3")  # fmt: skip
        dynamic.refresh_from_db()
        assert dynamic.member_count == 0  # the feature changes with the next scoring run, not before

        report = services.pipeline_run(train=False)
        assert report["rule_segments"] == {"refreshed": 1}
        dynamic.refresh_from_db()
        static.refresh_from_db()
        assert dynamic.member_count == 1
        assert list(SegmentMember.objects.filter(segment=dynamic).values_list("customer_id", flat=True)) == [ana.pk]
        assert static.member_count == 0  # a snapshot keeps its members


def test_customer_page_lists_the_customers_rule_segments(scored: World, owner_client: Client) -> None:
    with tenant_context(scored.other):  # tenant B's segment of Eve must never show on A's pages
        rule_segment_create(name="Theirs: churn risk", definition=leaf("churn_risk", "gte", 0.5), created_by=None)
    with tenant_context(scored.tenant):
        chatty = rule_segment_create(name="Chatty", definition=leaf("support_contacts", "gte", 1), created_by=None)
        rule_segment_create(name="CSAT fans", definition=leaf("avg_csat", "gt", 4), created_by=None)
        rule_segment_create(name="Early snapshot", definition=leaf("tenure_days", "gt", 100), kind="static",
                            created_by=None)  # fmt: skip

    ana = unescape(owner_client.get(f"/customers/{scored.ids['Ana']}/").content.decode())
    section = ana.split('id="rule-segments-h"')[1]
    assert f'href="/segments/rules/{chatty.pk}/">Chatty</a>' in section
    assert "Early snapshot" in section and "Static snapshot" in section
    assert "CSAT fans" not in section and "Theirs" not in ana
    assert "Support contacts</dt><dd>2 (CSAT average 3.0)" in ana

    bob = unescape(owner_client.get(f"/customers/{scored.ids['Bob']}/").content.decode())
    assert "CSAT fans" in bob.split('id="rule-segments-h"')[1] and "Chatty" not in bob
    cy = unescape(owner_client.get(f"/customers/{scored.ids['Cy']}/").content.decode())
    assert "In no rule segment." in cy


def share(category: str, op: str, value: Any = None) -> dict[str, Any]:
    node = leaf("category_share", op, value)
    node["all"][0]["category"] = category
    return node


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (share("Coffee", "gt", 0.5), {"Ana"}),  # 40 of her 60 in coffee
        (share("Coffee", "lt", 0.5), {"Bob"}),  # his cancelled coffee order does not count
        (share("Coffee", "between", [0.6, 0.7]), {"Ana"}),
        (share("Tea", "gte", 0.3), {"Ana"}),
        (share("Equipment", "eq", 1), {"Bob"}),
        (share("Coffee", "neq", 0), {"Ana", "Cy", "Dee"}),  # no order lines: no share, so "not 0" holds
        (share("Coffee", "is_set"), {"Ana", "Bob"}),
        (share("Coffee", "is_not_set"), {"Cy", "Dee"}),
    ],
)
def test_category_share_conditions(world: World, definition: dict[str, Any], expected: set[str]) -> None:
    assert world.match(definition) == expected  # Eve (tenant B) spends all on coffee: never


def test_category_share_needs_a_category_and_is_described(world: World) -> None:
    with tenant_context(world.tenant):
        with pytest.raises(DefinitionError, match="must be a product category"):
            definition_parse(definition=leaf("category_share", "gt", 0.5))
        catalog = rule_catalog()
        assert catalog.categories == ("Coffee", "Equipment", "Tea")
        tree = definition_parse(definition=share("Coffee", "gt", 0.5))
        assert describe(tree, catalog) == "share of spend in “Coffee” is greater than 0.5"

"""Validation messages, dynamic vs static segments, bulk refresh diffs, segments of segments, the beat task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from journeys.models import Customer, Event, Order
from personalization.models import RuleSegment, SegmentKind, SegmentMember
from personalization.rules import services
from personalization.rules.language import DefinitionError
from personalization.rules.selectors import definition_parse
from personalization.rules.tasks import rule_segments_refresh_all_task
from tenants.context import tenant_context
from tests.personalization.rules.conftest import World

pytestmark = pytest.mark.django_db

VIEWED_7D = {"field": "event", "event_type": "product_view", "days": 7, "op": "at_least", "value": 1}
NO_ORDER_7D = {"field": "orders_in_window", "days": 7, "op": "none"}


def problems(world: World, definition: Any) -> list[dict[str, str]]:
    with tenant_context(world.tenant), pytest.raises(DefinitionError) as info:
        definition_parse(definition=definition, allow_empty=False)
    return info.value.as_list()


def members(segment: RuleSegment) -> set[str]:
    return set(SegmentMember.objects.filter(segment=segment).values_list("customer__name", flat=True))


@pytest.mark.parametrize(
    ("definition", "path", "words"),
    [
        ({"all": [{"field": "shoe_size", "op": "eq", "value": 3}]}, "all[0]", ["Unknown field 'shoe_size'"]),
        ({"all": [{"field": "revenue", "op": "contains", "value": "x"}]}, "all[0]",
         ['"Revenue" has no operator \'contains\'', "gt"]),
        ({"all": [{"field": "revenue", "op": "gt", "value": "lots"}]}, "all[0]",
         ['"Revenue" is greater than', "'lots'", "a number"]),
        ({"all": [{"field": "orders_count", "op": "eq", "value": 1.5}]}, "all[0]", ["a whole number"]),
        ({"any": [{"field": "email", "op": "eq"}]}, "any[0]", ['"Email" is', "None", "non-empty text"]),
        ({"all": [{"field": "revenue", "op": "between", "value": [10, 1]}]}, "all[0]", ["the low value first"]),
        ({"all": [{"field": "last_seen", "op": "before", "value": "yesterday"}]}, "all[0]", ["'yesterday'", "date"]),
        ({"all": [{"field": "last_seen", "op": "in_last_days", "value": 0}]}, "all[0]", ["from 1 to"]),
        ({"all": [{"field": "churn_band", "op": "in", "value": ["extreme"]}]}, "all[0]",
         ["'extreme' is not a churn risk band", "low, medium, high"]),
        ({"all": [{"field": "rfm_segment", "op": "in", "value": ["Heroes"]}]}, "all[0]", ["Champions"]),
        ({"all": [{"field": "cluster", "op": "in", "value": [9]}]}, "all[0]", ["9 is not a cluster"]),
        ({"all": [{"field": "segment", "op": "in", "value": 99999}]}, "all[0]", ["segment 99999 does not exist"]),
        ({"all": [{"field": "attribute", "path": "plan..tier", "op": "eq", "value": "x"}]}, "all[0]",
         ["Attribute path 'plan..tier' is not valid"]),
        ({"all": [{"field": "attribute", "path": "plan", "type": "money", "op": "eq", "value": 1}]}, "all[0]",
         ["Attribute type 'money'"]),
        ({"all": [{"field": "event", "event_type": "teleport", "op": "at_least", "value": 1}]}, "all[0]",
         ["Event type 'teleport'", "product_view"]),
        ({"all": [{"field": "orders_in_window", "op": "none"}]}, "all[0]", ["window (days)", "got None"]),
        ({"all": [{"field": "event", "event_type": "search", "op": "at_least", "value": -1}]}, "all[0]",
         ["from 0 to"]),
        ({"all": [{"field": "email", "op": "is_set", "color": "red"}]}, "all[0]", ['"email" does not take color']),
        ({"all": [{"any": []}]}, "all[0]", ["This group is empty"]),
        ({"all": [{"all": [], "any": []}]}, "all[0]", ['exactly one key']),
        ({"all": []}, "", ["Add at least one condition"]),
        ({"all": [{"any": [{"field": "name", "op": "eq", "value": "x"}, {"field": "x", "op": "eq"}]}]},
         "all[0].any[1]", ["Unknown field"]),
        ({"all": [{"not": {"all": [{"field": "revenue", "op": "gt", "value": None}]}}]}, "all[0].not.all[0]",
         ["expected a number"]),
        ("everyone", "", ["Expected a condition or a group"]),
    ],
)  # fmt: skip
def test_every_mistake_is_named_with_its_path(world: World, definition: Any, path: str, words: list[str]) -> None:
    found = problems(world, definition)
    assert found[0]["path"] == path
    for word in words:
        assert word in found[0]["message"]


def test_depth_and_size_are_limited(world: World) -> None:
    deep: dict[str, Any] = {"field": "email", "op": "is_set"}
    for _ in range(8):
        deep = {"all": [deep]}
    assert "at most 6 levels" in problems(world, deep)[0]["message"]
    wide = {"any": [{"field": "email", "op": "is_set"}] * 101}
    assert "at most 100 conditions" in problems(world, wide)[0]["message"]


def test_all_problems_are_reported_at_once(world: World) -> None:
    found = problems(world, {"all": [{"field": "revenue", "op": "gt", "value": "x"}, {"field": "nope"}]})
    assert [p["path"] for p in found] == ["all[0]", "all[1]"]


def test_dynamic_segment_follows_the_data_with_bulk_diffs(world: World) -> None:
    with tenant_context(world.tenant):
        segment = services.rule_segment_create(
            name="Browsed, did not buy", definition={"all": [VIEWED_7D, NO_ORDER_7D]}, created_by=None
        )
        assert segment.member_count == 1 and members(segment) == {"Dee"}
        assert segment.last_refreshed_at is not None

        # Dee orders (leaves); Cy and Bob browse (join); Ana did not change (she has orders)
        dee, bob, cy = (Customer.objects.get(name=n) for n in ("Dee", "Bob", "Cy"))
        now = timezone.now()
        Order.objects.create(external_id="new", customer=dee, placed_at=now, total=5, currency="USD")
        for c in (bob, cy):
            Event.objects.create(customer=c, type="product_view", occurred_at=now, idempotency_key=f"n{c.pk}")
        with CaptureQueriesContext(connection) as ctx:
            result = services.rule_segment_refresh(segment=segment)
        assert (result.added, result.removed, result.members) == (2, 1, 2)
        assert members(segment) == {"Bob", "Cy"}
        writes = [q["sql"] for q in ctx.captured_queries if "personalization_segmentmember" in q["sql"]
                  and ("INSERT INTO" in q["sql"] or "DELETE FROM" in q["sql"])]  # fmt: skip
        # whatever the sizes: one statement on PostgreSQL (DELETE and INSERT in one WITH), else one of each
        assert len(writes) == (1 if connection.vendor == "postgresql" else 2)

        # nothing changed: nothing added or removed, and who stayed keeps the time they joined
        bob_since = SegmentMember.objects.get(segment=segment, customer=bob).added_at
        result = services.rule_segment_refresh(segment=segment)
        assert (result.added, result.removed, result.members) == (0, 0, 2)
        assert SegmentMember.objects.get(segment=segment, customer=bob).added_at == bob_since


def test_static_snapshot_keeps_its_members_until_retaken(world: World) -> None:
    with tenant_context(world.tenant):
        static = services.rule_segment_create(
            name="Gold at launch", kind=SegmentKind.STATIC, created_by=None,
            definition={"all": [{"field": "attribute", "path": "plan.tier", "op": "eq", "value": "gold"}]},
        )  # fmt: skip
        dynamic = services.rule_segment_create(
            name="Gold now", created_by=None,
            definition={"all": [{"field": "attribute", "path": "plan.tier", "op": "eq", "value": "gold"}]},
        )  # fmt: skip
        assert members(static) == members(dynamic) == {"Ana"}
        bob = Customer.objects.get(name="Bob")
        bob.attributes = {"plan": {"tier": "gold"}}
        bob.save()
        assert services.rule_segments_refresh(tenant=world.tenant) == 1  # only the dynamic one
        assert members(dynamic) == {"Ana", "Bob"}
        assert members(static) == {"Ana"}
        services.rule_segment_refresh(segment=static)  # the user retakes the snapshot
        assert members(static) == {"Ana", "Bob"}


def test_segments_of_segments_static_and_dynamic(world: World) -> None:
    with tenant_context(world.tenant):
        buyers = services.rule_segment_create(
            name="Buyers", definition={"all": [{"field": "orders_count", "op": "gte", "value": 1}]}, created_by=None
        )
        snapshot = services.rule_segment_create(
            name="Consented", kind=SegmentKind.STATIC, created_by=None,
            definition={"all": [{"field": "consent_personalization", "op": "is_true"}]},
        )  # fmt: skip
        combo = services.rule_segment_create(
            name="Consented non-buyers", created_by=None,
            definition={"all": [{"field": "segment", "op": "in", "value": snapshot.pk},
                                {"field": "segment", "op": "not_in", "value": buyers.pk}]},
        )  # fmt: skip
        assert members(combo) == {"Dee"}
        # a loop is refused with the chain named
        with pytest.raises(DefinitionError, match="loop: Buyers → Consented non-buyers → Buyers"):
            services.rule_segment_update(
                segment=buyers, definition={"any": [{"field": "segment", "op": "in", "value": combo.pk}]}
            )
        with pytest.raises(DefinitionError, match="cannot refer to itself"):
            services.rule_segment_update(
                segment=buyers, definition={"any": [{"field": "segment", "op": "in", "value": buyers.pk}]}
            )
        # a segment in use cannot be deleted
        with pytest.raises(ValidationError, match='"Buyers" is used by "Consented non-buyers"'):
            services.rule_segment_delete(segment=buyers)
        services.rule_segment_delete(segment=combo)
        services.rule_segment_delete(segment=buyers)
        assert not RuleSegment.objects.filter(pk__in=[combo.pk, buyers.pk]).exists()


def test_names_are_unique_per_tenant_and_required(world: World) -> None:
    definition = {"all": [{"field": "email", "op": "is_set"}]}
    with tenant_context(world.tenant):
        services.rule_segment_create(name="VIPs", definition=definition, created_by=None)
        with pytest.raises(ValidationError, match='A segment named "vips" already exists'):
            services.rule_segment_create(name="vips", definition=definition, created_by=None)
        with pytest.raises(ValidationError, match="Give the segment a name"):
            services.rule_segment_create(name="  ", definition=definition, created_by=None)
        with pytest.raises(ValidationError, match="Kind 'weekly'"):
            services.rule_segment_create(name="Other", kind="weekly", definition=definition, created_by=None)
    with tenant_context(world.other):  # the same name in another business is fine
        services.rule_segment_create(name="VIPs", definition=definition, created_by=None)


def test_refresh_of_all_tenants_from_beat_and_a_broken_segment(world: World, settings: Any) -> None:
    settings.CELERY_BROKER_URL = ""  # embedded: the beat task refreshes in-process
    with tenant_context(world.tenant):
        recent = services.rule_segment_create(
            name="Seen this week", created_by=None,
            definition={"all": [{"field": "last_seen", "op": "in_last_days", "value": 7}]},
        )  # fmt: skip
        static = services.rule_segment_create(
            name="Snap", kind=SegmentKind.STATIC, created_by=None,
            definition={"all": [{"field": "email", "op": "is_set"}]},
        )  # fmt: skip
        user = services.rule_segment_create(
            name="Uses snap",
            created_by=None,
            definition={"all": [{"field": "segment", "op": "in", "value": static.pk}]},
        )
        RuleSegment.objects.filter(pk=static.pk).delete()  # behind the service's back: the reference breaks
        Customer.objects.filter(name="Bob").update(last_seen=timezone.now() - timedelta(hours=1))
    with tenant_context(world.other):
        services.rule_segment_create(
            name="B", definition={"all": [{"field": "email", "op": "is_set"}]}, created_by=None
        )
    assert rule_segments_refresh_all_task.apply().get() == 2  # two tenants with dynamic segments
    with tenant_context(world.tenant):
        assert members(RuleSegment.objects.get(pk=recent.pk)) == {"Ana", "Bob", "Dee"}
        broken = RuleSegment.objects.get(pk=user.pk)
        assert "does not exist" in broken.last_error
        assert broken.member_count == 3  # keeps its last members

"""Read queries of rule segments, shared by pages, the API and tasks. Run inside a tenant context."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.utils import timezone

from journeys.models import Customer, EventType, Product
from personalization.models import ClusterLabel, CustomerScore, RuleSegment, SegmentMember
from personalization.rules.compiler import Context, customers_matching
from personalization.rules.language import Catalog, DefinitionError, Group, catalog_json, describe, parse
from tenants.context import current_tenant


def rule_catalog(*, segments: list[RuleSegment] | None = None) -> Catalog:
    """What the current tenant's definitions may refer to: event types, its rule segments, its clusters."""
    names = (
        {s.pk: s.name for s in segments}
        if segments is not None
        else dict(RuleSegment.objects.values_list("pk", "name"))
    )
    return Catalog(
        event_types=tuple(EventType.values),
        segments=names,
        clusters={c.cluster_id: c.display_name for c in ClusterLabel.objects.all()},
        categories=tuple(
            Product.objects.exclude(category="").order_by("category").values_list("category", flat=True).distinct()
        ),
    )


def rule_context(
    *, catalog: Catalog | None = None, segment: RuleSegment | None = None, now: datetime | None = None
) -> Context:
    """The compile context for the current tenant (its time zone, segments, the clock)."""
    all_segments = list(RuleSegment.objects.all())
    catalog = catalog or rule_catalog(segments=all_segments)
    segments = {s.pk: s for s in all_segments}
    return Context(
        now=now or timezone.now(),
        tz=ZoneInfo(current_tenant().timezone),
        catalog=catalog,
        segments=segments,
        stack=(segment.pk,) if segment is not None and segment.pk else (),
    )


def definition_parse(*, definition: Any, segment: RuleSegment | None = None, allow_empty: bool = True) -> Group:
    """Validate `definition` for the current tenant; raises DefinitionError."""
    return parse(definition, rule_catalog(), segment_id=segment.pk if segment else None, allow_empty=allow_empty)


def definition_customers(
    *, definition: Any, segment: RuleSegment | None = None, now: datetime | None = None
) -> QuerySet[Customer]:
    """Customers matching `definition` right now (one query); raises DefinitionError."""
    context = rule_context(segment=segment, now=now)
    tree = parse(definition, context.catalog, segment_id=segment.pk if segment else None)
    return customers_matching(tree, context)


def definition_count(*, definition: Any, segment: RuleSegment | None = None) -> int:
    """How many customers match `definition` right now (the builder's live count)."""
    return definition_customers(definition=definition, segment=segment).count()


def rule_segment_list() -> QuerySet[RuleSegment]:
    return RuleSegment.objects.select_related("created_by").order_by("name", "pk")


def segment_members(*, segment: RuleSegment) -> QuerySet[SegmentMember]:
    """Members of a segment (its last refresh or snapshot), newest first, with their customer."""
    return SegmentMember.objects.filter(segment=segment).select_related("customer").order_by("-added_at", "-pk")


def segments_referring_to(*, segment: RuleSegment) -> list[RuleSegment]:
    """Other segments whose definition uses `segment`."""
    from personalization.rules.language import referenced_segments

    return [s for s in RuleSegment.objects.exclude(pk=segment.pk) if segment.pk in referenced_segments(s.definition)]


def builder_catalog() -> dict[str, Any]:
    """The catalog as the builder's script reads it, with the tenant's product categories as suggestions."""
    catalog = rule_catalog()
    data = catalog_json(catalog, predictions=True)
    data["categories"] = list(catalog.categories[:200])
    data["scored"] = CustomerScore.objects.exists()
    return data


def segment_descriptions(*, segments: list[RuleSegment]) -> dict[int, str]:
    """Each segment's definition in plain words (or why it no longer holds)."""
    catalog = rule_catalog()
    out: dict[int, str] = {}
    for segment in segments:
        try:
            out[segment.pk] = describe(parse(segment.definition, catalog, segment_id=segment.pk), catalog)
        except DefinitionError as exc:
            out[segment.pk] = f"No longer valid: {exc}"
    return out


def customer_rule_segments(*, customer_id: int) -> QuerySet[RuleSegment]:
    """The current tenant's rule segments that `customer_id` is a member of (as of each one's last refresh)."""
    return RuleSegment.objects.filter(
        pk__in=SegmentMember.objects.filter(customer_id=customer_id).values("segment_id")
    ).order_by("name")

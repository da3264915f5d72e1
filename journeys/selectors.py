"""Read queries shared by pages, the API and tasks. Run inside a tenant context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from journeys.models import REVENUE_STATUSES, Customer, Event, Feedback, Order, Product


def customer_search(queryset: QuerySet[Customer], q: str) -> QuerySet[Customer]:
    """Customers whose name, email, external id or phone contains `q` (case-insensitive)."""
    q = q.strip()
    if not q:
        return queryset
    return queryset.filter(
        Q(name__icontains=q) | Q(email__icontains=q) | Q(external_id__icontains=q) | Q(phone__icontains=q)
    )


def product_search(queryset: QuerySet[Product], q: str) -> QuerySet[Product]:
    q = q.strip()
    if not q:
        return queryset
    return queryset.filter(Q(name__icontains=q) | Q(sku__icontains=q) | Q(category__icontains=q))


CUSTOMER_SEEN = {"7d": 7, "30d": 30, "90d": 90}  # "seen in the last N days"; also "lapsed" and "never"
LAPSED_AFTER_DAYS = 90
CUSTOMER_ORDERINGS = ("name", "-name", "last_seen", "-last_seen", "created", "-created", "email", "-email")


def customer_list(
    *,
    q: str = "",
    consent: str = "",
    seen: str = "",
    orders: str = "",
    ordering: str = "-last_seen",
    now: datetime | None = None,
) -> QuerySet[Customer]:
    """The customers page: search; consent (marketing, personalization, none); last seen (7d, 30d, 90d:
    within that many days; lapsed: seen, but not in the last 90 days; never); orders (yes, no: has any).
    Unknown filter values are ignored; an unknown ordering falls back to last seen, newest first."""
    qs = customer_search(Customer.objects.all(), q)
    if consent == "marketing":
        qs = qs.filter(consent_marketing=True)
    elif consent == "personalization":
        qs = qs.filter(consent_personalization=True)
    elif consent == "none":
        qs = qs.filter(consent_marketing=False, consent_personalization=False)
    now = now or timezone.now()
    if seen in CUSTOMER_SEEN:
        qs = qs.filter(last_seen__gte=now - timedelta(days=CUSTOMER_SEEN[seen]))
    elif seen == "lapsed":
        qs = qs.filter(last_seen__lt=now - timedelta(days=LAPSED_AFTER_DAYS))
    elif seen == "never":
        qs = qs.filter(last_seen=None)
    if orders in ("yes", "no"):
        has_orders = Exists(Order.objects.filter(customer=OuterRef("pk")))
        qs = qs.filter(has_orders if orders == "yes" else ~has_orders)
    field = ordering if ordering in CUSTOMER_ORDERINGS else "-last_seen"
    if field.lstrip("-") == "last_seen":  # never-seen customers last, as the index orders them
        expr = F("last_seen").desc(nulls_last=True) if field.startswith("-") else F("last_seen").asc(nulls_first=True)
        return qs.order_by(expr, "-id")
    return qs.order_by(field, "id")


@dataclass(frozen=True)
class CustomerSummary:
    orders: int
    revenue: Decimal
    last_order_at: datetime | None
    events: int
    feedback: int


def customer_summary(*, customer: Customer) -> CustomerSummary:
    """Order count and revenue (placed, paid, fulfilled only), last order, event and feedback counts."""
    orders = Order.objects.filter(customer=customer).aggregate(
        n=Count("id"), revenue=Sum("total", filter=Q(status__in=REVENUE_STATUSES)), last=Max("placed_at")
    )
    return CustomerSummary(
        orders=orders["n"],
        revenue=orders["revenue"] or Decimal("0"),
        last_order_at=orders["last"],
        events=Event.objects.filter(customer=customer).count(),
        feedback=Feedback.objects.filter(customer=customer).count(),
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "event" or "feedback"
    item: Any


def customer_timeline(*, customer: Customer, limit: int = 50, before: datetime | None = None) -> list[TimelineEntry]:
    """The customer's latest events and feedback, newest first, merged."""
    events = Event.objects.filter(customer=customer).order_by("-occurred_at", "-id")
    feedback = Feedback.objects.filter(customer=customer).select_related("order").order_by("-created", "-id")
    if before is not None:
        events, feedback = events.filter(occurred_at__lt=before), feedback.filter(created__lt=before)
    entries = [TimelineEntry(e.occurred_at, "event", e) for e in events[:limit]]
    entries += [TimelineEntry(f.created, "feedback", f) for f in feedback[:limit]]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def customer_orders(*, customer: Customer, limit: int = 20) -> QuerySet[Order]:
    return (
        Order.objects.filter(customer=customer)
        .annotate(line_count=Count("lines"))
        .order_by("-placed_at", "-id")[:limit]
    )

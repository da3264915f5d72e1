"""Product recommendations for one customer. For now: the tenant's popular in-stock products (units sold in
the last 90 days), leaving out what the customer already bought when enough others remain. The
recommendations issue replaces the ranking behind this same interface."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from journeys.models import REVENUE_STATUSES, Customer, OrderLine, Product

POPULARITY_WINDOW = timedelta(days=90)


def recommend_products(*, customer: Customer | None, limit: int = 3) -> list[Product]:
    """Up to `limit` active, in-stock products for `customer`, best first.

    Empty unless the customer is known and consented to personalization (nothing is tailored otherwise).
    """
    if customer is None or not customer.consent_personalization or limit <= 0:
        return []
    since = timezone.now() - POPULARITY_WINDOW
    popular = (
        Product.objects.filter(active=True, in_stock=True)
        .annotate(
            units=Coalesce(
                Sum(
                    "order_lines__quantity",
                    filter=Q(
                        order_lines__order__placed_at__gte=since,
                        order_lines__order__status__in=REVENUE_STATUSES,
                    ),
                ),
                0,
            )
        )
        .order_by("-units", "name", "pk")
    )
    bought = set(
        OrderLine.objects.filter(order__customer=customer).values_list("product_id", flat=True).distinct()[:500]
    )
    ranked = list(popular[: limit + len(bought)])
    fresh = [p for p in ranked if p.pk not in bought]
    return (fresh + [p for p in ranked if p.pk in bought])[:limit]

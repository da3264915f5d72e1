"""seed_demo: the exact command line scripts use, deterministic, idempotent, realistic enough to use."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count

from journeys.models import REVENUE_STATUSES, Customer, Event, Feedback, Order, OrderLine, VisitorIdentity
from tenants.context import tenant_context
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def _seed(tenant: Tenant, *extra: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--tenant", tenant.slug, "--customers", "60", "--orders", "300", "--seed", "7",
                 "--end-date", "2026-06-30", *extra, stdout=out)  # fmt: skip
    return out.getvalue()


def _fingerprint(tenant: Tenant) -> list[tuple[object, ...]]:
    with tenant_context(tenant):
        return list(Order.objects.order_by("external_id").values_list("external_id", "customer__email", "placed_at",
                                                                      "total", "status"))  # fmt: skip


def test_generates_the_requested_sizes_with_events_and_feedback(tenant: Tenant) -> None:
    assert "Seeded" in _seed(tenant)
    with tenant_context(tenant):
        assert Customer.objects.count() == 60
        assert Order.objects.count() == 300
        assert OrderLine.objects.count() >= 300
        types = set(Event.objects.values_list("type", flat=True))
        assert {"product_view", "add_to_cart", "checkout_started", "order_placed"} <= types
        assert Feedback.objects.exists()
        assert VisitorIdentity.objects.exists()
        assert Order.objects.filter(status__in=REVENUE_STATUSES).exists()
        repeaters = Customer.objects.annotate(n=Count("orders")).filter(n__gte=2).count()
        assert repeaters > 10
        assert not Order.objects.filter(placed_at__date__gt="2026-06-30").exists()
        # Every order's total is the sum of its lines.
        order = Order.objects.prefetch_related("lines").first()
        assert order is not None
        assert order.total == sum(line.quantity * line.unit_price for line in order.lines.all())


def test_same_seed_same_data_and_reruns_are_idempotent(tenant: Tenant, other_tenant: Tenant) -> None:
    _seed(tenant)
    _seed(other_tenant)
    assert _fingerprint(tenant) == _fingerprint(other_tenant)
    assert "nothing generated" in _seed(tenant)
    with tenant_context(tenant):
        assert Customer.objects.count() == 60
    _seed(tenant, "--reset")
    assert _fingerprint(tenant) == _fingerprint(other_tenant)
    with tenant_context(tenant):
        assert Order.objects.count() == 300


def test_unknown_tenant_is_an_error(db: None) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No tenant"):
        call_command("seed_demo", "--tenant", "nope", stdout=StringIO())

"""seed_demo: the exact command line scripts use, deterministic, idempotent; and the generator's data has the
shape the issue asks for (seasons, weekly rhythm, subscribers, lapsing, abandoned carts, feedback)."""

from __future__ import annotations

import itertools
import statistics
import zoneinfo
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Count

from journeys.demo import generator as gen
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


def test_default_end_date_is_today_so_a_seed_repeats_on_the_same_day(tenant: Tenant, other_tenant: Tenant) -> None:
    from django.utils import timezone

    args = ("--customers", "30", "--orders", "120", "--seed", "3")
    call_command("seed_demo", "--tenant", tenant.slug, *args, stdout=StringIO())
    today = timezone.now().date().isoformat()
    call_command("seed_demo", "--tenant", other_tenant.slug, *args, "--end-date", today, stdout=StringIO())
    assert _fingerprint(tenant) == _fingerprint(other_tenant)


# --- realism, measured on the generator itself (pure Python, no database) ---------------------------

END = date(2026, 6, 30)
TZ = zoneinfo.ZoneInfo("America/Chicago")


@dataclass
class Demo:
    orders: list[tuple[Any, ...]]
    lines: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    feedback: list[tuple[Any, ...]]
    product_ids: dict[str, int]

    @property
    def now(self) -> datetime:
        return datetime(END.year, END.month, END.day, tzinfo=UTC)

    def by_customer(self) -> dict[int, list[tuple[Any, ...]]]:
        out: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for order in self.orders:
            out[order[3]].append(order)
        return out


@pytest.fixture(scope="module")
def demo() -> Demo:
    product_ids = {p.sku: n for n, p in enumerate(gen.PRODUCTS, 1)}
    cfg = gen.DemoConfig(tenant_id=1, customers=1500, orders=9000, seed=7, end=END, tz=TZ)
    generator = gen.DemoGenerator(cfg, customer_ids=range(1, 1501), order_ids=range(1, 9001), product_ids=product_ids)
    data = Demo([], [], [], [], product_ids)
    for block in generator.blocks():
        data.orders += block.orders
        data.lines += block.lines
        data.events += block.events
        data.feedback += block.feedback
    return data


def _revenue_by_month(demo: Demo) -> Counter[tuple[int, int]]:
    revenue: Counter[tuple[int, int]] = Counter()
    for order in demo.orders:
        if order[5] in REVENUE_STATUSES:
            local = order[4].astimezone(TZ)
            revenue[(local.year, local.month)] += float(order[6])
    return revenue


def test_seasonality_gift_season_peaks_and_january_dips(demo: Demo) -> None:
    revenue = _revenue_by_month(demo)
    assert revenue[(2025, 12)] > 1.3 * revenue[(2025, 10)]  # gift season (and gift boxes), same customer base
    assert revenue[(2026, 1)] < 0.8 * revenue[(2025, 12)]  # the January lull
    assert revenue[(2026, 1)] < revenue[(2026, 3)]


def test_weekly_rhythm_cafe_weekends_online_early_week(demo: Demo) -> None:
    subscriptions = {line[1] for line in demo.lines if line[2] == demo.product_ids["SUB-MONTHLY"]}
    days: dict[str, Counter[int]] = {"cafe": Counter(), "online": Counter()}
    for order in demo.orders:
        if order[0] not in subscriptions:  # those follow the subscription's date, not the weekday
            days[order[8]][order[4].astimezone(TZ).weekday()] += 1
    cafe, online = days["cafe"], days["online"]
    assert min(cafe[5], cafe[6]) > 1.2 * max(cafe[0], cafe[1])  # Saturday and Sunday over Monday and Tuesday
    assert online[0] > 1.3 * online[5]  # Monday over Saturday


def test_subscribers_order_at_regular_intervals(demo: Demo) -> None:
    monthly = demo.product_ids["SUB-MONTHLY"]
    skus: dict[int, list[int]] = defaultdict(list)
    for line in demo.lines:
        skus[line[1]].append(line[2])
    subscribers = [
        orders for orders in demo.by_customer().values()
        if len(orders) >= 3 and all(skus[o[0]] == [monthly] for o in orders)
    ]  # fmt: skip
    assert len(subscribers) >= 40
    for orders in subscribers:
        times = sorted(o[4] for o in orders)
        gaps = [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(times)]
        assert max(gaps) - min(gaps) < 2, gaps  # the same interval every time, give or take the hour of day
        assert 29 <= statistics.median(gaps) <= 31  # monthly


def test_some_repeat_customers_lapse(demo: Demo) -> None:
    repeat = [orders for orders in demo.by_customer().values() if len(orders) >= 3]
    lapsed = [orders for orders in repeat if (demo.now - max(o[4] for o in orders)).days > 90]
    assert 0.15 < len(lapsed) / len(repeat) < 0.5
    cancelled = {e[1] for e in demo.events if e[3] == "subscription_cancelled"}
    assert cancelled, "lapsing subscribers cancel their subscription"


def test_carts_are_abandoned_as_well_as_checked_out(demo: Demo) -> None:
    placed = demo.by_customer()
    carts = [e for e in demo.events if e[3] == "add_to_cart"]
    abandoned = [
        e for e in carts
        if not any(timedelta(0) <= o[4] - e[8] <= timedelta(hours=2) for o in placed.get(e[1], []))
    ]  # fmt: skip
    assert 0.2 < len(abandoned) / len(carts) < 0.7
    assert len({e[1] for e in abandoned}) > 200  # customers with an abandoned cart
    # Every online order (but subscription renewals) went through checkout, and some checkouts were left.
    subscriptions = {line[1] for line in demo.lines if line[2] == demo.product_ids["SUB-MONTHLY"]}
    shop_orders = sum(1 for o in demo.orders if o[8] == "online" and o[0] not in subscriptions)
    checkouts = sum(1 for e in demo.events if e[3] == "checkout_started")
    assert checkouts > 1.05 * shop_orders


def test_feedback_follows_the_experience(demo: Demo) -> None:
    status = {o[0]: o[5] for o in demo.orders}
    csat: dict[str, list[int]] = defaultdict(list)
    for f in demo.feedback:
        if f[1] == "csat":
            csat[status[f[6]]].append(f[2])
    assert len(csat["refunded"]) >= 5
    assert statistics.mean(csat["refunded"]) < 2.5 < 4.0 < statistics.mean(csat["fulfilled"])
    last_order = {c: max(o[4] for o in orders) for c, orders in demo.by_customer().items()}
    nps: dict[bool, list[int]] = defaultdict(list)
    for f in demo.feedback:
        if f[1] == "nps":
            nps[(demo.now - last_order[f[5]]).days > 120].append(f[2])
    assert statistics.mean(nps[True]) < statistics.mean(nps[False]) - 1  # lapsed customers promote less

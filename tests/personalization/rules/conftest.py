"""A small, fully known world of customers in tenant A (and a look-alike in tenant B) for rule segments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from journeys.models import Customer, Event, Order, OrderLine, Product
from personalization.models import ClusterLabel, CustomerScore
from personalization.rules.selectors import definition_customers
from tenants.context import tenant_context
from tenants.models import Tenant


@dataclass
class World:
    tenant: Tenant
    other: Tenant
    now: datetime
    ids: dict[str, int]  # name -> customer id (tenant A); "Eve" is tenant B's

    def match(self, definition: Any) -> set[str]:
        """Names of tenant A's customers matching `definition`, evaluated as tenant A."""
        with tenant_context(self.tenant):
            return set(definition_customers(definition=definition).values_list("name", flat=True))


def _order(customer: Customer, ext: str, placed: datetime, total: str, categories: list[Product], status: str = "paid"):  # type: ignore[no-untyped-def]
    order = Order.objects.create(
        external_id=ext, customer=customer, placed_at=placed, status=status, total=Decimal(total), currency="USD"
    )
    for product in categories:
        OrderLine.objects.create(order=order, product=product, quantity=1, unit_price=Decimal(total))
    return order


def _event(customer: Customer, key: str, type_: str, at: datetime, **extra: Any) -> None:
    Event.objects.create(customer=customer, type=type_, occurred_at=at, idempotency_key=key, **extra)


def build_tenant_a(now: datetime) -> dict[str, int]:
    coffee = Product.objects.create(sku="COF", name="Espresso beans", category="Coffee", price=10, currency="USD")
    tea = Product.objects.create(sku="TEA", name="Green tea", category="Tea", price=8, currency="USD")
    gear = Product.objects.create(sku="GEAR", name="Grinder", category="Equipment", price=90, currency="USD")

    ana = Customer.objects.create(
        external_id="c-ana", name="Ana", email="ana@shop.test", phone="+351 900",
        consent_marketing=True, consent_personalization=True,
        first_seen=now - timedelta(days=400), last_seen=now - timedelta(days=2),
        created=now - timedelta(days=400),
        attributes={"plan": {"tier": "gold"}, "score": 42, "vip": True, "birthday": "1990-05-01"},
    )  # fmt: skip
    bob = Customer.objects.create(
        external_id="c-bob", name="Bob", email="bob@other.test", first_seen=now - timedelta(days=60),
        last_seen=now - timedelta(days=30), created=now - timedelta(days=60),
        attributes={"plan": {"tier": "silver"}, "score": "high", "birthday": "1985-12-24"},
    )  # fmt: skip
    cy = Customer.objects.create(external_id="c-cy", name="Cy", created=now - timedelta(days=1))
    dee = Customer.objects.create(
        external_id="c-dee", name="Dee", email="dee@shop.test", consent_personalization=True,
        first_seen=now - timedelta(days=3), last_seen=now - timedelta(hours=20), created=now - timedelta(days=3),
        attributes={"vip": False, "score": 7.5},
    )  # fmt: skip

    _order(ana, "o1", now - timedelta(days=200), "10.00", [coffee])
    _order(ana, "o2", now - timedelta(days=100), "20.00", [tea])
    _order(ana, "o3", now - timedelta(days=5, hours=1), "30.00", [coffee])
    _order(bob, "o4", now - timedelta(days=40, hours=1), "100.00", [gear])
    _order(bob, "o5", now - timedelta(days=1), "500.00", [coffee], status="cancelled")  # never counts

    for i in range(3):
        _event(ana, f"a{i}", "product_view", now - timedelta(days=i + 1), name="Espresso beans",
               properties={"sku": "COF"})  # fmt: skip
    _event(ana, "a-old", "product_view", now - timedelta(days=90), properties={"sku": "TEA"})
    _event(bob, "b1", "product_view", now - timedelta(days=30), properties={"sku": "GEAR"})
    _event(dee, "d1", "product_view", now - timedelta(days=1), properties={"sku": "COF"})
    _event(dee, "d2", "add_to_cart", now - timedelta(days=1), properties={"sku": "COF"})

    CustomerScore.objects.create(
        customer=ana, orders=3, historic_value=60, probability_alive=0.3, expected_orders_90d=0.4,
        expected_orders_365d=1.5, predicted_value_365d=45.0, churn_risk=0.8, churn_band="high",
        r_score=4, f_score=5, m_score=3, rfm_segment="At risk", cluster=1,
    )  # fmt: skip
    CustomerScore.objects.create(
        customer=bob, orders=1, historic_value=100, probability_alive=1.0, expected_orders_90d=0.2,
        expected_orders_365d=0.9, predicted_value_365d=90.0, churn_risk=0.1, churn_band="low",
        r_score=2, f_score=1, m_score=5, rfm_segment="Champions", cluster=2,
    )  # fmt: skip
    ClusterLabel.objects.create(cluster_id=1, description="frequent coffee buyers")
    ClusterLabel.objects.create(cluster_id=2, name="Gear heads")
    return {"Ana": ana.pk, "Bob": bob.pk, "Cy": cy.pk, "Dee": dee.pk}


def build_tenant_b(now: datetime) -> int:
    """Eve of tenant B matches nearly every condition tenant A's tests use; she must never appear."""
    coffee = Product.objects.create(sku="COF", name="Beans", category="Coffee", price=10, currency="USD")
    eve = Customer.objects.create(
        external_id="c-ana", name="Eve", email="eve@shop.test", consent_marketing=True, consent_personalization=True,
        first_seen=now - timedelta(days=5), last_seen=now - timedelta(days=1),
        attributes={"plan": {"tier": "gold"}, "score": 42, "vip": True, "birthday": "1990-05-01"},
    )  # fmt: skip
    for i in range(5):
        _order(eve, f"e{i}", now - timedelta(days=i * 3 + 1), "99.00", [coffee])
        _event(eve, f"e{i}", "product_view", now - timedelta(days=i + 1), properties={"sku": "COF"})
    CustomerScore.objects.create(
        customer=eve, orders=5, historic_value=495, churn_risk=0.9, churn_band="high", rfm_segment="At risk", cluster=1
    )
    return eve.pk


@pytest.fixture
def world(tenant: Tenant, other_tenant: Tenant) -> World:
    now = timezone.now()
    with tenant_context(other_tenant):
        eve = build_tenant_b(now)
    with tenant_context(tenant):
        ids = build_tenant_a(now)
    return World(tenant=tenant, other=other_tenant, now=now, ids={**ids, "Eve": eve})

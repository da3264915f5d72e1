"""Features loaded from the database count events and support contacts, not the days they happened on."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from journeys.models import Customer, Event, Feedback
from personalization import services
from tenants.context import tenant_context
from tenants.models import Tenant


def _event(customer: Customer, key: str, type_: str, days_ago: float) -> None:
    Event.objects.create(
        customer=customer, type=type_, occurred_at=timezone.now() - timedelta(days=days_ago), idempotency_key=key
    )


def test_events_30d_and_support_contacts_count_events_on_the_same_day(tenant: Tenant, other_tenant: Tenant) -> None:
    with tenant_context(other_tenant):  # another tenant's events never count
        eve = Customer.objects.create(external_id="c-1")
        for i in range(4):
            _event(eve, f"e{i}", "chat_started", 0.1)
    with tenant_context(tenant):
        ana = Customer.objects.create(external_id="c-1")
        bob = Customer.objects.create(external_id="c-2")
        for i in range(3):  # three page views within one hour: three events, one active day
            _event(ana, f"view-{i}", "page_view", 2 + i / 100)
        _event(ana, "chat-a", "chat_started", 3)
        _event(ana, "chat-b", "chat_started", 3.01)  # two support contacts, same day
        _event(ana, "chat-old", "chat_started", 200)  # an old contact counts for support, not for the last 30 days
        _event(ana, "view-old", "page_view", 45)  # outside the 30-day window
        _event(bob, "view-bob", "page_view", 1)
        Feedback.objects.create(kind="csat", score=2, customer=ana)
        Feedback.objects.create(kind="csat", score=5, customer=ana)
        Feedback.objects.create(kind="nps", score=0, customer=ana)  # not CSAT

        cutoff = services.tenant_cutoff(tenant)
        data = services.tenant_data_load(tenant=tenant, cutoff=cutoff)
        features = services._features(data, cutoff)

    a, b = features.loc[ana.pk], features.loc[bob.pk]
    assert a["events_30d"] == 5  # 3 views + 2 contacts in the last 30 days
    assert a["support_contacts"] == 3
    assert a["avg_csat"] == 3.5
    assert a["tenure_days"] == 200
    assert b["events_30d"] == 1 and b["support_contacts"] == 0
    assert set(features.index) == {ana.pk, bob.pk}

"""Tenants with realistic history (the demo generator) for the personalization service, page and API tests."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command

from tenants.models import Tenant

DEMO_END = date(2026, 6, 30)


def seed(tenant: Tenant, customers: int, seed: int = 7) -> None:
    call_command("seed_demo", tenant=tenant.slug, customers=customers, seed=seed, end_date=DEMO_END.isoformat(),
                 verbosity=0)  # fmt: skip


@pytest.fixture
def demo_tenant(tenant: Tenant) -> Tenant:
    """The `tenant` fixture with 700 demo customers (enough for every gate)."""
    seed(tenant, 700)
    return tenant


@pytest.fixture
def small_tenant(other_tenant: Tenant) -> Tenant:
    """The `other_tenant` fixture with 40 demo customers: RFM only, the other gates closed."""
    seed(other_tenant, 40, seed=3)
    return other_tenant

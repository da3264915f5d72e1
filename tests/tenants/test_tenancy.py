"""The fail-closed default manager and the tenant context."""

from __future__ import annotations

import pytest

from tenants.context import TenantNotSetError, current_tenant, tenant_context
from tenants.models import ApiKey, Membership, Tenant


def test_scoped_manager_raises_without_a_tenant(tenant: Tenant) -> None:
    with pytest.raises(TenantNotSetError):
        list(Membership.objects.all())
    with pytest.raises(TenantNotSetError):
        current_tenant()


def test_scoped_manager_sees_only_the_current_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    with tenant_context(tenant):
        assert [m.tenant_id for m in Membership.objects.all()] == [tenant.pk]
    with tenant_context(other_tenant):
        assert [m.tenant_id for m in Membership.objects.all()] == [other_tenant.pk]
        assert not ApiKey.objects.filter(tenant=tenant).exists()


def test_nested_contexts_restore_the_outer_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    with tenant_context(tenant):
        with tenant_context(other_tenant):
            assert current_tenant() == other_tenant
        assert current_tenant() == tenant
        assert Membership.objects.count() == 1

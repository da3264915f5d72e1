"""The fail-closed default manager and the tenant context."""

from __future__ import annotations

import pytest
from django.db.models import Q, QuerySet

from tenants.api.base import TenantScopedViewSet
from tenants.context import TenantNotSetError, all_tenants, current_tenant, tenant_context
from tenants.managers import is_tenant_scoped
from tenants.models import ApiKey, Job, Membership, Tenant


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


def test_is_tenant_scoped_tells_the_managers_filter_from_anything_wider(db: None) -> None:
    assert is_tenant_scoped(Job.objects.filter(kind="a").exclude(kind="b").select_related("created_by"))
    assert is_tenant_scoped(Job.objects.filter(Q(kind="a") | Q(kind="b")).order_by("-created"))
    assert not is_tenant_scoped(Job.all_tenants.all())
    assert not is_tenant_scoped(Job.objects.all() | Job.all_tenants.all())
    assert not is_tenant_scoped(Job.objects.union(Job.all_tenants.all()))
    assert not is_tenant_scoped(Job.all_tenants.filter(created_by__memberships__tenant=1))


class AllTenantsJobs(TenantScopedViewSet):
    model = Job

    def scoped_queryset(self) -> QuerySet[Job]:
        return Job.all_tenants.all()  # a mistake the base class must still contain


@pytest.mark.parametrize("view_class", [TenantScopedViewSet, AllTenantsJobs], ids=["tenant manager", "all_tenants"])
def test_the_api_base_returns_only_the_current_tenants_rows(
    tenant: Tenant, other_tenant: Tenant, view_class: type[TenantScopedViewSet]
) -> None:
    for owner in (tenant, other_tenant):
        with tenant_context(owner):
            Job.objects.create(tenant=owner, kind="test.scope")
    view = view_class()
    view.model = Job
    with tenant_context(tenant), all_tenants():  # row-level security lifted: only the queryset scopes
        assert Job.all_tenants.count() == 2
        assert [job.tenant_id for job in view.get_queryset()] == [tenant.pk]

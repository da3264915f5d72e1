"""The base of every tenant-scoped API view: scoping and permissions happen here, once."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import viewsets

from tenants.context import current_tenant
from tenants.managers import is_tenant_scoped


class TenantScopedViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Subclasses set `model`, `read_permission`, `write_permission` and may narrow `scoped_queryset`.

    `get_queryset` always filters by the current tenant, so an id of another tenant is a 404.
    """

    model: type[Model]
    read_permission = "dashboard.view"
    write_permission = "data.write"
    api_key_allowed = True

    def scoped_queryset(self) -> QuerySet[Any]:
        """Override to add select_related, annotations or narrowing filters (never to widen)."""
        return self.model._default_manager.all()

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation runs with no tenant
            return self.model._base_manager.none()
        queryset = self.scoped_queryset()
        # The tenant manager's own filter does it (read when the SQL is compiled; it raises when no
        # tenant is set); any other queryset is filtered here.
        return queryset if is_tenant_scoped(queryset) else queryset.filter(tenant=current_tenant())

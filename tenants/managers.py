"""Managers of tenant-owned models: the default one fails closed."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.lookups import Exact
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.where import AND

from tenants.context import TenantNotSetError, current_tenant_id


class CurrentTenantId(models.Expression):
    """The current tenant's id, read when the SQL is compiled; raises when no tenant is set.

    Reading it at compile time (not when the queryset is built) lets querysets be declared
    anywhere (forms, filtersets, schema generation) and still never run unscoped.
    """

    output_field = models.BigIntegerField()

    def __init__(self, model_name: str) -> None:
        super().__init__()
        self.model_name = model_name

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        tenant_id = current_tenant_id()
        if tenant_id is None:
            raise TenantNotSetError(
                f"{self.model_name}.objects needs a current tenant (tenant_context()); "
                f"code that must cross tenants uses {self.model_name}.all_tenants."
            )
        return "%s", [tenant_id]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CurrentTenantId) and other.model_name == self.model_name

    def __hash__(self) -> int:
        return hash((CurrentTenantId, self.model_name))


class TenantManager(models.Manager[Any]):
    """Filters by the current tenant; a query run with no tenant set raises TenantNotSetError."""

    def get_queryset(self) -> models.QuerySet[Any]:
        return super().get_queryset().filter(tenant_id=CurrentTenantId(self.model.__name__))


class AllTenantsManager(models.Manager[Any]):
    """DANGEROUS: every tenant's rows. On PostgreSQL, RLS still applies unless inside all_tenants()."""


def is_tenant_scoped(queryset: models.QuerySet[Any]) -> bool:
    """Whether every row `queryset` can return belongs to the current tenant because it still holds,
    at its top level, the filter TenantManager added (so filtering by the tenant again adds nothing).
    False for anything else: another manager, a union, a negated or OR-ed filter."""
    where = queryset.query.where
    if where.connector != AND or where.negated or queryset.query.combinator:
        return False
    return any(
        isinstance(node, Exact)
        and isinstance(node.rhs, CurrentTenantId)
        and getattr(node.lhs, "target", None) is queryset.model._meta.get_field("tenant")
        and getattr(node.lhs, "alias", None) == queryset.query.base_table
        for node in where.children
    )

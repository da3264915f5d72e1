"""Row-level security on PostgreSQL: one policy per tenant-owned table, (re)applied after migrate."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import connections

POLICY = "cx_tenant_isolation"
_CONDITION = (
    "(tenant_id = NULLIF(current_setting('cx.tenant_id', true), '')::bigint"
    " OR current_setting('cx.all_tenants', true) = 'on')"
)


def tenant_owned_tables() -> list[str]:
    from tenants.models import TenantOwnedModel

    return sorted(
        m._meta.db_table
        for m in apps.get_models()
        if issubclass(m, TenantOwnedModel) and not m._meta.proxy and m._meta.managed
    )


def apply_policies(using: str = "default") -> list[str]:
    """Enable and force RLS with the isolation policy on every tenant-owned table; idempotent."""
    conn = connections[using]
    if conn.vendor != "postgresql":
        return []
    tables = tenant_owned_tables()
    with conn.cursor() as cursor:
        for table in tables:
            qt = conn.ops.quote_name(table)
            cursor.execute(f"ALTER TABLE {qt} ENABLE ROW LEVEL SECURITY")
            cursor.execute(f"ALTER TABLE {qt} FORCE ROW LEVEL SECURITY")
            cursor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {qt}")
            cursor.execute(f"CREATE POLICY {POLICY} ON {qt} USING {_CONDITION} WITH CHECK {_CONDITION}")
    return tables


def on_post_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    if sender.label == "tenants":  # once per migrate run; every app's tables exist by then
        apply_policies(using)

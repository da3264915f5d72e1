"""System checks: warn when the database role would bypass row-level security."""

from __future__ import annotations

from typing import Any

from django.core.checks import Warning, register
from django.db import connection


@register("database", deploy=True)
def check_rls_role(app_configs: Any, **kwargs: Any) -> list[Warning]:
    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            row = cursor.fetchone()
    except Exception:  # noqa: BLE001 - a check must not crash on an unreachable database
        return []
    if row and row[0]:
        return [
            Warning(
                "The database role is a superuser or has BYPASSRLS: row-level security is not enforced.",
                hint="Connect as a non-superuser role that owns the tables (see README, Production).",
                id="tenants.W001",
            )
        ]
    return []

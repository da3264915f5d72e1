"""Row-level security: the database itself refuses other tenants' rows (PostgreSQL only)."""

from __future__ import annotations

import pytest
from django.db import connection

from tenants.context import all_tenants, tenant_context
from tenants.models import ApiKey, Tenant
from tenants.rls import tenant_owned_tables
from tenants.services import api_key_create

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level security is PostgreSQL's")


def test_application_role_cannot_bypass_rls(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)


def test_every_tenant_table_forces_rls(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND relrowsecurity AND relforcerowsecurity")
        forced = {row[0] for row in cursor.fetchall()}
    assert set(tenant_owned_tables()) <= forced
    assert "tenants_apikey" in forced


def test_raw_sql_without_tenant_filter_sees_only_the_connections_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    with tenant_context(tenant):
        api_key_create(name="a1", scope="read", created_by=None)
        api_key_create(name="a2", scope="read", created_by=None)
    with tenant_context(other_tenant):
        api_key_create(name="b1", scope="read", created_by=None)

    with tenant_context(other_tenant), connection.cursor() as cursor:
        cursor.execute("SELECT name, tenant_id FROM tenants_apikey")  # no WHERE on purpose
        rows = cursor.fetchall()
    assert rows == [("b1", other_tenant.pk)]

    with connection.cursor() as cursor:  # no tenant at all: nothing
        cursor.execute("SELECT count(*) FROM tenants_apikey")
        assert cursor.fetchone() == (0,)

    with all_tenants():
        assert ApiKey.all_tenants.count() == 3


def test_writing_a_row_for_another_tenant_is_refused(tenant: Tenant, other_tenant: Tenant) -> None:
    from django.db import DatabaseError, transaction

    with tenant_context(other_tenant), pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as c:
        c.execute(
            "INSERT INTO tenants_auditlogentry (tenant_id, action, target, data, created) "
            "VALUES (%s, 'x', '', '{}', now())",
            [tenant.pk],
        )


def _apikey_names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM tenants_apikey ORDER BY name")  # no WHERE on purpose
        return [row[0] for row in cursor.fetchall()]


def test_rolled_back_savepoint_does_not_leave_the_previous_tenant_applied(tenant: Tenant, other_tenant: Tenant) -> None:
    """PostgreSQL undoes set_config on rollback; the backend must notice and write the scope again."""
    from django.db import transaction

    with tenant_context(tenant):
        api_key_create(name="a1", scope="read", created_by=None)
        assert _apikey_names() == ["a1"]  # the connection now holds tenant A
    with tenant_context(other_tenant):
        api_key_create(name="b1", scope="read", created_by=None)
    with tenant_context(tenant):
        assert _apikey_names() == ["a1"]

    with tenant_context(tenant):
        savepoint = transaction.savepoint()  # taken while the connection holds A
        with tenant_context(other_tenant):
            assert _apikey_names() == ["b1"]  # B written inside the savepoint...
            transaction.savepoint_rollback(savepoint)  # ...and undone by its rollback: A again
            assert _apikey_names() == ["b1"]  # B must be written again


def test_a_scope_change_reaches_a_connection_opened_earlier(tenant: Tenant, other_tenant: Tenant) -> None:
    with tenant_context(tenant):
        api_key_create(name="a1", scope="read", created_by=None)
    with tenant_context(other_tenant):
        api_key_create(name="b1", scope="read", created_by=None)
    connection.ensure_connection()
    for _ in range(2):  # alternate scopes on one connection
        with tenant_context(tenant):
            assert _apikey_names() == ["a1"]
        assert _apikey_names() == []
        with tenant_context(other_tenant):
            assert _apikey_names() == ["b1"]

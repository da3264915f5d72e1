"""The current tenant: a context variable, mirrored into the database connection.

On PostgreSQL every tenant-owned table has a row-level security policy that reads the
connection settings `cx.tenant_id` and `cx.all_tenants`; the database backend in
tenants/db/postgresql writes them from this scope before each query that needs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenants.models import Tenant


class TenantNotSetError(RuntimeError):
    """A tenant-scoped query ran with no current tenant."""


@dataclass(frozen=True)
class _Scope:
    tenant: Tenant | None
    all_tenants: bool = False


_scope: ContextVar[_Scope] = ContextVar("cx_tenant_scope", default=_Scope(tenant=None))  # noqa: B039 - frozen


def current_tenant() -> Tenant:
    """The current tenant; raises TenantNotSetError when none is set."""
    tenant = _scope.get().tenant
    if tenant is None:
        raise TenantNotSetError("No current tenant is set.")
    return tenant


def current_tenant_or_none() -> Tenant | None:
    return _scope.get().tenant


def current_tenant_id() -> int | None:
    tenant = _scope.get().tenant
    return tenant.pk if tenant is not None else None


def connection_settings() -> tuple[str, str]:
    """The values of `cx.tenant_id` and `cx.all_tenants` that the current scope needs.

    The PostgreSQL backend (tenants/db/postgresql) writes them into the connection before a query
    when the connection holds other values."""
    scope = _scope.get()
    return ("" if scope.tenant is None else str(scope.tenant.pk), "on" if scope.all_tenants else "off")


@contextmanager
def _scoped(scope: _Scope) -> Iterator[None]:
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


@contextmanager
def tenant_context(tenant: Tenant) -> Iterator[Tenant]:
    """Run the block as `tenant`: scoped managers and RLS policies see only its rows."""
    with _scoped(_Scope(tenant=tenant)):
        yield tenant


@contextmanager
def all_tenants() -> Iterator[None]:
    """DANGEROUS: lift row-level security for the block, for code that must cross tenants
    (operator commands, API-key and invitation look-ups). Pair it with the `all_tenants` manager."""
    with _scoped(_Scope(tenant=_scope.get().tenant, all_tenants=True)):
        yield

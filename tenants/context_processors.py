from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from tenants.permissions import PERMISSIONS


def tenancy(request: HttpRequest) -> dict[str, Any]:
    """The current tenant, membership and what the role may do, for every template."""
    membership = getattr(request, "membership", None)
    role = membership.role if membership else None
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": membership,
        "user_memberships": getattr(request, "memberships", []),
        "can": {name.replace(".", "_"): role in roles for name, roles in PERMISSIONS.items()},
    }

"""One permission check for every endpoint: API-key scope, or the member's role."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenants.models import ApiKey
from tenants.permissions import role_has


class TenantPermission(BasePermission):
    """Views declare `read_permission` and `write_permission` (names from tenants.permissions)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        safe = request.method in SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            if not getattr(view, "api_key_allowed", True):
                raise PermissionDenied("This endpoint is not available to API keys; sign in to the dashboard.")
            if not safe and not request.auth.can_write:
                raise PermissionDenied("This API key is read-only; create a read-write key to make changes.")
            return True
        membership = getattr(request._request, "membership", None)
        if membership is None or request.user is None:
            raise NotAuthenticated("Authenticate with an API key (Authorization: Bearer <key>).")
        permission = getattr(view, "read_permission" if safe else "write_permission", "settings.manage")
        if not role_has(membership.role, permission):
            raise PermissionDenied(f"Your role ({membership.role}) does not allow this.")
        return True

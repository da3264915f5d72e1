"""API authentication: `Authorization: Bearer <key>` (resolved by TenantMiddleware), or a session
whose user is a member of the current tenant."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from tenants.models import ApiKey
from tenants.services import api_key_touch


class ApiKeyPrincipal:
    """`request.user` for a request made with an API key."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.pk = None

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        raw = request._request
        if getattr(raw, "api_key_invalid", False):
            raise AuthenticationFailed("The API key is invalid or has been revoked.")
        key: ApiKey | None = getattr(raw, "api_key", None)
        if key is None:
            return None
        api_key_touch(api_key=key)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class TenantSessionAuthentication(SessionAuthentication):
    """Session auth (with CSRF) that only counts when the user is a member of the current tenant."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None or getattr(request._request, "membership", None) is None:
            return None
        return result

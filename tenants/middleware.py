"""Request middleware: body-size limit, and the current tenant from an API key or the session."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from tenants.api.throttling import api_key_hit
from tenants.context import all_tenants, tenant_context
from tenants.models import Membership, Tenant
from tenants.services import api_key_authenticate, api_key_prefix

SESSION_TENANT_KEY = "cx_tenant_id"


class RequestSizeLimitMiddleware:
    """Refuse bodies larger than the limit for their path with 413, before anything reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.by_prefix = sorted(settings.REQUEST_MAX_BYTES_BY_PREFIX.items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.by_prefix:
            if path.startswith(prefix):
                return limit
        return settings.REQUEST_MAX_BYTES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = self.limit_for(request.path)
        if length > limit:
            message = f"Request body is {length} bytes; the limit for this endpoint is {limit} bytes."
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"error": {"code": "request_too_large", "message": message, "fields": {}}}, status=413
                )
            return HttpResponse(message, status=413, content_type="text/plain")
        # Bodies sent without Content-Length (chunked) are capped by Django's upload limits.
        return self.get_response(request)


class TenantMiddleware:
    """Sets request.tenant / request.membership / request.api_key and runs the view in that tenant.

    An API key (Authorization: Bearer) wins over the session. An invalid key leaves no tenant set;
    the API's authentication answers 401 for it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        request.memberships = []  # type: ignore[attr-defined]
        request.api_key = None  # type: ignore[attr-defined]
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header[:7].lower() == "bearer ":
            raw_key = header[7:].strip()
            prefix = api_key_prefix(raw_key)
            # The API's throttle counts the request in the key look-up's cache round trip.
            hit = api_key_hit(prefix) if prefix is not None and request.path.startswith("/api/") else None
            request.api_key_hit = hit  # type: ignore[attr-defined]
            key = api_key_authenticate(raw_key=raw_key, hit=hit)
            if key is None:
                request.api_key_invalid = True  # type: ignore[attr-defined]
                return self.get_response(request)
            request.api_key, request.tenant = key, key.tenant  # type: ignore[attr-defined]
            with tenant_context(key.tenant), _tenant_timezone(key.tenant):
                return self.get_response(request)

        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        with all_tenants():
            memberships = list(
                Membership.all_tenants.select_related("tenant").filter(user=user).order_by("tenant__name")
            )
        request.memberships = memberships  # type: ignore[attr-defined]
        if not memberships:
            return self.get_response(request)
        wanted = request.session.get(SESSION_TENANT_KEY)
        membership = next((m for m in memberships if m.tenant_id == wanted), memberships[0])
        if membership.tenant_id != wanted:
            request.session[SESSION_TENANT_KEY] = membership.tenant_id
        request.membership, request.tenant = membership, membership.tenant  # type: ignore[attr-defined]
        with tenant_context(membership.tenant), _tenant_timezone(membership.tenant):
            return self.get_response(request)


@contextmanager
def _tenant_timezone(tenant: Tenant) -> Iterator[None]:
    """Pages and forms show and read times in the business's own time zone."""
    try:
        zone = zoneinfo.ZoneInfo(tenant.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = None
    if zone is None:
        yield
        return
    timezone.activate(zone)
    try:
        yield
    finally:
        timezone.deactivate()

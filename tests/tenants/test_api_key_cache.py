"""A revoked API key stops working at once, in this process and in every other one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection
from rest_framework.test import APIClient

from tenants import services
from tenants.context import tenant_context
from tenants.models import ApiKey, ApiKeyScope, Tenant

ROOT = Path(__file__).resolve().parents[2]


def issue(tenant: Tenant) -> tuple[ApiKey, str]:
    with tenant_context(tenant):
        issued = services.api_key_create(name="shop", scope=ApiKeyScope.WRITE, created_by=None)
    return issued.api_key, issued.secret


def revoke(tenant: Tenant, key: ApiKey) -> None:
    """Revoke through the service, from a fresh copy (as another request would)."""
    with tenant_context(tenant):
        services.api_key_revoke(api_key=ApiKey.objects.get(pk=key.pk), actor=None)


def test_a_request_in_flight_cannot_put_a_revoked_key_back_in_the_cache(tenant: Tenant) -> None:
    key, secret = issue(tenant)
    in_flight = services.api_key_authenticate(raw_key=secret)  # cached now
    assert in_flight is not None and in_flight.last_used_at is None
    revoke(tenant, key)
    with tenant_context(tenant):
        services.api_key_touch(api_key=in_flight)  # that request finishes after the revocation
    assert services.api_key_authenticate(raw_key=secret) is None
    with tenant_context(tenant):
        assert ApiKey.objects.get(pk=key.pk).last_used_at is not None  # its use was still recorded
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/tenant/").status_code == 401


def test_a_revocation_between_the_database_read_and_the_cache_write_is_not_cached(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, secret = issue(tenant)
    load = services._api_key_load

    def load_then_revoked_elsewhere(prefix: str) -> ApiKey | None:
        row = load(prefix)
        monkeypatch.setattr(services, "_api_key_load", load)
        revoke(tenant, key)  # another request revokes before this one writes its copy to the cache
        return row

    monkeypatch.setattr(services, "_api_key_load", load_then_revoked_elsewhere)
    assert services.api_key_authenticate(raw_key=secret) is not None  # read before the revocation
    assert services.api_key_authenticate(raw_key=secret) is None


def test_use_is_recorded_at_most_once_a_minute(tenant: Tenant, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    key, secret = issue(tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/jobs/").status_code == 200
    with tenant_context(tenant):
        first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    for _ in range(3):
        assert client.get("/api/v1/jobs/").status_code == 200
    with tenant_context(tenant):
        assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    with django_assert_num_queries(1):  # the key is cached and not written: only the (empty) page's count
        client.get("/api/v1/jobs/")


def test_without_a_shared_cache_a_key_is_trusted_for_a_second_at_most(tenant: Tenant, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "one-s"}}
    key, secret = issue(tenant)
    assert services.api_key_authenticate(raw_key=secret) is not None
    # Another process revokes it: its invalidation never reaches this process's memory.
    with tenant_context(tenant):
        ApiKey.objects.filter(pk=key.pk).update(revoked_at=key.created)
    time.sleep(services.API_KEY_LOCAL_CACHE_SECONDS + 0.1)
    assert services.api_key_authenticate(raw_key=secret) is None


CHECKER = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "cxplatform.settings"
import cxplatform.settings as conf
conf.CACHES["default"]["KEY_PREFIX"] = sys.argv[2]  # the test's own cache namespace
import django
django.setup()
from tenants.services import api_key_authenticate
for line in sys.stdin:
    print("ok" if api_key_authenticate(raw_key=sys.argv[1]) else "refused", flush=True)
"""


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="another process needs a database it can reach (the SQLite test database lives in memory)",
)
@pytest.mark.django_db(transaction=True)
def test_a_revocation_reaches_another_process(tenant: Tenant, settings) -> None:  # type: ignore[no-untyped-def]
    key, secret = issue(tenant)
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    env = {**os.environ, "DATABASE_URL": f"{base}/{connection.settings_dict['NAME']}"}
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    other = subprocess.Popen(
        [sys.executable, "-c", CHECKER, secret, prefix],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdin is not None and other.stdout is not None

    def ask() -> str:
        other.stdin.write("check\n")  # type: ignore[union-attr]
        other.stdin.flush()  # type: ignore[union-attr]
        return other.stdout.readline().strip()  # type: ignore[union-attr]

    try:
        assert ask() == "ok"  # the other process has the key cached now
        revoke(tenant, key)
        if isinstance(caches["default"], LocMemCache):
            time.sleep(services.API_KEY_LOCAL_CACHE_SECONDS + 0.1)  # per-process caches: a second at most
        assert ask() == "refused"
    finally:
        other.stdin.close()
        other.wait(timeout=30)

"""Shared fixtures: tenants, members of each role, API clients. Everything hits the real database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from rest_framework.test import APIClient

from tenants.context import tenant_context
from tenants.models import ApiKeyScope, Membership, Role, Tenant, User
from tenants.services import api_key_create, tenant_create

PASSWORD = "correct-horse-battery-9"


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist process gets its own Redis database as Celery broker. The real workers that tests start
    all consume the same queue names: on a shared broker, a worker started by the other process's test takes
    this process's message, finds no such job in its own test database and drops it (the job stays queued)."""
    from django.conf import settings

    from cxplatform.celery import app

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not settings.CELERY_BROKER_URL:
        return
    url = urlsplit(settings.CELERY_BROKER_URL)
    db = int(url.path.strip("/") or 0)
    broker = urlunsplit(url._replace(path=f"/{(db + 1 + int(worker[2:])) % 16}"))
    settings.CELERY_BROKER_URL = broker
    app.conf.broker_url = broker


@pytest.fixture(autouse=True)
def _inline_jobs(settings: pytest.FixtureRequest) -> None:
    """Jobs run synchronously in tests, except where a test starts a real worker."""
    settings.CX_TASKS_INLINE = True  # type: ignore[attr-defined]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]
    settings.STORAGES = {  # type: ignore[attr-defined]
        **settings.STORAGES,  # type: ignore[attr-defined]
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # A fresh cache namespace per test: rate limits and throttles never leak between tests or runs.
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": uuid.uuid4().hex}}  # type: ignore[attr-defined]


@pytest.fixture
def long_api_key_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Redis an API key is cached for one second only: on a loaded machine a warm-up request's copy
    can expire before the request whose queries a test counts. Tests that pin query counts use this."""
    import tenants.services

    monkeypatch.setattr(tenants.services, "API_KEY_LOCAL_CACHE_SECONDS", 300)


def make_user(email: str, name: str = "") -> User:
    user = User.objects.create_user(email, PASSWORD, name=name)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def add_member(tenant: Tenant, user: User, role: str) -> Membership:
    with tenant_context(tenant):
        return Membership.objects.create(tenant=tenant, user=user, role=role)


@pytest.fixture
def owner(db: None) -> User:
    return make_user("owner@tenant-a.test", "Owner A")


@pytest.fixture
def tenant(owner: User) -> Tenant:
    return tenant_create(name="Tenant A Coffee", owner=owner)


@pytest.fixture
def other_owner(db: None) -> User:
    return make_user("owner@tenant-b.test", "Owner B")


@pytest.fixture
def other_tenant(other_owner: User) -> Tenant:
    return tenant_create(name="Tenant B Boutique", owner=other_owner)


@pytest.fixture
def admin(tenant: Tenant) -> User:
    user = make_user("admin@tenant-a.test", "Admin A")
    add_member(tenant, user, Role.ADMIN)
    return user


@pytest.fixture
def agent(tenant: Tenant) -> User:
    user = make_user("agent@tenant-a.test", "Agent A")
    add_member(tenant, user, Role.AGENT)
    return user


@pytest.fixture
def analyst(tenant: Tenant) -> User:
    user = make_user("analyst@tenant-a.test", "Analyst A")
    add_member(tenant, user, Role.ANALYST)
    return user


@pytest.fixture
def in_tenant(tenant: Tenant) -> Iterator[Tenant]:
    """Run the test body as tenant A (for building data through services and managers)."""
    with tenant_context(tenant):
        yield tenant


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner: User, tenant: Tenant) -> Client:
    return client_for(owner)


@pytest.fixture
def other_client(other_owner: User, other_tenant: Tenant) -> Client:
    return client_for(other_owner)


def api_client_for(tenant: Tenant, scope: str = ApiKeyScope.WRITE) -> APIClient:
    with tenant_context(tenant):
        issued = api_key_create(name=f"test {scope}", scope=scope, created_by=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    client.api_key = issued.api_key  # type: ignore[attr-defined]
    return client


@pytest.fixture
def api_client(tenant: Tenant) -> APIClient:
    """A read-write API key of tenant A."""
    return api_client_for(tenant)


@pytest.fixture
def read_api_client(tenant: Tenant) -> APIClient:
    return api_client_for(tenant, ApiKeyScope.READ)


@pytest.fixture
def other_api_client(other_tenant: Tenant) -> APIClient:
    """A read-write API key of tenant B."""
    return api_client_for(other_tenant)

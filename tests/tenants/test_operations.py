"""Operator surface: the create_tenant command and the health endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from tenants.context import tenant_context
from tenants.models import ApiKey, ApiKeyScope, Job, Membership, Role, Tenant, User

ROOT = Path(__file__).resolve().parents[2]


def create_tenant(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_tenant", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_tenant_prints_a_working_read_write_key_last(db: None) -> None:
    lines = create_tenant("Acme Bakery", "--owner", "owner@acme.test", "--api-key")
    tenant = Tenant.objects.get(name="Acme Bakery")
    owner = User.objects.get(email="owner@acme.test")
    with tenant_context(tenant):
        assert Membership.objects.get(user=owner).role == Role.OWNER
        assert ApiKey.objects.get().scope == ApiKeyScope.WRITE

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {lines[-1]}")
    read = client.get("/api/v1/tenant/")
    assert read.status_code == 200 and read.json()["name"] == "Acme Bakery"
    write = client.post("/api/v1/jobs/audit-log-export/")
    assert write.status_code == 202
    with tenant_context(tenant):
        assert Job.objects.get(pk=write.json()["id"]).kind == "audit_log.export"


def test_create_tenant_for_an_existing_owner_and_without_a_key(owner: User, tenant: Tenant) -> None:
    lines = create_tenant("Second Shop", "--owner", owner.email.upper())
    assert lines[-1] == f"{owner.email} owns it."
    second = Tenant.objects.get(name="Second Shop")
    with tenant_context(second):
        assert Membership.objects.get().user == owner
        assert not ApiKey.objects.exists()


def test_healthz_and_readyz_answer_200(client: Client, db: None, settings) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    expected = {"database": "ok", **({"redis": "ok"} if settings.REDIS_URL else {})}
    assert ready.json() == {"status": "ok", "checks": expected}


PROBE = """
import django, json
django.setup()
from django.test import Client
client = Client()
print(json.dumps({path: [r.status_code, r.json()] for path in ("/healthz", "/readyz") for r in [client.get(path)]}))
"""


def probe(**env_values: str) -> dict[str, list[object]]:
    """Ask /healthz and /readyz in a fresh process configured with `env_values`."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(DJANGO_SETTINGS_MODULE="cxplatform.settings", LOG_LEVEL="CRITICAL", **env_values)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    answers = probe(DATABASE_URL="postgres://cx@127.0.0.1:1/nowhere")  # nothing listens on port 1
    assert answers["/healthz"] == [200, {"status": "ok"}]  # the process itself is up
    status, body = answers["/readyz"]
    assert status == 503
    assert body == {"status": "unavailable", "checks": {"database": "error: OperationalError"}}


def test_readyz_is_503_when_redis_is_unreachable(tmp_path: Path) -> None:
    answers = probe(DATABASE_URL=f"sqlite:///{tmp_path / 'ready.sqlite3'}", REDIS_URL="redis://127.0.0.1:1/0")
    status, body = answers["/readyz"]
    assert status == 503 and body["checks"]["database"] == "ok"  # type: ignore[index]
    assert body["checks"]["redis"].startswith("error: ")  # type: ignore[index]

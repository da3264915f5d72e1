"""API keys, the error format, throttling, size limits, schema and docs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client
from rest_framework.test import APIClient

from tenants.api import throttling
from tenants.api.throttling import ApiKeyRateThrottle
from tenants.context import tenant_context
from tenants.models import ApiKey, Job, Tenant, User
from tenants.services import api_key_revoke, tenant_update


def test_key_is_shown_once_and_stored_hashed(owner_client: Client, tenant: Tenant) -> None:
    page = owner_client.post("/settings/api-keys/", {"name": "Shop sync", "scope": "write"}, follow=True)
    page = page.content.decode()
    with tenant_context(tenant):
        key = ApiKey.objects.get()
    secret = page.split('id="new-key" class="secret">')[1].split("<")[0]
    assert secret.startswith("cx_" + key.prefix)
    assert secret not in (key.key_hash, key.prefix) and len(key.key_hash) == 64
    assert secret not in owner_client.get("/settings/api-keys/").content.decode()  # never again
    client = APIClient()
    assert client.get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_missing_key_is_401_with_error_format(db: None) -> None:
    response = APIClient().get("/api/v1/jobs/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == "not_authenticated" and error["message"] and error["fields"] == {}


def test_revoked_key_is_401(api_client: APIClient, tenant: Tenant) -> None:
    assert api_client.get("/api/v1/jobs/").status_code == 200
    with tenant_context(tenant):
        api_key_revoke(api_key=ApiKey.objects.get(pk=api_client.api_key.pk), actor=None)  # type: ignore[attr-defined]
    response = api_client.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_garbage_key_is_401(db: None) -> None:
    response = APIClient().get("/api/v1/jobs/", HTTP_AUTHORIZATION="Bearer cx_0000000000000000000000000000000000")
    assert response.status_code == 401


def test_read_only_key_cannot_write(read_api_client: APIClient) -> None:
    assert read_api_client.get("/api/v1/jobs/").status_code == 200
    response = read_api_client.post("/api/v1/jobs/audit-log-export/")
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]


def test_write_key_starts_a_job_and_records_last_use(api_client: APIClient, tenant: Tenant) -> None:
    response = api_client.post("/api/v1/jobs/audit-log-export/")
    assert response.status_code == 202
    job = api_client.get(f"/api/v1/jobs/{response.json()['id']}/").json()
    assert job["status"] == "succeeded" and job["result"]["rows"] >= 1
    with tenant_context(tenant):
        assert ApiKey.objects.get(pk=api_client.api_key.pk).last_used_at is not None  # type: ignore[attr-defined]


def test_unknown_endpoint_is_json_404(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_validation_errors_name_the_field(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/jobs/", {"status": "exploded"})
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert "status" in body["fields"] and "status" in body["message"]


def test_throttling_answers_429_with_retry_after(api_client: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    statuses = [api_client.get("/api/v1/tenant/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api_client.get("/api/v1/tenant/")
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "throttled"


def test_a_wrong_secret_for_a_key_does_not_use_up_its_rate(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Redis the rate counter is counted in the key look-up's round trip, before the secret is
    checked: a refused secret with the key's prefix is taken off again."""
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Bearer cx_{api_client.api_key.prefix}{'x' * 40}")  # type: ignore[attr-defined]
    assert [forged.get("/api/v1/tenant/").status_code for _ in range(5)] == [401] * 5
    assert [api_client.get("/api/v1/tenant/").status_code for _ in range(4)] == [200, 200, 200, 429]


@pytest.mark.skipif(not settings.REDIS_URL, reason="counts round trips to Redis")
def test_an_api_request_makes_one_round_trip_to_redis(api_client: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key look-up and the rate counter share one pipeline."""
    import redis

    trips: list[str] = []
    command, execute = redis.Redis.execute_command, redis.client.Pipeline.execute

    def counted_command(self: Any, *args: Any, **options: Any) -> Any:
        trips.append(str(args[0]))
        return command(self, *args, **options)

    def counted_execute(self: Any, *args: Any, **options: Any) -> Any:
        trips.append("pipeline " + " ".join(str(c[0][0]) for c in self.command_stack))
        return execute(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counted_command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", counted_execute)
    assert api_client.get("/api/v1/jobs/").status_code == 200  # caches the key, records its first use
    trips.clear()
    assert api_client.get("/api/v1/jobs/").status_code == 200
    assert trips == ["pipeline MGET INCRBY EXPIRE TTL"]


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_throttling_without_redis_retries_after_the_rest_of_the_window(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch, settings: pytest.FixtureRequest
) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}  # type: ignore[attr-defined]
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    clock = FakeClock((time.time() // 60) * 60 + 20)  # 20 s into a one-minute window
    monkeypatch.setattr(throttling, "time", clock)
    assert [api_client.get("/api/v1/tenant/").status_code for _ in range(4)] == [200, 200, 200, 429]
    clock.now += 0.5
    assert api_client.get("/api/v1/tenant/")["Retry-After"] == "40"
    clock.now += 25
    assert api_client.get("/api/v1/tenant/")["Retry-After"] == "15"
    clock.now += 15
    assert api_client.get("/api/v1/tenant/").status_code == 200  # a new window


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis counter needs REDIS_URL")
def test_throttling_with_redis_counts_in_redis_with_its_ttl(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    assert [api_client.get("/api/v1/tenant/").status_code for _ in range(4)] == [200, 200, 200, 429]
    backend = caches["default"]
    key = backend.make_and_validate_key(f"throttle_api_key_key{api_client.api_key.prefix}")  # type: ignore[attr-defined]
    client = backend._cache.get_client(key)  # type: ignore[attr-defined]
    assert int(client.get(key)) == 4
    assert abs(int(api_client.get("/api/v1/tenant/")["Retry-After"]) - client.ttl(key)) <= 1


@pytest.mark.usefixtures("long_api_key_cache")
def test_a_first_page_that_is_not_full_needs_no_count_query(
    api_client: APIClient, tenant: Tenant, django_assert_num_queries: Any
) -> None:
    with tenant_context(tenant):
        Job.objects.bulk_create([Job(tenant=tenant, kind=f"k{i}") for i in range(3)])
    api_client.get("/api/v1/jobs/")  # warm-up: the key is cached
    with django_assert_num_queries(1):  # the page alone: it holds everything, so it is the count
        body = api_client.get("/api/v1/jobs/").json()
    assert (body["count"], body["next"], len(body["results"])) == (3, None, 3)
    with django_assert_num_queries(2):  # a full page: only COUNT tells whether more follow
        body = api_client.get("/api/v1/jobs/?page_size=2").json()
    assert body["count"] == 3 and body["next"].endswith("page=2&page_size=2")
    last = api_client.get("/api/v1/jobs/?page=2&page_size=2").json()
    assert (last["count"], len(last["results"]), last["next"]) == (3, 1, None)
    assert api_client.get("/api/v1/jobs/?page=3&page_size=2").status_code == 404


def test_body_over_the_limit_is_413(api_client: APIClient, settings: pytest.FixtureRequest) -> None:
    big = b"x" * (settings.REQUEST_MAX_BYTES + 1)  # type: ignore[attr-defined]
    response = api_client.post("/api/v1/jobs/audit-log-export/", data=big, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_pagination(api_client: APIClient, tenant: Tenant) -> None:
    from tenants.jobs import job_start
    from tenants.tasks import AUDIT_EXPORT

    with tenant_context(tenant):
        for _ in range(3):
            job_start(kind=AUDIT_EXPORT)
    page = api_client.get("/api/v1/jobs/", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


@pytest.mark.usefixtures("long_api_key_cache")
def test_list_query_count_is_constant(api_client: APIClient, tenant: Tenant, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    from tenants.jobs import job_start
    from tenants.tasks import AUDIT_EXPORT

    with tenant_context(tenant):
        for _ in range(10):
            job_start(kind=AUDIT_EXPORT)
    api_client.get("/api/v1/jobs/")  # warm: last_used_at write happens once a minute
    with django_assert_max_num_queries(8):
        assert len(api_client.get("/api/v1/jobs/").json()["results"]) == 10


def test_openapi_schema_and_docs(client: Client, db: None) -> None:
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    data = schema.json()
    assert "/api/v1/jobs/" in data["paths"]
    assert "ApiKey" in data["components"]["securitySchemes"]
    docs = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()


def test_tenant_changes_reach_requests_made_with_a_cached_key(
    api_client: APIClient, tenant: Tenant, owner: User
) -> None:
    assert api_client.get("/api/v1/tenant/").json()["name"] == tenant.name  # the key is cached now
    with tenant_context(tenant):
        tenant_update(tenant=tenant, actor=owner, name="Renamed Roasters", timezone_name="Europe/Paris", currency="EUR")
    body = api_client.get("/api/v1/tenant/").json()
    assert (body["name"], body["timezone"], body["currency"]) == ("Renamed Roasters", "Europe/Paris", "EUR")


def test_pages_show_times_in_the_tenants_time_zone(owner_client: Client, tenant: Tenant, owner: User) -> None:
    from datetime import UTC, datetime

    from tenants.models import Job

    with tenant_context(tenant):
        tenant_update(tenant=tenant, actor=owner, name=tenant.name, timezone_name="Asia/Tokyo", currency="JPY")
        job = Job.objects.create(kind="audit_log.export", created_by=owner)
        Job.objects.filter(pk=job.pk).update(created=datetime(2026, 1, 5, 10, 0, tzinfo=UTC))
    page = owner_client.get("/settings/jobs/").content.decode()
    assert "Jan 5, 19:00" in page  # 10:00 UTC is 19:00 in Tokyo


def test_job_serializer_writes_what_drf_would(tenant: Tenant, owner: User) -> None:
    """JobSerializer writes its fields out by hand; the output must stay DRF's generic one."""
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework import serializers

    from tenants.api.serializers import JobSerializer
    from tenants.models import JobStatus

    now = timezone.now()
    with tenant_context(tenant):
        Job.objects.create(
            kind="import", created_by=owner, params={"rows": [1, "é"]}, result={"ok": True}, started_at=now,
            finished_at=now + timedelta(seconds=3, microseconds=5), status=JobStatus.SUCCEEDED, progress=100,
        )  # fmt: skip
        Job.objects.create(kind="train", status=JobStatus.FAILED, error="boom", progress=40, attempts=2, message="m")
        jobs: list[Job] = list(Job.objects.select_related("created_by").order_by("pk"))
    jobs.append(Job(tenant=tenant, kind="export", status=JobStatus.RUNNING, created=now))  # unsaved, enum status
    jobs.append(Job(tenant=tenant, kind="naive", created=now.replace(tzinfo=None, microsecond=0)))  # made aware
    for zone in ("UTC", "Asia/Kolkata"):  # DRF writes times in the current (the tenant's) time zone
        with timezone.override(zone):
            for job in jobs:
                serializer = JobSerializer(job)
                assert serializer.data == serializers.Serializer.to_representation(serializer, job)
    assert JobSerializer(jobs[0]).data["created_by"] == owner.email

"""The PostgreSQL backend (tenants/db/postgresql): health checks at most once a second per connection,
and timestamps read with psycopg's own loader."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper
from django.utils import timezone

from tenants.context import tenant_context
from tenants.db.postgresql import base as backend
from tenants.models import Job, Tenant

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="our backend is PostgreSQL's")


def test_a_connection_found_healthy_is_checked_again_only_after_a_second(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.ensure_connection()
    connection.health_check_enabled = True
    checks: list[bool] = []
    django_check = DjangoWrapper.is_usable

    def counted(self: DjangoWrapper) -> bool:
        checks.append(django_check(self))
        return checks[-1]

    monkeypatch.setattr(DjangoWrapper, "is_usable", counted)
    now = [1000.0]
    monkeypatch.setattr(backend.time, "monotonic", lambda: now[0])

    def next_request() -> None:  # what Django does at the first query of a request
        connection.health_check_done = False
        connection.close_if_health_check_failed()

    connection.cx_healthy_at = -backend.HEALTH_CHECK_SECONDS  # as just after connecting
    next_request()
    assert checks == [True]
    now[0] += 0.9
    next_request()
    assert checks == [True]  # answered a moment ago: trusted
    now[0] += 0.2
    next_request()
    assert checks == [True, True]
    assert connection.connection is not None


def _read_timestamps(sql: str, name: str | None = None) -> list[datetime.datetime]:
    connection.ensure_connection()
    with connection.connection.transaction(), connection.create_cursor(name) as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


SQL = "SELECT TIMESTAMPTZ '2026-12-01 09:30:15.25+01' + make_interval(hours => g) FROM generate_series(0, 2) AS g"


@pytest.mark.parametrize("name", [None, "cx_named"], ids=["client cursor", "server-side cursor"])
def test_timestamps_are_read_as_django_reads_them_in_utc(db: None, name: str | None) -> None:
    values = _read_timestamps(SQL, name)
    assert connection.cx_native_timestamps
    expected = datetime.datetime(2026, 12, 1, 8, 30, 15, 250000, tzinfo=datetime.UTC)
    assert values == [expected + datetime.timedelta(hours=h) for h in range(3)]
    assert all(value.tzinfo is datetime.UTC for value in values)  # what Django's own loader gives


def test_a_model_round_trips_its_timestamps(tenant: Tenant) -> None:
    started = timezone.now().replace(microsecond=123456)
    with tenant_context(tenant):
        job = Job.objects.create(tenant=tenant, kind="test.timestamps", started_at=started)
        loaded = Job.objects.get(pk=job.pk)
        assert loaded.started_at == started and loaded.started_at.tzinfo is datetime.UTC
        chunks = Job.objects.filter(started_at__gte=started).iterator(chunk_size=10)  # a server-side cursor
        assert [j.started_at for j in chunks] == [started]

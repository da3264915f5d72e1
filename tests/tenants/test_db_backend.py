"""The PostgreSQL backend's health checks (tenants/db/postgresql): at most one a second per connection."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

from tenants.db.postgresql import base as backend

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

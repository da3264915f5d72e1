"""PostgreSQL backend that carries the current tenant into the connection, lazily.

Row-level security policies read the settings `cx.tenant_id` and `cx.all_tenants`. Writing them
on every scope change costs two round trips per request; instead the wrapper remembers what the
physical connection holds and writes the settings just before a cursor is created, only when
they differ from the current scope. Whatever is unknown (a new or pooled connection, a rolled
back transaction or savepoint, which undo `set_config`) is written again before the next query.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base

try:
    from psycopg import adapters as psycopg_adapters
    from psycopg.postgres import types as psycopg_types
    from psycopg.pq import Format

    TIMESTAMPTZ_OID: int | None = psycopg_types["timestamptz"].oid
except ImportError:  # psycopg2: Django's own adaptation
    TIMESTAMPTZ_OID = None

from tenants.context import connection_settings

# With CONN_HEALTH_CHECKS, a connection found healthy this recently is trusted without a new check.
HEALTH_CHECK_SECONDS = 1.0

SET_SCOPE = "SELECT set_config('cx.tenant_id', %s, false), set_config('cx.all_tenants', %s, false)"


class DatabaseWrapper(base.DatabaseWrapper):
    # The (tenant id, all tenants) pair the physical connection holds; None when unknown.
    cx_applied: tuple[str, str] | None = None

    # time.monotonic() of the last health check this connection passed.
    cx_healthy_at: float = -HEALTH_CHECK_SECONDS

    # Whether timestamps are read with psycopg's own loader (see `get_new_connection`).
    cx_native_timestamps = False

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        self.cx_applied = None  # new, or from the pool with whatever its last user left
        self.cx_healthy_at = -HEALTH_CHECK_SECONDS
        connection = super().get_new_connection(conn_params)
        if TIMESTAMPTZ_OID is not None and settings.USE_TZ and self.timezone is datetime.UTC:
            # Django reads timestamptz with a Python subclass of psycopg's Python loader that swaps in
            # its time zone: 3.7 us a value, against 0.2 us for psycopg's own (C) loader, which on a
            # connection in UTC (Django sets it) returns the same datetime, tzinfo timezone.utc.
            loader = psycopg_adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
            connection.adapters.register_loader(TIMESTAMPTZ_OID, loader)
            self.cx_native_timestamps = True
        return connection

    def close_if_health_check_failed(self) -> None:
        """Django checks a persistent connection (SELECT 1, a round trip) in every request that uses
        it; under load that is a query per request for connections that answered a moment ago.
        Here the check runs at most once a second per connection; a connection known to be broken
        is checked (and closed) at once."""
        if (
            self.connection is not None
            and self.health_check_enabled  # type: ignore[attr-defined]  # set by connect(); not in the stubs
            and not self.connection.broken
            and time.monotonic() - self.cx_healthy_at < HEALTH_CHECK_SECONDS
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def is_usable(self) -> bool:
        usable = bool(super().is_usable())
        if usable:
            self.cx_healthy_at = time.monotonic()
        return usable

    def cx_apply_scope(self) -> None:
        """Write the current scope into the connection if it holds another one."""
        wanted = connection_settings()
        if wanted != self.cx_applied:
            self.connection.execute(SET_SCOPE, wanted)
            self.cx_applied = wanted

    def create_cursor(self, name: str | None = None) -> Any:
        self.cx_apply_scope()
        if not self.cx_native_timestamps:
            return super().create_cursor(name)
        # Django's own, less its check of the time zone of its loader, which this connection lacks
        # (the connection is in UTC, as the loader's datetimes).
        if name is None:
            return self.connection.cursor()
        if self.settings_dict["OPTIONS"].get("server_side_binding") is not True:
            return base.ServerSideCursor(  # type: ignore[attr-defined]  # not in django-stubs
                self.connection, name=name, scrollable=False, withhold=self.connection.autocommit
            )
        return self.connection.cursor(name, scrollable=False, withhold=self.connection.autocommit)

    # After the rollback, not before: issuing it may itself write the scope, which it then undoes.
    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self.cx_applied = None

    def _savepoint_rollback(self, sid: str) -> None:
        try:
            super()._savepoint_rollback(sid)  # type: ignore[misc]
        finally:
            self.cx_applied = None

    def _close(self) -> None:
        self.cx_applied = None
        super()._close()  # type: ignore[misc]

"""Fast multi-row writes that bypass the ORM: upsert with RETURNING, and streamed COPY.

PostgreSQL: rows travel as one JSON parameter, serialized by orjson and expanded by the server
(`INSERT ... SELECT ... FROM jsonb_array_elements(...) ON CONFLICT ...`: one statement, one parameter,
no per-value adaptation in Python), and `COPY ... FROM STDIN`. SQLite: multi-row VALUES and executemany.
Callers run inside `tenant_context` and put tenant_id in every row (RLS checks it on PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from types import TracebackType
from typing import Any

import orjson
from django.db import connection, models

SQLITE_MAX_PARAMS = 30000


def _is_pg() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def pg_cursor() -> Iterator[Any]:
    """A psycopg cursor with server-side parameter binding on Django's connection (same transaction and
    tenant settings). Django's cursors quote parameters client-side, which is slow for large arrays."""
    import psycopg

    connection.ensure_connection()
    apply_scope = getattr(connection, "cx_apply_scope", None)
    if apply_scope is not None:  # the tenant backend writes the RLS settings before Django's own cursors
        apply_scope()
    cursor = psycopg.Cursor(connection.connection)
    try:
        yield cursor
    finally:
        cursor.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"Cannot write {type(value).__name__} as JSON")


def pg_json(values: Any) -> str:
    """`values` as a JSON text parameter (Decimals as strings, datetimes in ISO 8601 with offset)."""
    return orjson.dumps(values, default=_json_default).decode()


def pg_value_array(model: type[models.Model], column: str) -> str:
    """SQL for an array of `column` values given as one JSON array parameter (`pg_json(list_of_values)`),
    of the column's type, for `column = ANY(...)`: the planner then probes the index once per value."""
    return f"ARRAY(SELECT v::{_sql_type(model, column)} FROM jsonb_array_elements_text(%s::jsonb) v)"  # noqa: S608 - a type


def pg_rows(model: type[models.Model], columns: Sequence[str]) -> str:
    """SQL for a derived table `r(columns...)` of the rows passed as one JSON parameter, `pg_json(rows)`
    (each row a list of values in `columns` order). jsonb parses the text once and then indexes each row
    in constant time: cheaper for the server than json (reparsed per `->>`), json_to_recordset, or a COPY
    into a temporary table."""
    qn = connection.ops.quote_name
    values = []
    for i, name in enumerate(columns):
        if isinstance(_column(model, name), models.JSONField):
            values.append(f"NULLIF(e->{i}, 'null'::jsonb) AS {qn(name)}")
        else:
            values.append(f"(e->>{i})::{_sql_type(model, name)} AS {qn(name)}")
    return f"(SELECT {', '.join(values)} FROM jsonb_array_elements(%s::jsonb) e) AS r"  # noqa: S608 - names quoted


def pg_probe(model: type[models.Model], key: str, columns: Sequence[str]) -> str:
    """SQL for `CROSS JOIN LATERAL <this>` after a derived table `k` with a column `v`: the current tenant's
    row of `model` whose unique `key` is `k.v`, as `c` with `columns`; one %s parameter, the tenant id.

    One index probe per key whatever the statistics say. `key = ANY(array)` lets the planner choose, and on a
    tenant grown since the last ANALYZE (its row count estimated near zero) it scans the tenant's whole
    index range per statement instead; a LATERAL subquery with LIMIT 1 cannot be turned into that."""
    qn = connection.ops.quote_name
    cols = ", ".join(qn(c) for c in columns)
    return (
        f"(SELECT {cols} FROM {qn(model._meta.db_table)}"  # noqa: S608 - names quoted
        f" WHERE tenant_id = %s::bigint AND {qn(key)} = k.v LIMIT 1) AS c"
    )


def fetch_pairs(model: type[models.Model], key: str, value: str, keys: Iterable[str]) -> dict[Any, Any]:
    """{key: value} of the current tenant's rows whose `key` column is in `keys` (one query)."""
    from tenants.context import current_tenant_id

    keys = list(keys)
    if not keys:
        return {}
    if not _is_pg():
        return dict(model._default_manager.filter(**{f"{key}__in": keys}).values_list(key, value))
    with pg_cursor() as cursor:
        cursor.execute(
            f"SELECT k.v, c.{connection.ops.quote_name(value)}"  # noqa: S608 - names quoted
            f" FROM (SELECT DISTINCT v::{_sql_type(model, key)} AS v FROM jsonb_array_elements_text(%s::jsonb) v) k"
            f" CROSS JOIN LATERAL {pg_probe(model, key, [value])}",
            [pg_json(keys), current_tenant_id()],
            prepare=False,
        )
        return dict(cursor.fetchall())


def _column(model: type[models.Model], column: str) -> models.Field[Any, Any]:
    """The model field stored in database column `column` (e.g. "customer_id" -> the customer FK)."""
    for field in model._meta.concrete_fields:
        if field.column == column:
            return field
    raise LookupError(f"{model.__name__} has no column {column!r}")


def _sql_type(model: type[models.Model], column: str) -> str:
    db_type = _column(model, column).db_type(connection) or "text"
    return "bigint" if db_type.startswith("bigint") else db_type


def delete_in(model: type[models.Model], column: str, values: Sequence[Any]) -> int:
    """Delete the current tenant's rows whose `column` is in `values` (no signals, no cascades)."""
    from tenants.context import current_tenant_id

    if not values:
        return 0
    if not _is_pg():
        return int(model._default_manager.filter(**{f"{column}__in": values})._raw_delete(connection.alias))  # type: ignore[attr-defined]
    qn = connection.ops.quote_name
    with pg_cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {qn(model._meta.db_table)} WHERE tenant_id = %s::bigint"  # noqa: S608
            f" AND {qn(column)} = ANY({pg_value_array(model, column)})",
            [current_tenant_id(), pg_json(list(values))],
        )
        return int(cursor.rowcount)


def _sqlite_row(fields: Sequence[models.Field[Any, Any]], row: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for field, value in zip(fields, row, strict=True):
        if value is None:
            out.append(None)
        elif isinstance(field, models.JSONField):
            out.append(json.dumps(value))
        else:
            out.append(field.get_db_prep_value(value, connection, prepared=False))
    return out


def upsert(
    model: type[models.Model],
    *,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict: Sequence[str],
    update: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert `rows`; on a conflict on `conflict` update `update` columns (or do nothing when empty).
    Returns the `returning` columns of rows inserted or updated (not of rows skipped by DO NOTHING)."""
    if not rows:
        return []
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    cols = ", ".join(qn(c) for c in columns)
    action = ("DO UPDATE SET " + ", ".join(f"{qn(c)} = EXCLUDED.{qn(c)}" for c in update)) if update else "DO NOTHING"
    tail = f" ON CONFLICT ({', '.join(qn(c) for c in conflict)}) {action}"
    if returning:
        tail += " RETURNING " + ", ".join(qn(c) for c in returning)
    results: list[tuple[Any, ...]] = []
    if _is_pg():
        with pg_cursor() as pg:
            pg.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {pg_rows(model, columns)}{tail}",  # noqa: S608 - names quoted
                [pg_json(rows)],
            )
            if returning:
                results = pg.fetchall()
        return results
    with connection.cursor() as cursor:
        fields = [_column(model, c) for c in columns]
        per = max(1, SQLITE_MAX_PARAMS // len(columns))
        row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            params = [v for row in chunk for v in _sqlite_row(fields, row)]
            cursor.execute(
                f"INSERT INTO {table} ({cols}) VALUES {', '.join([row_sql] * len(chunk))}{tail}",  # noqa: S608
                params,
            )
            if returning:
                results.extend(cursor.fetchall())
    return results


def insert(model: type[models.Model], *, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Insert `rows` (no conflict handling); returns how many. One statement on PostgreSQL."""
    if not rows:
        return 0
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    cols = ", ".join(qn(c) for c in columns)
    if _is_pg():
        with pg_cursor() as pg:
            pg.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {pg_rows(model, columns)}", [pg_json(rows)])  # noqa: S608
        return len(rows)
    fields = [_column(model, c) for c in columns]
    with connection.cursor() as cursor:
        sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608
        cursor.executemany(sql, [_sqlite_row(fields, row) for row in rows])
    return len(rows)


class TableLoader:
    """Load rows block by block (e.g. all rows of a few thousand customers at a time), moving them into the
    table at the end: on PostgreSQL each block is COPYed into a temporary table, then one INSERT ... SELECT
    (COPY cannot target a table with row-level security). Elsewhere, executemany per block."""

    def __init__(self, model: type[models.Model], columns: Sequence[str]) -> None:
        self.model, self.columns = model, list(columns)
        qn = connection.ops.quote_name
        self._table = qn(model._meta.db_table)
        self._cols = ", ".join(qn(c) for c in self.columns)
        self._temp = f"_cx_load_{model._meta.db_table}"
        self._json = [i for i, c in enumerate(self.columns) if isinstance(_column(model, c), models.JSONField)]
        self.count = 0

    def __enter__(self) -> TableLoader:
        if _is_pg():
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self._temp}")
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {self._temp} AS SELECT {self._cols} FROM {self._table} WITH NO DATA"  # noqa: S608
                )
        return self

    def load(self, rows: list[list[Any]] | list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        self.count += len(rows)
        with connection.cursor() as cursor:
            if _is_pg():
                json_cols = self._json
                with cursor.copy(f"COPY {self._temp} ({self._cols}) FROM STDIN") as copy:
                    for row in rows:
                        if json_cols:
                            row = list(row)
                            for i in json_cols:
                                row[i] = json.dumps(row[i])
                        copy.write_row(row)
            else:
                fields = [_column(self.model, c) for c in self.columns]
                sql = f"INSERT INTO {self._table} ({self._cols}) VALUES ({', '.join(['%s'] * len(self.columns))})"  # noqa: S608
                cursor.executemany(sql, [_sqlite_row(fields, row) for row in rows])

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not _is_pg():
            return
        with connection.cursor() as cursor:
            if exc_type is None:
                cursor.execute(f"INSERT INTO {self._table} ({self._cols}) SELECT {self._cols} FROM {self._temp}")  # noqa: S608
            cursor.execute(f"DROP TABLE IF EXISTS {self._temp}")


class Growth:
    """Counts the rows a writer adds to a table; `add` says when they have grown 4-fold since it last said
    so (first at `first` rows), the moment to refresh the planner's statistics (see `analyze`)."""

    def __init__(self, first: int = 5000) -> None:
        self.count, self.next = 0, first

    def add(self, rows: int) -> bool:
        self.count += rows
        if self.count < self.next:
            return False
        while self.next <= self.count:
            self.next *= 4
        return True


def analyze(*tables: str) -> None:
    """Refresh the planner's statistics of `tables`. Statistics that say a tenant has none of these rows
    make the planner scan all of the tenant's rows for look-ups meant to probe a unique index (and with
    autovacuum off, or not run yet, nothing else refreshes them). PostgreSQL only; a role that may not
    analyze a table gets a warning, not an error."""
    if not _is_pg() or not tables:
        return
    with pg_cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(connection.ops.quote_name(t) for t in tables)}")


def reserve_ids(model: type[models.Model], count: int) -> range:
    """Reserve `count` consecutive primary keys, for rows written with explicit ids (COPY).
    On PostgreSQL the identity sequence is advanced under a table lock; call inside a transaction."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if _is_pg():
            cursor.execute(f"LOCK TABLE {connection.ops.quote_name(table)} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (sequence,) = cursor.fetchone()
            cursor.execute(
                "SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM " + connection.ops.quote_name(table) + "),"  # noqa: S608
                " (SELECT last_value FROM " + sequence + " WHERE is_called))"
            )
            start = int(cursor.fetchone()[0] or 0) + 1
            cursor.execute("SELECT setval(%s, %s, true)", [sequence, start + count - 1 if count else start])
        else:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            start = int(cursor.fetchone()[0]) + 1
    return range(start, start + count)

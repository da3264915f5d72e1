"""CSV import of customers, products and orders (one row per order line), streamed in chunks.

The rule: every valid row is stored and every bad row is reported (line, column, reason). The unit
for orders is the order: if any line of an order is bad, none of that order's lines is stored, and
each of its rows is reported. This holds wherever the lines of an order are in the file: lines of an
order met again after other orders' lines are added to it, and a bad line met later takes back the
lines already stored from earlier in the file (an order that existed before the import gets its
previous version back; one created by the import is deleted), reported on the line where the order
first appeared. File-level problems (not UTF-8, missing columns, no header) fail the job and store
nothing. Re-importing a file updates what it imported before: customers by external_id, products by
sku, orders by order_id with their lines replaced; nothing is duplicated.

Memory stays flat whatever the file's size: rows are read and written a chunk at a time (about 1% of
the file, at most CHUNK_ROWS rows), and the orders an import has touched are remembered in a temporary
table of the database (_OrderLedger), not in the worker. Progress is the share of the file's bytes
processed, reported after each chunk. As an import grows a table 4-fold, it refreshes the planner's
statistics (see _Importer.grown).

Accepted: UTF-8 with or without BOM, comma/semicolon/tab delimiters, ISO 8601 dates with or without an
offset (without one, the business's time zone), decimal commas ("12,50"), yes/no/true/false/1/0.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import tempfile
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import IO, Any, TypeVar

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from journeys import bulk
from journeys.engine.parsing import ParseError, is_email, parse_bool, parse_datetime, parse_int, parse_money
from journeys.models import ConsentSource, Customer, Order, OrderLine, OrderStatus, Product
from journeys.services import customers_touch, widen_span
from tenants.context import current_tenant
from tenants.jobs import job_start
from tenants.models import Job, User

IMPORT_KIND = "journeys.import"
KINDS = ("customers", "products", "orders")
CHUNK_ROWS = 20000
CHUNK_MIN_BYTES = 256 * 1024  # and about 1% of the file: the granularity of progress
MAX_ERRORS_KEPT = 1000  # in the job result; the downloadable report has all of them
MAX_CELL = 10000
ANALYZE_FIRST = 5000  # rows stored before an import first refreshes the planner's statistics
MAX_PENDING_TOUCHES = 100_000  # customers whose last-seen update waits for the end of the import

REQUIRED = {
    "customers": ("external_id",),
    "products": ("sku", "name", "price"),
    "orders": ("order_id", "customer_id", "placed_at", "sku", "quantity"),
}
OPTIONAL = {
    "customers": ("email", "name", "phone", "consent_marketing", "consent_personalization", "first_seen"),
    "products": ("description", "category", "currency", "image_url", "active", "in_stock"),
    "orders": ("status", "currency", "unit_price", "total", "channel"),
}
ALIASES = {"customer_external_id": "customer_id", "order_external_id": "order_id", "id": "external_id",
           "order": "order_id", "customer": "customer_id", "date": "placed_at", "qty": "quantity"}  # fmt: skip


class ImportFileError(Exception):
    """The file as a whole cannot be imported; nothing was stored."""


@dataclass
class RowError:
    line: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    stored: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    _sink: Any = None

    def error(self, line: int, column: str, reason: str) -> None:
        self.error_count += 1
        err = RowError(line, column, reason)
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(err)
        if self._sink is not None:
            self._sink.writerow([line, column, reason])

    def as_result(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rows": self.rows, "stored": self.stored, "created": self.created,
            "updated": self.updated, "failed": self.failed, "error_count": self.error_count,
            "errors": [e.as_dict() for e in self.errors], "errors_truncated": self.error_count > len(self.errors),
            "ignored_columns": self.ignored_columns,
        }  # fmt: skip


# --- reading -------------------------------------------------------------------------------------


def check_utf8(fh: IO[bytes]) -> None:
    """Raise ImportFileError naming the first line that is not valid UTF-8; rewinds the file."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    while True:
        chunk = fh.read(1 << 20)
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            line += chunk[: exc.start].count(b"\n")
            fh.seek(0)
            raise ImportFileError(
                f"The file is not UTF-8 encoded (first invalid byte on line {line}). "
                "Save it as “CSV UTF-8” and import it again."
            ) from None
        if not chunk:
            break
        line += chunk.count(b"\n")
    fh.seek(0)


def _normalize_header(name: str) -> str:
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(key, key)


@dataclass
class Row:
    line: int
    values: dict[str, str]


def read_rows(fh: IO[bytes], kind: str, report: ImportReport) -> Iterator[Row]:
    """Yield rows as column -> stripped text, with the file line where each begins. Raises ImportFileError
    for a missing header or missing required columns."""
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    try:
        yield from _read_text_rows(text, kind, report)
    finally:
        text.detach()  # the caller owns (and closes) the binary file


def _read_text_rows(text: io.TextIOWrapper, kind: str, report: ImportReport) -> Iterator[Row]:
    first = text.readline()
    if not first.strip():
        raise ImportFileError("The file is empty: the first line must name the columns.")
    delimiter = max((",", ";", "\t"), key=first.count)
    header = [_normalize_header(h) for h in next(csv.reader([first], delimiter=delimiter))]
    missing = [c for c in REQUIRED[kind] if c not in header]
    if missing:
        raise ImportFileError(
            f"Missing required column(s): {', '.join(missing)}. The first line must name the columns; "
            f"required for {kind}: {', '.join(REQUIRED[kind])}."
        )
    known = set(REQUIRED[kind]) | set(OPTIONAL[kind])
    report.ignored_columns = [h for h in header if h and h not in known and kind != "customers"]
    reader = csv.reader(text, delimiter=delimiter)
    width = len(header)
    start = 2
    for record in reader:
        line, start = start, reader.line_num + 2  # the header line was read before the reader
        if not "".join(record).strip():  # a blank line, or only separators and spaces
            continue
        report.rows += 1
        if len(record) > width and any(v.strip() for v in record[width:]):
            report.error(line, "", f"The row has {len(record)} values but the header names {width} columns.")
            report.failed += 1
            continue
        if len(record) < width:
            record += [""] * (width - len(record))
        yield Row(line, dict(zip(header, map(str.strip, record), strict=False)))


def _chunks(
    rows: Iterator[Row],
    size: int,
    key: Callable[[Row], str] | None = None,
    *,
    position: Callable[[], int] | None = None,
    max_bytes: int = 0,
) -> Iterator[list[Row]]:
    """Lists of at most about `size` rows or `max_bytes` bytes of the file (read through `position`);
    with `key`, a chunk never splits consecutive rows with the same key."""
    chunk: list[Row] = []
    start = position() if position is not None else 0
    for row in rows:
        full = len(chunk) >= size or (position is not None and max_bytes and position() - start >= max_bytes)
        if chunk and full and (key is None or key(row) != key(chunk[-1])):
            yield chunk
            chunk = []
            start = position() if position is not None else 0
        chunk.append(row)
    if chunk:
        yield chunk


# --- customers -----------------------------------------------------------------------------------


class _Importer:
    kind: str

    def __init__(self, report: ImportReport, tz: tzinfo) -> None:
        self.report, self.tz = report, tz
        self.tenant_id = current_tenant().pk
        self.currency = current_tenant().currency
        self.growth = bulk.Growth(ANALYZE_FIRST)

    def chunk(self, rows: list[Row]) -> None:
        raise NotImplementedError

    def grown(self, stored: int, *tables: str) -> None:
        """Count rows stored; each time they grow 4-fold (from ANALYZE_FIRST), refresh the planner's statistics
        of `tables`. A tenant's first big import otherwise runs on statistics that say it has none of these
        rows, and the planner scans all of them for every chunk's look-ups: quadratic time, here and in the
        import that follows (orders look up the customers imported just before). See bulk.analyze."""
        if self.growth.add(stored):
            bulk.analyze(*tables)

    def finish(self) -> None:
        """Called after the last chunk."""

    def close(self) -> None:
        """Called at the end, whatever happened: release what the importer holds."""


class CustomerImporter(_Importer):
    kind = "customers"

    def chunk(self, rows: list[Row]) -> None:
        report, now = self.report, timezone.now()
        parsed: dict[str, tuple[Row, dict[str, Any]]] = {}
        columns = set(rows[0].values)
        for row in rows:
            v, bad = row.values, False
            out: dict[str, Any] = {}
            ext = v["external_id"]
            if not ext:
                report.error(row.line, "external_id", "Required.")
                bad = True
            elif len(ext) > 128:
                report.error(row.line, "external_id", "At most 128 characters.")
                bad = True
            if "email" in v:
                email = v["email"].lower()
                if email and not is_email(email):
                    report.error(row.line, "email", f"Not an email address: {v['email']!r}.")
                    bad = True
                out["email"] = email
            for name, limit in (("name", 200), ("phone", 40)):
                if name in v:
                    if len(v[name]) > limit:
                        report.error(row.line, name, f"At most {limit} characters.")
                        bad = True
                    out[name] = v[name]
            for name in ("consent_marketing", "consent_personalization"):
                if name in v and v[name] != "":
                    try:
                        out[name] = parse_bool(v[name], field=name)
                    except ParseError as exc:
                        report.error(row.line, name, str(exc))
                        bad = True
            if v.get("first_seen"):
                try:
                    out["first_seen"] = parse_datetime(v["first_seen"], default_tz=self.tz, field="first_seen")
                except ParseError as exc:
                    report.error(row.line, "first_seen", str(exc))
                    bad = True
            extra = {k: val[:MAX_CELL] for k, val in v.items() if k and k not in REQUIRED["customers"]
                     and k not in OPTIONAL["customers"] and val != ""}  # fmt: skip
            if extra:
                out["attributes"] = extra
            if bad:
                report.failed += 1
                continue
            parsed[ext] = (row, out)  # a later row for the same customer wins
        if not parsed:
            return
        existing = {
            c.external_id: c
            for c in Customer.objects.filter(external_id__in=parsed).only(
                "id",
                "external_id",
                "email",
                "attributes",
                "consent_marketing",
                "consent_marketing_at",
                "consent_marketing_source",
                "consent_personalization",
                "consent_personalization_at",
                "consent_personalization_source",
                "first_seen",
            )
        }
        emails = {out["email"]: ext for ext, (_, out) in parsed.items() if out.get("email")}
        taken = dict(Customer.objects.filter(email__in=emails).values_list("email", "external_id")) if emails else {}
        claimed: dict[str, str] = {}
        rows_out = []
        for ext, (row, out) in parsed.items():
            email = out.get("email", existing[ext].email if ext in existing else "")
            owner = taken.get(email) or claimed.get(email)
            if email and owner and owner != ext:
                report.error(row.line, "email", f"Another customer (external id {owner}) has this email.")
                report.failed += 1
                continue
            if email:
                claimed[email] = ext
            old = existing.get(ext)
            record: dict[str, Any] = {
                "email": email,
                "name": out.get("name", ""),
                "phone": out.get("phone", ""),
                "attributes": {**(old.attributes if old else {}), **out.get("attributes", {})},
                "first_seen": out.get("first_seen") or (old.first_seen if old else None) or now,
            }
            for kind in ("marketing", "personalization"):
                current = getattr(old, f"consent_{kind}") if old else False
                given = out.get(f"consent_{kind}")
                changed = given is not None and (old is None or given != current)
                record[f"consent_{kind}"] = given if given is not None else current
                record[f"consent_{kind}_at"] = now if changed else (getattr(old, f"consent_{kind}_at") if old else None)
                record[f"consent_{kind}_source"] = (
                    ConsentSource.IMPORT if changed else (getattr(old, f"consent_{kind}_source") if old else "")
                )
            rows_out.append((ext, record))
            report.created += old is None
            report.updated += old is not None
        names = ["email", "name", "phone", "attributes", "first_seen", "consent_marketing", "consent_marketing_at",
                 "consent_marketing_source", "consent_personalization", "consent_personalization_at",
                 "consent_personalization_source"]  # fmt: skip
        update = [n for n in names if n in columns or n.startswith(("consent_", "attributes", "first_seen"))]
        update.append("updated")
        bulk.upsert(
            Customer,
            columns=["tenant_id", "external_id", *names, "last_seen", "created", "updated"],
            rows=[(self.tenant_id, ext, *(r[n] for n in names), None, now, now) for ext, r in rows_out],
            conflict=["tenant_id", "external_id"],
            update=update,
        )
        report.stored += len(rows_out)
        self.grown(len(rows_out), Customer._meta.db_table)


class ProductImporter(_Importer):
    kind = "products"

    def chunk(self, rows: list[Row]) -> None:
        report, now = self.report, timezone.now()
        columns = set(rows[0].values)
        parsed: dict[str, dict[str, Any]] = {}
        for row in rows:
            v, bad = row.values, False
            out: dict[str, Any] = {}
            for name, limit in (("sku", 64), ("name", 200), ("category", 100), ("image_url", 500)):
                value = v.get(name, "")
                if name in ("sku", "name") and not value:
                    report.error(row.line, name, "Required.")
                    bad = True
                elif len(value) > limit:
                    report.error(row.line, name, f"At most {limit} characters.")
                    bad = True
                out[name] = value
            if out["image_url"] and not out["image_url"].startswith(("http://", "https://")):
                report.error(row.line, "image_url", "Must start with http:// or https://.")
                bad = True
            out["description"] = v.get("description", "")[:MAX_CELL]
            try:
                out["price"] = parse_money(v["price"], field="price")
            except ParseError as exc:
                report.error(row.line, "price", str(exc))
                bad = True
            currency = (v.get("currency") or self.currency).upper()
            if len(currency) != 3 or not currency.isalpha():
                report.error(row.line, "currency", f"Use a 3-letter ISO code, not {currency!r}.")
                bad = True
            out["currency"] = currency
            for name in ("active", "in_stock"):
                try:
                    out[name] = parse_bool(v[name], field=name) if v.get(name, "") != "" else True
                except ParseError as exc:
                    report.error(row.line, name, str(exc))
                    bad = True
            if bad:
                report.failed += 1
                continue
            parsed[out["sku"]] = out
        if not parsed:
            return
        existing = set(Product.objects.filter(sku__in=parsed).values_list("sku", flat=True))
        names = ["name", "description", "category", "price", "currency", "image_url", "active", "in_stock"]
        update = [n for n in names if n in columns or n == "currency"] + ["updated"]
        bulk.upsert(
            Product,
            columns=["tenant_id", "sku", *names, "created", "updated"],
            rows=[(self.tenant_id, sku, *(p[n] for n in names), now, now) for sku, p in parsed.items()],
            conflict=["tenant_id", "sku"],
            update=update,
        )
        report.stored += len(parsed)
        report.created += len(parsed.keys() - existing)
        report.updated += len(parsed.keys() & existing)


@dataclass
class _OrderIn:
    rows: list[Row]
    customer: str = ""
    placed_at: datetime | None = None
    status: str = OrderStatus.PLACED
    currency: str = ""
    channel: str = ""
    total: Decimal | None = None
    lines: list[tuple[str, int, Decimal | None]] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)


_T = TypeVar("_T")
MAX_CACHED = 10000


def _cached(cache: dict[str, _T | ParseError], raw: str, parse: Callable[[str], _T]) -> _T | ParseError:
    """parse(raw), or the ParseError it raised, remembered for the next identical text."""
    value = cache.get(raw)
    if value is None:
        try:
            value = parse(raw)
        except ParseError as exc:
            value = exc
        if len(cache) < MAX_CACHED:
            cache[raw] = value
    return value


def _parse_quantity(raw: str) -> int:
    quantity = parse_int(raw, field="quantity")
    if quantity <= 0:
        raise ParseError(f"Must be at least 1, not {quantity}.")
    return quantity


def _parse_unit_price(raw: str) -> Decimal:
    return parse_money(raw, field="unit_price")


@dataclass(frozen=True)
class _Touched:
    """An order this import has met: stored (order_id, the lines stored) or rejected (rejected_line)."""

    order_id: int | None
    first_line: int
    lines: int
    prior: bool  # it existed before the import (its previous version is kept in the ledger)
    rejected_line: int | None


class _OrderLedger:
    """The orders an import has touched, in temporary tables of the database connection (so the worker's
    memory does not grow with the file), with the previous version of the orders it replaced, to put them
    back when a later line of the same order turns out bad. Per connection; dropped by close()."""

    ORDERS = "_cx_import_orders"
    PRIOR_ORDERS = "_cx_import_prior_orders"
    PRIOR_LINES = "_cx_import_prior_lines"
    ORDER_FIELDS = "customer_id, placed_at, status, total, currency, channel, updated"
    LINE_FIELDS = "order_id, product_id, quantity, unit_price"

    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.pg = connection.vendor == "postgresql"
        self.close()
        with self._cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.ORDERS} (external_id varchar(128) PRIMARY KEY, order_id bigint,"
                " first_line integer NOT NULL, lines integer NOT NULL, prior boolean NOT NULL, rejected_line integer)"
            )
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.PRIOR_ORDERS} AS SELECT id, {self.ORDER_FIELDS}"  # noqa: S608 - names
                f" FROM {Order._meta.db_table} WHERE 1 = 0"
            )
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.PRIOR_LINES} AS SELECT {self.LINE_FIELDS}"  # noqa: S608 - names
                f" FROM {OrderLine._meta.db_table} WHERE 1 = 0"
            )

    def _cursor(self) -> Any:
        return bulk.pg_cursor() if self.pg else connection.cursor()

    def _values(self, cast: str = "") -> str:
        """SQL for the set of values of one JSON array parameter."""
        if self.pg:
            return f"(SELECT v{cast} FROM jsonb_array_elements_text(%s::jsonb) v)"  # noqa: S608 - a type
        return "(SELECT value FROM json_each(%s))"

    def close(self) -> None:
        with self._cursor() as cursor:
            for table in (self.ORDERS, self.PRIOR_ORDERS, self.PRIOR_LINES):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def lookup(self, external_ids: list[str]) -> dict[str, _Touched]:
        if not external_ids:
            return {}
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT external_id, order_id, first_line, lines, prior, rejected_line FROM {self.ORDERS}"  # noqa: S608
                f" WHERE external_id IN {self._values()}",
                [bulk.pg_json(external_ids)],
            )
            return {ext: _Touched(oid, first, n, bool(prior), bad) for ext, oid, first, n, prior, bad in cursor}

    def record(self, touched: dict[str, _Touched]) -> None:
        if not touched:
            return
        rows = [(ext, t.order_id, t.first_line, t.lines, t.prior, t.rejected_line) for ext, t in touched.items()]
        if self.pg:
            select = ("SELECT e->>0, (e->>1)::bigint, (e->>2)::integer, (e->>3)::integer, (e->>4)::boolean,"
                      " (e->>5)::integer FROM jsonb_array_elements(%s::jsonb) e")  # fmt: skip
        else:
            select = ("SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),"
                      " json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]')"
                      " FROM json_each(%s) WHERE true")  # fmt: skip
        with self._cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.ORDERS} (external_id, order_id, first_line, lines, prior, rejected_line) {select}"
                " ON CONFLICT (external_id) DO UPDATE SET order_id = excluded.order_id, lines = excluded.lines,"
                " rejected_line = excluded.rejected_line",
                [bulk.pg_json(rows)],
            )

    def keep_prior(self, order_ids: list[int]) -> None:
        """Remember the current version of these orders and their lines (before the import replaces them)."""
        if not order_ids:
            return
        ids, param = self._values("::bigint"), bulk.pg_json(order_ids)
        with self._cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.PRIOR_ORDERS} SELECT id, {self.ORDER_FIELDS} FROM {Order._meta.db_table}"  # noqa: S608
                f" WHERE tenant_id = %s AND id IN {ids}",
                [self.tenant_id, param],
            )
            cursor.execute(
                f"INSERT INTO {self.PRIOR_LINES} SELECT {self.LINE_FIELDS} FROM {OrderLine._meta.db_table}"  # noqa: S608
                f" WHERE tenant_id = %s AND order_id IN {ids}",
                [self.tenant_id, param],
            )

    def take_back(self, touched: list[_Touched]) -> None:
        """Undo what the import stored of these orders: restore the prior ones, delete those it created."""
        prior = [t.order_id for t in touched if t.prior and t.order_id is not None]
        created = [t.order_id for t in touched if not t.prior and t.order_id is not None]
        if created:  # rare: the ORM's delete also unlinks any feedback given meanwhile
            Order.objects.filter(pk__in=created).delete()
        if not prior:
            return
        ids, param = self._values("::bigint"), bulk.pg_json(prior)
        bulk.delete_in(OrderLine, "order_id", prior)
        table = Order._meta.db_table
        assignments = ", ".join(f"{name} = b.{name}" for name in self.ORDER_FIELDS.split(", "))
        with self._cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {OrderLine._meta.db_table} (tenant_id, {self.LINE_FIELDS})"  # noqa: S608
                f" SELECT %s, {self.LINE_FIELDS} FROM {self.PRIOR_LINES} WHERE order_id IN {ids}",
                [self.tenant_id, param],
            )
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {self.PRIOR_ORDERS} AS b"  # noqa: S608
                f" WHERE {table}.id = b.id AND {table}.tenant_id = %s AND b.id IN {ids}",
                [self.tenant_id, param],
            )


class OrderImporter(_Importer):
    kind = "orders"

    def __init__(self, report: ImportReport, tz: tzinfo) -> None:
        super().__init__(report, tz)
        self.ledger = _OrderLedger(self.tenant_id)
        self.products: dict[str, tuple[int, Decimal]] = {}
        self.statuses = set(OrderStatus.values)
        # Files repeat the same few quantities and prices: each distinct text is parsed once.
        self.quantities: dict[str, int | ParseError] = {}
        self.spans: dict[int, tuple[datetime, datetime]] = {}  # customer -> activity, written by finish()
        self.prices: dict[str, Decimal | ParseError] = {}

    def _parse(self, rows: list[Row]) -> dict[str, _OrderIn]:
        orders: dict[str, _OrderIn] = {}
        placed_cache: dict[str, datetime | ParseError] = {}
        for row in rows:
            v = row.values
            ext = v["order_id"]
            if not ext:
                self.report.error(row.line, "order_id", "Required.")
                self.report.failed += 1
                continue
            order = orders.get(ext)
            if order is None:
                order = orders[ext] = _OrderIn(rows=[])
                order.customer = v["customer_id"]
                if not order.customer:
                    order.errors.append((row.line, "customer_id", "Required."))
                raw = v["placed_at"]
                placed = placed_cache.get(raw)
                if placed is None:
                    try:
                        placed = parse_datetime(raw, default_tz=self.tz, field="placed_at")
                    except ParseError as exc:
                        placed = exc
                    placed_cache[raw] = placed
                if isinstance(placed, ParseError):
                    order.errors.append((row.line, "placed_at", str(placed)))
                else:
                    order.placed_at = placed
                status = (v.get("status") or OrderStatus.PLACED).lower()
                if status not in self.statuses:
                    order.errors.append(
                        (row.line, "status", f"Unknown status {status!r}; use one of {', '.join(OrderStatus.values)}.")
                    )
                order.status = status
                order.currency = (v.get("currency") or self.currency).upper()
                if len(order.currency) != 3 or not order.currency.isalpha():
                    order.errors.append((row.line, "currency", f"Use a 3-letter ISO code, not {order.currency!r}."))
                order.channel = v.get("channel", "")[:32]
                if v.get("total"):
                    try:
                        order.total = parse_money(v["total"], field="total")
                    except ParseError as exc:
                        order.errors.append((row.line, "total", str(exc)))
            order.rows.append(row)
            sku = v["sku"]
            if not sku:
                order.errors.append((row.line, "sku", "Required."))
            quantity = _cached(self.quantities, v["quantity"], _parse_quantity)
            if isinstance(quantity, ParseError):
                order.errors.append((row.line, "quantity", str(quantity)))
                quantity = 0
            price: Decimal | None = None
            if v.get("unit_price"):
                parsed = _cached(self.prices, v["unit_price"], _parse_unit_price)
                if isinstance(parsed, ParseError):
                    order.errors.append((row.line, "unit_price", str(parsed)))
                else:
                    price = parsed
            order.lines.append((sku, quantity, price))
        return orders

    def chunk(self, rows: list[Row]) -> None:
        report, now = self.report, timezone.now()
        orders = self._parse(rows)
        skus = {sku for o in orders.values() for sku, _, _ in o.lines if sku}
        unknown = skus - self.products.keys()
        if unknown:  # catalogues are small: each sku is looked up once per import
            found = Product.objects.filter(sku__in=unknown).values_list("sku", "id", "price")
            self.products.update({sku: (pid, price) for sku, pid, price in found})
        products = self.products
        customers = bulk.fetch_pairs(Customer, "external_id", "id", {o.customer for o in orders.values() if o.customer})
        # Orders met in earlier chunks: their lines were not next to these (a chunk never splits an order's
        # consecutive lines), and these lines are added to them, or reject them whole.
        touched = self.ledger.lookup(list(orders))
        good: list[tuple[str, _OrderIn]] = []
        marks: dict[str, _Touched] = {}  # what the ledger learns from this chunk
        take_back: list[_Touched] = []
        for ext, order in orders.items():
            if order.customer and order.customer not in customers:
                order.errors.append(
                    (order.rows[0].line, "customer_id", f"Unknown customer {order.customer!r}; import customers first.")
                )
            for row, (sku, _, _) in zip(order.rows, order.lines, strict=True):
                if sku and sku not in products:
                    order.errors.append((row.line, "sku", f"Unknown product sku {sku!r}; import products first."))
            before = touched.get(ext)
            if not order.errors and (before is None or before.rejected_line is None):
                good.append((ext, order))
                continue
            bad_lines = {line for line, _, _ in order.errors}
            rejected_line = min(bad_lines) if bad_lines else None
            if before is not None and before.rejected_line is not None:
                rejected_line = before.rejected_line
            for line, column, reason in sorted(order.errors):
                report.error(line, column, reason)
            for row in order.rows:
                if row.line not in bad_lines:
                    where = f" (line {rejected_line})" if rejected_line not in (None, row.line) else ""
                    report.error(row.line, "", f"Not imported: order {ext} has an invalid line{where}.")
            report.failed += len(order.rows)
            if before is not None and before.rejected_line is None:  # its earlier lines were stored: undo them
                take_back.append(before)
                restored = "the order is back as it was before the import" if before.prior else "the order was removed"
                report.error(
                    before.first_line, "", f"Not imported: order {ext} has an invalid line (line {rejected_line}); "
                    f"the {before.lines} line(s) stored from line {before.first_line} on were taken back, {restored}.",
                )  # fmt: skip
                report.stored -= before.lines
                report.failed += before.lines
            first = before.first_line if before is not None else order.rows[0].line
            stored = before.lines if before is not None else 0
            marks[ext] = _Touched(None, first, stored, before.prior if before else False, rejected_line)
        continued = {ext: touched[ext] for ext, _ in good if ext in touched}
        so_far = bulk.fetch_pairs(Order, "external_id", "total", list(continued)) if continued else {}
        order_rows: list[tuple[Any, ...]] = []
        for ext, order in good:
            computed = sum((q * (p if p is not None else products[sku][1]) for sku, q, p in order.lines), Decimal("0"))
            total = order.total if order.total is not None else computed + so_far.get(ext, Decimal("0"))
            order_rows.append((self.tenant_id, ext, customers[order.customer], order.placed_at, order.status, total,
                               order.currency, order.channel, now, now))  # fmt: skip
        # Orders stored before this import get their lines replaced (their previous version kept in the ledger);
        # an order continued from an earlier chunk keeps the lines written there.
        earlier = bulk.fetch_pairs(Order, "external_id", "id", [ext for ext, _ in good if ext not in continued])
        with transaction.atomic():
            self.ledger.take_back(take_back)
            self.ledger.keep_prior(list(earlier.values()))
            returned = bulk.upsert(
                Order,
                columns=ORDER_COLUMNS,
                rows=order_rows,
                conflict=["tenant_id", "external_id"],
                update=["customer_id", "placed_at", "status", "total", "currency", "channel", "updated"],
                returning=["external_id", "id"],
            )
            ids: dict[str, int] = dict(returned)
            bulk.delete_in(OrderLine, "order_id", list(earlier.values()))
            lines: list[tuple[Any, ...]] = []
            for ext, order in good:
                oid = ids[ext]
                for sku, q, p in order.lines:
                    pid, list_price = products[sku]
                    lines.append((self.tenant_id, oid, pid, q, str(p if p is not None else list_price)))
                assert order.placed_at is not None
                widen_span(self.spans, customers[order.customer], order.placed_at)
                before = continued.get(ext)
                marks[ext] = _Touched(
                    oid,
                    before.first_line if before else order.rows[0].line,
                    (before.lines if before else 0) + len(order.rows),
                    before.prior if before else ext in earlier,
                    None,
                )
                report.stored += len(order.rows)
            bulk.insert(OrderLine, columns=LINE_COLUMNS, rows=lines)
            self.ledger.record(marks)
        self.grown(len(good), Order._meta.db_table, OrderLine._meta.db_table, self.ledger.ORDERS)
        if len(self.spans) >= MAX_PENDING_TOUCHES:
            self.finish()

    def finish(self) -> None:
        """Move the first/last-seen times of the customers whose orders were stored (once per customer
        for the whole file, rather than once per chunk)."""
        customers_touch(self.spans)
        self.spans = {}

    def close(self) -> None:
        self.ledger.close()


ORDER_COLUMNS = ["tenant_id", "external_id", "customer_id", "placed_at", "status", "total", "currency", "channel",
                 "created", "updated"]  # fmt: skip
LINE_COLUMNS = ["tenant_id", "order_id", "product_id", "quantity", "unit_price"]


IMPORTERS: dict[str, type[_Importer]] = {
    "customers": CustomerImporter,
    "products": ProductImporter,
    "orders": OrderImporter,
}


def import_run(
    *, kind: str, fh: IO[bytes], size: int | None = None, progress: Callable[[float, str], None] | None = None
) -> tuple[ImportReport, str | None]:
    """Import a CSV file of `kind` (see the module docstring for the rule). Returns the report and the
    storage path of the full error report (None when there are no errors). `progress(percent, message)` is
    called after a chunk when another 1% of the file's `size` bytes was read. Raises ImportFileError."""
    if kind not in IMPORTERS:
        raise ImportFileError(f"Unknown import kind {kind!r}; use one of {', '.join(KINDS)}.")
    check_utf8(fh)
    tenant = current_tenant()
    report = ImportReport(kind=kind)
    sink_file = tempfile.TemporaryFile("w+b")  # noqa: SIM115 - closed below
    sink_text = io.TextIOWrapper(sink_file, encoding="utf-8", newline="")
    importer: _Importer | None = None
    try:
        report._sink = csv.writer(sink_text)
        report._sink.writerow(["line", "column", "reason"])
        importer = IMPORTERS[kind](report, zoneinfo.ZoneInfo(tenant.timezone))
        key = (lambda row: row.values["order_id"]) if kind == "orders" else None
        chunk_bytes = max(CHUNK_MIN_BYTES, (size or 0) // 100)
        reported = -1
        for chunk in _chunks(read_rows(fh, kind, report), CHUNK_ROWS, key, position=fh.tell, max_bytes=chunk_bytes):
            importer.chunk(chunk)
            # Bytes read: the rows of the chunks processed, and the reader's buffer (8 KB) ahead of them.
            percent = int(99 * min(fh.tell() / size, 1.0)) if size else 0
            if progress is not None and percent > reported:
                progress(percent, f"{report.rows:,} rows read, {report.error_count:,} errors")
                reported = percent
        importer.finish()
        path = None
        if report.error_count:
            sink_text.flush()
            sink_file.seek(0)
            path = default_storage.save(
                f"imports/{tenant.pk}/{kind}-errors-{timezone.now():%Y%m%d-%H%M%S}.csv", File(sink_file)
            )
        return report, path
    finally:
        if importer is not None:
            with contextlib.suppress(DatabaseError):  # a broken connection takes its temporary tables with it
                importer.close()
        sink_text.close()


def import_start(*, kind: str, upload: Any, user: User | None) -> Job:
    """Store the uploaded file (streamed to MEDIA_ROOT) and start the import job; returns the job."""
    if kind not in KINDS:
        raise ValueError(f"Unknown import kind {kind!r}")
    name = (getattr(upload, "name", "") or "upload.csv").rsplit("/", 1)[-1][:100]
    path = default_storage.save(f"imports/{current_tenant().pk}/{timezone.now():%Y%m%d-%H%M%S}-{kind}.csv", upload)
    return job_start(kind=IMPORT_KIND, params={"kind": kind, "path": path, "filename": name}, created_by=user)

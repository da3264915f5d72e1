"""CSV import of customers, products and orders (one row per order line), streamed in chunks.

The rule: every valid row is stored and every bad row is reported (line, column, reason). The unit
for orders is the order: if any line of an order is bad, none of that order's lines is stored, and
each of its rows is reported. File-level problems (not UTF-8, missing columns, no header) fail the
job and store nothing. Re-importing a file updates what it imported before: customers by external_id,
products by sku, orders by order_id with their lines replaced; nothing is duplicated.

Accepted: UTF-8 with or without BOM, comma/semicolon/tab delimiters, ISO 8601 dates with or without an
offset (without one, the business's time zone), decimal commas ("12,50"), yes/no/true/false/1/0.
"""

from __future__ import annotations

import codecs
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
from django.db import transaction
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
MAX_ERRORS_KEPT = 1000  # in the job result; the downloadable report has all of them
MAX_CELL = 10000
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


def _chunks(rows: Iterator[Row], size: int, key: Callable[[Row], str] | None = None) -> Iterator[list[Row]]:
    """Lists of about `size` rows; with `key`, a chunk never splits consecutive rows with the same key."""
    chunk: list[Row] = []
    for row in rows:
        if len(chunk) >= size and (key is None or key(row) != key(chunk[-1])):
            yield chunk
            chunk = []
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

    def chunk(self, rows: list[Row]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called after the last chunk."""


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


class OrderImporter(_Importer):
    kind = "orders"

    def __init__(self, report: ImportReport, tz: tzinfo) -> None:
        super().__init__(report, tz)
        self.seen: dict[str, Decimal] = {}  # orders written by this import -> their total so far
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
        good: list[tuple[str, _OrderIn]] = []
        for ext, order in orders.items():
            if order.customer and order.customer not in customers:
                order.errors.append(
                    (order.rows[0].line, "customer_id", f"Unknown customer {order.customer!r}; import customers first.")
                )
            for row, (sku, _, _) in zip(order.rows, order.lines, strict=True):
                if sku and sku not in products:
                    order.errors.append((row.line, "sku", f"Unknown product sku {sku!r}; import products first."))
            if order.errors:
                bad_lines = {line for line, _, _ in order.errors}
                for line, column, reason in sorted(order.errors):
                    report.error(line, column, reason)
                for row in order.rows:
                    if row.line not in bad_lines:
                        report.error(row.line, "", f"Not imported: order {ext} has an invalid line.")
                report.failed += len(order.rows)
                continue
            good.append((ext, order))
        if not good:
            return
        order_rows: list[tuple[Any, ...]] = []
        for ext, order in good:
            computed = sum((q * (p if p is not None else products[sku][1]) for sku, q, p in order.lines), Decimal("0"))
            total = order.total if order.total is not None else computed + self.seen.get(ext, Decimal("0"))
            order_rows.append((self.tenant_id, ext, customers[order.customer], order.placed_at, order.status, total,
                               order.currency, order.channel, now, now))  # fmt: skip
        # Orders stored before this import get their lines replaced; an order continued from the previous
        # chunk keeps the lines written there.
        earlier = bulk.fetch_pairs(Order, "external_id", "id", [ext for ext, _ in good if ext not in self.seen])
        with transaction.atomic():
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
            bulk.insert(OrderLine, columns=LINE_COLUMNS, rows=lines)
        for (ext, order), written in zip(good, order_rows, strict=True):
            self.seen[ext] = written[5]
            report.stored += len(order.rows)
        if len(self.spans) >= MAX_PENDING_TOUCHES:
            self.finish()

    def finish(self) -> None:
        """Move the first/last-seen times of the customers whose orders were stored (once per customer
        for the whole file, rather than once per chunk)."""
        customers_touch(self.spans)
        self.spans = {}


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
    storage path of the full error report (None when there are no errors). Raises ImportFileError."""
    if kind not in IMPORTERS:
        raise ImportFileError(f"Unknown import kind {kind!r}; use one of {', '.join(KINDS)}.")
    check_utf8(fh)
    tenant = current_tenant()
    report = ImportReport(kind=kind)
    sink_file = tempfile.TemporaryFile("w+b")  # noqa: SIM115 - closed below
    sink_text = io.TextIOWrapper(sink_file, encoding="utf-8", newline="")
    try:
        report._sink = csv.writer(sink_text)
        report._sink.writerow(["line", "column", "reason"])
        importer = IMPORTERS[kind](report, zoneinfo.ZoneInfo(tenant.timezone))
        key = (lambda row: row.values["order_id"]) if kind == "orders" else None
        for chunk in _chunks(read_rows(fh, kind, report), CHUNK_ROWS, key):
            importer.chunk(chunk)
            if progress is not None and size:
                done = min(fh.tell() / size, 1.0) if hasattr(fh, "tell") else 0.0
                progress(99 * done, f"{report.rows:,} rows read, {report.error_count:,} errors")
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
        sink_text.close()


def import_start(*, kind: str, upload: Any, user: User | None) -> Job:
    """Store the uploaded file (streamed to MEDIA_ROOT) and start the import job; returns the job."""
    if kind not in KINDS:
        raise ValueError(f"Unknown import kind {kind!r}")
    name = (getattr(upload, "name", "") or "upload.csv").rsplit("/", 1)[-1][:100]
    path = default_storage.save(f"imports/{current_tenant().pk}/{timezone.now():%Y%m%d-%H%M%S}-{kind}.csv", upload)
    return job_start(kind=IMPORT_KIND, params={"kind": kind, "path": path, "filename": name}, created_by=user)

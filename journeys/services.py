"""Everything that changes customer data: one function per use case. Run inside a tenant context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from journeys import bulk
from journeys.engine.events import MAX_BATCH, CleanEvent, clean_event
from journeys.models import (
    FEEDBACK_SCALES,
    ConsentSource,
    Customer,
    Event,
    EventType,
    Feedback,
    FeedbackKind,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    VisitorIdentity,
)
from tenants.context import current_tenant

EVENT_TYPES = frozenset(EventType.values)
CUSTOMER_FIELDS = ("email", "name", "phone", "attributes")
PRODUCT_FIELDS = ("name", "description", "category", "price", "currency", "image_url", "active", "in_stock")


# --- Customers ----------------------------------------------------------------------------------


def _check_email_free(*, email: str, external_id: str) -> None:
    if not email:
        return
    other = Customer.objects.filter(email=email).exclude(external_id=external_id).values_list("external_id", flat=True)
    taken_by = other.first()
    if taken_by is not None:
        raise ValidationError({"email": f"Another customer (external id {taken_by}) has this email."})


def _apply_consent(customer: Customer, *, kind: str, granted: bool | None, source: str, at: datetime) -> bool:
    """Set one consent flag; the time and source are recorded only when the value changes."""
    if granted is None or (getattr(customer, f"consent_{kind}") == granted and customer.pk is not None):
        return False
    setattr(customer, f"consent_{kind}", granted)
    setattr(customer, f"consent_{kind}_at", at)
    setattr(customer, f"consent_{kind}_source", source)
    return True


def customer_upsert(
    *,
    external_id: str,
    data: dict[str, Any],
    consent_personalization: bool | None = None,
    consent_marketing: bool | None = None,
    consent_source: str = ConsentSource.API,
    replace: bool = True,
) -> tuple[Customer, bool]:
    """Create or update the customer with `external_id`. `replace` resets profile fields missing from
    `data` (PUT); otherwise only given fields change (PATCH). Consent changes only when given.
    Returns (customer, created). Raises ValidationError when the email belongs to another customer."""
    now = timezone.now()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(external_id=external_id).first()
        created = customer is None
        if customer is None:
            customer = Customer(external_id=external_id, first_seen=now, created=now)
        for name in CUSTOMER_FIELDS:
            if name in data:
                value = data[name]
                setattr(customer, name, (value or "").strip().lower() if name == "email" else value)
            elif replace:
                setattr(customer, name, {} if name == "attributes" else "")
        _check_email_free(email=customer.email, external_id=external_id)
        _apply_consent(customer, kind="personalization", granted=consent_personalization, source=consent_source, at=now)
        _apply_consent(customer, kind="marketing", granted=consent_marketing, source=consent_source, at=now)
        customer.updated = now
        customer.save()
    return customer, created


def customer_set_consent(
    *, customer: Customer, personalization: bool | None = None, marketing: bool | None = None, source: str
) -> Customer:
    """Change consent flags, recording when and through what each one changed."""
    now = timezone.now()
    changed = _apply_consent(customer, kind="personalization", granted=personalization, source=source, at=now)
    changed = _apply_consent(customer, kind="marketing", granted=marketing, source=source, at=now) or changed
    if changed:
        customer.updated = now
        customer.save()
    return customer


def customer_delete(*, customer: Customer) -> None:
    """Delete the customer with their orders and events; feedback stays, unlinked."""
    customer.delete()


# --- Products -------------------------------------------------------------------------------------


def product_upsert(*, sku: str, data: dict[str, Any], replace: bool = True) -> tuple[Product, bool]:
    """Create or update the product with `sku`; `replace` resets fields missing from `data`."""
    now = timezone.now()
    defaults: dict[str, Any] = {
        "description": "", "category": "", "price": Decimal("0"), "currency": current_tenant().currency,
        "image_url": "", "active": True, "in_stock": True,
    }  # fmt: skip
    with transaction.atomic():
        product = Product.objects.select_for_update().filter(sku=sku).first()
        created = product is None
        if product is None:
            product = Product(sku=sku, created=now, **defaults)
        for name in PRODUCT_FIELDS:
            if name in data:
                setattr(product, name, data[name])
            elif replace and name in defaults:
                setattr(product, name, defaults[name])
        product.updated = now
        product.full_clean(validate_unique=False, validate_constraints=False)
        product.save()
    return product, created


# --- Orders ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineIn:
    sku: str
    quantity: int
    unit_price: Decimal | None = None


def order_upsert(
    *,
    external_id: str,
    customer: Customer,
    placed_at: datetime,
    status: str = OrderStatus.PLACED,
    currency: str | None = None,
    channel: str = "",
    total: Decimal | None = None,
    lines: Sequence[LineIn],
) -> tuple[Order, bool]:
    """Create or replace the order with `external_id`, its lines included. A line without a unit price
    takes the product's price; the total is the lines' sum unless given. Raises ValidationError for
    unknown products or bad quantities."""
    skus = {line.sku for line in lines}
    products = {p.sku: p for p in Product.objects.filter(sku__in=skus)}
    errors: list[str] = []
    for n, line in enumerate(lines):
        if line.sku not in products:
            errors.append(f"Line {n + 1}: unknown product sku {line.sku!r}.")
        if line.quantity <= 0:
            errors.append(f"Line {n + 1}: quantity must be at least 1.")
        if line.unit_price is not None and line.unit_price < 0:
            errors.append(f"Line {n + 1}: unit price cannot be negative.")
    if errors:
        raise ValidationError({"lines": errors})
    priced: list[tuple[LineIn, Product, Decimal]] = [
        (line, products[line.sku], line.unit_price if line.unit_price is not None else products[line.sku].price)
        for line in lines
    ]
    computed = sum((line.quantity * price for line, _, price in priced), Decimal("0"))
    now = timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(external_id=external_id).first()
        created = order is None
        if order is None:
            order = Order(external_id=external_id, created=now)
        order.customer = customer
        order.placed_at = placed_at
        order.status = status
        order.currency = currency or current_tenant().currency
        order.channel = channel
        order.total = total if total is not None else computed
        order.updated = now
        order.save()
        if not created:
            OrderLine.objects.filter(order=order).delete()
        OrderLine.objects.bulk_create(
            [
                OrderLine(order=order, product=p, quantity=line.quantity, unit_price=price, tenant_id=order.tenant_id)
                for line, p, price in priced
            ]
        )
        customers_touch({customer.pk: (placed_at, placed_at)})
    return order, created


def order_delete(*, order: Order) -> None:
    order.delete()


def customers_touch(spans: dict[int, tuple[datetime, datetime]]) -> None:
    """Widen first_seen/last_seen of customers (id -> (earliest, latest) activity) to include the spans.
    Only rows that change are written; on PostgreSQL one statement."""
    if not spans:
        return
    if connection.vendor == "postgresql":
        _pg_touch(spans)
        return
    for customer_id, (lo, hi) in spans.items():
        Customer.objects.filter(Q(last_seen__lt=hi) | Q(last_seen=None), pk=customer_id).update(last_seen=hi)
        Customer.objects.filter(Q(first_seen__gt=lo) | Q(first_seen=None), pk=customer_id).update(first_seen=lo)


def _pg_touch(spans: dict[int, tuple[datetime, datetime]]) -> None:
    """PostgreSQL: one UPDATE that finds its rows by primary key (`id = ANY(...)`) and reads each row's span
    from a JSON object keyed by id, with no join: a join's plan rests on statistics, and on those of a tenant
    that has grown since the last ANALYZE (autovacuum off, or not run yet) it turned into a nested loop over
    every customer of the tenant per request.

    No `tenant_id =` condition: on such statistics the planner scans the tenant's whole range of an index
    with it (a third of the statement's time, measured), and it guards nothing here. The ids are the current
    tenant's (every caller read them through it) and row-level security still hides other tenants' rows."""
    span = "(s.j -> c.id::text ->> {})::timestamptz"
    lo, hi = span.format(0), span.format(1)
    with bulk.pg_cursor() as cursor:
        cursor.execute(
            f"UPDATE journeys_customer c SET last_seen = GREATEST(c.last_seen, {hi}),"  # noqa: S608 - no input
            f" first_seen = LEAST(c.first_seen, {lo}) FROM (SELECT %s::jsonb AS j) s"
            f" WHERE c.id = ANY(%s::bigint[])"
            f" AND (c.last_seen IS NULL OR c.last_seen < {hi} OR c.first_seen IS NULL OR c.first_seen > {lo})",
            [bulk.pg_json({str(k): v for k, v in spans.items()}), sorted(spans)],
            prepare=False,
        )


_K = TypeVar("_K")


def widen_span(spans: dict[_K, tuple[datetime, datetime]], customer_id: _K, at: datetime) -> None:
    """Make the (earliest, latest) activity span of `customer_id` in `spans` include `at`."""
    span = spans.get(customer_id)
    if span is None:
        spans[customer_id] = (at, at)
    elif at < span[0]:
        spans[customer_id] = (at, span[1])
    elif at > span[1]:
        spans[customer_id] = (span[0], at)


# --- Events ----------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    results: list[dict[str, Any]] = field(default_factory=list)
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0


def customer_stub_columns() -> list[str]:
    return [
        "tenant_id", "external_id", "email", "name", "phone", "attributes", "consent_personalization",
        "consent_personalization_source", "consent_marketing", "consent_marketing_source", "first_seen", "last_seen",
        "created", "updated",
    ]  # fmt: skip


def customers_resolve(external_ids: set[str], *, create: bool, at: datetime) -> dict[str, int]:
    """external id -> customer id; with `create`, unknown ids become bare customers (to be enriched later)."""
    if not external_ids:
        return {}
    found = bulk.fetch_pairs(Customer, "external_id", "id", external_ids)
    missing = external_ids - found.keys()
    if create and missing:
        tenant_id = current_tenant().pk
        rows: list[tuple[Any, ...]] = [
            (tenant_id, ext, "", "", "", {}, False, "", False, "", None, None, at, at) for ext in sorted(missing)
        ]
        bulk.upsert(Customer, columns=customer_stub_columns(), rows=rows, conflict=["tenant_id", "external_id"])
        found.update(bulk.fetch_pairs(Customer, "external_id", "id", missing))
    return found


Span = tuple[datetime, datetime]  # (earliest, latest) activity


def customers_resolve_touch(
    spans: dict[str, Span], *, at: datetime, by_id: dict[int, Span] | None = None
) -> dict[str, int]:
    """external id -> customer id for the customers of `spans` (external id -> (earliest, latest) activity),
    creating unknown ones bare, and widening the first/last seen of everyone in `spans` and in `by_id`
    (customer id -> span) to include their span. Existing customers are updated (one statement, so in one
    order) before new ones are inserted (in external id order): concurrent batches do not deadlock.

    On PostgreSQL the statements find their rows by key (one index probe per key, or `id = ANY(...)`), so their
    cost is that of the batch whatever the planner's statistics say about the tenant."""
    by_id = dict(by_id or {})
    if not spans:
        customers_touch(by_id)
        return {}
    if connection.vendor != "postgresql":
        found = customers_resolve(set(spans), create=True, at=at)
        for ext, span in spans.items():
            _widen(by_id, found[ext], span)
        customers_touch(by_id)
        return found
    tenant_id = current_tenant().pk
    found = {}
    # Spans travel as one JSON object, external id -> [earliest, latest]: cheaper to send and read than
    # arrays of timestamps. Whether a span widens a row is decided by the server (reading the times back
    # into Python costs more), with one index probe per key (see bulk.pg_probe).
    span_json = bulk.pg_json(spans)
    lo, hi = "(s.j -> k.v ->> 0)::timestamptz", "(s.j -> k.v ->> 1)::timestamptz"
    with bulk.pg_cursor() as cursor:
        cursor.execute(
            f"SELECT k.v, c.id, c.first_seen IS NULL OR c.last_seen IS NULL"  # noqa: S608 - no input
            f" OR c.first_seen > {lo} OR c.last_seen < {hi}"
            f" FROM (SELECT %s::jsonb AS j) s, unnest(%s::text[]) AS k(v)"
            f" CROSS JOIN LATERAL {bulk.pg_probe(Customer, 'external_id', ['id', 'first_seen', 'last_seen'])}",
            [span_json, list(spans), tenant_id],
            prepare=False,
        )
        for ext, customer_id, widens in cursor:
            found[ext] = customer_id
            if widens:
                _widen(by_id, customer_id, spans[ext])
    customers_touch(by_id)
    missing = sorted(spans.keys() - found.keys())
    if missing:
        with bulk.pg_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO journeys_customer (tenant_id, external_id, email, name, phone, attributes,"  # noqa: S608
                f" consent_personalization, consent_personalization_source, consent_marketing,"
                f" consent_marketing_source, first_seen, last_seen, created, updated)"
                f" SELECT %(tenant)s::bigint, k.v, '', '', '', '{{}}'::jsonb, false, '', false, '', {lo}, {hi},"
                f" %(at)s::timestamptz, %(at)s::timestamptz"
                f" FROM (SELECT %(spans)s::jsonb AS j) s, unnest(%(keys)s::text[]) AS k(v)"
                f" ORDER BY k.v ON CONFLICT (tenant_id, external_id) DO NOTHING RETURNING external_id, id",
                {"tenant": tenant_id, "at": at, "spans": span_json, "keys": missing},
                prepare=False,
            )
            found.update(cursor.fetchall())
        late = [ext for ext in missing if ext not in found]
        if late:  # created by a concurrent request meanwhile: read and touch them now
            ids = bulk.fetch_pairs(Customer, "external_id", "id", late)
            customers_touch({ids[ext]: spans[ext] for ext in late})
            found.update(ids)
        if _customers_created.setdefault(tenant_id, bulk.Growth()).add(len(missing) - len(late)):
            # After the commit: ANALYZE inside the transaction would hold its lock until then.
            transaction.on_commit(lambda: bulk.analyze(Customer._meta.db_table))
    return found


# Customers this process created per tenant through ingestion: the tenant's statistics are refreshed as
# they grow (see bulk.analyze), or the planner, told the tenant has no customers, answers the per-key
# probes above by scanning all of the tenant's customers through another of its indexes, per key.
_customers_created: dict[int, bulk.Growth] = {}


def _widen(spans: dict[int, Span], customer_id: int, span: Span) -> None:
    widen_span(spans, customer_id, span[0])
    widen_span(spans, customer_id, span[1])


EVENT_COLUMNS = [
    "tenant_id", "customer_id", "anonymous_id", "type", "name", "properties", "url", "channel", "occurred_at",
    "received_at", "idempotency_key",
]  # fmt: skip


def events_ingest(*, items: Sequence[Any]) -> BatchResult:
    """Validate and store up to MAX_BATCH events. Each item is stored, a duplicate of one already stored
    (same idempotency key), or rejected with its errors. Unknown customers are created bare; an item with
    both a customer and an anonymous_id identifies that visitor (see visitor_identify)."""
    if len(items) > MAX_BATCH:
        raise ValidationError({"events": f"At most {MAX_BATCH} events per request; this one has {len(items)}."})
    now = timezone.now()
    results: list[dict[str, Any]] = [{}] * len(items)
    result = BatchResult(results=results)
    clean: list[tuple[int, CleanEvent]] = []
    seen_keys: set[str] = set()
    for index, item in enumerate(items):
        cleaned = clean_event(item, types=EVENT_TYPES, now=now)
        if isinstance(cleaned, dict):
            results[index] = {"index": index, "status": "rejected", "errors": cleaned}
            result.rejected += 1
        elif cleaned.idempotency_key in seen_keys:
            results[index] = {"index": index, "status": "duplicate", "idempotency_key": cleaned.idempotency_key}
            result.duplicates += 1
        else:
            seen_keys.add(cleaned.idempotency_key)
            clean.append((index, cleaned))
    if not clean:
        return result
    tenant_id = current_tenant().pk
    named: dict[str, tuple[datetime, datetime]] = {}  # customer external id -> activity span
    for _, e in clean:
        if e.customer:
            widen_span(named, e.customer, e.occurred_at)
    anonymous = {e.anonymous_id for _, e in clean if e.anonymous_id and not e.customer}
    with transaction.atomic():
        known_visitors = bulk.fetch_pairs(VisitorIdentity, "anonymous_id", "customer_id", anonymous)
        visitors: dict[int, tuple[datetime, datetime]] = {}  # identified visitors' customers -> activity span
        for _, e in clean:
            if not e.customer and (visitor := known_visitors.get(e.anonymous_id)) is not None:
                widen_span(visitors, visitor, e.occurred_at)
        customers = customers_resolve_touch(named, at=now, by_id=visitors)
        identifies = {e.anonymous_id: customers[e.customer] for _, e in clean if e.anonymous_id and e.customer}
        rows: list[tuple[Any, ...]] = []
        for _, e in clean:
            customer_id = customers[e.customer] if e.customer else known_visitors.get(e.anonymous_id)
            rows.append((tenant_id, customer_id, e.anonymous_id, e.type, e.name, e.properties, e.url, e.channel,
                         e.occurred_at, now, e.idempotency_key))  # fmt: skip
        stored = {
            key
            for (key,) in bulk.upsert(
                Event,
                columns=EVENT_COLUMNS,
                rows=rows,
                conflict=["tenant_id", "idempotency_key"],
                returning=["idempotency_key"],
            )
        }
        if identifies:
            _visitors_link(identifies, at=now)
    for index, e in clean:
        key = e.idempotency_key
        results[index] = {"index": index, "status": "stored" if key in stored else "duplicate", "idempotency_key": key}
    result.stored = len(stored)
    result.duplicates += len(clean) - len(stored)
    return result


def _visitors_link(identifies: dict[str, int], *, at: datetime) -> int:
    """Record anonymous id -> customer (the first identification wins) and link the visitor's past events."""
    tenant_id = current_tenant().pk
    bulk.upsert(
        VisitorIdentity,
        columns=["tenant_id", "anonymous_id", "customer_id", "identified_at"],
        rows=[(tenant_id, anon, cid, at) for anon, cid in identifies.items()],
        conflict=["tenant_id", "anonymous_id"],
    )
    owners = dict(
        VisitorIdentity.objects.filter(anonymous_id__in=identifies).values_list("anonymous_id", "customer_id")
    )
    linked = 0
    by_customer: dict[int, list[str]] = {}
    for anon, cid in owners.items():
        by_customer.setdefault(cid, []).append(anon)
    for cid, anons in by_customer.items():
        # anonymous_id != "" as in the partial index's condition, which the planner cannot infer from a long IN list
        unlinked = Event.objects.filter(customer=None, anonymous_id__in=anons).exclude(anonymous_id="")
        linked += unlinked.update(customer_id=cid)
    return linked


def visitor_identify(*, anonymous_id: str, customer: Customer) -> int:
    """The visitor `anonymous_id` is `customer`: their past anonymous events are linked, and later ones
    are linked on arrival. An id already identified as another customer stays with the first.
    Returns the number of events linked now."""
    anonymous_id = anonymous_id.strip()
    if not anonymous_id:
        raise ValidationError({"anonymous_id": "This field is required."})
    with transaction.atomic():
        return _visitors_link({anonymous_id: customer.pk}, at=timezone.now())


# --- Feedback --------------------------------------------------------------------------------------


def feedback_check_score(*, kind: str, score: int) -> None:
    """Raises ValidationError naming the allowed range when `score` is outside the scale of `kind`."""
    if kind not in FEEDBACK_SCALES:
        raise ValidationError({"kind": f"Unknown kind {kind!r}; use one of {', '.join(FeedbackKind.values)}."})
    low, high = FEEDBACK_SCALES[kind]
    if not low <= score <= high:
        raise ValidationError({"score": f"{FeedbackKind(kind).label} scores run from {low} to {high}; got {score}."})


def feedback_create(
    *,
    kind: str,
    score: int,
    comment: str = "",
    channel: str = "",
    customer: Customer | None = None,
    order: Order | None = None,
    conversation_id: int | None = None,
    page_url: str = "",
    created: datetime | None = None,
) -> Feedback:
    """Record one survey answer; the score must fit the scale of its kind."""
    feedback_check_score(kind=kind, score=score)
    if customer is None and order is not None:
        customer = order.customer
    feedback = Feedback.objects.create(
        kind=kind, score=score, comment=comment, channel=channel, customer=customer, order=order,
        conversation_id=conversation_id, page_url=page_url, created=created or timezone.now(),
    )  # fmt: skip
    if customer is not None:
        customers_touch({customer.pk: (feedback.created, feedback.created)})
    return feedback

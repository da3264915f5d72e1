"""CSV export of the journeys tables, streamed from the database to a file in storage."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.utils import timezone

from journeys.models import Customer, Event, Feedback, OrderLine, Product
from tenants.context import current_tenant
from tenants.jobs import job_start
from tenants.models import Job, User

EXPORT_KIND = "journeys.export"

# table -> (queryset, columns as (header, values() expression)); columns match the import format where one exists.
EXPORTS: dict[str, tuple[Callable[[], QuerySet[Any]], list[tuple[str, str]]]] = {
    "customers": (
        lambda: Customer.objects.order_by("id"),
        [("external_id", "external_id"), ("email", "email"), ("name", "name"), ("phone", "phone"),
         ("consent_marketing", "consent_marketing"), ("consent_marketing_at", "consent_marketing_at"),
         ("consent_marketing_source", "consent_marketing_source"),
         ("consent_personalization", "consent_personalization"),
         ("consent_personalization_at", "consent_personalization_at"),
         ("consent_personalization_source", "consent_personalization_source"),
         ("first_seen", "first_seen"), ("last_seen", "last_seen"), ("created", "created"),
         ("attributes", "attributes")],
    ),
    "products": (
        lambda: Product.objects.order_by("id"),
        [("sku", "sku"), ("name", "name"), ("description", "description"), ("category", "category"),
         ("price", "price"), ("currency", "currency"), ("image_url", "image_url"), ("active", "active"),
         ("in_stock", "in_stock")],
    ),
    "orders": (
        lambda: OrderLine.objects.order_by("order_id", "id"),
        [("order_id", "order__external_id"), ("customer_id", "order__customer__external_id"),
         ("placed_at", "order__placed_at"), ("status", "order__status"), ("currency", "order__currency"),
         ("channel", "order__channel"), ("total", "order__total"), ("sku", "product__sku"),
         ("quantity", "quantity"), ("unit_price", "unit_price")],
    ),
    "events": (
        lambda: Event.objects.order_by("id"),
        [("idempotency_key", "idempotency_key"), ("customer_id", "customer__external_id"),
         ("anonymous_id", "anonymous_id"), ("type", "type"), ("name", "name"), ("properties", "properties"),
         ("url", "url"), ("channel", "channel"), ("occurred_at", "occurred_at"), ("received_at", "received_at")],
    ),
    "feedback": (
        lambda: Feedback.objects.order_by("id"),
        [("kind", "kind"), ("score", "score"), ("comment", "comment"), ("channel", "channel"),
         ("customer_id", "customer__external_id"), ("order_id", "order__external_id"),
         ("conversation_id", "conversation_id"), ("page_url", "page_url"), ("created", "created")],
    ),
}  # fmt: skip


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def export_table(*, table: str, job_id: int, progress: Callable[[float, str], None] | None = None) -> tuple[str, int]:
    """Write the current tenant's `table` as UTF-8 CSV to storage; returns (path, rows)."""
    if table not in EXPORTS:
        raise ValueError(f"Unknown table {table!r}")
    make_qs, columns = EXPORTS[table]
    qs = make_qs()
    total = qs.count()
    values = qs.values_list(*[expr for _, expr in columns])
    rows = 0
    with tempfile.TemporaryFile("w+b") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow([header for header, _ in columns])
        for row in values.iterator(chunk_size=5000):
            writer.writerow([_cell(v) for v in row])
            rows += 1
            if progress is not None and rows % 20000 == 0:
                progress(100 * rows / max(total, 1), f"{rows:,} of {total:,} rows")
        text.flush()
        raw.seek(0)
        path = default_storage.save(
            f"exports/{current_tenant().pk}/{table}-{timezone.now():%Y%m%d-%H%M%S}-{job_id}.csv", File(raw)
        )
        text.detach()
    return path, rows


def export_start(*, table: str, user: User | None) -> Job:
    """Start exporting `table` to CSV in the background; the finished job links to the file."""
    if table not in EXPORTS:
        raise ValueError(f"Unknown table {table!r}")
    return job_start(kind=EXPORT_KIND, params={"table": table}, created_by=user)

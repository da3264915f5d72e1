"""CSV import across chunks: the whole-order rule when an order's lines are far apart in the file, and
progress reported through the job as the file is read. Chunks are made tiny so that a few rows span many."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from journeys import imports, tasks
from journeys.models import Order, OrderLine
from tenants.context import tenant_context
from tenants.models import Job, Tenant

pytestmark = pytest.mark.django_db

HEADER = "order_id,customer_id,placed_at,sku,quantity\n"


@pytest.fixture
def catalog(api_client: APIClient, run_import: Callable[..., Job]) -> None:
    run_import(api_client, "products", "sku,name,price\nBEAN,House Blend,14.00\nMUG,Mug,9.50\n")
    run_import(api_client, "customers", "external_id,email\nc-1,ann@example.com\nc-2,bo@example.com\n")


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)


def _lines(tenant: Tenant) -> dict[str, list[tuple[str, int]]]:
    with tenant_context(tenant):
        out: dict[str, list[tuple[str, int]]] = {}
        for ext, sku, quantity in OrderLine.objects.order_by("id").values_list(
            "order__external_id", "product__sku", "quantity"
        ):
            out.setdefault(ext, []).append((sku, quantity))
        return out


def _reasons(job: Job) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for error in job.result["errors"]:
        out.setdefault(error["line"], []).append(error["reason"])
    return out


def test_an_order_met_again_in_a_later_chunk_gets_the_lines_added(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant, catalog: None, tiny_chunks: None
) -> None:
    text = HEADER + (
        "O-1,c-1,2025-02-01,BEAN,1\n"
        "O-2,c-2,2025-02-02,BEAN,1\n"
        "O-3,c-2,2025-02-03,MUG,1\n"
        "O-1,c-1,2025-02-01,MUG,2\n"  # O-1 again, two chunks later
    )
    job = run_import(api_client, "orders", text)
    assert (job.result["stored"], job.result["failed"]) == (4, 0)
    assert _lines(tenant)["O-1"] == [("BEAN", 1), ("MUG", 2)]
    with tenant_context(tenant):
        assert Order.objects.get(external_id="O-1").total == Decimal("33.00")  # 14 + 2 × 9.50
    # Importing the same file again replaces the order's lines rather than adding them twice.
    run_import(api_client, "orders", text)
    assert _lines(tenant)["O-1"] == [("BEAN", 1), ("MUG", 2)]
    with tenant_context(tenant):
        assert Order.objects.get(external_id="O-1").total == Decimal("33.00")


def test_a_bad_line_in_a_later_chunk_takes_back_the_order_created_earlier(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant, catalog: None, tiny_chunks: None
) -> None:
    text = HEADER + (
        "O-1,c-1,2025-02-01,BEAN,1\n"  # line 2: stored with its chunk
        "O-2,c-2,2025-02-02,BEAN,1\n"
        "O-3,c-2,2025-02-03,MUG,1\n"
        "O-1,c-1,2025-02-01,NOPE,2\n"  # line 5: unknown product, in a later chunk
        "O-4,c-2,2025-02-04,MUG,1\n"
        "O-5,c-2,2025-02-05,MUG,1\n"
        "O-1,c-1,2025-02-01,MUG,1\n"  # line 8: a good line of the rejected order, later still
    )
    job = run_import(api_client, "orders", text)
    assert job.status == "succeeded"
    assert (job.result["rows"], job.result["stored"], job.result["failed"]) == (7, 4, 3)
    reasons = _reasons(job)
    assert "unknown product" in reasons[5][0].lower()
    assert "taken back" in reasons[2][0] and "line 5" in reasons[2][0]
    assert reasons[8] == ["Not imported: order O-1 has an invalid line (line 5)."]
    with tenant_context(tenant):
        assert set(Order.objects.values_list("external_id", flat=True)) == {"O-2", "O-3", "O-4", "O-5"}
    assert "O-1" not in _lines(tenant)


def test_a_bad_later_line_puts_back_the_order_as_it_was_before_the_import(
    api_client: APIClient, run_import: Callable[..., Job], tenant: Tenant, catalog: None, tiny_chunks: None
) -> None:
    before = HEADER + "O-1,c-1,2025-01-10,BEAN,3\n"
    assert run_import(api_client, "orders", before).result["stored"] == 1
    with tenant_context(tenant):
        original = Order.objects.get(external_id="O-1")
    text = HEADER + (
        "O-1,c-2,2025-02-01,MUG,1\n"  # replaces the order, for now
        "O-2,c-2,2025-02-02,BEAN,1\n"
        "O-3,c-2,2025-02-03,MUG,1\n"
        "O-1,c-2,2025-02-01,BEAN,0\n"  # bad quantity: the file's O-1 is rejected whole
    )
    job = run_import(api_client, "orders", text)
    assert (job.result["stored"], job.result["failed"]) == (2, 2)
    assert "back as it was before the import" in _reasons(job)[2][0]
    assert _lines(tenant)["O-1"] == [("BEAN", 3)]
    with tenant_context(tenant):
        restored = Order.objects.get(external_id="O-1")
    assert (restored.pk, restored.customer_id, restored.placed_at, restored.total) == (
        original.pk, original.customer_id, original.placed_at, original.total,
    )  # fmt: skip


def test_progress_rises_through_the_job_as_the_file_is_read(
    api_client: APIClient,
    run_import: Callable[..., Job],
    tenant: Tenant,
    catalog: None,
    tiny_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imports, "CHUNK_MIN_BYTES", 1)
    seen: list[tuple[int, str]] = []
    real = tasks.job_progress

    def recording(job: Job, percent: float, message: str = "") -> None:
        real(job, percent, message)
        stored = Job.objects.get(pk=job.pk)  # what the import page polls
        seen.append((stored.progress, stored.message))

    monkeypatch.setattr(tasks, "job_progress", recording)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 50)
    rows = "".join(f"O-{n},c-{1 + n % 2},2025-02-01,BEAN,1\n" for n in range(2000))  # about 60 KB
    job = run_import(api_client, "orders", HEADER + rows)
    assert job.status == "succeeded" and job.progress == 100
    percents = [p for p, _ in seen]
    assert percents == sorted(set(percents))  # each report a step up, never the same percent twice
    assert len(percents) >= 5 and percents[0] <= 20 and percents[-1] == 99
    counts = [int(message.split(" rows read")[0].replace(",", "")) for _, message in seen]
    assert counts == sorted(set(counts)) and counts[-1] > 1000


def test_the_import_leaves_no_temporary_table_behind(
    api_client: APIClient, run_import: Callable[..., Job], catalog: None, tiny_chunks: None
) -> None:
    run_import(api_client, "orders", HEADER + "O-1,c-1,2025-02-01,BEAN,1\n")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {imports._OrderLedger.ORDERS}")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL planner statistics")
def test_an_import_refreshes_the_planners_statistics_as_it_grows_a_table(
    api_client: APIClient, run_import: Callable[..., Job], monkeypatch: pytest.MonkeyPatch
) -> None:
    def estimate() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'journeys_customer'")
            return float(cursor.fetchone()[0])

    text = "external_id\n" + "".join(f"s-{n}\n" for n in range(37))
    before = estimate()
    assert before != 37
    monkeypatch.setattr(imports, "ANALYZE_FIRST", 10**9)
    run_import(api_client, "customers", text)
    assert estimate() == before  # too few rows to bother
    monkeypatch.setattr(imports, "ANALYZE_FIRST", 10)
    run_import(api_client, "customers", text.replace("s-", "t-"))
    assert estimate() == 74  # every customer of the table, counted by ANALYZE

"""tenants.db.rows: a row read or written without the ORM's compiling comes out as the ORM's own would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.db.rows import row_insert, row_select_first, rows_insert
from tenants.models import ApiKey, Job, JobStatus, Tenant

pytestmark = pytest.mark.django_db


def test_a_row_read_is_the_orms_instance(in_tenant: Tenant) -> None:
    started = timezone.now() - timedelta(minutes=3)
    job = Job.objects.create(
        kind="export", status=JobStatus.RUNNING, params={"rows": [1, 2]}, result={"ok": True}, started_at=started
    )
    found = row_select_first(Job, "WHERE tenant_id = %s AND id = %s", [in_tenant.pk, job.pk])
    assert found is not None and found.pk == job.pk
    orm = Job.objects.get(pk=job.pk)
    for field in Job._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(orm, field.attname), field.name
    assert found.params == {"rows": [1, 2]} and found.started_at == started and found.started_at.tzinfo is not None
    assert not found._state.adding
    assert row_select_first(Job, "WHERE tenant_id = %s AND id = %s", [in_tenant.pk, job.pk + 1000]) is None


def test_a_row_written_reads_back_as_saved(in_tenant: Tenant) -> None:
    job = Job(tenant=in_tenant, kind="import", params={"file": "a.csv"}, message="Waiting")
    row_insert(job)
    assert job.pk is not None and not job._state.adding
    stored = Job.objects.get(pk=job.pk)
    assert (stored.kind, stored.params, stored.message, stored.status) == (
        "import",
        {"file": "a.csv"},
        "Waiting",
        "queued",
    )
    assert stored.created == job.created  # pre_save defaults were applied to the instance, as save() does


def test_a_constraint_fails_as_save_does(in_tenant: Tenant) -> None:
    key = ApiKey.objects.create(name="first", prefix="abcd1234", key_hash="x" * 64)
    twin = ApiKey(tenant=in_tenant, name="twin", prefix=key.prefix, key_hash="y" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        row_insert(twin)


def test_rows_written_together_read_back_as_bulk_create_writes_them(in_tenant: Tenant) -> None:
    """One INSERT for several rows: each gets its id, in order, and reads back as bulk_create's would (JSON with
    quotes and backslashes included)."""
    tricky = {"why": 'the entry "Returns" matched', "path": "C:\\new\\table", "o'k": [1, None, {"x": "\u00e9"}]}

    def jobs(kind: str) -> list[Job]:
        return [Job(tenant=in_tenant, kind=kind, params={**tricky, "n": n}, message=f"step {n}'s") for n in range(5)]

    Job.objects.bulk_create(jobs("bulk"))
    written = jobs("together")
    rows_insert(written)
    assert [job.pk for job in written] == sorted(job.pk for job in written) and not written[0]._state.adding
    compared = ["params", "message", "status", "progress", "tenant_id"]
    assert list(Job.objects.filter(kind="together").order_by("pk").values_list(*compared)) == list(
        Job.objects.filter(kind="bulk").order_by("pk").values_list(*compared)
    )
    assert [Job.objects.get(pk=job.pk).params["n"] for job in written] == list(range(5))
    rows_insert([])  # nothing to write


def test_rows_written_together_fail_together(in_tenant: Tenant) -> None:
    key = ApiKey.objects.create(name="first", prefix="abcd1234", key_hash="x" * 64)
    twins = [ApiKey(tenant=in_tenant, name="new", prefix="efgh5678", key_hash="z" * 64),
             ApiKey(tenant=in_tenant, name="twin", prefix=key.prefix, key_hash="y" * 64)]  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(twins)
    assert not ApiKey.objects.filter(prefix="efgh5678").exists()

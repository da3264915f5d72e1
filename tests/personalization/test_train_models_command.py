"""`manage.py train_models`: the embedded default trains the demo on first start, once."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from personalization.models import ModelStatus, ModelVersion
from tenants.context import tenant_context
from tenants.models import Job, Tenant


def _train(tenant: Tenant, *flags: str) -> str:
    out = StringIO()
    call_command("train_models", "--tenant", tenant.slug, *flags, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_trains_once_as_a_recorded_job_and_skips_when_trained(demo_tenant: Tenant, settings: Any) -> None:
    settings.CX_TASKS_INLINE = False  # as in `make run`: the command itself must run the job to its end
    out = _train(demo_tenant, "--if-untrained")
    with tenant_context(demo_tenant):
        active = sorted(ModelVersion.objects.filter(status=ModelStatus.ACTIVE).values_list("kind", flat=True))
        assert {"rfm", "clusters"} <= set(active)  # the gates decide the others (the demo data ends in June)
        assert f"active models: {', '.join(active)}." in out
        assert Job.objects.get().status == "succeeded"  # visible on the jobs page like any other run
    assert "nothing to do" in _train(demo_tenant, "--if-untrained")
    with tenant_context(demo_tenant):
        assert Job.objects.count() == 1


@pytest.mark.django_db
def test_unknown_tenant_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("train_models", "--tenant", "nope")

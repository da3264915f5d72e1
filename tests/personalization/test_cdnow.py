"""CDNOW (the 1/10 sample) through the product: CSV import job, training job as of 1997-09-30, and the parameters
of the active CLV model version against the published BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader &
Hardie 2013) estimates, within 1%."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.bench_ml_cdnow import (
    CAL_END,
    CDNOW,
    cdnow_import_and_train,
    clv_parameters_in_weeks,
    published_check,
)
from journeys.models import Customer, Order
from personalization.models import ModelKind, ModelStatus, ModelVersion
from tenants.context import tenant_context
from tenants.models import Tenant

pytestmark = pytest.mark.skipif(not CDNOW.exists(), reason=f"{CDNOW} is not there")


def test_cdnow_imported_and_trained_by_the_product_gives_the_published_parameters(
    tenant: Tenant, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path  # the uploaded CSV files
    run = cdnow_import_and_train(tenant)
    assert run["imports"]["orders"].result["stored"] == 6919
    with tenant_context(tenant):
        assert Customer.objects.count() == 2357 and Order.objects.count() == 6919
        clv = ModelVersion.objects.get(kind=ModelKind.CLV, status=ModelStatus.ACTIVE)
    assert str(clv.training_end) == CAL_END and clv.n_customers == 2357
    assert run["training"].result["cutoff"] == CAL_END
    checked = published_check(clv_parameters_in_weeks(tenant))
    assert len(checked) == 7
    failed = [(name, f"{ours:.4f} vs {pub}") for name, ours, pub, _diff, ok in checked if not ok]
    assert not failed

"""The training and scoring pipeline through its services and job tasks, on the real database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from journeys.models import Customer, Order
from personalization import services
from personalization.ml.simulate import simulate_tenant
from personalization.models import ClusterLabel, CustomerScore, ModelKind, ModelStatus, ModelVersion
from personalization.tasks import pipeline_nightly_task
from tenants.context import tenant_context
from tenants.models import Job, JobStatus, Tenant
from tests.personalization.conftest import DEMO_END

KINDS = {ModelKind.RFM, ModelKind.CLUSTERS, ModelKind.CLV, ModelKind.CHURN}


def run(**params: Any) -> Job:
    """Start a training run (inline in tests) and return the finished job."""
    job = services.pipeline_start(params={"cutoff": DEMO_END.isoformat(), **params})
    job.refresh_from_db()
    return job


def active_ids() -> dict[str, int]:
    return dict(ModelVersion.objects.filter(status=ModelStatus.ACTIVE).values_list("kind", "id"))


def test_training_run_activates_every_model_and_scores_every_customer(demo_tenant: Tenant) -> None:
    with tenant_context(demo_tenant):
        job = run()
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert job.progress == 100
        result = job.result
        assert all(g["ready"] for g in result["gates"].values())
        assert {t["stage"] for t in result["timings"]} >= {"load data", "features", "train churn model", "write scores"}

        active = active_ids()
        assert set(active) == KINDS
        clv = ModelVersion.objects.get(pk=active[ModelKind.CLV])
        assert clv.passed_checks and clv.job_id == job.pk and clv.training_end == DEMO_END
        assert clv.parameters["bgnbd"]["r"] > 0 and clv.parameters["gamma_gamma"]["p"] > 0
        assert clv.metrics["mae"] <= clv.baseline_metrics["baseline_mae"] * 1.05
        churn = ModelVersion.objects.get(pk=active[ModelKind.CHURN])
        assert churn.metrics["auc"] > 0.55 and "auc_recency" in churn.baseline_metrics
        assert churn.artifact

        customers = Customer.objects.count()
        assert CustomerScore.objects.count() == customers
        buyers = CustomerScore.objects.filter(orders__gt=0)
        assert buyers.exclude(churn_band="").count() == buyers.count()
        assert buyers.filter(probability_alive=None).count() == 0
        assert buyers.exclude(rfm_segment="").count() == buyers.count()
        assert buyers.filter(cluster=None).count() == 0
        assert CustomerScore.objects.filter(orders=0, churn_risk=None).count() == customers - buyers.count()
        high = buyers.filter(churn_band="high").exclude(reasons=[]).first()
        assert high is not None and high.reasons[0]  # plain-words reasons for risky customers
        assert high.model_versions["churn"] == active[ModelKind.CHURN]
        # Scores agree with the facts they summarise.
        one = buyers.order_by("customer_id").first()
        assert one is not None
        valid = Order.objects.filter(customer_id=one.customer_id).exclude(status__in=["cancelled", "refunded"])
        assert one.orders == valid.count()
        assert one.historic_value == pytest.approx(float(sum(o.total for o in valid)))
        assert ClusterLabel.objects.count() >= 2
        assert all(c.description for c in ClusterLabel.objects.all())


def test_retraining_retires_old_versions_and_keeps_cluster_ids_stable(demo_tenant: Tenant) -> None:
    with tenant_context(demo_tenant):
        run()
        first = active_ids()
        before = dict(CustomerScore.objects.exclude(cluster=None).values_list("customer_id", "cluster"))
        ClusterLabel.objects.filter(cluster_id=next(iter(set(before.values())))).update(name="Regulars")
        assert run().status == JobStatus.SUCCEEDED
        second = active_ids()
        assert set(second) == KINDS
        assert all(second[k] != first[k] for k in KINDS)
        assert ModelVersion.objects.filter(pk__in=first.values(), status=ModelStatus.RETIRED).count() == 4
        after = dict(CustomerScore.objects.exclude(cluster=None).values_list("customer_id", "cluster"))
        same = np.mean([after[c] == before[c] for c in before])
        assert same > 0.9  # same data, same clusters: ids matched to the previous centroids, not renumbered
        assert ClusterLabel.objects.filter(name="Regulars").exists()  # a user's name survives retraining
        numbers = ModelVersion.objects.filter(kind=ModelKind.CLV).values_list("number", flat=True)
        assert sorted(numbers) == [1, 2]


def test_failure_mid_training_leaves_the_previous_versions_active(
    demo_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant_context(demo_tenant):
        run()
        before = active_ids()
        scored_at = set(CustomerScore.objects.values_list("scored_at", flat=True))

        def boom(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("worker ran out of memory while training churn")

        monkeypatch.setattr(services.churn, "churn_train", boom)
        job = run()
        assert job.status == JobStatus.FAILED
        assert "ran out of memory" in job.error
        assert active_ids() == before  # nothing of the failed run became active
        # The versions this run had already written (RFM, clusters, CLV) are whole but rejected.
        made = ModelVersion.objects.filter(job=job)
        assert set(made.values_list("kind", flat=True)) == {ModelKind.RFM, ModelKind.CLUSTERS, ModelKind.CLV}
        assert set(made.values_list("status", flat=True)) == {ModelStatus.REJECTED}
        assert set(CustomerScore.objects.values_list("scored_at", flat=True)) == scored_at


def test_activation_is_all_or_nothing(demo_tenant: Tenant) -> None:
    with tenant_context(demo_tenant):
        run()
        before = active_ids()
        services.settings_update(require_approval=True, nightly_retrain=True)
        run()
        waiting = list(ModelVersion.objects.filter(status=ModelStatus.CANDIDATE).order_by("kind"))
        assert {v.kind for v in waiting} == KINDS
        assert active_ids() == before  # waiting for approval: nothing changed
        waiting[-1].passed_checks = False  # pretend one failed its checks
        waiting[-1].save(update_fields=["passed_checks"])
        with pytest.raises(services.ApprovalError):
            services.model_versions_activate(versions=waiting)
        assert active_ids() == before  # the ones before the failing one were rolled back too


def test_approval_activates_a_candidate_and_rescores(demo_tenant: Tenant, owner: Any) -> None:
    with tenant_context(demo_tenant):
        services.settings_update(require_approval=True, nightly_retrain=True)
        job = run()
        assert job.result["awaiting_approval"]
        assert active_ids() == {}
        # Without active models, churn risk falls back to the simple score and no value is predicted.
        assert CustomerScore.objects.exclude(churn_risk=None).exists()
        assert not CustomerScore.objects.exclude(predicted_value_365d=None).exists()
        assert CustomerScore.objects.first().model_versions["churn"] == "fallback"  # type: ignore[union-attr]

        clv = ModelVersion.objects.get(kind=ModelKind.CLV, status=ModelStatus.CANDIDATE)
        score_job = services.model_version_approve(version=clv, user=owner)
        clv.refresh_from_db()
        assert clv.status == ModelStatus.ACTIVE and clv.approved_by == owner and clv.approved_at
        assert score_job is not None
        score_job.refresh_from_db()
        assert score_job.status == JobStatus.SUCCEEDED, score_job.error
        assert CustomerScore.objects.exclude(predicted_value_365d=None).exists()
        with pytest.raises(services.ApprovalError):
            services.model_version_approve(version=clv, user=owner)  # already active


def test_gates_skip_models_the_data_cannot_support(small_tenant: Tenant) -> None:
    with tenant_context(small_tenant):
        job = run()
        assert job.status == JobStatus.SUCCEEDED, job.error
        gates = job.result["gates"]
        assert gates["rfm"]["ready"] and not gates["btyd"]["ready"] and not gates["churn"]["ready"]
        assert any("customers with an order" in m for m in gates["churn"]["missing"])
        assert set(job.result["skipped"]) == {ModelKind.CLUSTERS, ModelKind.CLV, ModelKind.CHURN}
        assert set(active_ids()) == {ModelKind.RFM}
        assert CustomerScore.objects.exclude(rfm_segment="").exists()
        assert not CustomerScore.objects.exclude(probability_alive=None).exists()


def test_one_run_per_tenant_at_a_time(demo_tenant: Tenant, small_tenant: Tenant) -> None:
    with tenant_context(demo_tenant):
        busy = Job.objects.create(kind=services.PIPELINE_KIND, status=JobStatus.RUNNING, progress=40, message="x")
        with pytest.raises(services.PipelineBusyError, match=f"job #{busy.pk}, 40%"):
            services.pipeline_start()
        assert Job.objects.filter(kind__in=services.PIPELINE_KINDS).count() == 1
    with tenant_context(small_tenant):  # another tenant is not blocked
        assert run().status == JobStatus.SUCCEEDED
    with tenant_context(demo_tenant):
        Job.objects.filter(pk=busy.pk).update(status=JobStatus.QUEUED, created=timezone.now() - timedelta(hours=3))
        assert run().status == JobStatus.SUCCEEDED  # a run no worker took for hours no longer blocks
        busy.refresh_from_db()
        assert busy.status == JobStatus.FAILED and "No worker took this run" in busy.message


def test_nightly_task_queues_a_run_per_tenant_unless_turned_off(demo_tenant: Tenant, small_tenant: Tenant) -> None:
    with tenant_context(small_tenant):
        services.settings_update(require_approval=False, nightly_retrain=False)
    assert pipeline_nightly_task() == {"started": 1, "busy": 0}
    with tenant_context(demo_tenant):
        job = Job.objects.get(kind=services.PIPELINE_KIND)
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert job.params == {"reason": "nightly"}
    with tenant_context(small_tenant):
        assert not Job.objects.filter(kind=services.PIPELINE_KIND).exists()


def _insert_simulated(tenant: Tenant, n: int) -> None:
    data = simulate_tenant(n, seed=11)
    orders = data["orders"]
    customers = Customer.objects.bulk_create(
        [Customer(tenant=tenant, external_id=f"sim-{i}") for i in range(n)], batch_size=2000
    )
    ids = np.array([c.pk for c in customers])
    placed = pd.to_datetime(orders["placed_at"]).dt.tz_localize(UTC)
    Order.objects.bulk_create(
        [
            Order(
                tenant=tenant, external_id=f"o-{i}", customer_id=int(ids[c]), placed_at=p.to_pydatetime(),
                total=Decimal(str(t)), status=s, currency="USD",
            )
            for i, (c, p, t, s) in enumerate(zip(orders["customer_id"], placed, orders["total"], orders["status"],
                                                 strict=True))
        ],
        batch_size=5000,
    )  # fmt: skip


def test_lifetime_value_model_recovers_known_parameters_through_the_service(tenant: Tenant) -> None:
    """Customers simulated from known BG/NBD (per day) and Gamma-Gamma parameters, stored as orders, trained by the
    pipeline: the model version's parameters are the ones the data came from."""
    with tenant_context(tenant):
        _insert_simulated(tenant, 2500)
        job = run(cutoff="2024-12-31")
        assert job.status == JobStatus.SUCCEEDED, job.error
        clv = ModelVersion.objects.get(kind=ModelKind.CLV)
        bg, gg = clv.parameters["bgnbd"], clv.parameters["gamma_gamma"]
        assert bg["r"] == pytest.approx(0.9, rel=0.2)
        assert bg["alpha"] == pytest.approx(25.0, rel=0.25)
        assert bg["a"] / (bg["a"] + bg["b"]) == pytest.approx(0.6 / 10.6, rel=0.35)  # mean drop-out probability
        assert gg["p"] * gg["gamma"] / (gg["q"] - 1) == pytest.approx(6.0 * 120.0 / 3.0, rel=0.1)  # mean spend
        assert clv.training_end == date(2024, 12, 31)
        assert datetime(2023, 1, 1).date() <= clv.training_start <= date(2023, 1, 10)  # type: ignore[operator]


def test_candidates_of_a_run_that_failed_for_good_are_rejected_at_the_next_start(small_tenant: Tenant) -> None:
    """A worker lost for good (the job failed by the stale-job sweep) leaves candidates behind: the next run's start
    rejects them; a candidate of a finished run that waits for approval is left alone."""
    with tenant_context(small_tenant):
        lost = Job.objects.create(kind=services.PIPELINE_KIND, status=JobStatus.FAILED, message="worker lost")
        done = Job.objects.create(kind=services.PIPELINE_KIND, status=JobStatus.SUCCEEDED)
        orphan = ModelVersion.objects.create(kind=ModelKind.CLV, number=1, job=lost, passed_checks=True)
        waiting = ModelVersion.objects.create(kind=ModelKind.CLV, number=2, job=done, passed_checks=True)
        assert run().status == JobStatus.SUCCEEDED
        orphan.refresh_from_db()
        waiting.refresh_from_db()
        assert orphan.status == ModelStatus.REJECTED and not orphan.passed_checks
        assert orphan.checks[-1]["name"] == "run finished"
        assert waiting.status == ModelStatus.CANDIDATE  # CLV was not retrained (gate closed): still waiting

"""Segments and Predictions pages, model cards, the customer panel, and the /api/v1/ endpoints, each with the
other tenant's objects answering 404."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from personalization import services
from personalization.models import ClusterLabel, CustomerScore, ModelKind, ModelStatus, ModelVersion
from tenants.context import tenant_context
from tenants.models import Job, JobStatus, Role, Tenant
from tests.conftest import add_member, client_for, make_user
from tests.personalization.conftest import DEMO_END, seed


@pytest.fixture
def scored(demo_tenant: Tenant) -> Tenant:
    with tenant_context(demo_tenant):
        job = services.pipeline_start(params={"cutoff": DEMO_END.isoformat()})
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, job.error
    return demo_tenant


@pytest.fixture
def other_scored(other_tenant: Tenant) -> dict[str, Any]:
    """The other tenant, seeded and scored: the ids of its objects, which must be 404 for `tenant`."""
    seed(other_tenant, 600, seed=5)
    with tenant_context(other_tenant):
        services.pipeline_start(params={"cutoff": DEMO_END.isoformat()})
        score = CustomerScore.objects.exclude(cluster=None).first()
        assert score is not None
        return {
            "customer": score.customer_id,
            # Cluster ids are small numbers per tenant; one that only the other tenant has:
            "cluster": ClusterLabel.objects.create(cluster_id=777, description="only theirs"),
            "version": ModelVersion.objects.get(kind=ModelKind.CLV, status=ModelStatus.ACTIVE).pk,
            "job": Job.objects.get(kind=services.PIPELINE_KIND).pk,
        }


def test_pages_show_segments_predictions_and_model_cards(scored: Tenant, owner_client: Client) -> None:
    page = owner_client.get("/segments/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "RFM grid" in html and "Champions" in html and "Hibernating" in html
    assert 'href="/segments/rules/"' in html
    with tenant_context(scored):
        label = ClusterLabel.objects.exclude(customers=0).first()
        assert label is not None
        assert label.description in html
        champions = CustomerScore.objects.filter(rfm_segment="Champions").count()
    assert f"{champions:,}" in html or str(champions) in html

    page = owner_client.get("/predictions/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-series-id="value-chart-data"' in html and 'data-series-id="churn-chart-data"' in html
    assert "High-value customers at risk" in html
    assert "Train now" in html
    with tenant_context(scored):
        risky = CustomerScore.objects.filter(churn_band="high").order_by("-historic_value").first()
        clv = ModelVersion.objects.get(kind=ModelKind.CLV, status=ModelStatus.ACTIVE)
    assert risky is not None and risky.reasons[0] in unescape(html)

    card = owner_client.get(f"/predictions/models/{clv.pk}/")
    html = card.content.decode()
    assert card.status_code == 200
    assert "past purchase rate" in html and "beats past rate" in html and "bgnbd.r" in html
    assert owner_client.get("/predictions/models/").status_code == 200

    customer = unescape(owner_client.get(f"/customers/{risky.customer_id}/").content.decode())
    assert "Predictions and segments" in customer
    assert risky.rfm_segment in customer and risky.reasons[0] in customer


def test_renaming_a_cluster_and_training_from_the_dashboard(scored: Tenant, owner_client: Client) -> None:
    with tenant_context(scored):
        label = ClusterLabel.objects.first()
        assert label is not None
    resp = owner_client.post(f"/segments/clusters/{label.cluster_id}/rename/", {"name": "Espresso regulars"})
    assert resp.status_code == 302
    assert "Espresso regulars" in owner_client.get("/segments/").content.decode()
    assert owner_client.post("/segments/clusters/9999/rename/", {"name": "x"}).status_code == 404

    with tenant_context(scored):
        Job.objects.create(kind=services.PIPELINE_KIND, status=JobStatus.RUNNING, progress=30, message="Training")
    page = owner_client.post("/predictions/train/", follow=True).content.decode()
    assert "A training run is already running" in page
    fragment = owner_client.get("/predictions/run/").content.decode()
    assert 'hx-trigger="every 1s"' in fragment and "30%" in fragment


def test_roles_on_pages(scored: Tenant, owner: Any) -> None:
    analyst = make_user("analyst@example.com")
    add_member(scored, analyst, Role.ANALYST)
    client = client_for(analyst)
    assert client.get("/segments/").status_code == 200
    assert client.get("/predictions/").status_code == 200
    assert client.post("/predictions/train/").status_code == 403
    with tenant_context(scored):
        label = ClusterLabel.objects.first()
        version = ModelVersion.objects.filter(kind=ModelKind.CLV).first()
        assert label is not None and version is not None
    assert client.post(f"/segments/clusters/{label.cluster_id}/rename/", {"name": "x"}).status_code == 403
    assert client.post(f"/predictions/models/{version.pk}/approve/").status_code == 403
    assert client.post("/predictions/models/settings/", {"require_approval": "on"}).status_code == 403


def test_owner_approves_a_waiting_version_on_its_card(scored: Tenant, owner_client: Client) -> None:
    resp = owner_client.post("/predictions/models/settings/", {"require_approval": "on", "nightly_retrain": "on"})
    assert resp.status_code == 302
    with tenant_context(scored):
        services.pipeline_start(params={"cutoff": DEMO_END.isoformat()})
        waiting = ModelVersion.objects.get(kind=ModelKind.CHURN, status=ModelStatus.CANDIDATE)
    card = owner_client.get(f"/predictions/models/{waiting.pk}/").content.decode()
    assert "Approve and activate" in card
    page = owner_client.post(f"/predictions/models/{waiting.pk}/approve/", follow=True).content.decode()
    assert "is now active" in page
    with tenant_context(scored):
        waiting.refresh_from_db()
        assert waiting.status == ModelStatus.ACTIVE


def test_pages_answer_404_for_the_other_tenants_objects(
    scored: Tenant, owner_client: Client, other_scored: dict[str, Any]
) -> None:
    assert owner_client.get(f"/predictions/models/{other_scored['version']}/").status_code == 404
    assert owner_client.post(f"/predictions/models/{other_scored['version']}/approve/").status_code == 404
    assert owner_client.get(f"/customers/{other_scored['customer']}/").status_code == 404
    other_label = other_scored["cluster"]
    resp = owner_client.post(f"/segments/clusters/{other_label.cluster_id}/rename/", {"name": "x"})
    assert resp.status_code == 404
    with tenant_context(other_label.tenant):
        other_label.refresh_from_db()
        assert other_label.name == ""


# ------------------------------------------------------------------------------------------------ API


def test_api_scores_segments_clusters_and_versions(scored: Tenant, api_client: APIClient) -> None:
    resp = api_client.get("/api/v1/customer-scores/?churn_band=high&ordering=-historic_value")
    assert resp.status_code == 200
    body = resp.json()
    with tenant_context(scored):
        assert body["count"] == CustomerScore.objects.filter(churn_band="high").count()
    first = body["results"][0]
    assert first["churn_band"] == "high" and first["reasons"]
    one = api_client.get(f"/api/v1/customer-scores/{first['customer']}/").json()
    assert one["customer"] == first["customer"] and one["probability_alive"] is not None

    rfm = api_client.get("/api/v1/rfm-segments/").json()
    assert [r["segment"] for r in rfm][:2] == ["Champions", "Loyal"] and len(rfm) == 11
    champions = api_client.get("/api/v1/rfm-segments/champions/members/").json()
    assert champions["count"] == rfm[0]["customers"]
    assert all(m["rfm_segment"] == "Champions" for m in champions["results"])
    assert api_client.get("/api/v1/rfm-segments/nope/").status_code == 404

    clusters = api_client.get("/api/v1/clusters/").json()["results"]
    cid = clusters[0]["id"]
    renamed = api_client.patch(f"/api/v1/clusters/{cid}/", {"name": "Weekend treat"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["display_name"] == "Weekend treat"
    members = api_client.get(f"/api/v1/clusters/{cid}/members/").json()
    assert members["count"] == clusters[0]["customers"]

    versions = api_client.get("/api/v1/model-versions/?status=active").json()
    assert {v["kind"] for v in versions["results"]} == {"rfm", "clusters", "clv", "churn"}
    clv = next(v for v in versions["results"] if v["kind"] == "clv")
    assert clv["parameters"]["bgnbd"]["r"] > 0 and clv["baseline_name"]
    assert "artifact" not in clv
    denied = api_client.post(f"/api/v1/model-versions/{clv['id']}/approve/")
    assert denied.status_code == 403 and "owner" in denied.json()["error"]["message"]


def test_api_training_runs(scored: Tenant, api_client: APIClient, read_api_client: APIClient) -> None:
    started = api_client.post("/api/v1/training-runs/")
    assert started.status_code == 202
    assert started.json()["kind"] == services.PIPELINE_KIND
    runs = api_client.get("/api/v1/training-runs/").json()
    assert runs["count"] == 2
    assert read_api_client.post("/api/v1/training-runs/").status_code == 403
    with tenant_context(scored):
        Job.objects.create(kind=services.PIPELINE_KIND, status=JobStatus.QUEUED)
    busy = api_client.post("/api/v1/training-runs/")
    assert busy.status_code == 409
    assert "already queued" in busy.json()["error"]["message"]


def test_api_training_run_as_of_a_date(scored: Tenant, api_client: APIClient) -> None:
    started = api_client.post("/api/v1/training-runs/", {"cutoff": "2026-03-31"}, format="json")
    assert started.status_code == 202, started.json()
    assert started.json()["status"] == JobStatus.SUCCEEDED
    with tenant_context(scored):
        newest = ModelVersion.objects.filter(kind=ModelKind.CLV).order_by("-number").first()
        assert newest is not None and str(newest.training_end) == "2026-03-31"
    assert api_client.post("/api/v1/training-runs/", {"cutoff": "2999-01-01"}, format="json").status_code == 400
    assert api_client.post("/api/v1/training-runs/", {"cutoff": "March"}, format="json").status_code == 400


def test_api_answers_404_for_the_other_tenants_objects(
    scored: Tenant, api_client: APIClient, other_scored: dict[str, Any]
) -> None:
    assert api_client.get(f"/api/v1/customer-scores/{other_scored['customer']}/").status_code == 404
    assert api_client.get(f"/api/v1/model-versions/{other_scored['version']}/").status_code == 404
    assert api_client.post(f"/api/v1/model-versions/{other_scored['version']}/approve/").status_code == 404
    assert api_client.get(f"/api/v1/training-runs/{other_scored['job']}/").status_code == 404
    listed = {s["customer"] for s in api_client.get("/api/v1/customer-scores/?page_size=1000").json()["results"]}
    assert other_scored["customer"] not in listed
    cid = other_scored["cluster"].cluster_id
    assert api_client.get(f"/api/v1/clusters/{cid}/").status_code == 404
    assert api_client.get(f"/api/v1/clusters/{cid}/members/").status_code == 404
    assert api_client.patch(f"/api/v1/clusters/{cid}/", {"name": "x"}, format="json").status_code == 404


def test_gates_on_the_dashboard_say_what_is_missing(small_tenant: Tenant, other_client: Client) -> None:
    with tenant_context(small_tenant):
        services.pipeline_start(params={"cutoff": DEMO_END.isoformat()})
    html = unescape(other_client.get("/predictions/").content.decode())
    assert "Lifetime value: not enough data yet." in html
    assert "Churn risk model: not enough data yet." in html
    assert "needs 300 customers with an order, has" in html
    assert "should be enough around" in html or "we cannot say when" in html
    assert "No value predictions yet." in html  # no numbers it cannot stand behind
    segments = unescape(other_client.get("/segments/").content.decode())
    assert "Behavioural clusters: not enough data yet." in segments
    assert "Champions" in segments


def _own_counts(tenant: Tenant) -> dict[str, Any]:
    """What tenant A's aggregates must show, computed from its own rows only."""
    with tenant_context(tenant):
        scores = CustomerScore.objects.all()
        valued = scores.exclude(predicted_value_365d=None)
        return {
            "ids": set(scores.values_list("customer_id", flat=True)),
            "rfm": {s: scores.filter(rfm_segment=s).count() for s in set(scores.values_list("rfm_segment", flat=True))},
            "rfm_scored": scores.exclude(r_score=None).count(),
            "clusters": scores.exclude(cluster=None).count(),
            "valued": valued.count(),
            "value_total": sum(valued.values_list("predicted_value_365d", flat=True)),
            "risked": scores.exclude(churn_risk=None).count(),
        }


def test_rfm_endpoints_count_only_this_tenants_customers(
    scored: Tenant, api_client: APIClient, other_scored: dict[str, Any]
) -> None:
    own = _own_counts(scored)
    rows = api_client.get("/api/v1/rfm-segments/").json()
    assert sum(r["customers"] for r in rows) == own["rfm_scored"]
    for row in rows:
        assert row["customers"] == own["rfm"].get(row["segment"], 0), row["segment"]
        one = api_client.get(f"/api/v1/rfm-segments/{row['slug']}/").json()
        assert one["customers"] == row["customers"]
    biggest = max(rows, key=lambda r: r["customers"])
    members = api_client.get(f"/api/v1/rfm-segments/{biggest['slug']}/members/?page_size=1000").json()
    assert members["count"] == biggest["customers"]
    ids = {m["customer"] for m in members["results"]}
    assert ids <= own["ids"] and other_scored["customer"] not in ids


def test_segments_and_predictions_pages_count_only_this_tenants_customers(
    scored: Tenant, owner_client: Client, other_scored: dict[str, Any]
) -> None:
    own = _own_counts(scored)
    page = owner_client.get("/segments/")
    assert page.context["scored"] == own["rfm_scored"]
    assert sum(cell["customers"] for line in page.context["grid"] for cell in line) == own["rfm_scored"]
    assert sum(c["customers"] for c in page.context["clusters"]) == own["clusters"]
    assert "only theirs" not in page.content.decode()  # the other tenant's cluster label

    page = owner_client.get("/predictions/")
    value, churn = page.context["value"], page.context["churn"]
    assert value["customers"] == own["valued"] == sum(value["counts"])
    assert value["total"] == pytest.approx(own["value_total"])
    assert sum(churn["counts"]) == sum(churn["bands"].values()) == own["risked"]
    assert {s.customer_id for s in page.context["at_risk"]} <= own["ids"]

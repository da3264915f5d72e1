"""Dashboard pages: Segments (RFM grid, clusters), Predictions (distributions, at-risk customers, training runs),
model cards with approval, and the scores panel on the customer page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from personalization import selectors, services
from personalization.models import ClusterLabel, ModelKind, ModelStatus
from personalization.rules import selectors as rule_selectors
from tenants.models import Role
from tenants.permissions import role_has
from tenants.views import member_required

GATE_LABELS = {
    "rfm": "RFM segments",
    "clusters": "Behavioural clusters",
    "btyd": "Lifetime value",
    "churn": "Churn risk model",
}


def _require(request: HttpRequest, permission: str) -> None:
    if not role_has(request.membership.role, permission):  # type: ignore[attr-defined]
        raise PermissionDenied("Your role cannot do this.")


def _gates_context() -> dict[str, Any]:
    gates = selectors.latest_gates()
    rows = [{"key": k, "label": GATE_LABELS.get(k, k), **v} for k, v in (gates or {}).items()]
    return {"gates": gates, "gate_rows": rows, "not_ready": [r for r in rows if not r["ready"]]}


def _run_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "run": selectors.latest_run(),
        "can_run": role_has(request.membership.role, "jobs.run"),  # type: ignore[attr-defined]
    }


@member_required("dashboard.view")
def segments_page(request: HttpRequest) -> HttpResponse:
    segments = selectors.rfm_segments()
    context = {
        "segments": segments,
        "grid": selectors.rfm_grid(),
        "clusters": selectors.cluster_summaries(),
        "scored": sum(s["customers"] for s in segments),
        "can_rename": role_has(request.membership.role, "data.write"),  # type: ignore[attr-defined]
        **_gates_context(),
        **_run_context(request),
    }
    return render(request, "personalization/segments.html", context)


@member_required("dashboard.view")
@require_POST
def cluster_rename_view(request: HttpRequest, cluster_id: int) -> HttpResponse:
    _require(request, "data.write")
    name = request.POST.get("name", "")
    if len(name.strip()) > 80:
        messages.error(request, "A cluster name has at most 80 characters.")
        return redirect("segments")
    try:
        label = services.cluster_rename(cluster_id=cluster_id, name=name)
    except ClusterLabel.DoesNotExist as exc:
        raise Http404("No such cluster.") from exc
    messages.success(request, f"Cluster {label.cluster_id} is now called “{label.display_name}”.")
    return redirect("segments")


@member_required("dashboard.view")
def predictions_page(request: HttpRequest) -> HttpResponse:
    value = selectors.value_distribution()
    churn = selectors.churn_distribution()
    context = {
        "value": value,
        "value_chart": {"labels": value["labels"], "values": value["counts"]},
        "churn": churn,
        "churn_chart": {"labels": churn["labels"], "values": churn["counts"]},
        "at_risk": list(selectors.at_risk_high_value()),
        "model_rows": _model_rows(),
        **_gates_context(),
        **_run_context(request),
    }
    return render(request, "personalization/predictions.html", context)


def _model_rows() -> list[dict[str, Any]]:
    models = selectors.active_and_waiting()
    empty: dict[str, Any] = {"active": None, "waiting": None}
    return [{"label": label, **models.get(key, empty)} for key, label in ModelKind.choices]


@member_required("dashboard.view")
@require_POST
def train_view(request: HttpRequest) -> HttpResponse:
    _require(request, "jobs.run")
    try:
        services.pipeline_start(created_by=request.user)  # type: ignore[arg-type]
    except services.PipelineBusyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Training started. Progress shows below; you can keep working.")
    return redirect("segments" if request.POST.get("next") == "/segments/" else "predictions")


@member_required("dashboard.view")
def run_status(request: HttpRequest) -> HttpResponse:
    """The training-run progress fragment (polled by htmx while a run is queued or running)."""
    return render(request, "personalization/_run_status.html", _run_context(request))


@member_required("dashboard.view")
def model_list(request: HttpRequest) -> HttpResponse:
    context = {
        "versions": list(selectors.model_versions()[:100]),
        "settings": services.settings_for_tenant(),
        "is_owner": request.membership.role == Role.OWNER,  # type: ignore[attr-defined]
    }
    return render(request, "personalization/model_list.html", context)


@member_required("dashboard.view")
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(selectors.model_versions(), pk=pk)
    active = selectors.model_versions(kind=version.kind).filter(status=ModelStatus.ACTIVE).first()
    context = {
        "v": version,
        "active": active,
        "settings": services.settings_for_tenant(),
        "is_owner": request.membership.role == Role.OWNER,  # type: ignore[attr-defined]
        "parameters": _flat(version.parameters),
        **_cluster_tables(version.parameters),
    }
    return render(request, "personalization/model_detail.html", context)


def _cluster_tables(params: Any) -> dict[str, list[dict[str, Any]]]:
    """A clustering's clusters (largest first, with the owner's names) and its silhouette for each k
    tried, as tables for the model card; empty for other models."""
    if not isinstance(params, dict) or not isinstance(params.get("sizes"), dict):
        return {"clusters": [], "silhouettes": []}
    descriptions = params.get("descriptions") or {}
    names = {label.cluster_id: label.name for label in ClusterLabel.objects.all()}
    clusters = [
        {
            "id": int(cid),
            "customers": int(size),
            "description": descriptions.get(cid, ""),
            "name": names.get(int(cid), ""),
        }
        for cid, size in params["sizes"].items()
    ]
    clusters.sort(key=lambda c: (-c["customers"], c["id"]))
    chosen = params.get("k")
    silhouettes = [
        {"k": int(k), "silhouette": float(score), "chosen": int(k) == chosen}
        for k, score in sorted((params.get("silhouettes") or {}).items(), key=lambda kv: int(kv[0]))
    ]
    return {"clusters": clusters, "silhouettes": silhouettes}


def _flat(params: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Parameters as (dotted name, short text) rows for the model card; long arrays are summarised."""
    rows: list[tuple[str, str]] = []
    if isinstance(params, dict):
        for k, v in params.items():
            rows.extend(_flat(v, f"{prefix}{k}."))
        return rows
    text = str(params)
    if isinstance(params, list) and len(text) > 160:
        text = f"{len(params)} values"
    rows.append((prefix.rstrip("."), text))
    return rows


@member_required("dashboard.view")
@require_POST
def model_approve(request: HttpRequest, pk: int) -> HttpResponse:
    if request.membership.role != Role.OWNER:  # type: ignore[attr-defined]
        raise PermissionDenied("Only an owner can approve a model version.")
    version = get_object_or_404(selectors.model_versions(), pk=pk)
    try:
        job = services.model_version_approve(version=version, user=request.user)  # type: ignore[arg-type]
    except services.ApprovalError as exc:
        messages.error(request, str(exc))
    else:
        rescoring = "Customers are being rescored." if job else "The running job scores with it."
        messages.success(request, f"{version} is now active. {rescoring}")
    return redirect("model_detail", pk=version.pk)


@member_required("dashboard.view")
@require_POST
def settings_view(request: HttpRequest) -> HttpResponse:
    if request.membership.role != Role.OWNER:  # type: ignore[attr-defined]
        raise PermissionDenied("Only an owner can change how models are approved.")
    services.settings_update(
        require_approval=request.POST.get("require_approval") == "on",
        nightly_retrain=request.POST.get("nightly_retrain") == "on",
    )
    messages.success(request, "Model settings saved.")
    return redirect("model_list")


def customer_scores_panel(request: HttpRequest, customer: Any) -> tuple[str, dict[str, Any]] | None:
    """Scores, segments and reasons of one customer for the customer page (journeys' panel hook)."""
    score = selectors.customer_score(customer_id=customer.pk)
    label = None
    if score is not None and score.cluster is not None:
        label = ClusterLabel.objects.filter(cluster_id=score.cluster).first()
    segments = list(rule_selectors.customer_rule_segments(customer_id=customer.pk))
    return "personalization/_customer_panel.html", {"score": score, "cluster_label": label, "rule_segments": segments}

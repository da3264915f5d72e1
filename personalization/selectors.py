"""Read queries of personalization shared by pages, API and tasks (all within the current tenant)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from personalization.ml.rfm import SEGMENT_GRID, SEGMENTS
from personalization.models import ClusterLabel, CustomerScore, ModelStatus, ModelVersion
from personalization.services import PIPELINE_KIND, PIPELINE_KINDS
from tenants.models import Job, JobStatus

VALUE_BINS = 12
RISK_BINS = 10


def customer_scores(*, filters: dict[str, Any] | None = None) -> QuerySet[CustomerScore]:
    """Scores with their customer; filters: churn_band, rfm_segment, cluster, min_value."""
    qs = CustomerScore.objects.select_related("customer")
    f = filters or {}
    if f.get("churn_band"):
        qs = qs.filter(churn_band=f["churn_band"])
    if f.get("rfm_segment"):
        qs = qs.filter(rfm_segment=f["rfm_segment"])
    if f.get("cluster") not in (None, ""):
        qs = qs.filter(cluster=int(f["cluster"]))
    return qs


def customer_score(*, customer_id: int) -> CustomerScore | None:
    return CustomerScore.objects.filter(customer_id=customer_id).first()


def latest_run() -> Job | None:
    """The newest training or scoring job of the current tenant."""
    return Job.objects.filter(kind__in=PIPELINE_KINDS).order_by("-created").first()


def running_job() -> Job | None:
    return (
        Job.objects.filter(kind__in=PIPELINE_KINDS, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        .order_by("-created")
        .first()
    )


def latest_gates() -> dict[str, Any] | None:
    """Gate verdicts of the newest finished training run (None before the first run)."""
    job = (
        Job.objects.filter(kind=PIPELINE_KIND, status=JobStatus.SUCCEEDED)
        .order_by("-finished_at")
        .only("result")
        .first()
    )
    return (job.result or {}).get("gates") if job else None


def rfm_segments() -> list[dict[str, Any]]:
    """The 11 RFM segments with customers, revenue, and their shares (zeros included), in the usual order."""
    rows = {
        r["rfm_segment"]: r
        for r in CustomerScore.objects.exclude(rfm_segment="")
        .values("rfm_segment")
        .annotate(customers=Count("id"), revenue=Sum("historic_value"))
    }
    total_c = sum(r["customers"] for r in rows.values()) or 0
    total_r = sum(r["revenue"] or 0.0 for r in rows.values()) or 0.0
    out = []
    for name in SEGMENTS:
        r = rows.get(name, {"customers": 0, "revenue": 0.0})
        out.append(
            {
                "segment": name,
                "customers": r["customers"],
                "revenue": float(r["revenue"] or 0.0),
                "customer_share": r["customers"] / total_c if total_c else 0.0,
                "revenue_share": float(r["revenue"] or 0.0) / total_r if total_r else 0.0,
            }
        )
    return out


def rfm_grid() -> list[list[dict[str, Any]]]:
    """The R (rows, 5 at the top) x FM (columns) grid: each cell's segment, customers and share of revenue.
    FM = round-half-up of (F + M) / 2, as in `personalization.ml.rfm`."""
    cells: dict[tuple[int, int], dict[str, float]] = {}
    total = 0.0
    rows = (
        CustomerScore.objects.exclude(r_score=None)
        .values("r_score", "f_score", "m_score")
        .annotate(customers=Count("id"), revenue=Sum("historic_value"))
    )
    for row in rows:
        fm = int((row["f_score"] + row["m_score"]) / 2.0 + 0.5)
        cell = cells.setdefault((row["r_score"], fm), {"customers": 0, "revenue": 0.0})
        cell["customers"] += row["customers"]
        cell["revenue"] += float(row["revenue"] or 0.0)
        total += float(row["revenue"] or 0.0)
    grid = []
    for r in range(5, 0, -1):
        line = []
        for fm in range(1, 6):
            cell = cells.get((r, fm), {"customers": 0, "revenue": 0.0})
            share = cell["revenue"] / total if total else 0.0
            line.append({"r": r, "fm": fm, "segment": SEGMENT_GRID[r - 1, fm - 1], **cell, "revenue_share": share})
        grid.append(line)
    return grid


def cluster_summaries() -> list[dict[str, Any]]:
    """Active clusters: id, name, description, customers, revenue and share, mean predictions."""
    stats = {
        r["cluster"]: r
        for r in CustomerScore.objects.exclude(cluster=None)
        .values("cluster")
        .annotate(customers=Count("id"), revenue=Sum("historic_value"), value=Sum("predicted_value_365d"))
    }
    total_r = sum(float(r["revenue"] or 0) for r in stats.values()) or 0.0
    out = []
    for label in ClusterLabel.objects.filter(cluster_id__in=list(stats)):
        s = stats[label.cluster_id]
        out.append(
            {
                "label": label,
                "customers": s["customers"],
                "revenue": float(s["revenue"] or 0.0),
                "revenue_share": float(s["revenue"] or 0.0) / total_r if total_r else 0.0,
                "predicted_value": float(s["value"] or 0.0),
            }
        )
    return sorted(out, key=lambda c: -c["customers"])


def value_distribution(bins: int = VALUE_BINS) -> dict[str, Any]:
    """Histogram of predicted 365-day value over customers with a prediction (log-ish bins from quantiles)."""
    values = list(
        CustomerScore.objects.exclude(predicted_value_365d=None).values_list("predicted_value_365d", flat=True)
    )
    if not values:
        return {"labels": [], "counts": [], "total": 0.0, "customers": 0}
    import numpy as np

    arr = np.asarray(values, dtype=float)
    hi = float(np.quantile(arr, 0.99)) or 1.0
    edges = np.linspace(0.0, hi, bins + 1)
    counts, _ = np.histogram(np.clip(arr, 0.0, hi), bins=edges)
    labels = [f"{edges[i]:,.0f}–{edges[i + 1]:,.0f}" for i in range(bins)]
    labels[-1] = f"{edges[-2]:,.0f}+"
    return {"labels": labels, "counts": counts.tolist(), "total": float(arr.sum()), "customers": len(arr)}


def churn_distribution(bins: int = RISK_BINS) -> dict[str, Any]:
    """Customers per churn-risk decile and per band."""
    qs = CustomerScore.objects.exclude(churn_risk=None)
    buckets = qs.values("churn_band").annotate(n=Count("id"))
    bands = {b["churn_band"]: b["n"] for b in buckets}
    counts = [0] * bins
    for risk in qs.values_list("churn_risk", flat=True).iterator(chunk_size=20000):
        counts[min(int(risk * bins), bins - 1)] += 1
    labels = [f"{100 * i // bins}–{100 * (i + 1) // bins}%" for i in range(bins)]
    return {"labels": labels, "counts": counts, "bands": {k: bands.get(k, 0) for k in ("low", "medium", "high")}}


def at_risk_high_value(limit: int = 20) -> QuerySet[CustomerScore]:
    """High churn-risk customers with the most historic value first (who is worth a call)."""
    return (
        CustomerScore.objects.filter(churn_band="high")
        .filter(Q(historic_value__gt=0))
        .select_related("customer")
        .order_by("-historic_value", "customer_id")[:limit]
    )


def model_versions(*, kind: str | None = None) -> QuerySet[ModelVersion]:
    qs = ModelVersion.objects.select_related("approved_by", "job").defer("artifact")
    return qs.filter(kind=kind) if kind else qs


def active_and_waiting() -> dict[str, dict[str, ModelVersion | None]]:
    """Per kind: the active version and the newest candidate waiting for approval."""
    out: dict[str, dict[str, ModelVersion | None]] = {}
    for v in model_versions().filter(status__in=[ModelStatus.ACTIVE, ModelStatus.CANDIDATE]).order_by("created"):
        slot = out.setdefault(v.kind, {"active": None, "waiting": None})
        slot["active" if v.status == ModelStatus.ACTIVE else "waiting"] = v
    return out

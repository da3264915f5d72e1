"""Segments and predictions: load a tenant's history in bulk, train and check model versions, activate them
atomically, score every customer and write the scores in bulk.

The computation itself is in `personalization.ml` (pure); this module reads from and writes to the database.
All functions run inside the current tenant (`tenant_context`).
"""

from __future__ import annotations

import contextvars
import io
import json
import logging
import pickle
import resource
import time
import zoneinfo
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from threadpoolctl import threadpool_limits

from journeys import bulk
from personalization.ml import btyd, churn, clusters, gates, rfm
from personalization.ml.features import SUPPORT_EVENT_TYPES, btyd_summary, customer_features, cutoff_day, valid_orders
from personalization.models import (
    ClusterLabel,
    CustomerScore,
    ModelKind,
    ModelStatus,
    ModelVersion,
    PersonalizationSettings,
)
from personalization.rules.services import rule_segments_refresh
from tenants.context import current_tenant
from tenants.models import Job, JobStatus, Tenant, User

logger = logging.getLogger(__name__)

PIPELINE_KIND = "personalization.pipeline"
SCORE_KIND = "personalization.score"
PIPELINE_KINDS = (PIPELINE_KIND, SCORE_KIND)
CLV_HOLDOUT_DAYS = 90
CHURN_WINDOW_DAYS = 90
QUEUED_GIVE_UP = timedelta(hours=2)
# Gate of each model kind in personalization.ml.gates.REQUIREMENTS.
GATE_OF: dict[str, str] = {ModelKind.RFM: "rfm", ModelKind.CLUSTERS: "clusters", ModelKind.CLV: "btyd"}
GATE_OF[ModelKind.CHURN] = "churn"

Progress = Callable[[float, str], None]


class PipelineBusyError(Exception):
    """A training or scoring run of this tenant is already queued or running."""

    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__(
            f"A training run is already {job.status} (job #{job.pk}, {job.progress}%: {job.message or 'waiting'}). "
            "Wait for it to finish before starting another."
        )


class ApprovalError(Exception):
    """A model version cannot be approved (wrong state or failed checks)."""


# --------------------------------------------------------------------------------------------- loading


@dataclass
class TenantData:
    """A tenant's history as data frames in the shapes `personalization.ml` expects (local times, naive)."""

    orders: pd.DataFrame
    spend: pd.DataFrame  # customer_id, category, amount (valid orders only)
    events: pd.DataFrame
    feedback: pd.DataFrame
    customer_ids: np.ndarray


def _tz_literal(tz: str) -> str:
    if tz not in zoneinfo.available_timezones():
        raise ValueError(f"unknown time zone {tz!r}")
    return "'" + tz.replace("'", "''") + "'"


# Activity events older than this before the cutoff are not loaded: the features read activity in the 30 days
# before each churn training origin (the oldest is cutoff - 90 - 3 x 30 days). Support contacts load in full.
EVENT_WINDOW_DAYS = 240
_CHUNKS = 64  # rows come back as this many CSV blocks (string_agg per customer_id % _CHUNKS)


def _pg_frame(sql: str, names: list[str], dtype: dict[str, Any]) -> pd.DataFrame:
    """Read a SELECT of plain columns as a data frame. PostgreSQL renders the rows as CSV text in a few dozen
    large blocks (string_agg grouped by customer), so the client handles blocks, not millions of rows."""
    cols = ", ".join(f"q.{n}" for n in names)
    chunked = (
        f"SELECT string_agg(concat_ws(',', {cols}), E'\\n') FROM ({sql}) q"  # noqa: S608 - callers' own SQL
        f" GROUP BY q.customer_id % {_CHUNKS}"
    )
    with connection.cursor() as cursor:
        cursor.execute(chunked)
        blocks = [row[0] for row in cursor.fetchall() if row[0]]
    if not blocks:
        return pd.DataFrame({n: pd.Series(dtype=dtype.get(n, "float64")) for n in names})
    text = "\n".join(blocks)
    return pd.read_csv(io.StringIO(text), header=None, names=names, dtype=dtype, keep_default_na=True)


def _sqlite_frame(sql: str, params: list[Any], names: list[str]) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return pd.DataFrame(cursor.fetchall(), columns=names)


def _local(values: pd.Series, tz: str) -> pd.Series:
    """ISO datetimes (UTC) as naive local times of `tz`."""
    return pd.to_datetime(values, utc=True, format="ISO8601").dt.tz_convert(tz).dt.tz_localize(None)


def _from_epoch(seconds: pd.Series) -> pd.Series:
    return pd.to_datetime(seconds.to_numpy(dtype="int64"), unit="s").to_series(index=seconds.index)


def _day_start_utc(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zoneinfo.ZoneInfo(tz)).astimezone(zoneinfo.ZoneInfo("UTC"))


def tenant_data_load(*, tenant: Tenant, cutoff: date) -> TenantData:
    """The tenant's history up to `cutoff` (inclusive, local days) in a few bulk queries: valid orders (not
    cancelled or refunded), spend per customer and product category, events and CSAT feedback, customer ids.

    Events come as one row per customer, local day and kind (activity or support contact) with the number of
    events in `count`, activity only for the last EVENT_WINDOW_DAYS days: that keeps millions of raw events down
    to what the features read, and the features still count events, not active days.
    """
    end = _day_start_utc(cutoff + timedelta(days=1), tenant.timezone)
    since = _day_start_utc(cutoff - timedelta(days=EVENT_WINDOW_DAYS), tenant.timezone)
    support = tuple(sorted(SUPPORT_EVENT_TYPES))
    if connection.vendor == "postgresql":
        return _pg_load(tenant, support, end, since)
    return _sqlite_load(tenant, support, end, since)


LOAD_THREADS = 3  # the load queries run side by side on their own connections when that is safe


def _pg_load(tenant: Tenant, support: tuple[str, ...], end: datetime, since: datetime) -> TenantData:
    # Only integers, a time zone checked against the zone list, ISO timestamps and our own constants go in here.
    tid, tz = int(tenant.pk), _tz_literal(tenant.timezone)
    support_sql = ", ".join("'" + s + "'" for s in support)
    valid = f"tenant_id = {tid} AND status NOT IN ('cancelled', 'refunded') AND placed_at < '{end.isoformat()}'"
    queries: dict[str, tuple[str, list[str], dict[str, Any]]] = {
        "spend": (
            "SELECT o.customer_id, '\"' || replace(coalesce(nullif(p.category, ''), 'other'), '\"', '\"\"') || '\"'"  # noqa: S608
            " AS category, sum(l.quantity * l.unit_price)::float8 AS amount FROM journeys_orderline l"
            " JOIN journeys_order o ON o.id = l.order_id AND o.tenant_id = l.tenant_id"
            " JOIN journeys_product p ON p.id = l.product_id AND p.tenant_id = l.tenant_id"
            f" WHERE l.tenant_id = {tid} AND o.{valid.replace(' AND ', ' AND o.')} GROUP BY 1, 2",
            ["customer_id", "category", "amount"],
            {"customer_id": "int64", "category": "category", "amount": "float64"},
        ),
        "orders": (
            f"SELECT customer_id, extract(epoch from (placed_at AT TIME ZONE {tz}))::bigint AS epoch,"  # noqa: S608
            f" total::float8 AS total FROM journeys_order WHERE {valid}",
            ["customer_id", "epoch", "total"],
            {"customer_id": "int64", "epoch": "int64", "total": "float64"},
        ),
        "events": (
            f"SELECT customer_id, floor(extract(epoch from (occurred_at AT TIME ZONE {tz})) / 86400)::bigint AS day,"  # noqa: S608
            f" (type IN ({support_sql}))::int AS support, count(*) AS n FROM journeys_event"
            f" WHERE tenant_id = {tid} AND customer_id IS NOT NULL AND occurred_at < '{end.isoformat()}'"
            f" AND (occurred_at >= '{since.isoformat()}' OR type IN ({support_sql})) GROUP BY 1, 2, 3",
            ["customer_id", "day", "support", "n"],
            {"customer_id": "int64", "day": "int64", "support": "int8", "n": "int64"},
        ),
        "feedback": (
            "SELECT customer_id, kind::text AS kind, score::float8 AS score,"  # noqa: S608
            f" extract(epoch from (created AT TIME ZONE {tz}))::bigint AS epoch FROM journeys_feedback"
            f" WHERE tenant_id = {tid} AND customer_id IS NOT NULL AND kind = 'csat' AND created < '{end.isoformat()}'",
            ["customer_id", "kind", "score", "epoch"],
            {"customer_id": "int64", "kind": "category", "score": "float64", "epoch": "int64"},
        ),
        "ids": (
            f"SELECT id AS customer_id FROM journeys_customer WHERE tenant_id = {tid}",  # noqa: S608
            ["customer_id"],
            {"customer_id": "int64"},
        ),
    }
    frames = _pg_frames(queries)
    orders, feedback = frames["orders"], frames["feedback"]
    orders["placed_at"] = _from_epoch(orders.pop("epoch"))
    feedback["submitted_at"] = _from_epoch(feedback.pop("epoch"))
    customer_ids = frames["ids"]["customer_id"].to_numpy(dtype="int64")
    return TenantData(orders, frames["spend"], _events_frame(frames["events"]), feedback, customer_ids)


def _pg_frames(queries: dict[str, tuple[str, list[str], dict[str, Any]]]) -> dict[str, pd.DataFrame]:
    """Run the queries, in parallel threads (each with its own connection, in the same tenant scope) unless the
    caller is inside a transaction, whose uncommitted rows other connections could not see."""
    if connection.in_atomic_block:
        return {name: _pg_frame(*q) for name, q in queries.items()}

    def one(query: tuple[str, list[str], dict[str, Any]]) -> pd.DataFrame:
        try:
            return _pg_frame(*query)
        finally:
            connection.close()  # this thread's connection

    with ThreadPoolExecutor(max_workers=LOAD_THREADS, thread_name_prefix="cx-load") as pool:
        futures = {name: pool.submit(contextvars.copy_context().run, one, q) for name, q in queries.items()}
        return {name: f.result() for name, f in futures.items()}


def _events_frame(daily: pd.DataFrame) -> pd.DataFrame:
    """Daily (customer, day, support, n) rows in the event shape `customer_features` reads (`count` = n events)."""
    return pd.DataFrame(
        {
            "customer_id": daily["customer_id"].to_numpy(dtype="int64"),
            "occurred_at": pd.to_datetime(daily["day"].to_numpy(dtype="int64"), unit="D"),
            "type": np.where(daily["support"].to_numpy(dtype=bool), "support_contact", "activity"),
            "count": daily["n"].to_numpy(dtype="int64"),
        }
    )


def _sqlite_load(tenant: Tenant, support: tuple[str, ...], end: datetime, since: datetime) -> TenantData:
    tid, tz = tenant.pk, tenant.timezone
    valid = "o.tenant_id = %s AND o.status NOT IN ('cancelled', 'refunded') AND o.placed_at < %s"
    orders = _sqlite_frame(
        f"SELECT o.customer_id, o.placed_at, o.total FROM journeys_order o WHERE {valid}",  # noqa: S608
        [tid, end],
        ["customer_id", "placed_at", "total"],
    )
    orders["placed_at"] = _local(orders["placed_at"], tz)
    orders["total"] = orders["total"].astype(float)
    spend = _sqlite_frame(
        "SELECT o.customer_id, coalesce(nullif(p.category, ''), 'other'), sum(l.quantity * l.unit_price)"  # noqa: S608
        " FROM journeys_orderline l JOIN journeys_order o ON o.id = l.order_id"
        f" JOIN journeys_product p ON p.id = l.product_id WHERE {valid} GROUP BY 1, 2",
        [tid, end],
        ["customer_id", "category", "amount"],
    )
    spend["amount"] = spend["amount"].astype(float)
    placeholders = ", ".join(["%s"] * len(support))
    raw = _sqlite_frame(
        "SELECT customer_id, occurred_at, type FROM journeys_event WHERE tenant_id = %s AND customer_id IS NOT NULL"  # noqa: S608
        f" AND occurred_at < %s AND (occurred_at >= %s OR type IN ({placeholders}))",
        [tid, end, since, *support],
        ["customer_id", "occurred_at", "type"],
    )
    day = (_local(raw["occurred_at"], tz).to_numpy().astype("datetime64[D]").astype("int64")) if len(raw) else []
    daily = (
        pd.DataFrame({"customer_id": raw["customer_id"], "day": day, "support": raw["type"].isin(support).astype(int)})
        .groupby(["customer_id", "day", "support"], sort=False)
        .size()
        .rename("n")
        .reset_index()
    )
    feedback = _sqlite_frame(
        "SELECT customer_id, kind, score, created FROM journeys_feedback"
        " WHERE tenant_id = %s AND customer_id IS NOT NULL AND kind = 'csat' AND created < %s",
        [tid, end],
        ["customer_id", "kind", "score", "submitted_at"],
    )
    feedback["submitted_at"] = _local(feedback["submitted_at"], tz)
    feedback["score"] = feedback["score"].astype(float)
    ids = _sqlite_frame("SELECT id FROM journeys_customer WHERE tenant_id = %s", [tid], ["id"])
    return TenantData(orders, spend, _events_frame(daily), feedback, ids["id"].to_numpy(dtype="int64"))


def category_shares(spend: pd.DataFrame) -> pd.DataFrame:
    """`cat_<category>` share of each customer's spend (as `customer_features` computes from order lines)."""
    if spend.empty:
        return pd.DataFrame()
    wide = spend.pivot_table(index="customer_id", columns="category", values="amount", aggfunc="sum", fill_value=0.0,
                             observed=True)  # fmt: skip
    shares = wide.div(wide.sum(axis=1).replace(0.0, np.nan), axis=0).fillna(0.0)
    shares.columns = [f"cat_{c}" for c in shares.columns]
    return shares


def tenant_cutoff(tenant: Tenant, at: datetime | None = None) -> date:
    """Today in the tenant's time zone: the last (inclusive) day of data a run uses."""
    return (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(tenant.timezone)).date()


# --------------------------------------------------------------------------------------------- settings, jobs


def settings_for_tenant() -> PersonalizationSettings:
    """The current tenant's settings row, created with defaults on first use."""
    obj, _ = PersonalizationSettings.objects.get_or_create(tenant_id=current_tenant().pk)
    return obj


def settings_update(*, require_approval: bool, nightly_retrain: bool) -> PersonalizationSettings:
    obj = settings_for_tenant()
    obj.require_approval, obj.nightly_retrain, obj.updated = require_approval, nightly_retrain, timezone.now()
    obj.save(update_fields=["require_approval", "nightly_retrain", "updated"])
    return obj


def training_params_check(*, cutoff: date | None) -> dict[str, Any]:
    """The job parameters of a training run as of `cutoff` (the last day of data used; None = today in the
    tenant's time zone). Raises ValueError for a day in the future."""
    if cutoff is None:
        return {}
    if cutoff > tenant_cutoff(current_tenant()):
        raise ValueError("The training cutoff cannot be in the future.")
    return {"cutoff": cutoff.isoformat()}


def pipeline_start(
    *,
    kind: str = PIPELINE_KIND,
    created_by: User | None = None,
    params: dict[str, Any] | None = None,
    run_now: bool = False,
) -> Job:
    """Queue a training (or score-only) run for the current tenant. Raises PipelineBusyError when one is queued
    or running: the check and the insert run under a lock on the tenant's settings row."""
    from tenants.jobs import job_start

    with transaction.atomic():
        settings_for_tenant()
        PersonalizationSettings.objects.select_for_update().get()
        # A run queued long ago that no worker took (none was listening on `ml`) must not block the tenant forever.
        Job.objects.filter(
            kind__in=PIPELINE_KINDS, status=JobStatus.QUEUED, created__lt=timezone.now() - QUEUED_GIVE_UP
        ).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            message="No worker took this run; start a new one",
        )
        busy = Job.objects.filter(kind__in=PIPELINE_KINDS, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        running = busy.order_by("created").first()
        if running is not None:
            raise PipelineBusyError(running)
        # Runs that failed for good (a lost worker, retries used up) may have left candidates behind.
        interrupted_candidates_reject(jobs=Job.objects.filter(kind=PIPELINE_KIND, status=JobStatus.FAILED))
        return job_start(kind=kind, params=params or {}, created_by=created_by, run_now=run_now)


def interrupted_candidates_reject(*, jobs: QuerySet[Job]) -> int:
    """Reject the candidate versions written by `jobs` (attempts that died or failed before activating them), so
    none waits as a candidate forever. Returns how many were rejected."""
    stale = list(ModelVersion.objects.filter(job__in=jobs, status=ModelStatus.CANDIDATE))
    note = _check("run finished", False, "the training run stopped before this version could be activated")
    for version in stale:
        version.status, version.passed_checks, version.checks = ModelStatus.REJECTED, False, [*version.checks, note]
        version.save(update_fields=["status", "passed_checks", "checks"])
    if stale:
        logger.warning("rejected %s candidate versions left by interrupted runs", len(stale))
    return len(stale)


# --------------------------------------------------------------------------------------------- training


@dataclass
class Trained:
    """A candidate version with the in-memory model it describes (so scoring need not rebuild it)."""

    version: ModelVersion
    model: Any


@dataclass
class RunContext:
    """What one pipeline run shares between stages."""

    tenant: Tenant
    cutoff: date
    job: Job | None
    data: TenantData
    features: pd.DataFrame
    gates: dict[str, gates.GateResult]
    first_day: date | None = None
    trained: dict[str, Trained] = field(default_factory=dict)
    timings: list[dict[str, Any]] = field(default_factory=list)


def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "detail": detail}


def _next_number(kind: str) -> int:
    last = ModelVersion.objects.filter(kind=kind).order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def _version(ctx: RunContext, kind: str, **fields: Any) -> ModelVersion:
    """Write a complete candidate version (status candidate, or rejected when a check failed)."""
    checks = fields.pop("checks")
    passed = all(c["passed"] for c in checks)
    return ModelVersion.objects.create(
        kind=kind,
        number=_next_number(kind),
        status=ModelStatus.CANDIDATE if passed else ModelStatus.REJECTED,
        checks=checks,
        passed_checks=passed,
        training_start=ctx.first_day,
        training_end=ctx.cutoff,
        job=ctx.job,
        **fields,
    )


def _json_safe(value: Any) -> Any:
    """Floats that JSON can hold (NaN/inf become None), recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def train_rfm(ctx: RunContext) -> Trained:
    """RFM is recomputed from quintiles at every run; its version records the cut points and the grid."""
    scores = rfm.rfm_from_features(ctx.features)
    buyers = ctx.features[ctx.features["orders"] > 0]
    summary = rfm.segment_grid_summary(scores, buyers["total_spent"])
    edges = {
        col: [float(v) for v in buyers[col].quantile([0.2, 0.4, 0.6, 0.8]).to_numpy()]
        for col in ("days_since_last_order", "orders", "total_spent")
    }
    version = _version(
        ctx,
        ModelKind.RFM,
        algorithm="RFM quintiles",
        parameters=_json_safe({"quintile_edges": edges, "grid": rfm.SEGMENT_GRID.tolist()}),
        features=["days_since_last_order", "orders", "total_spent"],
        n_customers=len(scores),
        metrics=_json_safe({"segments": summary.reset_index().to_dict("records")}),
        checks=[_check("customers", len(scores) > 0, f"{len(scores)} customers with an order")],
    )
    return Trained(version, None)


def train_clusters(ctx: RunContext, previous: clusters.ClusterModel | None) -> Trained:
    """k-means with k by silhouette; ids matched to the previous active version's centroids."""
    model, _labels = clusters.fit_clusters(ctx.features, previous=previous)
    best = model.silhouettes.get(model.k, float("nan"))
    version = _version(
        ctx,
        ModelKind.CLUSTERS,
        algorithm=f"k-means, k={model.k} by silhouette",
        parameters=_json_safe(model.as_dict()),
        features=list(model.feature_names),
        n_customers=int(sum(model.sizes.values())),
        metrics=_json_safe({"silhouette": best, "k": model.k}),
        baseline_name="no structure (silhouette 0)",
        baseline_metrics={"silhouette": 0.0},
        checks=[
            _check("separation", best >= 0.1, f"silhouette {best:.3f} (needs at least 0.10)"),
            _check(
                "no tiny clusters",
                min(model.sizes.values()) >= max(3, 0.005 * sum(model.sizes.values())),
                f"smallest cluster {min(model.sizes.values())} customers",
            ),
        ],
    )
    return Trained(version, model)


def _repeat_days_after(orders: pd.DataFrame, start: date, end: date) -> pd.Series:
    """Distinct purchase days per customer in (start, end]."""
    v = valid_orders(orders, end)
    v = v[v["day"] > cutoff_day(start)]
    return v.drop_duplicates(["customer_id", "day"]).groupby("customer_id").size()


def clv_holdout(orders: pd.DataFrame, cutoff: date, days: int = CLV_HOLDOUT_DAYS) -> dict[str, Any]:
    """Fit on data up to `cutoff - days`, predict purchases in the next `days`, compare with what happened and with
    the baseline "each customer keeps their past rate" (frequency / T x days)."""
    calibration = cutoff - timedelta(days=days)
    summary = btyd_summary(orders, cutoff=calibration)
    if len(summary) < 30:
        raise ValueError("not enough customers before the holdout window")
    model = btyd.clv_fit(summary)
    pred = btyd.clv_predict(model, summary, horizons_days=(days,))[f"expected_purchases_{days}d"].to_numpy()
    actual = _repeat_days_after(orders, calibration, cutoff).reindex(summary.index).fillna(0).to_numpy(dtype=float)
    rate = summary["frequency"].to_numpy(dtype=float) / summary["T"].clip(lower=1.0).to_numpy(dtype=float) * days
    return {
        "holdout_days": days,
        "calibration_end": str(calibration),
        "customers": len(summary),
        "mae": float(np.mean(np.abs(pred - actual))),
        "baseline_mae": float(np.mean(np.abs(rate - actual))),
        "predicted_total": float(pred.sum()),
        "actual_total": float(actual.sum()),
        "baseline_total": float(rate.sum()),
    }


def _clv_params(model: btyd.ClvModel) -> dict[str, Any]:
    return _json_safe(
        {
            "bgnbd": asdict(model.bgnbd),
            "gamma_gamma": asdict(model.gamma_gamma) if model.gamma_gamma else None,
            "days_per_unit": model.days_per_unit,
        }
    )


def clv_model_from(params: dict[str, Any]) -> btyd.ClvModel:
    """Rebuild a ClvModel from a version's parameters."""
    gg = params.get("gamma_gamma")
    return btyd.ClvModel(
        bgnbd=btyd.BGNBDParams(**params["bgnbd"]),
        gamma_gamma=btyd.GammaGammaParams(**gg) if gg else None,
        days_per_unit=float(params.get("days_per_unit", 1.0)),
    )


def train_clv(ctx: RunContext) -> Trained:
    """BG/NBD + Gamma-Gamma on the whole history (days), measured on a 90-day holdout against past rates."""
    summary = ctx.features.loc[ctx.features["orders"] > 0, ["frequency", "recency", "T", "monetary_value"]]
    model = btyd.clv_fit(summary)
    checks = [
        _check("converged", model.bgnbd.converged, f"BG/NBD optimiser converged in {model.bgnbd.iterations} steps"),
        _check(
            "spend model",
            model.gamma_gamma is not None,
            "Gamma-Gamma fitted" if model.gamma_gamma else "Gamma-Gamma could not be fitted",
        ),
    ]
    try:
        holdout = clv_holdout(ctx.data.orders, ctx.cutoff)
    except (ValueError, btyd.FitError) as exc:
        holdout = {}
        checks.append(_check("holdout", False, f"could not measure on a holdout: {exc}"))
    else:
        ok = holdout["mae"] <= holdout["baseline_mae"] * 1.05
        checks.append(
            _check(
                "beats past rate",
                ok,
                f"holdout error {holdout['mae']:.3f} orders per customer vs {holdout['baseline_mae']:.3f} for the "
                "baseline (may be at most 5% worse)",
            )
        )
    version = _version(
        ctx,
        ModelKind.CLV,
        algorithm="BG/NBD + Gamma-Gamma (maximum likelihood)",
        parameters=_clv_params(model),
        features=["frequency", "recency", "T", "monetary_value"],
        n_customers=len(summary),
        metrics=_json_safe({k: v for k, v in holdout.items() if not k.startswith("baseline")}),
        baseline_name="past purchase rate (frequency / T)",
        baseline_metrics=_json_safe({k: v for k, v in holdout.items() if k.startswith("baseline")}),
        checks=checks,
    )
    return Trained(version, model)


def train_churn(ctx: RunContext) -> Trained:
    """Supervised churn model on past cutoffs; must rank the newest holdout at least as well as recency alone."""
    model = churn.churn_train(
        ctx.data.orders,
        cutoff=ctx.cutoff,
        window_days=CHURN_WINDOW_DAYS,
        events=ctx.data.events,
        feedback=ctx.data.feedback,
    )
    holdout = model.holdout
    if holdout is None:
        checks = [_check("holdout", False, "not enough history for a holdout origin")]
        metrics: dict[str, Any] = {}
        baselines: dict[str, Any] = {}
    else:
        best_name, best = max(holdout.baselines.items(), key=lambda kv: kv[1])
        checks = [
            _check("better than chance", holdout.auc > 0.55, f"holdout AUC {holdout.auc:.3f} (needs above 0.55)"),
            _check(
                "not worse than baseline",
                holdout.auc >= best - 0.01,
                f"AUC {holdout.auc:.3f} vs {best_name} {best:.3f}",
            ),
        ]
        metrics = {"auc": holdout.auc, "churn_rate": holdout.churn_rate, "customers": holdout.n_customers}
        metrics["origin"] = holdout.origin
        baselines = {f"auc_{k}": v for k, v in holdout.baselines.items()}
    version = _version(
        ctx,
        ModelKind.CHURN,
        algorithm=f"{model.estimator_name} classifier, {model.window_days}-day window",
        parameters=_json_safe(
            {"estimator": model.estimator_name, "window_days": model.window_days, "origins": model.origins}
            | {"training_rows": model.n_rows}
            | dict(model.params)
        ),
        features=list(model.feature_names),
        n_customers=holdout.n_customers if holdout else 0,
        metrics=_json_safe(metrics),
        baseline_name="recency alone; BG/NBD expected purchases",
        baseline_metrics=_json_safe(baselines),
        checks=checks,
        artifact=pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
    )
    return Trained(version, model)


# --------------------------------------------------------------------------------------------- activation


def model_versions_activate(*, versions: list[ModelVersion], approved_by: User | None = None) -> None:
    """Make `versions` active, retiring the active version of each kind, all in one transaction.

    Each must be a candidate that passed its checks; raises ApprovalError otherwise (and nothing changes).
    """
    moment = timezone.now()
    with transaction.atomic():
        for v in versions:
            fresh = ModelVersion.objects.select_for_update().get(pk=v.pk)
            if fresh.status != ModelStatus.CANDIDATE or not fresh.passed_checks:
                raise ApprovalError(f"{fresh} is {fresh.status} and cannot become active.")
            ModelVersion.objects.filter(kind=fresh.kind, status=ModelStatus.ACTIVE).update(
                status=ModelStatus.RETIRED, retired_at=moment
            )
            fresh.status, fresh.activated_at = ModelStatus.ACTIVE, moment
            if approved_by is not None:
                fresh.approved_by, fresh.approved_at = approved_by, moment
            fresh.save(update_fields=["status", "activated_at", "approved_by", "approved_at"])
            v.status, v.activated_at = fresh.status, fresh.activated_at


def model_version_approve(*, version: ModelVersion, user: User) -> Job | None:
    """An owner approves a waiting candidate: it becomes active and a scoring run is queued (None when a run is
    already under way: that run scores with the newly active version)."""
    model_versions_activate(versions=[version], approved_by=user)
    try:
        return pipeline_start(kind=SCORE_KIND, created_by=user)
    except PipelineBusyError:
        return None


def active_versions() -> dict[str, ModelVersion]:
    return {v.kind: v for v in ModelVersion.objects.filter(status=ModelStatus.ACTIVE)}


# --------------------------------------------------------------------------------------------- scoring


def _model_of(kind: str, version: ModelVersion, trained: dict[str, Trained]) -> Any:
    t = trained.get(kind)
    if t is not None and t.version.pk == version.pk and t.model is not None:
        return t.model
    if kind == ModelKind.CLV:
        return clv_model_from(version.parameters)
    if kind == ModelKind.CLUSTERS:
        return clusters.ClusterModel.from_dict(version.parameters)
    if kind == ModelKind.CHURN:
        return pickle.loads(bytes(version.artifact or b""))  # noqa: S301 - our own artifact, from our own database
    return None


def scores_frame(ctx: RunContext, active: dict[str, ModelVersion]) -> pd.DataFrame:
    """Every customer's scores under the active versions (RFM recomputed; churn falls back to the simple score)."""
    f = ctx.features
    out = pd.DataFrame(index=f.index)
    out["orders"] = f["orders"].astype("int64")
    out["historic_value"] = f["total_spent"].astype(float)
    out["days_since_last_order"] = f["days_since_last_order"]
    for name in FEATURE_SCORE_COLUMNS:
        out[name] = f[name]
    used: dict[str, Any] = {}
    buyers = f[f["orders"] > 0]
    if len(buyers):
        r = rfm.rfm_from_features(f)
        out["r_score"], out["f_score"], out["m_score"] = r["r"], r["f"], r["m"]
        out["rfm_segment"] = r["segment"].astype(object)
        if ModelKind.RFM in active:
            used["rfm"] = active[ModelKind.RFM].pk
    bgnbd: btyd.BGNBDParams | None = None
    if ModelKind.CLV in active and len(buyers):
        model = _model_of(ModelKind.CLV, active[ModelKind.CLV], ctx.trained)
        if model.days_per_unit == 1.0:
            bgnbd = model.bgnbd  # the churn features reuse it rather than fitting BG/NBD again
        summary = buyers[["frequency", "recency", "T", "monetary_value"]]
        pred = btyd.clv_predict(model, summary, cutoff=ctx.cutoff, aov=buyers["aov"])
        out["probability_alive"] = pred["p_alive"]
        out["expected_orders_90d"] = pred["expected_purchases_90d"]
        out["expected_orders_365d"] = pred["expected_purchases_365d"]
        out["predicted_value_365d"] = pred["predicted_value_365d"]
        out["next_order_date"] = pred["expected_next_order"]
        used["clv"] = active[ModelKind.CLV].pk
    if ModelKind.CLUSTERS in active and len(buyers):
        model = _model_of(ModelKind.CLUSTERS, active[ModelKind.CLUSTERS], ctx.trained)
        out["cluster"] = clusters.assign_clusters(model, f)
        used["clusters"] = active[ModelKind.CLUSTERS].pk
    if len(buyers):
        if ModelKind.CHURN in active:
            model = _model_of(ModelKind.CHURN, active[ModelKind.CHURN], ctx.trained)
            frame = churn.churn_frame(
                ctx.data.orders, cutoff=ctx.cutoff, window_days=model.window_days, features=f, bgnbd=bgnbd
            )
            risk = churn_risk_with_reasons(model, frame)
            used["churn"] = active[ModelKind.CHURN].pk
        else:
            risk = churn.churn_fallback_score(f)
            used["churn"] = "fallback"
        out["churn_risk"] = risk["risk"]
        out["churn_band"] = risk["band"]
        out["reasons"] = risk["reasons"]
    out.attrs["model_versions"] = used
    return out


REASON_MIN_RISK = 0.3  # reasons are worked out (and shown) for medium and high risk only


def churn_risk_with_reasons(model: churn.ChurnModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Like `churn.churn_score`, but reasons only for customers at medium or high risk: each reason costs a model
    evaluation per reason group, and nobody reads the reasons of a low risk. Single-threaded, as training is: on a
    busy worker, OpenMP threads of the boosted trees wait on each other far longer than they save."""
    with threadpool_limits(1):
        risk = model.estimator.predict_proba(frame[model.feature_names].to_numpy(dtype=float))[:, 1]
        out = pd.DataFrame({"risk": risk, "band": churn.band_for(risk)}, index=frame.index)
        out["reasons"] = ""
        risky = risk >= REASON_MIN_RISK
        if risky.any():
            sub = frame[risky]
            contrib = churn.group_contributions(model, sub, risk[risky])
            out.loc[risky, "reasons"] = churn.churn_reasons(sub, contrib)
    return out


SCORE_COLUMNS: tuple[str, ...] = (
    "tenant_id",
    "customer_id",
    "orders",
    "historic_value",
    "days_since_last_order",
    "probability_alive",
    "expected_orders_90d",
    "expected_orders_365d",
    "predicted_value_365d",
    "next_order_date",
    "churn_risk",
    "churn_band",
    "reasons",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "cluster",
    "tenure_days",
    "avg_days_between_orders",
    "events_30d",
    "support_contacts",
    "avg_csat",
    "model_versions",
    "scored_at",
)
# Computed features stored with the scores (rule segments filter on them; the customer page shows them).
FEATURE_SCORE_COLUMNS: tuple[str, ...] = (
    "tenure_days",
    "avg_days_between_orders",
    "events_30d",
    "support_contacts",
    "avg_csat",
)


def _column_values(frame: pd.DataFrame, name: str, n: int, kind: str) -> list[Any]:
    """Plain Python values of one score column (None for missing), as the database drivers want them."""
    if name not in frame:
        return [None] * n if kind != "text" else [""] * n
    s = frame[name]
    if kind == "float":
        arr = s.to_numpy(dtype=float)
        return [None if not np.isfinite(v) else float(v) for v in arr.tolist()]
    if kind == "int":
        arr = s.to_numpy(dtype=float)
        return [None if not np.isfinite(v) else int(v) for v in arr.tolist()]
    if kind == "date":
        return [None if pd.isna(v) else v.date() for v in s.tolist()]
    if kind == "text":
        return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in s.tolist()]
    raise ValueError(kind)


def scores_write(frame: pd.DataFrame, *, tenant: Tenant, scored_at: datetime) -> int:
    """Replace the tenant's customer scores with `frame` (index customer id) in one transaction.

    PostgreSQL: COPY (CSV built by pandas) into a temporary table, then INSERT ... ON CONFLICT (tenant, customer)
    DO UPDATE (COPY straight into a table under row-level security is refused). Elsewhere: batched upserts.
    Rows of customers not in `frame` are deleted.
    """
    updates = [c for c in SCORE_COLUMNS if c not in ("tenant_id", "customer_id")]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _pg_scores_write(frame, tenant=tenant, scored_at=scored_at, updates=updates)
        else:
            rows = _score_rows(frame, tenant=tenant, scored_at=scored_at)
            for start in range(0, len(rows), 5000):
                bulk.upsert(
                    CustomerScore,
                    columns=SCORE_COLUMNS,
                    rows=rows[start : start + 5000],
                    conflict=("tenant_id", "customer_id"),
                    update=updates,
                )
        CustomerScore.objects.exclude(scored_at=scored_at).delete()
    return len(frame)


def _score_rows(frame: pd.DataFrame, *, tenant: Tenant, scored_at: datetime) -> list[tuple[Any, ...]]:
    """The scores as rows of Python values in SCORE_COLUMNS order."""
    n = len(frame)
    kinds = {
        "orders": "int",
        "historic_value": "float",
        "days_since_last_order": "int",
        "probability_alive": "float",
        "expected_orders_90d": "float",
        "expected_orders_365d": "float",
        "predicted_value_365d": "float",
        "next_order_date": "date",
        "churn_risk": "float",
        "churn_band": "text",
        "r_score": "int",
        "f_score": "int",
        "m_score": "int",
        "rfm_segment": "text",
        "cluster": "int",
        "tenure_days": "int",
        "avg_days_between_orders": "float",
        "events_30d": "int",
        "support_contacts": "int",
        "avg_csat": "float",
    }
    columns: dict[str, list[Any]] = {"tenant_id": [tenant.pk] * n, "customer_id": frame.index.tolist()}
    for name, kind in kinds.items():
        columns[name] = _column_values(frame, name, n, kind)
    reasons = frame["reasons"].tolist() if "reasons" in frame else [""] * n
    columns["reasons"] = [[r] if isinstance(r, str) and r else [] for r in reasons]
    columns["model_versions"] = [frame.attrs.get("model_versions", {})] * n
    columns["scored_at"] = [scored_at] * n
    return list(zip(*(columns[c] for c in SCORE_COLUMNS), strict=True))


def _pg_scores_write(frame: pd.DataFrame, *, tenant: Tenant, scored_at: datetime, updates: list[str]) -> None:
    qn = connection.ops.quote_name
    table = qn(CustomerScore._meta.db_table)
    cols = ", ".join(qn(c) for c in SCORE_COLUMNS)
    sets = ", ".join(f"{qn(c)} = EXCLUDED.{qn(c)}" for c in updates)
    csv_text = _scores_csv(frame, tenant=tenant, scored_at=scored_at)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS _cx_scores")
        cursor.execute(f"CREATE TEMPORARY TABLE _cx_scores ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA")  # noqa: S608
        copy_sql = f"COPY _cx_scores ({cols}) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (churn_band, rfm_segment))"
        with cursor.copy(copy_sql) as copy:
            copy.write(csv_text)
        cursor.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _cx_scores"  # noqa: S608 - names quoted
            f" ON CONFLICT (tenant_id, customer_id) DO UPDATE SET {sets}"
        )


def _scores_csv(frame: pd.DataFrame, *, tenant: Tenant, scored_at: datetime) -> str:
    """The scores as CSV in SCORE_COLUMNS order, built column-wise by pandas (NULL = unquoted empty field)."""
    n = len(frame)
    out = pd.DataFrame(index=frame.index)
    out["tenant_id"] = tenant.pk
    out["customer_id"] = frame.index.to_numpy()
    ints = ("orders", "days_since_last_order", "r_score", "f_score", "m_score", "cluster", "tenure_days",
            "events_30d", "support_contacts")  # fmt: skip
    floats = ("historic_value", "probability_alive", "expected_orders_90d", "expected_orders_365d",
              "predicted_value_365d", "churn_risk", "avg_days_between_orders", "avg_csat")  # fmt: skip
    for name in SCORE_COLUMNS[2:]:
        if name in ints:
            out[name] = frame[name].round().astype("Int64") if name in frame else pd.array([pd.NA] * n, "Int64")
        elif name in floats:  # 6 decimals are plenty, and half the text (and time) of full precision
            out[name] = frame[name].astype(float).round(6) if name in frame else np.nan
        elif name == "next_order_date":
            out[name] = pd.to_datetime(frame[name]).dt.strftime("%Y-%m-%d") if name in frame else None
        elif name in ("churn_band", "rfm_segment"):
            out[name] = frame[name].astype(object).where(frame[name].notna(), "") if name in frame else ""
        elif name == "reasons":
            reasons = frame[name] if name in frame else pd.Series("", index=frame.index)
            out[name] = [json.dumps([r]) if isinstance(r, str) and r else "[]" for r in reasons.tolist()]
        elif name == "model_versions":
            out[name] = json.dumps(frame.attrs.get("model_versions", {}))
        elif name == "scored_at":
            out[name] = scored_at.isoformat()
    return out.to_csv(header=False, index=False, na_rep="")


def cluster_labels_refresh(model: clusters.ClusterModel, version: ModelVersion, sizes: pd.Series) -> None:
    """Descriptions and sizes of the active clusters (names set by users are kept; ids are stable)."""
    moment = timezone.now()
    existing = {c.cluster_id: c for c in ClusterLabel.objects.all()}
    for cid in model.cluster_ids:
        label = existing.get(cid) or ClusterLabel(cluster_id=cid)
        label.description = model.descriptions.get(cid, "")[:255]
        label.customers = int(sizes.get(cid, 0))
        label.model_version, label.updated = version, moment
        label.save()
    ClusterLabel.objects.exclude(cluster_id__in=model.cluster_ids).update(customers=0)


def cluster_rename(*, cluster_id: int, name: str) -> ClusterLabel:
    """Give a stable cluster id a name (empty name = back to its description). Raises ClusterLabel.DoesNotExist."""
    label = ClusterLabel.objects.get(cluster_id=cluster_id)
    label.name, label.updated = name.strip()[:80], timezone.now()
    label.save(update_fields=["name", "updated"])
    return label


# --------------------------------------------------------------------------------------------- the pipeline


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _proc_status_mb(field_name: str) -> float | None:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM) in MB; None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Restart the peak-RSS count (Linux: clear_refs 5), so the next reading is a stage's own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


class _Stages:
    """Times each stage, records its own peak memory (the high-water mark since the stage began, where the OS lets
    us restart it; otherwise the process's running peak) and reports progress."""

    def __init__(self, progress: Progress | None, timings: list[dict[str, Any]]) -> None:
        self.progress, self.timings = progress, timings
        self.peak_mb = 0.0

    def run(self, name: str, percent: float, fn: Callable[[], Any]) -> Any:
        if self.progress:
            self.progress(percent, name)
        own = _reset_peak()
        start_mb = _proc_status_mb("VmRSS")
        started, cpu = time.perf_counter(), time.process_time()
        out = fn()
        peak = (_proc_status_mb("VmHWM") if own else None) or _peak_mb()
        self.peak_mb = max(self.peak_mb, peak)
        self.timings.append(
            {
                "stage": name,
                "seconds": round(time.perf_counter() - started, 3),
                "cpu_seconds": round(time.process_time() - cpu, 3),
                "peak_mb": round(peak, 1),
                "start_mb": round(start_mb, 1) if start_mb is not None else None,
                "own_peak": own,
            }
        )
        return out


def pipeline_run(
    *, job: Job | None = None, train: bool = True, cutoff: date | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Load data, check gates, train candidates (if `train`), activate those that pass (unless the tenant requires
    approval), score every customer with the active versions and refresh dynamic rule segments.

    A failure while training rejects this run's candidates and re-raises: active versions are untouched.
    Returns the run's report (gates, versions, timings) for the job result.
    """
    tenant = current_tenant()
    settings_obj = settings_for_tenant()
    if job is not None and train:  # a retry or redelivery: what an earlier attempt of this job wrote is void
        interrupted_candidates_reject(jobs=Job.objects.filter(pk=job.pk))
    cut = cutoff or tenant_cutoff(tenant)
    timings: list[dict[str, Any]] = []
    st = _Stages(progress, timings)
    data = st.run("load data", 2, lambda: tenant_data_load(tenant=tenant, cutoff=cut))
    features = st.run("features", 10, lambda: _features(data, cut))
    verdicts = gates.data_gates(data.orders, cutoff=cut)
    ctx = RunContext(tenant=tenant, cutoff=cut, job=job, data=data, features=features, gates=verdicts, timings=timings)
    if len(data.orders):
        ctx.first_day = pd.Timestamp(data.orders["placed_at"].min()).date()
    report: dict[str, Any] = {"cutoff": str(cut), "gates": _gates_report(verdicts), "versions": {}, "skipped": {}}

    if train:
        _train_all(ctx, st, report, require_approval=settings_obj.require_approval)

    active = active_versions()
    frame = st.run("score customers", 80, lambda: scores_frame(ctx, active))
    scored_at = timezone.now()
    report["scored"] = st.run("write scores", 88, lambda: scores_write(frame, tenant=tenant, scored_at=scored_at))
    report["model_versions_used"] = frame.attrs.get("model_versions", {})
    if ModelKind.CLUSTERS in active and "cluster" in frame:
        model = _model_of(ModelKind.CLUSTERS, active[ModelKind.CLUSTERS], ctx.trained)
        sizes = frame["cluster"].value_counts()
        cluster_labels_refresh(model, active[ModelKind.CLUSTERS], sizes)
    report["rule_segments"] = st.run("refresh rule segments", 95, _rule_segments_refresh)
    report["timings"] = timings
    report["total_seconds"] = round(sum(t["seconds"] for t in timings), 3)
    report["peak_mb"] = round(st.peak_mb, 1)  # the highest of the stages' peaks
    return report


def _features(data: TenantData, cut: date) -> pd.DataFrame:
    features = customer_features(
        data.orders, cutoff=cut, events=data.events, feedback=data.feedback, customer_ids=data.customer_ids
    )
    features = features[features.index.isin(data.customer_ids)]
    shares = category_shares(data.spend)
    return features.join(shares.reindex(features.index)) if len(shares.columns) else features


def _gates_report(verdicts: dict[str, gates.GateResult]) -> dict[str, Any]:
    return {
        name: {
            "ready": g.ready,
            "missing": g.missing,
            "expected_ready": g.expected_ready.isoformat() if g.expected_ready else None,
            "measured": g.measured,
        }
        for name, g in verdicts.items()
    }


def _train_all(ctx: RunContext, st: _Stages, report: dict[str, Any], *, require_approval: bool) -> None:
    active = active_versions()
    previous_clusters = (
        clusters.ClusterModel.from_dict(active[ModelKind.CLUSTERS].parameters) if ModelKind.CLUSTERS in active else None
    )
    steps: list[tuple[str, str, float, Callable[[], Trained]]] = [
        (ModelKind.RFM, "RFM", 20, lambda: train_rfm(ctx)),
        (ModelKind.CLUSTERS, "clusters", 28, lambda: train_clusters(ctx, previous_clusters)),
        (ModelKind.CLV, "BG/NBD + Gamma-Gamma", 40, lambda: train_clv(ctx)),
        (ModelKind.CHURN, "churn model", 55, lambda: train_churn(ctx)),
    ]
    try:
        for kind, label, pct, fn in steps:
            gate = ctx.gates[GATE_OF[kind]]
            if not gate.ready:
                report["skipped"][kind] = "; ".join(gate.missing)
                continue
            ctx.trained[kind] = st.run(f"train {label}", pct, fn)
    except Exception:
        # Written candidates of this run never become active; the previous versions stay in place.
        ModelVersion.objects.filter(
            pk__in=[t.version.pk for t in ctx.trained.values()], status=ModelStatus.CANDIDATE
        ).update(status=ModelStatus.REJECTED)
        raise
    passed = [t.version for t in ctx.trained.values() if t.version.passed_checks]
    for t in ctx.trained.values():
        report["versions"][t.version.kind] = {
            "id": t.version.pk,
            "number": t.version.number,
            "passed_checks": t.version.passed_checks,
            "status": t.version.status,
        }
    # Older candidates still waiting for approval are superseded by this run's.
    ModelVersion.objects.filter(kind__in=[v.kind for v in passed], status=ModelStatus.CANDIDATE).exclude(
        pk__in=[v.pk for v in passed]
    ).update(status=ModelStatus.RETIRED, retired_at=timezone.now())
    if passed and not require_approval:
        st.run("activate", 75, lambda: model_versions_activate(versions=passed))
    for v in passed:
        report["versions"][v.kind]["status"] = v.status
    report["awaiting_approval"] = [v.pk for v in passed if v.status == ModelStatus.CANDIDATE]


def _rule_segments_refresh() -> dict[str, Any]:
    return {"refreshed": rule_segments_refresh(tenant=current_tenant())}

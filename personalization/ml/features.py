"""Per-customer features from orders, events and feedback, computed for a whole tenant in one vectorised pass.

Time convention: everything is counted in whole days. `cutoff` is the last day observed, inclusive
(an order placed any time on the cutoff's date counts); ages are `cutoff_day - day`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Literal

import numpy as np
import pandas as pd

EXCLUDED_STATUSES: frozenset[str] = frozenset({"cancelled", "canceled", "refunded"})
SUPPORT_EVENT_TYPES: frozenset[str] = frozenset(
    {"support_contact", "conversation", "conversation_started", "chat_started", "handoff", "ticket"}
)
ENGAGEMENT_WINDOW_DAYS = 30
DAYS_PER_UNIT: dict[str, float] = {"days": 1.0, "weeks": 7.0}

FEATURE_COLUMNS: tuple[str, ...] = (
    "orders",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "days_since_last_order",
    "total_spent",
    "aov",
    "tenure_days",
    "avg_days_between_orders",
    "events_30d",
    "support_contacts",
    "avg_csat",
)


def to_day(values: pd.Series | pd.Index | Iterable[object]) -> np.ndarray:
    """Whole days since 1970-01-01 (int64) of datetimes or dates; time zone kept as given (local days if tz-aware)."""
    dt = pd.to_datetime(pd.Series(values) if not isinstance(values, pd.Series) else values)
    if getattr(dt.dt, "tz", None) is not None:
        dt = dt.dt.tz_localize(None)
    return np.asarray(dt.dt.normalize().values.astype("datetime64[D]").astype(np.int64))


def cutoff_day(cutoff: object) -> int:
    """The cutoff as whole days since 1970-01-01; the cutoff's whole day is inside the observation."""
    ts = pd.Timestamp(cutoff)  # type: ignore[arg-type]
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return int(np.datetime64(ts.normalize().date(), "D").astype(np.int64))


def valid_orders(orders: pd.DataFrame, cutoff: object, start: object | None = None) -> pd.DataFrame:
    """Orders counted for modelling: not cancelled/refunded, placed on or before `cutoff` (and on/after `start`).

    Returns columns customer_id, day (int days since epoch), total and order_id when present.
    """
    mask = np.ones(len(orders), dtype=bool)
    if "status" in orders.columns:
        status = orders["status"].astype("string").str.lower()
        mask &= ~status.isin(EXCLUDED_STATUSES).fillna(False).to_numpy(dtype=bool)
    day = to_day(orders["placed_at"])
    mask &= day <= cutoff_day(cutoff)
    if start is not None:
        mask &= day >= cutoff_day(start)
    out = pd.DataFrame(
        {
            "customer_id": orders["customer_id"].to_numpy()[mask],
            "day": day[mask],
            "total": orders["total"].to_numpy(dtype=float)[mask],
        }
    )
    if "order_id" in orders.columns:
        out["order_id"] = orders["order_id"].to_numpy()[mask]
    return out


def _daily(valid: pd.DataFrame, cut: int) -> pd.DataFrame:
    """Per-customer BTYD aggregates (in days) from valid orders: purchases on the same day merge into one."""
    daily = valid.groupby(["customer_id", "day"], sort=True, observed=True)["total"].sum().reset_index()
    g = daily.groupby("customer_id", sort=False, observed=True)
    first_day = g["day"].min()
    last_day = g["day"].max()
    n_days = g["day"].size()
    day_total = g["total"].sum()
    first_total = g["total"].first()  # sorted by day, so the first purchase day's total
    frequency = (n_days - 1).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, (day_total - first_total) / frequency.where(frequency > 0, 1), 0.0)
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last_day - first_day).astype(float),
            "T": (cut - first_day).astype(float),
            "monetary_value": monetary,
            "first_day": first_day,
            "last_day": last_day,
        }
    )


def btyd_summary(
    orders: pd.DataFrame,
    *,
    cutoff: object,
    start: object | None = None,
    unit: Literal["days", "weeks"] = "days",
) -> pd.DataFrame:
    """BTYD summary per customer with at least one valid order by `cutoff`: frequency, recency, T, monetary_value.

    Same-day orders merge into one transaction; frequency = purchase days - 1; recency = last - first purchase;
    T = cutoff - first purchase (in `unit`); monetary_value = mean of repeat transactions (0 when frequency = 0).
    """
    valid = valid_orders(orders, cutoff, start)
    summary = _daily(valid, cutoff_day(cutoff))
    scale = DAYS_PER_UNIT[unit]
    summary["recency"] = summary["recency"] / scale
    summary["T"] = summary["T"] / scale
    summary.index.name = "customer_id"
    return summary[["frequency", "recency", "T", "monetary_value"]]


def customer_features(
    orders: pd.DataFrame,
    *,
    cutoff: object,
    events: pd.DataFrame | None = None,
    feedback: pd.DataFrame | None = None,
    lines: pd.DataFrame | None = None,
    customer_ids: Collection[object] | None = None,
    support_event_types: Collection[str] = SUPPORT_EVENT_TYPES,
) -> pd.DataFrame:
    """One row per customer (index customer_id) with FEATURE_COLUMNS plus `cat_<category>` shares, all in days.

    orders: customer_id, placed_at, total, [status, order_id]; events: customer_id, occurred_at, type, [count];
    feedback: customer_id, kind, score, [submitted_at]; lines: order_id, category, amount (needs orders.order_id).
    Customers appear if they have an order, an event or feedback by the cutoff, or are in `customer_ids`.
    BTYD columns (frequency, recency, T, monetary_value) follow `btyd_summary`; days_since_last_order is RFM recency.
    """
    cut = cutoff_day(cutoff)
    valid = valid_orders(orders, cutoff)
    daily = _daily(valid, cut)
    g = valid.groupby("customer_id", sort=False, observed=True)["total"]
    feats = pd.DataFrame(
        {
            "orders": g.size(),
            "frequency": daily["frequency"],
            "recency": daily["recency"],
            "T": daily["T"],
            "monetary_value": daily["monetary_value"],
            "days_since_last_order": (cut - daily["last_day"]).astype(float),
            "total_spent": g.sum(),
        }
    )
    feats["aov"] = feats["total_spent"] / feats["orders"]
    feats["avg_days_between_orders"] = (feats["recency"] / feats["frequency"]).where(feats["frequency"] > 0)
    first_seen = daily["first_day"].astype(float)

    ev_30 = pd.Series(dtype=float)
    support = pd.Series(dtype=float)
    if events is not None and len(events):
        ev_day = to_day(events["occurred_at"])
        in_obs = ev_day <= cut
        ev_cust = events["customer_id"].to_numpy()[in_obs]
        ev_day = ev_day[in_obs]
        # One row per event, or pre-aggregated rows whose `count` says how many events each stands for.
        n = events["count"].to_numpy(dtype=float)[in_obs] if "count" in events.columns else np.ones(len(ev_day))
        is_support = pd.Series(events["type"].to_numpy()[in_obs]).isin(list(support_event_types)).to_numpy()
        ev = pd.DataFrame({"customer_id": ev_cust, "day": ev_day})
        ev["recent"] = np.where(ev_day > cut - ENGAGEMENT_WINDOW_DAYS, n, 0.0)
        ev["support"] = np.where(is_support, n, 0.0)
        eg = ev.groupby("customer_id", sort=False, observed=True)
        ev_30 = eg["recent"].sum().astype(float)
        support = eg["support"].sum().astype(float)
        first_seen = pd.concat([first_seen, eg["day"].min().astype(float)], axis=1).min(axis=1)

    csat = pd.Series(dtype=float)
    if feedback is not None and len(feedback):
        fb = feedback
        if "submitted_at" in fb.columns:
            fb = fb[to_day(fb["submitted_at"]) <= cut]
        fb = fb[fb["kind"].astype("string").str.lower() == "csat"]
        csat = fb.groupby("customer_id", sort=False, observed=True)["score"].mean().astype(float)

    index = feats.index.union(ev_30.index).union(csat.index)
    if customer_ids is not None:
        index = index.union(pd.Index(list(customer_ids)))
    feats = feats.reindex(index)
    feats["orders"] = feats["orders"].fillna(0).astype(np.int64)
    feats["total_spent"] = feats["total_spent"].fillna(0.0)
    feats["events_30d"] = ev_30.reindex(index).fillna(0.0).astype(np.int64)
    feats["support_contacts"] = support.reindex(index).fillna(0.0).astype(np.int64)
    feats["avg_csat"] = csat.reindex(index)
    feats["tenure_days"] = cut - first_seen.reindex(index)
    feats = feats[list(FEATURE_COLUMNS)]

    if lines is not None and len(lines) and "order_id" in valid.columns:
        ln = lines.merge(valid[["order_id", "customer_id"]], on="order_id", how="inner")
        spend = ln.pivot_table(index="customer_id", columns="category", values="amount", aggfunc="sum", fill_value=0.0)
        shares = spend.div(spend.sum(axis=1).replace(0.0, np.nan), axis=0).fillna(0.0)
        shares.columns = [f"cat_{c}" for c in shares.columns]
        feats = feats.join(shares.reindex(index))
    feats.index.name = "customer_id"
    return feats


def category_columns(features: pd.DataFrame) -> list[str]:
    """Names of the category-share columns (`cat_<category>`) in a features frame."""
    return [c for c in features.columns if str(c).startswith("cat_")]

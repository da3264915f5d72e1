"""Minimum-data gates: whether a tenant's history can support each model, what is missing, and when it may be enough."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from personalization.ml.features import cutoff_day, valid_orders

RATE_WINDOW_DAYS = 90  # growth rates for the "ready by" estimate come from this many recent days


@dataclass(frozen=True)
class Requirement:
    """Minimums for one model: customers with an order, repeat buyers, days of order history, orders in 30 days."""

    customers: int = 0
    repeat_buyers: int = 0
    history_days: int = 0
    recent_orders: int = 0


REQUIREMENTS: dict[str, Requirement] = {
    "rfm": Requirement(customers=20),
    "clusters": Requirement(customers=100),
    "btyd": Requirement(customers=300, repeat_buyers=50, history_days=90, recent_orders=1),
    "churn": Requirement(customers=500, repeat_buyers=100, history_days=180, recent_orders=1),
}


@dataclass(frozen=True)
class GateResult:
    """Verdict for one model: ready or not, what is missing in plain words, and the estimated date it will be enough."""

    model: str
    ready: bool
    missing: list[str] = field(default_factory=list)
    expected_ready: date | None = None
    measured: dict[str, int] = field(default_factory=dict)


def tenant_history(orders: pd.DataFrame, *, cutoff: object) -> dict[str, float]:
    """Counts the gates need, plus their growth per day over the last RATE_WINDOW_DAYS days."""
    v = valid_orders(orders, cutoff)
    cut = cutoff_day(cutoff)
    if v.empty:
        return dict.fromkeys(
            ("customers", "repeat_buyers", "history_days", "recent_orders", "customers_rate", "repeat_rate"), 0.0
        )
    days = v[["customer_id", "day"]].drop_duplicates().sort_values(["customer_id", "day"])
    rank = days.groupby("customer_id").cumcount()
    first = days.loc[rank == 0, "day"]
    second = days.loc[rank == 1, "day"]
    since = cut - RATE_WINDOW_DAYS
    span = min(RATE_WINDOW_DAYS, cut - int(v["day"].min()) + 1)
    return {
        "customers": float(len(first)),
        "repeat_buyers": float(len(second)),
        "history_days": float(cut - int(v["day"].min()) + 1),
        "recent_orders": float((v["day"] > cut - 30).sum()),
        "customers_rate": float((first > since).sum()) / span,
        "repeat_rate": float((second > since).sum()) / span,
    }


def data_gates(
    orders: pd.DataFrame, *, cutoff: object, requirements: dict[str, Requirement] | None = None
) -> dict[str, GateResult]:
    """Gate verdict per model from valid orders up to `cutoff`; expected_ready is None if growth has stalled."""
    h = tenant_history(orders, cutoff=cutoff)
    today = pd.Timestamp(cutoff).date()  # type: ignore[arg-type]
    out: dict[str, GateResult] = {}
    for model, req in (requirements or REQUIREMENTS).items():
        missing: list[str] = []
        waits: list[float] = []
        checks = (
            ("customers", req.customers, "customers with an order", h["customers_rate"]),
            ("repeat_buyers", req.repeat_buyers, "customers with a repeat order", h["repeat_rate"]),
            ("history_days", req.history_days, "days of order history", 1.0),
        )
        for key, need, words, rate in checks:
            have = int(h[key])
            if have < need:
                missing.append(f"needs {need} {words}, has {have}")
                waits.append((need - have) / rate if rate > 0 else math.inf)
        if int(h["recent_orders"]) < req.recent_orders:
            missing.append("needs orders in the last 30 days, has none")
            waits.append(math.inf)
        wait = max(waits, default=0.0)
        eta = None if math.isinf(wait) else today + timedelta(days=math.ceil(wait))
        measured = {k: int(h[k]) for k in ("customers", "repeat_buyers", "history_days", "recent_orders")}
        out[model] = GateResult(model=model, ready=not missing, missing=missing, expected_ready=eta, measured=measured)
    return out

"""Synthetic customers from known BG/NBD and Gamma-Gamma parameters: for parameter-recovery tests and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_bgnbd(
    T: np.ndarray, *, r: float, alpha: float, a: float, b: float, rng: np.random.Generator
) -> pd.DataFrame:
    """BTYD summary (frequency, recency, T) of customers observed for T after a first purchase at 0.

    Each customer buys at Poisson rate lambda ~ Gamma(r, 1/alpha) and drops out after each repeat purchase with
    probability p ~ Beta(a, b), as in Fader, Hardie & Lee (2005).
    """
    times = simulate_purchase_times(np.asarray(T, dtype=float), r=r, alpha=alpha, a=a, b=b, rng=rng)
    freq = np.array([len(t) for t in times])
    rec = np.array([t[-1] if len(t) else 0.0 for t in times])
    return pd.DataFrame({"frequency": freq, "recency": rec, "T": np.asarray(T, dtype=float)})


def simulate_purchase_times(
    T: np.ndarray, *, r: float, alpha: float, a: float, b: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Repeat-purchase times in (0, T] per customer under BG/NBD (vectorised over customers, looping over purchases)."""
    n = len(T)
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    clock = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    while alive.any():
        idx = np.flatnonzero(alive)
        clock[idx] += rng.exponential(1.0 / np.maximum(lam[idx], 1e-300))
        bought = clock[idx] <= T[idx]
        buyers = idx[bought]
        rows.append(buyers)
        cols.append(clock[buyers])
        alive[idx[~bought]] = False
        alive[buyers[rng.random(len(buyers)) < p[buyers]]] = False
    who = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
    when = np.concatenate(cols) if cols else np.array([])
    order = np.lexsort((when, who))
    who, when = who[order], when[order]
    splits = np.searchsorted(who, np.arange(1, n))
    return np.split(when, splits)


def simulate_gamma_gamma(
    frequency: np.ndarray, *, p: float, q: float, gamma: float, rng: np.random.Generator
) -> np.ndarray:
    """Mean spend over `frequency` transactions per customer: z ~ Gamma(p, 1/nu), nu ~ Gamma(q, 1/gamma)."""
    x = np.asarray(frequency)
    nu = rng.gamma(q, 1.0 / gamma, size=len(x))
    # The mean of x iid Gamma(p, 1/nu) draws is Gamma(p*x, 1/(nu*x)).
    safe_x = np.maximum(x, 1)
    return np.where(x > 0, rng.gamma(p * safe_x, 1.0 / (nu * safe_x)), 0.0)


def simulate_tenant(
    n_customers: int,
    *,
    start: str = "2023-01-01",
    end: str = "2024-12-31",
    r: float = 0.9,
    alpha: float = 25.0,
    a: float = 0.6,
    b: float = 10.0,
    p: float = 6.0,
    q: float = 4.0,
    gamma: float = 120.0,
    categories: tuple[str, ...] = ("espresso", "filter", "equipment", "tea"),
    events_per_customer: float = 3.0,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """A whole tenant's raw data in product shape: orders, lines, events, feedback (times in days, rates per day).

    Customers are acquired uniformly over [start, end]; about 3% of orders are cancelled or refunded.
    """
    rng = np.random.default_rng(seed)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    span = (t1 - t0).days
    acquired = rng.integers(0, span, size=n_customers)
    T = (span - acquired).astype(float)
    repeat_times = simulate_purchase_times(T, r=r, alpha=alpha, a=a, b=b, rng=rng)
    counts = np.array([len(t) + 1 for t in repeat_times])
    cust = np.repeat(np.arange(n_customers), counts)
    offsets = np.concatenate([np.concatenate(([0.0], t)) for t in repeat_times])
    day = acquired[cust] + np.floor(offsets).astype(np.int64)
    seconds = rng.integers(8 * 3600, 22 * 3600, size=len(cust))
    nu = rng.gamma(q, 1.0 / gamma, size=n_customers)
    totals = np.round(rng.gamma(p, 1.0 / nu[cust]), 2)
    n_orders = len(cust)
    undone = np.where(rng.random(n_orders) < 0.5, "cancelled", "refunded")
    status = np.where(rng.random(n_orders) < 0.03, undone, "paid")
    placed = t0 + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s")
    orders = pd.DataFrame(
        {
            "order_id": np.arange(n_orders),
            "customer_id": cust,
            "placed_at": placed,
            "total": totals,
            "status": status,
        }
    )
    favourite = rng.integers(0, len(categories), size=n_customers)
    main_cat = np.where(rng.random(n_orders) < 0.7, favourite[cust], rng.integers(0, len(categories), size=n_orders))
    lines = pd.DataFrame(
        {
            "order_id": orders["order_id"].to_numpy(),
            "category": np.asarray(categories, dtype=object)[main_cat],
            "amount": totals,
        }
    )
    n_events = rng.poisson(events_per_customer, size=n_customers)
    ev_cust = np.repeat(np.arange(n_customers), n_events)
    ev_day = acquired[ev_cust] + rng.integers(0, np.maximum(T[ev_cust], 1).astype(np.int64) + 1)
    types = np.array(["page_view", "product_view", "add_to_cart", "support_contact"], dtype=object)
    events = pd.DataFrame(
        {
            "customer_id": ev_cust,
            "occurred_at": t0 + pd.to_timedelta(ev_day, unit="D"),
            "type": types[rng.choice(4, size=len(ev_cust), p=[0.5, 0.3, 0.15, 0.05])],
        }
    )
    fb_cust = rng.choice(n_customers, size=n_customers // 5, replace=False)
    feedback = pd.DataFrame(
        {"customer_id": fb_cust, "kind": "csat", "score": rng.integers(1, 6, size=len(fb_cust)).astype(float)}
    )
    return {"orders": orders, "lines": lines, "events": events, "feedback": feedback}

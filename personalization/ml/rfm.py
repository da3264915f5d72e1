"""RFM: 1-5 quintile scores and the 11 named segments on the recency x frequency-monetary grid."""

from __future__ import annotations

import numpy as np
import pandas as pd

SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal",
    "Potential loyalists",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Can't lose them",
    "Hibernating",
    "Lost",
)

# Rows: R score 1..5; columns: FM score 1..5. The usual R x F grid (Putler / the rfm package's map), with
# Lost carved out of the bottom-left corner of Hibernating so that every cell has exactly one segment.
_GRID: tuple[tuple[str, ...], ...] = (
    ("Lost", "Hibernating", "At risk", "At risk", "Can't lose them"),  # R = 1
    ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),  # R = 2
    ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),  # R = 3
    ("Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Loyal"),  # R = 4
    ("New", "Potential loyalists", "Potential loyalists", "Champions", "Champions"),  # R = 5
)
SEGMENT_GRID: np.ndarray = np.array(_GRID, dtype=object)


def quintile_scores(values: pd.Series | np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """1-5 score per value by percentile rank: ties share the lowest score their run reaches; one customer
    or all-equal values get 3.

    Sharing the run's lowest score matters for frequency: when half the customers bought once, they are
    all F1 (as RFM expects), so "New" and "Lost" stay reachable; a mid-rank would make them all F2.
    NaN values get score 1 (worst) when higher_is_better, else 1 too (no information is never good).
    """
    s = pd.Series(np.asarray(values, dtype=float))
    valid = s.notna()
    n = int(valid.sum())
    scores = np.ones(len(s), dtype=np.int64)
    if n == 0:
        return scores
    if s[valid].nunique() == 1:
        scores[valid.to_numpy()] = 3
        return scores
    ranks = s[valid].rank(method="min", ascending=higher_is_better).to_numpy()
    pct = (ranks - 0.5) / n  # percentile of the run's first position, centred on it
    scores[valid.to_numpy()] = np.clip(np.floor(pct * 5).astype(np.int64) + 1, 1, 5)
    return scores


def segment_for(r_score: np.ndarray, fm_score: np.ndarray) -> np.ndarray:
    """Segment names for arrays of R and FM scores in 1..5."""
    return SEGMENT_GRID[np.asarray(r_score) - 1, np.asarray(fm_score) - 1]


def rfm_scores(days_since_last_order: pd.Series, orders: pd.Series, monetary: pd.Series) -> pd.DataFrame:
    """R, F, M scores (1-5), FM = round-half-up of (F + M) / 2, the cell code "RFM" and the named segment.

    Inputs share an index (customers with at least one order); output has the same index. Recent = high R.
    """
    r = quintile_scores(days_since_last_order, higher_is_better=False)
    f = quintile_scores(orders)
    m = quintile_scores(monetary)
    fm = np.floor((f + m) / 2.0 + 0.5).astype(np.int64)
    out = pd.DataFrame({"r": r, "f": f, "m": m, "fm": fm}, index=days_since_last_order.index)
    out["rfm"] = (r * 100 + f * 10 + m).astype(str)
    out["segment"] = pd.Categorical(segment_for(r, fm), categories=list(SEGMENTS))
    return out


def rfm_from_features(features: pd.DataFrame) -> pd.DataFrame:
    """RFM scores for customers with at least one order in a `customer_features` frame (monetary = total spent)."""
    buyers = features[features["orders"] > 0]
    return rfm_scores(buyers["days_since_last_order"], buyers["orders"], buyers["total_spent"])


def segment_grid_summary(scores: pd.DataFrame, revenue: pd.Series) -> pd.DataFrame:
    """Per segment: customers, share of customers, revenue and share of revenue (all 11 rows, zeros included)."""
    rev = revenue.reindex(scores.index).fillna(0.0)
    g = pd.DataFrame({"segment": scores["segment"], "revenue": rev}).groupby("segment", observed=False)["revenue"]
    out = pd.DataFrame({"customers": g.size(), "revenue": g.sum()}).reindex(list(SEGMENTS)).fillna(0)
    out["customers"] = out["customers"].astype(np.int64)
    total_c, total_r = out["customers"].sum(), out["revenue"].sum()
    out["customer_share"] = out["customers"] / total_c if total_c else 0.0
    out["revenue_share"] = out["revenue"] / total_r if total_r else 0.0
    return out

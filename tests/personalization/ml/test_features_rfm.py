"""Customer features (one vectorised pass) and RFM scores/segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personalization.ml.features import btyd_summary, customer_features
from personalization.ml.rfm import (
    SEGMENT_GRID,
    SEGMENTS,
    quintile_scores,
    rfm_from_features,
    rfm_scores,
    segment_grid_summary,
)

CUTOFF = "2024-03-31"


@pytest.fixture
def orders() -> pd.DataFrame:
    rows = [
        # customer 1: two orders on the same day merge into one purchase day; a cancelled order is ignored.
        (1, 10, "2024-01-01 09:00", 20.0, "paid"),
        (1, 11, "2024-01-01 18:00", 10.0, "paid"),
        (1, 12, "2024-01-31 10:00", 40.0, "paid"),
        (1, 13, "2024-03-01 10:00", 60.0, "paid"),
        (1, 14, "2024-03-20 10:00", 999.0, "cancelled"),
        # customer 2: one order, plus one after the cutoff that must not count.
        (2, 20, "2024-03-01 12:00", 50.0, "paid"),
        (2, 21, "2024-04-02 12:00", 50.0, "paid"),
        # customer 3: only a refunded order.
        (3, 30, "2024-02-01 12:00", 70.0, "refunded"),
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "order_id", "placed_at", "total", "status"])
    df["placed_at"] = pd.to_datetime(df["placed_at"])
    return df


def test_features_follow_btyd_conventions_and_exclude_cancelled(orders):
    lines = pd.DataFrame(
        {
            "order_id": [10, 11, 12, 13, 20],
            "category": ["espresso"] * 3 + ["tea", "tea"],
            "amount": [20.0, 10.0, 40.0, 60.0, 50.0],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 4],
            "type": ["page_view", "support_contact", "page_view", "x"],
            "occurred_at": pd.to_datetime(["2024-03-30", "2024-01-02", "2024-01-01", "2024-03-31"]),
        }
    )
    feedback = pd.DataFrame({"customer_id": [1, 1, 2], "kind": ["csat", "csat", "nps"], "score": [4.0, 2.0, 9.0]})
    f = customer_features(orders, cutoff=CUTOFF, events=events, feedback=feedback, lines=lines)
    c1 = f.loc[1]
    assert c1["orders"] == 4  # orders, not purchase days
    assert c1["frequency"] == 2  # three purchase days -> two repeat purchases
    assert c1["recency"] == 60 and c1["T"] == 90
    assert c1["monetary_value"] == pytest.approx(50.0)  # mean of the repeat days (40, 60)
    assert c1["aov"] == pytest.approx(32.5) and c1["total_spent"] == pytest.approx(130.0)
    assert c1["days_since_last_order"] == 30 and c1["avg_days_between_orders"] == 30
    assert c1["events_30d"] == 1 and c1["support_contacts"] == 1 and c1["avg_csat"] == pytest.approx(3.0)
    assert c1["cat_espresso"] == pytest.approx(70 / 130) and c1["cat_tea"] == pytest.approx(60 / 130)
    c2 = f.loc[2]
    assert c2["orders"] == 1 and c2["frequency"] == 0 and c2["monetary_value"] == 0
    assert np.isnan(c2["avg_days_between_orders"]) and np.isnan(c2["avg_csat"])
    assert c2["tenure_days"] == 90  # first seen by an event on Jan 1, before the first order
    assert 3 not in f.index  # only a refunded order and nothing else: not a customer with history
    assert f.loc[4, "orders"] == 0 and f.loc[4, "events_30d"] == 1  # seen only through events


def test_btyd_summary_in_weeks_only_has_buyers(orders):
    s = btyd_summary(orders, cutoff=CUTOFF, unit="weeks")
    assert list(s.index) == [1, 2]
    assert s.loc[1, "T"] == pytest.approx(90 / 7) and s.loc[1, "recency"] == pytest.approx(60 / 7)


def test_quintiles_handle_ties_and_tiny_tenants():
    assert quintile_scores([42.0]).tolist() == [3]
    assert quintile_scores([5.0] * 7).tolist() == [3] * 7
    assert quintile_scores([]).tolist() == []
    assert sorted(quintile_scores([1.0, 2.0]).tolist()) == [2, 4]
    scores = quintile_scores(np.arange(100.0))
    assert np.bincount(scores, minlength=6)[1:].tolist() == [20] * 5
    tied = quintile_scores([0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
    assert len(set(tied[:6])) == 1 and tied[9] == 5
    assert quintile_scores([1.0, np.nan]).tolist()[1] == 1
    assert quintile_scores([10.0, 1.0], higher_is_better=False).tolist() == [2, 4]


def test_one_time_buyers_are_f1_so_new_and_lost_are_reachable():
    orders = pd.Series([1] * 60 + [2] * 20 + [3] * 10 + [5] * 10, dtype=float)
    f = quintile_scores(orders)
    assert set(f[:60]) == {1}  # most customers bought once: the lowest frequency score, not a middle one
    days = pd.Series(np.r_[np.arange(60.0), np.arange(40.0)])
    spent = pd.Series(np.r_[np.full(60, 10.0), np.full(40, 100.0)])
    scores = rfm_scores(days, orders, spent)
    assert {"New", "Lost"} <= set(scores["segment"])


def test_every_cell_has_one_of_the_eleven_segments_and_all_are_reachable():
    assert SEGMENT_GRID.shape == (5, 5)
    assert set(SEGMENT_GRID.ravel()) == set(SEGMENTS) and len(SEGMENTS) == 11
    assert SEGMENT_GRID[4, 4] == "Champions" and SEGMENT_GRID[0, 0] == "Lost"
    assert SEGMENT_GRID[0, 4] == "Can't lose them" and SEGMENT_GRID[4, 0] == "New"


def test_rfm_scores_and_grid_summary():
    n = 500
    rng = np.random.default_rng(0)
    idx = pd.Index(range(n), name="customer_id")
    recency = pd.Series(rng.integers(0, 365, n), index=idx)
    orders_n = pd.Series(rng.integers(1, 20, n), index=idx)
    spend = pd.Series(orders_n * rng.uniform(10, 80, n), index=idx)
    scores = rfm_scores(recency, orders_n, spend)
    assert scores[["r", "f", "m", "fm"]].isin([1, 2, 3, 4, 5]).all().all()
    best = scores.loc[recency.idxmin()]
    assert best["r"] == 5
    grid = segment_grid_summary(scores, spend)
    assert list(grid.index) == list(SEGMENTS)
    assert grid["customers"].sum() == n and grid["revenue_share"].sum() == pytest.approx(1.0)


def test_rfm_from_features_skips_customers_without_orders(orders):
    f = customer_features(orders, cutoff=CUTOFF, customer_ids=[1, 2, 3, 99])
    scores = rfm_from_features(f)
    assert set(scores.index) == {1, 2}
    assert scores.loc[1, "segment"] in SEGMENTS

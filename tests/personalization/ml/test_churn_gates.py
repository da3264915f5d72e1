"""Churn risk on CDNOW's 39-week holdout against named baselines; reasons; fallback; minimum-data gates."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from personalization.ml.churn import churn_fallback_score, churn_frame, churn_labels, churn_score, churn_train, evaluate
from personalization.ml.features import customer_features
from personalization.ml.gates import Requirement, data_gates
from personalization.ml.simulate import simulate_tenant

CAL_END = "1997-09-30"
HOLDOUT_DAYS = 273  # weeks 40-78


@pytest.fixture(scope="module")
def cdnow_churn(cdnow_orders):
    calibration = cdnow_orders[cdnow_orders["placed_at"] <= CAL_END]
    model = churn_train(calibration, cutoff=CAL_END)  # the product defaults: 90-day window, auto model choice
    frame = churn_frame(calibration, cutoff=CAL_END, window_days=model.window_days)
    labels = churn_labels(cdnow_orders, frame.index, cutoff=CAL_END, window_days=HOLDOUT_DAYS)
    scored = churn_score(model, frame)
    return model, frame, labels, scored


def test_churn_risk_beats_recency_and_bgnbd_on_the_cdnow_holdout(cdnow_churn):
    model, frame, labels, scored = cdnow_churn
    result = evaluate(labels.to_numpy(), scored["risk"].to_numpy(), frame)
    print(f"CDNOW holdout AUC: model {result.auc:.4f} ({model.estimator_name}), baselines {result.baselines}")
    assert result.baselines["recency"] == pytest.approx(0.771, abs=0.003)
    assert result.baselines["bgnbd_expected_purchases"] == pytest.approx(0.773, abs=0.003)
    assert result.auc > result.baselines["recency"]
    assert result.auc > result.baselines["bgnbd_expected_purchases"]
    assert model.holdout is not None and model.holdout.auc > model.holdout.baselines["recency"]


def test_risk_comes_with_bands_and_plain_reasons(cdnow_churn):
    _, frame, _, scored = cdnow_churn
    assert scored["risk"].between(0, 1).all()
    assert set(scored["band"]) == {"low", "medium", "high"}
    lapsed = frame["days_since_last_order"].idxmax()
    assert scored.loc[lapsed, "band"] == "high" and scored.loc[lapsed, "reasons"]
    # A repeat buyer who has gone quiet far longer than usual is told so, with both numbers.
    late = frame[(frame["frequency"] >= 2) & (frame["overdue_ratio"] > 3)]
    reasons = scored.loc[late.index, "reasons"]
    assert reasons.str.contains(r"no order for \d+ days; usually orders every \d+ days").mean() > 0.5
    assert (scored.loc[scored["band"] == "low", "reasons"] == "").mean() > 0.5


def test_fallback_score_grows_with_lateness():
    f = pd.DataFrame(
        {
            "orders": [3, 3, 1, 0],
            "days_since_last_order": [10.0, 120.0, 45.0, float("nan")],
            "avg_days_between_orders": [30.0, 30.0, float("nan"), float("nan")],
        },
        index=pd.Index([1, 2, 3, 4], name="customer_id"),
    )
    out = churn_fallback_score(f)
    assert list(out.index) == [1, 2, 3]
    assert 0 < out.loc[1, "risk"] < 0.3 < 0.6 < out.loc[2, "risk"] < 1
    assert out.loc[2, "reasons"] == "no order for 120 days; usually orders every 30 days"
    assert out.loc[1, "reasons"] == ""


def test_gates_say_what_is_missing_and_when_it_should_be_enough():
    orders = simulate_tenant(400, start="2024-01-01", end="2024-06-30", seed=1)["orders"]
    gates = data_gates(orders, cutoff="2024-06-30")
    assert gates["rfm"].ready and gates["clusters"].ready
    churn = gates["churn"]
    assert not churn.ready
    assert any("customers with an order" in m for m in churn.missing)
    assert churn.expected_ready is not None and churn.expected_ready > date(2024, 6, 30)
    assert 175 <= gates["btyd"].measured["history_days"] <= 182


def test_gates_without_growth_have_no_date():
    orders = pd.DataFrame(
        {"customer_id": [1, 2], "placed_at": pd.to_datetime(["2020-01-01", "2020-01-02"]), "total": [1.0, 2.0]}
    )
    gate = data_gates(orders, cutoff="2024-01-01", requirements={"x": Requirement(customers=10)})["x"]
    assert not gate.ready and gate.expected_ready is None
    assert gate.missing == ["needs 10 customers with an order, has 2"]


def test_churn_trains_on_a_simulated_tenant_with_events_and_feedback():
    data = simulate_tenant(3000, start="2023-01-01", end="2024-06-30", seed=4)
    model = churn_train(data["orders"], cutoff="2024-06-30", events=data["events"], feedback=data["feedback"])
    assert {"events_30d", "avg_csat"} <= set(model.feature_names)
    assert model.holdout is not None and model.holdout.auc > 0.6
    feats = customer_features(data["orders"], cutoff="2024-06-30", events=data["events"], feedback=data["feedback"])
    frame = churn_frame(data["orders"], cutoff="2024-06-30", window_days=model.window_days, features=feats)
    assert churn_score(model, frame)["risk"].notna().all()

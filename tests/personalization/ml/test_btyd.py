"""BG/NBD and Gamma-Gamma: published CDNOW parameters, recovery of known parameters, gradients, predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad

from personalization.ml.btyd import (
    BGNBDParams,
    ClvModel,
    bgnbd_expected_purchases,
    bgnbd_expected_purchases_new,
    bgnbd_fit,
    bgnbd_loglik,
    bgnbd_p_alive,
    clv_fit,
    clv_predict,
    gamma_gamma_fit,
    gamma_gamma_loglik,
)
from personalization.ml.features import btyd_summary
from personalization.ml.simulate import simulate_bgnbd, simulate_gamma_gamma, simulate_purchase_times

CAL_END = "1997-09-30"


@pytest.fixture(scope="module")
def cdnow_summary(cdnow_orders: pd.DataFrame) -> pd.DataFrame:
    return btyd_summary(cdnow_orders, cutoff=CAL_END, unit="weeks")


def test_summary_from_raw_transactions_matches_the_published_summary(cdnow_summary, cdnow_reference):
    ref = cdnow_reference.loc[cdnow_summary.index]
    assert len(cdnow_summary) == 2357
    assert (cdnow_summary["frequency"].to_numpy() == ref["x"].to_numpy()).all()
    np.testing.assert_allclose(cdnow_summary["recency"], ref["t_x"], atol=0.006)  # the CSV rounds to 2 decimals
    np.testing.assert_allclose(cdnow_summary["T"], ref["T"], atol=0.006)
    np.testing.assert_allclose(cdnow_summary["monetary_value"], ref["zbar"], atol=0.006)


def test_bgnbd_reproduces_fader_hardie_lee_2005_on_cdnow(cdnow_summary):
    params = bgnbd_fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert getattr(params, name) == pytest.approx(value, rel=0.01), name
    assert params.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert params.converged


def test_gamma_gamma_reproduces_fader_hardie_2013_on_cdnow(cdnow_summary):
    params = gamma_gamma_fit(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    assert params.n_customers == 946
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert getattr(params, name) == pytest.approx(value, rel=0.01), name


def test_bgnbd_recovers_known_parameters_from_simulated_customers():
    rng = np.random.default_rng(7)
    truth = {"r": 0.5, "alpha": 8.0, "a": 0.8, "b": 3.0}
    summary = simulate_bgnbd(rng.uniform(20, 52, 20_000), rng=rng, **truth)
    params = bgnbd_fit(summary["frequency"], summary["recency"], summary["T"])
    for name, value in truth.items():
        assert getattr(params, name) == pytest.approx(value, rel=0.15), name


def test_gamma_gamma_recovers_known_parameters_from_simulated_spend():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 12, size=20_000)
    m = simulate_gamma_gamma(x, p=6.0, q=4.0, gamma=15.0, rng=rng)
    params = gamma_gamma_fit(x, m)
    # p and gamma trade off against each other; their ratio to q - 1 (the mean spend) is pinned down tightly.
    assert params.p == pytest.approx(6.0, rel=0.15)
    assert params.q == pytest.approx(4.0, rel=0.1)
    assert params.gamma == pytest.approx(15.0, rel=0.2)
    assert params.p * params.gamma / (params.q - 1) == pytest.approx(6.0 * 15.0 / 3.0, rel=0.03)


def test_analytic_gradients_match_finite_differences(cdnow_summary):
    s = cdnow_summary
    x, t_x, T = (s[c].to_numpy(float) / (1 if c == "frequency" else 30) for c in ("frequency", "recency", "T"))
    theta = np.log([0.3, 0.2, 0.9, 2.0])
    err = check_grad(lambda th: bgnbd_loglik(th, x, t_x, T)[0], lambda th: bgnbd_loglik(th, x, t_x, T)[1], theta)
    assert err < 1e-4 * np.abs(bgnbd_loglik(theta, x, t_x, T)[1]).max() + 1e-3
    rep = s["frequency"] > 0
    xr, mr = s.loc[rep, "frequency"].to_numpy(float), s.loc[rep, "monetary_value"].to_numpy(float) / 35
    phi = np.log([5.0, 3.0, 0.5])
    g_err = check_grad(lambda p: gamma_gamma_loglik(p, xr, mr)[0], lambda p: gamma_gamma_loglik(p, xr, mr)[1], phi)
    assert g_err < 1e-4 * np.abs(gamma_gamma_loglik(phi, xr, mr)[1]).max() + 1e-3


def test_conditional_expectations_follow_the_paper():
    params = BGNBDParams(
        r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0, n_customers=0, converged=True, iterations=0
    )
    # A customer seen for zero time expects what a new customer does (eq. 10 reduces to eq. 7).
    fresh = bgnbd_expected_purchases(params, 39.0, np.array([0.0]), np.array([0.0]), np.array([0.0]))
    assert fresh[0] == pytest.approx(bgnbd_expected_purchases_new(params, 39.0), rel=1e-9)
    # No repeat purchase: alive with certainty under BG/NBD; a long silence after many purchases: probably gone.
    p = bgnbd_p_alive(params, np.array([0.0, 10.0, 10.0]), np.array([0.0, 38.0, 5.0]), np.array([39.0] * 3))
    assert p[0] == 1.0
    assert p[1] > 0.9 > 0.1 > p[2]
    more = bgnbd_expected_purchases(params, 52.0, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    less = bgnbd_expected_purchases(params, 26.0, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert more[0] > less[0] > 0


def test_conditional_expectation_matches_simulated_future_purchases():
    """Eq. 10 against the process itself: simulate calibration + holdout, compare mean holdout purchases by x."""
    rng = np.random.default_rng(0)
    truth = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    t_cal, horizon = rng.uniform(27, 39, 20_000), 39.0
    times = simulate_purchase_times(t_cal + horizon, rng=rng, **truth)
    x = np.array([(t <= tc).sum() for t, tc in zip(times, t_cal, strict=True)])
    t_x = np.array([t[t <= tc].max(initial=0.0) for t, tc in zip(times, t_cal, strict=True)])
    future = np.array([(t > tc).sum() for t, tc in zip(times, t_cal, strict=True)])
    params = BGNBDParams(**truth, log_likelihood=0.0, n_customers=0, converged=True, iterations=0)
    expected = bgnbd_expected_purchases(params, horizon, x, t_x, t_cal)
    assert expected.mean() == pytest.approx(future.mean(), rel=0.05)
    for k in (0, 1, 3):
        assert expected[x == k].mean() == pytest.approx(future[x == k].mean(), rel=0.15), k


def test_clv_predict_outputs_per_customer(cdnow_summary):
    model = clv_fit(cdnow_summary, days_per_unit=7.0)
    out = clv_predict(model, cdnow_summary, cutoff=CAL_END, annual_discount_rate=0.1)
    assert list(out.index) == list(cdnow_summary.index)
    assert out["p_alive"].between(0, 1).all()
    assert (out["expected_purchases_365d"] >= out["expected_purchases_90d"]).all()
    assert (out["predicted_value_365d"] >= 0).all()
    undiscounted = clv_predict(model, cdnow_summary)["predicted_value_365d"]
    assert (out["predicted_value_365d"] <= undiscounted + 1e-9).all()
    # Expected next order only where the customer is probably alive, and after the cutoff.
    shown = out["expected_next_order"].notna()
    assert shown.any()
    assert (out.loc[shown, "p_alive"] >= 0.5).all()
    assert (out.loc[shown, "expected_next_order"] >= pd.Timestamp(CAL_END)).all()
    assert isinstance(model, ClvModel) and model.gamma_gamma is not None

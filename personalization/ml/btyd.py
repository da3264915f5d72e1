"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader & Hardie 2013) by maximum likelihood.

Both log-likelihoods are written from the papers, vectorised over the unique (x, t_x, T) rows weighted by their
counts, and maximised with L-BFGS-B in log-parameter space using analytic gradients (digamma terms).
Time is in whatever unit the summary uses (days in the product, weeks for the CDNOW reproduction).
Fits run with BLAS limited to one thread: the problem is tiny, and thread hand-offs on a busy worker cost more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special
from threadpoolctl import threadpool_limits

_LOG_BOUNDS = (-12.0, 12.0)


class FitError(RuntimeError):
    """The optimiser did not converge to a usable optimum."""


def _compress(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique rows of the stacked columns, their counts, and the inverse index back to the input rows."""
    stacked = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    uniq, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    return uniq, counts.astype(float), inverse.ravel()


# --------------------------------------------------------------------------------------------- BG/NBD


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters; `alpha` is in the time unit of the summary it was fitted on."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: int
    converged: bool
    iterations: int

    def as_dict(self) -> dict[str, float | int | bool]:
        """Plain dict for storing in a model registry."""
        return asdict(self)


def bgnbd_loglik(
    theta: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
    x_levels: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, np.ndarray]:
    """Total BG/NBD log-likelihood and its gradient with respect to log(r, alpha, a, b) (FHL 2005, eq. 6).

    `x_levels` = np.unique(x, return_inverse=True): gamma-function terms are then evaluated once per distinct x.
    """
    r, alpha, a, b = np.exp(theta)
    w = np.ones_like(x) if weights is None else weights
    xu, inv = x_levels if x_levels is not None else np.unique(x, return_inverse=True)
    # Terms that depend on x only, per distinct x.
    a1_u = special.gammaln(r + xu) - special.gammaln(r) + r * np.log(alpha)
    a2_u = special.gammaln(a + b) + special.gammaln(b + xu) - special.gammaln(b) - special.gammaln(a + b + xu)
    psi_abx_u = special.digamma(a + b + xu)
    psi_ab = special.digamma(a + b)
    d_r_u = special.digamma(r + xu) - special.digamma(r) + np.log(alpha)
    d_a_u = psi_ab - psi_abx_u
    d_b_u = psi_ab + special.digamma(b + xu) - special.digamma(b) - psi_abx_u
    bx1_u = np.where(xu > 0, b + xu - 1.0, 1.0)
    log_bx1_u = np.log(bx1_u)

    repeat = x > 0
    log_aT = np.log(alpha + T)
    log_atx = np.log(alpha + t_x)
    a3 = -(r + x) * log_aT
    a4 = np.where(repeat, np.log(a) - log_bx1_u[inv] - (r + x) * log_atx, -np.inf)
    lse = np.logaddexp(a3, a4)
    w3 = np.exp(a3 - lse)
    w4 = np.exp(a4 - lse)  # 0 where x == 0
    ll = a1_u[inv] + a2_u[inv] + lse

    d_r = d_r_u[inv] - w3 * log_aT - w4 * log_atx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = d_a_u[inv] + w4 / a
    d_b = d_b_u[inv] - w4 / bx1_u[inv]
    grad = np.array([w @ d_r * r, w @ d_alpha * alpha, w @ d_a * a, w @ d_b * b])
    return float(w @ ll), grad


def bgnbd_fit(
    frequency: np.ndarray | pd.Series,
    recency: np.ndarray | pd.Series,
    T: np.ndarray | pd.Series,
    *,
    penalizer: float = 0.0,
    initial: tuple[float, float, float, float] | None = None,
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD fit on a BTYD summary (frequency = repeat purchases, recency = t_x, T = age).

    `penalizer` adds an L2 penalty on the parameters (as in `lifetimes`) for tiny tenants. Raises FitError.
    """
    x_in = np.asarray(frequency, dtype=float)
    if len(x_in) == 0:
        raise FitError("no customers to fit")
    rows, counts, _ = _compress(x_in, recency, T)
    x, t_x, t_cal = rows[:, 0], rows[:, 1], rows[:, 2]
    # Time is rescaled so alpha is O(1) in the optimiser: keeps the Hessian well conditioned in any unit.
    scale = float(np.mean(t_cal)) or 1.0
    t_x_s, t_cal_s = t_x / scale, t_cal / scale
    n = counts.sum()
    levels = np.unique(x, return_inverse=True)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = bgnbd_loglik(theta, x, t_x_s, t_cal_s, counts, levels)
        value, g = -ll / n, -grad / n
        if penalizer:
            p = np.exp(theta)
            value += penalizer * float(p @ p)
            g = g + 2.0 * penalizer * p * p
        return value, g

    if initial is None:
        theta0 = np.zeros(4)
    else:
        r0, alpha0, a0, b0 = initial
        theta0 = np.log([r0, alpha0 / scale, a0, b0])
    with threadpool_limits(1):
        res = optimize.minimize(
            objective, theta0, jac=True, method="L-BFGS-B", bounds=[_LOG_BOUNDS] * 4, options={"maxiter": 500}
        )
    if not np.isfinite(res.fun):
        raise FitError(f"BG/NBD fit failed: {res.message}")
    r, alpha, a, b = np.exp(res.x)
    return BGNBDParams(
        r=float(r),
        alpha=float(alpha * scale),
        a=float(a),
        b=float(b),
        log_likelihood=float(-res.fun * n - (counts @ x) * np.log(scale)),  # back to the summary's time unit
        n_customers=int(n),
        converged=bool(res.success),
        iterations=int(res.nit),
    )


def bgnbd_p_alive(params: BGNBDParams, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(still alive at T | x, t_x, T) (FHL 2005, eq. 11); 1 for customers without repeat purchases."""
    x = np.asarray(frequency, dtype=float)
    log_ratio = (params.r + x) * (np.log(params.alpha + np.asarray(recency)) - np.log(params.alpha + np.asarray(T)))
    with np.errstate(divide="ignore", over="ignore"):
        odds = np.where(x > 0, params.a / np.maximum(params.b + x - 1.0, 1e-12) * np.exp(-log_ratio), 0.0)
    return 1.0 / (1.0 + odds)


def bgnbd_expected_purchases(
    params: BGNBDParams, t: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[number of purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10), t in the fitting unit."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x = np.asarray(frequency, dtype=float)
    t_cal = np.asarray(T, dtype=float)
    z = t / (alpha + t_cal + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1.0, z)
    lead = (a + b + x - 1.0) / (a - 1.0)
    body = 1.0 - np.exp((r + x) * np.log((alpha + t_cal) / (alpha + t_cal + t))) * hyp
    log_ratio = (r + x) * (np.log(alpha + t_cal) - np.log(alpha + np.asarray(recency, dtype=float)))
    with np.errstate(over="ignore"):
        denom = 1.0 + np.where(x > 0, a / np.maximum(b + x - 1.0, 1e-12) * np.exp(log_ratio), 0.0)
    return np.maximum(lead * body / denom, 0.0)


def bgnbd_expected_purchases_new(params: BGNBDParams, t: float) -> float:
    """E[X(t)] for a newly acquired customer (FHL 2005, eq. 7): the population's expected purchases by age t."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + t)
    return float((a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1.0, z)))


def bgnbd_median_wait(params: BGNBDParams, frequency: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Median time to the next purchase for a customer still alive: the rate posterior is Gamma(r + x, alpha + T)."""
    x = np.asarray(frequency, dtype=float)
    return (params.alpha + np.asarray(T, dtype=float)) * np.expm1(np.log(2.0) / (params.r + x))


# --------------------------------------------------------------------------------------------- Gamma-Gamma


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma spend parameters (p, q, gamma in money units)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    n_customers: int
    converged: bool
    iterations: int

    def as_dict(self) -> dict[str, float | int | bool]:
        """Plain dict for storing in a model registry."""
        return asdict(self)


def gamma_gamma_loglik(
    theta: np.ndarray, x: np.ndarray, m: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Total Gamma-Gamma log-likelihood of mean repeat spend m over x transactions and its log-parameter gradient."""
    p, q, gamma = np.exp(theta)
    w = np.ones_like(x) if weights is None else weights
    px = p * x
    log_gxm = np.log(gamma + x * m)
    log_m, log_x = np.log(m), np.log(x)
    ll = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * log_m
        + px * log_x
        - (px + q) * log_gxm
    )
    psi_pxq = special.digamma(px + q)
    d_p = x * (psi_pxq - special.digamma(px) + log_m + log_x - log_gxm)
    d_q = psi_pxq - special.digamma(q) + np.log(gamma) - log_gxm
    d_gamma = q / gamma - (px + q) / (gamma + x * m)
    grad = np.array([w @ d_p * p, w @ d_q * q, w @ d_gamma * gamma])
    return float(w @ ll), grad


def gamma_gamma_fit(
    frequency: np.ndarray | pd.Series, monetary_value: np.ndarray | pd.Series, *, penalizer: float = 0.0
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit on customers with frequency > 0 and positive mean repeat spend.

    Others are ignored. Raises FitError when fewer than 3 such customers or when the optimiser fails.
    """
    x_all = np.asarray(frequency, dtype=float)
    m_all = np.asarray(monetary_value, dtype=float)
    keep = (x_all > 0) & (m_all > 0) & np.isfinite(m_all)
    if keep.sum() < 3:
        raise FitError("Gamma-Gamma needs at least 3 repeat buyers with positive spend")
    rows, counts, _ = _compress(x_all[keep], m_all[keep])
    x = rows[:, 0]
    scale = float(np.average(rows[:, 1], weights=counts))  # money rescaled so gamma is O(1)
    m = rows[:, 1] / scale
    n = counts.sum()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = gamma_gamma_loglik(theta, x, m, counts)
        value, g = -ll / n, -grad / n
        if penalizer:
            par = np.exp(theta)
            value += penalizer * float(par @ par)
            g = g + 2.0 * penalizer * par * par
        return value, g

    theta0 = np.log([2.0, 2.0, 1.0])
    with threadpool_limits(1):
        res = optimize.minimize(
            objective, theta0, jac=True, method="L-BFGS-B", bounds=[_LOG_BOUNDS] * 3, options={"maxiter": 500}
        )
    if not np.isfinite(res.fun):
        raise FitError(f"Gamma-Gamma fit failed: {res.message}")
    p, q, gamma = np.exp(res.x)
    return GammaGammaParams(
        p=float(p),
        q=float(q),
        gamma=float(gamma * scale),
        log_likelihood=float(-res.fun * n - n * np.log(scale)),  # density of m, not m / scale
        n_customers=int(n),
        converged=bool(res.success),
        iterations=int(res.nit),
    )


def gamma_gamma_expected_spend(
    params: GammaGammaParams, frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """E[spend per transaction | x, mean spend] (Fader & Hardie 2013, eq. 5); the population mean when x = 0.

    The population mean p*gamma/(q-1) needs q > 1; with q <= 1 the observed mean is returned for x = 0 too.
    """
    p, q, gamma = params.p, params.q, params.gamma
    x = np.asarray(frequency, dtype=float)
    m = np.nan_to_num(np.asarray(monetary_value, dtype=float))
    if q <= 1.0:
        return np.where(x > 0, m, np.nan)
    return p * (gamma + x * m) / (p * x + q - 1.0)


# --------------------------------------------------------------------------------------------- per-customer output


@dataclass(frozen=True)
class ClvModel:
    """A fitted pair of BTYD models, with the length in days of the summary's time unit."""

    bgnbd: BGNBDParams
    gamma_gamma: GammaGammaParams | None
    days_per_unit: float = 1.0


def clv_fit(summary: pd.DataFrame, *, days_per_unit: float = 1.0, penalizer: float = 0.0) -> ClvModel:
    """Fit BG/NBD on all customers and Gamma-Gamma on repeat buyers of a `btyd_summary` frame.

    Gamma-Gamma is left None (spend falls back to observed means) when it cannot be fitted.
    """
    bg = bgnbd_fit(summary["frequency"], summary["recency"], summary["T"], penalizer=penalizer)
    try:
        gg: GammaGammaParams | None = gamma_gamma_fit(
            summary["frequency"], summary["monetary_value"], penalizer=penalizer
        )
    except FitError:
        gg = None
    return ClvModel(bgnbd=bg, gamma_gamma=gg, days_per_unit=days_per_unit)


def clv_predict(
    model: ClvModel,
    summary: pd.DataFrame,
    *,
    cutoff: object | None = None,
    horizons_days: tuple[int, ...] = (90, 365),
    value_horizon_days: int = 365,
    annual_discount_rate: float = 0.0,
    aov: pd.Series | None = None,
    next_order_max_days: int = 365,
) -> pd.DataFrame:
    """Per-customer predictions from a `btyd_summary` frame (same time unit the model was fitted in).

    Columns: p_alive, expected_purchases_<h>d for each horizon, expected_spend, predicted_value_<value_horizon>d
    (expected purchases x expected spend, discounted monthly at `annual_discount_rate`), and next_order_days /
    expected_next_order (cutoff + median wait to the next purchase if still alive; NaN/NaT when P(alive) < 0.5 or
    the median wait exceeds `next_order_max_days`).
    """
    bg = model.bgnbd
    x = summary["frequency"].to_numpy(dtype=float)
    t_x = summary["recency"].to_numpy(dtype=float)
    T = summary["T"].to_numpy(dtype=float)
    unit = model.days_per_unit
    out = pd.DataFrame(index=summary.index)
    out["p_alive"] = bgnbd_p_alive(bg, x, t_x, T)
    for h in horizons_days:
        out[f"expected_purchases_{h}d"] = bgnbd_expected_purchases(bg, h / unit, x, t_x, T)

    if model.gamma_gamma is not None:
        spend = gamma_gamma_expected_spend(model.gamma_gamma, x, summary["monetary_value"].to_numpy(dtype=float))
    else:
        spend = np.where(x > 0, summary["monetary_value"].to_numpy(dtype=float), np.nan)
    if aov is not None:  # one-time buyers without a spend model: their single order value
        spend = np.where(np.isfinite(spend), spend, aov.reindex(summary.index).to_numpy(dtype=float))
    out["expected_spend"] = spend

    # Expected purchases in monthly steps, each month's increment discounted to today.
    steps = np.unique(np.append(np.arange(30, value_horizon_days, 30), value_horizon_days)).astype(float)
    cumulative = np.zeros_like(x)
    value_purchases = np.zeros_like(x)
    for step in steps:
        if step == value_horizon_days and f"expected_purchases_{value_horizon_days}d" in out:
            now = out[f"expected_purchases_{value_horizon_days}d"].to_numpy()
        else:
            now = bgnbd_expected_purchases(bg, step / unit, x, t_x, T)
        value_purchases += (now - cumulative) / (1.0 + annual_discount_rate) ** (step / 365.0)
        cumulative = now
    out[f"predicted_value_{value_horizon_days}d"] = value_purchases * np.nan_to_num(spend)

    wait_days = bgnbd_median_wait(bg, x, T) * unit
    show = (out["p_alive"].to_numpy() >= 0.5) & (wait_days <= next_order_max_days)
    out["next_order_days"] = np.where(show, wait_days, np.nan)
    if cutoff is not None:
        base = pd.Timestamp(cutoff).normalize()  # type: ignore[arg-type]
        out["expected_next_order"] = base + pd.to_timedelta(out["next_order_days"].round(), unit="D")
    return out

"""Supervised churn risk: gradient boosting on features at past cutoffs, labelled by the orders that followed.

Training set (time split): for origins c = cutoff - window - k*step, features are computed from orders up to c and
the label is "no order in (c, c + window]". The newest origin is held out to measure AUC against named baselines
(recency alone, BG/NBD expected purchases); the final model is then refitted on every origin.
Reasons: for each group of related features, the risk drop when that group is set to the median values of the
customers who stayed (training rows labelled retained); the groups that raise risk most are phrased in plain words
(see `churn_reasons`). Estimators run single-threaded (`n_threads`): predictable on a shared worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from personalization.ml.btyd import BGNBDParams, FitError, bgnbd_expected_purchases, bgnbd_fit, bgnbd_p_alive
from personalization.ml.features import customer_features, cutoff_day, valid_orders


class Classifier(Protocol):
    """What the churn model needs from an estimator."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Any: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


# Few, scale-free-ish features: the model is trained at younger cutoffs than it scores, so it must transfer.
MODEL_FEATURES: tuple[str, ...] = (
    "days_since_last_order",
    "overdue_ratio",
    "T",
    "frequency",
    "monetary_value",
    "aov",
    "events_30d",
    "support_contacts",
    "avg_csat",
    "p_alive",
    "expected_purchases",
)
# Plain-word reason groups: features that describe the same fact are switched to typical values together.
REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "lapsed": ("days_since_last_order", "overdue_ratio", "p_alive"),
    "few_orders": ("frequency", "expected_purchases"),
    "spend": ("monetary_value", "aov"),
    "new": ("T",),
    "engagement": ("events_30d",),
    "support": ("support_contacts", "avg_csat"),
}
# Risk is monotone in these (+1 rises with the feature, -1 falls): guards against odd shapes from small tenants.
MONOTONE: dict[str, int] = {"days_since_last_order": 1, "p_alive": -1, "expected_purchases": -1}
BANDS: tuple[tuple[float, str], ...] = ((0.3, "low"), (0.6, "medium"), (1.01, "high"))
DEFAULT_GAP_DAYS = 90.0


@dataclass(frozen=True)
class ChurnHoldout:
    """AUC of the model and of named baselines on the newest labelled origin (label 1 = churned)."""

    auc: float
    baselines: dict[str, float]
    n_customers: int
    churn_rate: float
    origin: str


@dataclass
class ChurnModel:
    """A fitted churn classifier with what is needed to score and explain."""

    estimator: Classifier
    estimator_name: str
    feature_names: list[str]
    reference: pd.Series
    window_days: int
    origins: list[str]
    n_rows: int
    holdout: ChurnHoldout | None = None
    params: dict[str, object] = field(default_factory=dict)


def churn_frame(
    orders: pd.DataFrame,
    *,
    cutoff: object,
    window_days: int,
    events: pd.DataFrame | None = None,
    feedback: pd.DataFrame | None = None,
    features: pd.DataFrame | None = None,
    bgnbd: BGNBDParams | None = None,
) -> pd.DataFrame:
    """Model features at `cutoff` for customers with an order by then: customer features plus BG/NBD outputs.

    BG/NBD is fitted on this same snapshot (days) unless `bgnbd` (fitted in days on it) is given; if it cannot be
    fitted its columns are NaN. Pass precomputed `features` (from `customer_features` at the same cutoff) to skip
    recomputing them.
    """
    if features is None:
        features = customer_features(orders, cutoff=cutoff, events=events, feedback=feedback)
    frame = features[features["orders"] > 0].copy()
    gap = frame["avg_days_between_orders"]
    typical_gap = float(gap.median()) if gap.notna().any() else DEFAULT_GAP_DAYS
    frame["overdue_ratio"] = frame["days_since_last_order"] / gap.fillna(typical_gap).clip(lower=1.0)
    frame["orders_per_month"] = frame["orders"] / (frame["T"].clip(lower=1.0) / 30.0)
    x, t_x, T = (frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    try:
        params = bgnbd if bgnbd is not None else bgnbd_fit(x, t_x, T)
        frame["p_alive"] = bgnbd_p_alive(params, x, t_x, T)
        frame["expected_purchases"] = bgnbd_expected_purchases(params, float(window_days), x, t_x, T)
    except (FitError, ValueError, FloatingPointError):
        frame["p_alive"] = np.nan
        frame["expected_purchases"] = np.nan
    return frame


def churn_labels(orders: pd.DataFrame, customers: pd.Index, *, cutoff: object, window_days: int) -> pd.Series:
    """1 for customers in `customers` with no valid order in the `window_days` days after `cutoff`, else 0."""
    start = cutoff_day(cutoff) + 1
    future = valid_orders(orders, pd.Timestamp(cutoff) + pd.Timedelta(days=window_days))  # type: ignore[arg-type]
    active = pd.Index(future.loc[future["day"] >= start, "customer_id"].unique())
    return pd.Series((~customers.isin(active)).astype(np.int64), index=customers, name="churned")


def baseline_scores(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Named baseline churn scores (higher = more likely to churn) for the holdout comparison."""
    return {
        "recency": frame["days_since_last_order"].to_numpy(dtype=float),
        "bgnbd_expected_purchases": -frame["expected_purchases"].fillna(0.0).to_numpy(dtype=float),
    }


class _Blend:
    """Mean of the member classifiers' churn probabilities (a fitted-estimator lookalike for predict_proba)."""

    def __init__(self, members: Sequence[Classifier]) -> None:
        self.members = list(members)

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Blend:
        for m in self.members:
            m.fit(x, y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_proba(x) for m in self.members], axis=0)


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _candidates(n_rows: int, feature_names: Sequence[str], random_state: int) -> dict[str, Classifier]:
    """The model families tried on the time-split holdout; the best one is refitted on every origin.

    Boosting is shallow and strongly regularised (tenants are small); the logistic model on log features is the
    robust choice when training cutoffs are younger than the scoring cutoff (trees cannot extrapolate in age).
    """

    def boosting() -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=150,
            max_leaf_nodes=8,
            min_samples_leaf=max(20, n_rows // 200),
            l2_regularization=1.0,
            monotonic_cst=[MONOTONE.get(f, 0) for f in feature_names],
            early_stopping=False,
            random_state=random_state,
        )

    def logistic() -> Pipeline:
        return make_pipeline(
            FunctionTransformer(_signed_log1p),
            SimpleImputer(strategy="median", add_indicator=True),
            StandardScaler(),
            LogisticRegression(C=1.0, max_iter=2000),
        )

    return {"logistic": logistic(), "boosting": boosting(), "blend": _Blend([logistic(), boosting()])}


def _cap_rows(x: np.ndarray, y: np.ndarray, limit: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random sample of at most `limit` training rows (large tenants gain little beyond it)."""
    if len(y) <= limit:
        return x, y
    keep = np.random.default_rng(random_state).choice(len(y), size=limit, replace=False)
    return x[keep], y[keep]


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC."""
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / max(n_pos * n_neg, 1)
    return float(np.sqrt(max(var, 0.0)))


def _select(aucs: dict[str, float], y: np.ndarray) -> str:
    """The logistic model unless another beats its holdout AUC by more than one standard error (simplest wins)."""
    base = aucs["logistic"]
    se = auc_standard_error(base, int(y.sum()), int(len(y) - y.sum()))
    best = max(aucs, key=lambda k: aucs[k])
    return best if aucs[best] - base > se else "logistic"


def _origins(cutoff: object, window_days: int, n_origins: int, step_days: int) -> list[pd.Timestamp]:
    """Training cutoffs, newest first: cutoff - window - k*step."""
    base = pd.Timestamp(cutoff).normalize()  # type: ignore[arg-type]
    return [base - pd.Timedelta(days=window_days + k * step_days) for k in range(n_origins)]


def churn_train(
    orders: pd.DataFrame,
    *,
    cutoff: object,
    window_days: int = 90,
    events: pd.DataFrame | None = None,
    feedback: pd.DataFrame | None = None,
    n_origins: int = 4,
    step_days: int | None = None,
    min_history_days: int = 30,
    estimator: str = "auto",
    random_state: int = 0,
    n_threads: int = 1,
    max_train_rows: int = 100_000,
) -> ChurnModel:
    """Fit the churn classifier on origins before `cutoff` (label window `window_days`) and measure holdout AUC.

    `estimator`: "logistic", "boosting", "blend", or "auto": trained on the older origins and compared on the newest,
    a more complex model replaces the logistic one only when it wins by more than one AUC standard error.
    Origins with under `min_history_days` of orders before them are skipped. Raises ValueError when no origin
    has both churned and retained customers.
    """
    with threadpool_limits(n_threads):
        return _churn_train(
            orders,
            cutoff,
            window_days,
            events,
            feedback,
            n_origins,
            step_days,
            min_history_days,
            estimator,
            random_state,
            max_train_rows,
        )


def _churn_train(
    orders: pd.DataFrame,
    cutoff: object,
    window_days: int,
    events: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    n_origins: int,
    step_days: int | None,
    min_history_days: int,
    estimator: str,
    random_state: int,
    max_train_rows: int,
) -> ChurnModel:
    step = step_days or max(window_days // 3, 7)
    first_day = int(valid_orders(orders, cutoff)["day"].min())
    frames: list[tuple[pd.Timestamp, pd.DataFrame, pd.Series]] = []
    for origin in _origins(cutoff, window_days, n_origins, step):
        if cutoff_day(origin) - first_day < min_history_days:
            continue
        frame = churn_frame(orders, cutoff=origin, window_days=window_days, events=events, feedback=feedback)
        label = churn_labels(orders, frame.index, cutoff=origin, window_days=window_days)
        if label.nunique() == 2:
            frames.append((origin, frame, label))
    if not frames:
        raise ValueError("no training origin with both churned and retained customers")
    # Columns never observed for this tenant (no events, no feedback) are left out: boosting cannot bin them.
    names = [c for c in MODEL_FEATURES if any(f[c].notna().any() for _, f, _ in frames)]

    holdout = None
    chosen = estimator if estimator != "auto" else "logistic"
    candidate_aucs: dict[str, float] = {}
    if len(frames) >= 2:
        newest, older = frames[0], frames[1:]
        x_old = pd.concat([f[names] for _, f, _ in older])
        y_old = pd.concat([y for _, _, y in older])
        if y_old.nunique() == 2:
            x_new, y_new = newest[1][names].to_numpy(float), newest[2].to_numpy()
            x_fit, y_fit = _cap_rows(x_old.to_numpy(float), y_old.to_numpy(), max_train_rows, random_state)
            cands = _candidates(len(x_fit), names, random_state)
            risks = {}
            for name in ("logistic", "boosting"):
                if estimator in ("auto", name, "blend"):
                    risks[name] = cands[name].fit(x_fit, y_fit).predict_proba(x_new)[:, 1]
            if estimator in ("auto", "blend"):  # the blend of the two fits above, not a third fit
                risks["blend"] = (risks["logistic"] + risks["boosting"]) / 2.0
            candidate_aucs = {k: float(roc_auc_score(y_new, v)) for k, v in risks.items() if estimator in ("auto", k)}
            if estimator == "auto":
                chosen = _select(candidate_aucs, y_new)
            holdout = evaluate(y_new, risks[chosen], newest[1], origin=str(newest[0].date()))

    x_all = pd.concat([f[names] for _, f, _ in frames])
    y_all = pd.concat([y for _, _, y in frames])
    x_fit, y_fit = _cap_rows(x_all.to_numpy(float), y_all.to_numpy(), max_train_rows, random_state)
    est = _candidates(len(x_fit), names, random_state)[chosen].fit(x_fit, y_fit)
    return ChurnModel(
        estimator=est,
        feature_names=names,
        reference=x_all[y_all.to_numpy() == 0].median(),
        window_days=window_days,
        origins=[str(o.date()) for o, _, _ in frames],
        n_rows=len(x_all),
        holdout=holdout,
        estimator_name=chosen,
        params={
            "n_origins": n_origins,
            "step_days": step,
            "churn_rate": float(y_all.mean()),
            "candidate_holdout_auc": candidate_aucs,
        },
    )


def evaluate(y_churned: np.ndarray, risk: np.ndarray, frame: pd.DataFrame, *, origin: str = "") -> ChurnHoldout:
    """AUC of `risk` and of each baseline score against the churn labels."""
    base = {name: float(roc_auc_score(y_churned, s)) for name, s in baseline_scores(frame).items()}
    return ChurnHoldout(
        auc=float(roc_auc_score(y_churned, risk)),
        baselines=base,
        n_customers=len(y_churned),
        churn_rate=float(np.mean(y_churned)),
        origin=origin,
    )


def band_for(risk: np.ndarray) -> np.ndarray:
    """Churn-risk band (low / medium / high) for risks in [0, 1]."""
    edges = np.array([b for b, _ in BANDS])
    labels = np.array([n for _, n in BANDS], dtype=object)
    return labels[np.searchsorted(edges, np.asarray(risk), side="right").clip(max=len(labels) - 1)]


def churn_score(model: ChurnModel, frame: pd.DataFrame, *, n_reasons: int = 2, n_threads: int = 1) -> pd.DataFrame:
    """Per customer of a `churn_frame`: risk in [0, 1], band, and up to `n_reasons` reasons in plain words."""
    x = frame[model.feature_names].to_numpy(dtype=float)
    with threadpool_limits(n_threads):
        risk = model.estimator.predict_proba(x)[:, 1]
        contrib = group_contributions(model, frame, risk)
    out = pd.DataFrame({"risk": risk, "band": band_for(risk)}, index=frame.index)
    out["reasons"] = churn_reasons(frame, contrib, n_reasons=n_reasons)
    return out


def group_contributions(model: ChurnModel, frame: pd.DataFrame, risk: np.ndarray) -> pd.DataFrame:
    """Risk minus the risk with each reason group set to retained customers' medians (positive = raises risk)."""
    names = model.feature_names
    x = frame[names].to_numpy(dtype=float)
    out = {}
    for group, cols in REASON_GROUPS.items():
        idx = [names.index(c) for c in cols if c in names]
        if not idx:
            continue
        typical = x.copy()
        typical[:, idx] = model.reference.iloc[idx].to_numpy(dtype=float)
        out[group] = risk - model.estimator.predict_proba(typical)[:, 1]
    return pd.DataFrame(out, index=frame.index)


def _plural(n: float, word: str) -> str:
    k = round(n)
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def churn_reasons(
    frame: pd.DataFrame, contrib: pd.DataFrame, *, n_reasons: int = 2, min_effect: float = 0.02
) -> list[str]:
    """Plain-words reasons per customer from the groups that raise their risk by at least `min_effect`."""
    order = np.argsort(-contrib.to_numpy(), axis=1)[:, :n_reasons]
    groups = list(contrib.columns)
    values = contrib.to_numpy()
    rows = frame.to_dict("records")
    reasons: list[str] = []
    for i, row in enumerate(rows):
        parts = [_phrase(groups[j], row) for j in order[i] if values[i, j] >= min_effect]
        reasons.append("; ".join(p for p in parts if p))
    return reasons


def _phrase(group: str, row: dict[str, float]) -> str:
    """One reason in plain words from a customer's feature values."""
    gap = row.get("avg_days_between_orders")
    if group == "lapsed":
        text = f"no order for {_plural(row['days_since_last_order'], 'day')}"
        if gap is not None and np.isfinite(gap):
            text += f"; usually orders every {_plural(gap, 'day')}"
        return text
    if group == "few_orders":
        n = int(row.get("orders", 0))
        return "only one order so far" if n <= 1 else f"only {n} orders in {_plural(row['T'], 'day')}"
    if group == "spend":
        return f"low spend ({row['aov']:.2f} per order)"
    if group == "new":  # a long tenure is not a reason anyone can act on; a short one is
        return f"first ordered only {_plural(row['T'], 'day')} ago" if row["T"] < 90 else ""
    if group == "engagement":
        return "no visits or activity in the last 30 days" if not row.get("events_30d") else ""
    if group == "support":
        csat = row.get("avg_csat")
        if csat is not None and np.isfinite(csat):
            return f"{_plural(row.get('support_contacts', 0), 'support contact')}, CSAT {csat:.1f}"
        return f"{_plural(row.get('support_contacts', 0), 'support contact')}"
    return ""


def churn_fallback_score(features: pd.DataFrame, *, half_life_gaps: float = 2.0) -> pd.DataFrame:
    """Simple risk when the tenant lacks history for the model: 1 - 0.5 ** (days since last order / (k x usual gap)).

    The usual gap is the customer's own average days between orders, else the tenant median, else 90 days;
    risk is 0.5 when a customer is `half_life_gaps` usual gaps late. Customers without orders are skipped.
    """
    buyers = features[features["orders"] > 0]
    gap = buyers["avg_days_between_orders"]
    typical = float(gap.median()) if gap.notna().any() else DEFAULT_GAP_DAYS
    usual = gap.fillna(typical).clip(lower=1.0)
    risk = 1.0 - np.power(0.5, buyers["days_since_last_order"] / (half_life_gaps * usual))
    out = pd.DataFrame({"risk": risk, "band": band_for(risk.to_numpy())}, index=buyers.index)
    days = buyers["days_since_last_order"].round().astype(np.int64).astype(str)
    every = usual.round().astype(np.int64).astype(str)
    out["reasons"] = "no order for " + days + " days; usually orders every " + every + " days"
    out.loc[out["risk"] < 0.3, "reasons"] = ""
    return out

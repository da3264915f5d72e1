"""Benchmark of personalization.ml: CDNOW published parameters, fit time vs lifetimes, churn AUC, and a scale run.

Run: .venv/bin/python bench/bench_ml_cdnow.py [--customers 100000] [--skip-scale] [--skip-lifetimes]
`lifetimes` is never a project dependency: the comparison runs it in a throwaway venv (LIFETIMES_PYTHON, or
/tmp/lifetimes-venv created on demand with pinned old pandas/numpy) and is skipped with a message if that fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from personalization.ml.btyd import bgnbd_fit, clv_fit, clv_predict, gamma_gamma_fit
from personalization.ml.churn import (
    churn_frame,
    churn_labels,
    churn_score,
    churn_train,
    evaluate,
)
from personalization.ml.clusters import fit_clusters
from personalization.ml.features import btyd_summary, customer_features
from personalization.ml.rfm import rfm_from_features
from personalization.ml.simulate import simulate_tenant

CDNOW = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "cdnow" / "CDNOW_sample.txt"
CAL_END = "1997-09-30"
PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
LIFETIMES_VENV = Path(tempfile.gettempdir()) / "lifetimes-venv"
LIFETIMES_PINS = ["lifetimes==0.11.3", "pandas<2", "numpy<2", "scipy<1.12"]

LIFETIMES_SCRIPT = """
import json, sys, time, statistics, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from lifetimes import BetaGeoFitter
s = pd.read_csv(sys.argv[1])
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"])
    times.append(time.perf_counter() - t)
print(json.dumps({"params": {k: float(v) for k, v in bgf.params_.items()}, "seconds": statistics.median(times)}))
"""


def peak_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    """Result of the last call and the median wall time over `repeat` calls."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def load_cdnow() -> pd.DataFrame:
    raw = pd.read_csv(
        CDNOW, sep=r"\s+", header=None, names=["master_id", "customer_id", "date", "cds", "total"], dtype={"date": str}
    )
    raw["placed_at"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw[["customer_id", "placed_at", "total"]]


def lifetimes_python() -> str | None:
    """A python that can import lifetimes, creating the throwaway venv if needed; None (with a message) if not."""
    candidates = [os.environ.get("LIFETIMES_PYTHON"), str(LIFETIMES_VENV / "bin" / "python")]
    for py in filter(None, candidates):
        if Path(py).exists() and subprocess.run([py, "-c", "import lifetimes"], capture_output=True).returncode == 0:
            return py
    print(f"  creating {LIFETIMES_VENV} with {' '.join(LIFETIMES_PINS)} ...", flush=True)
    try:
        subprocess.run(["python3", "-m", "venv", str(LIFETIMES_VENV)], check=True, capture_output=True)
        pip = [str(LIFETIMES_VENV / "bin" / "pip"), "install", "-q", *LIFETIMES_PINS]
        subprocess.run(pip, check=True, capture_output=True, timeout=600)
    except Exception as exc:
        print(f"  lifetimes unavailable, comparison skipped: {exc}")
        return None
    return str(LIFETIMES_VENV / "bin" / "python")


def bench_cdnow(skip_lifetimes: bool) -> None:
    print("== CDNOW 1/10 sample: calibration 1997-01-01..1997-09-30, weeks ==")
    orders = load_cdnow()
    summary, t_summary = timed(lambda: btyd_summary(orders, cutoff=CAL_END, unit="weeks"), 5)
    print(f"summary from {len(orders)} raw transactions: {len(summary)} customers in {t_summary * 1000:.1f} ms")
    bg, t_bg = timed(lambda: bgnbd_fit(summary["frequency"], summary["recency"], summary["T"]), 20)
    gg, t_gg = timed(lambda: gamma_gamma_fit(summary["frequency"], summary["monetary_value"]), 20)
    print(f"BG/NBD fit {t_bg * 1000:.1f} ms (median of 20), log-likelihood {bg.log_likelihood:.2f} (published -9582.4)")
    for name, pub in PUBLISHED_BG.items():
        ours = getattr(bg, name)
        print(f"  {name:6s} ours {ours:.4f}  published {pub:.3f}  diff {100 * (ours / pub - 1):+.2f}%")
    print(f"Gamma-Gamma fit {t_gg * 1000:.1f} ms on {gg.n_customers} repeat buyers")
    for name, pub in PUBLISHED_GG.items():
        ours = getattr(gg, name)
        print(f"  {name:6s} ours {ours:.4f}  published {pub:.2f}  diff {100 * (ours / pub - 1):+.2f}%")

    if skip_lifetimes:
        print("lifetimes comparison skipped (--skip-lifetimes)")
    else:
        py = lifetimes_python()
        if py:
            with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
                summary[["frequency", "recency", "T"]].to_csv(fh, index=False)
            res = subprocess.run([py, "-c", LIFETIMES_SCRIPT, fh.name, "5"], capture_output=True, text=True)
            if res.returncode != 0:
                print(f"  lifetimes run failed: {res.stderr.strip().splitlines()[-1:]}")
            else:
                lt = json.loads(res.stdout.strip().splitlines()[-1])
                print(
                    f"lifetimes BetaGeoFitter {lt['seconds'] * 1000:.1f} ms (median of 5) -> ours is "
                    f"{lt['seconds'] / t_bg:.1f}x faster"
                )
                for name in PUBLISHED_BG:
                    theirs, ours = lt["params"][name], getattr(bg, name)
                    same = f"{theirs:.3g}" == f"{ours:.3g}"
                    print(f"  {name:6s} lifetimes {theirs:.4f}  ours {ours:.4f}  same to 3 s.f.: {same}")

    print("== churn on CDNOW: features at week 39, label = no purchase in weeks 40-78 ==")
    calibration = orders[orders["placed_at"] <= CAL_END]
    model, t_train = timed(lambda: churn_train(calibration, cutoff=CAL_END))
    frame = churn_frame(calibration, cutoff=CAL_END, window_days=model.window_days)
    labels = churn_labels(orders, frame.index, cutoff=CAL_END, window_days=273)
    scored = churn_score(model, frame)
    result = evaluate(labels.to_numpy(), scored["risk"].to_numpy(), frame)
    print(
        f"trained in {t_train:.2f} s on origins {model.origins}, window {model.window_days} d, "
        f"chosen {model.estimator_name} (inner holdout AUCs {model.params['candidate_holdout_auc']})"
    )
    print(f"  churn rate {result.churn_rate:.3f} over {result.n_customers} customers")
    print(
        f"  AUC ours {result.auc:.4f} | recency alone {result.baselines['recency']:.4f} | "
        f"BG/NBD expected purchases {result.baselines['bgnbd_expected_purchases']:.4f}"
    )
    for name in ("logistic", "boosting", "blend"):
        m = churn_train(calibration, cutoff=CAL_END, estimator=name)
        r = evaluate(labels.to_numpy(), churn_score(m, frame)["risk"].to_numpy(), frame)
        print(f"  (forcing {name}: AUC {r.auc:.4f})")


def bench_scale(n_customers: int) -> None:
    print(f"== scale: one synthetic tenant, {n_customers} customers ==")
    data, t_gen = timed(lambda: simulate_tenant(n_customers, seed=1))
    orders = data["orders"]
    cutoff = orders["placed_at"].max()
    print(
        f"generated {len(orders)} orders, {len(data['lines'])} lines, {len(data['events'])} events, "
        f"{len(data['feedback'])} feedback in {t_gen:.1f} s; peak so far {peak_mb():.0f} MB"
    )
    stages: list[tuple[str, float]] = []
    t_all = time.perf_counter()
    feats, t = timed(
        lambda: customer_features(
            orders, cutoff=cutoff, events=data["events"], feedback=data["feedback"], lines=data["lines"]
        )
    )
    stages.append(("features", t))
    rfm, t = timed(lambda: rfm_from_features(feats))
    stages.append(("rfm", t))
    (cl_model, _clusters), t = timed(lambda: fit_clusters(feats, k_range=range(2, 9)))
    stages.append((f"clusters (k={cl_model.k})", t))

    def btyd() -> pd.DataFrame:
        summary = btyd_summary(orders, cutoff=cutoff, unit="days")
        model = clv_fit(summary)
        return clv_predict(model, summary, cutoff=cutoff, annual_discount_rate=0.1, aov=feats["aov"])

    preds, t = timed(btyd)
    stages.append(("BG/NBD + Gamma-Gamma fit and predict", t))
    churn_model, t = timed(lambda: churn_train(orders, cutoff=cutoff, events=data["events"], feedback=data["feedback"]))
    stages.append((f"churn train ({churn_model.estimator_name}, {churn_model.n_rows} rows)", t))
    frame = churn_frame(orders, cutoff=cutoff, window_days=churn_model.window_days, features=feats)
    scored, t = timed(lambda: churn_score(churn_model, frame))
    print(f"  example reasons: {scored.loc[scored['band'] == 'high', 'reasons'].head(3).tolist()}")
    stages.append(("churn score + reasons", t))
    total = time.perf_counter() - t_all
    for name, secs in stages:
        print(f"  {name:45s} {secs:7.2f} s")
    print(f"  {'total (+ churn frame)':45s} {total:7.2f} s; peak RSS {peak_mb():.0f} MB (includes the generated data)")
    print(
        f"  {len(rfm)} customers scored; churn holdout AUC {churn_model.holdout.auc if churn_model.holdout else None}"
    )
    print(
        f"  {int(preds['expected_next_order'].notna().sum())} with an expected next order; "
        f"mean predicted 365-day value {preds['predicted_value_365d'].mean():.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-lifetimes", action="store_true")
    args = parser.parse_args()
    bench_cdnow(args.skip_lifetimes)
    if not args.skip_scale:
        bench_scale(args.customers)


if __name__ == "__main__":
    main()

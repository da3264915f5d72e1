"""Behavioural clusters: k-means on scaled features, k by silhouette, plain-word descriptions, stable ids."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances, silhouette_score
from threadpoolctl import threadpool_limits

from personalization.ml.features import category_columns

# Behavioural features (log-transformed where skewed) before standard scaling; cat_* shares are appended.
LOG_FEATURES: tuple[str, ...] = (
    "frequency",
    "gap_days",
    "days_since_last_order",
    "aov",
    "events_30d",
    "support_contacts",
)
MAX_MATCH_DISTANCE = 3.0  # in scaled units: a new cluster farther than this from every old one gets a new id


@dataclass
class ClusterModel:
    """Fitted clusters. `centers` are in the transformed (log, unscaled) space so a later fit can match them."""

    k: int
    feature_names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    centers: np.ndarray
    cluster_ids: list[int]
    descriptions: dict[int, str]
    sizes: dict[int, int]
    silhouettes: dict[int, float] = field(default_factory=dict)
    profiles: pd.DataFrame = field(default_factory=pd.DataFrame)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly parameters for a model registry."""
        return {
            "k": self.k,
            "feature_names": self.feature_names,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "centers": self.centers.tolist(),
            "cluster_ids": self.cluster_ids,
            "descriptions": {str(k): v for k, v in self.descriptions.items()},
            "sizes": {str(k): v for k, v in self.sizes.items()},
            "silhouettes": {str(k): v for k, v in self.silhouettes.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ClusterModel:
        """Rebuild from `as_dict` output (enough to match ids and assign new customers)."""
        d: dict = dict(data)
        return cls(
            k=int(d["k"]),
            feature_names=list(d["feature_names"]),
            mean=np.asarray(d["mean"], dtype=float),
            scale=np.asarray(d["scale"], dtype=float),
            centers=np.asarray(d["centers"], dtype=float),
            cluster_ids=[int(i) for i in d["cluster_ids"]],
            descriptions={int(k): str(v) for k, v in d["descriptions"].items()},
            sizes={int(k): int(v) for k, v in d["sizes"].items()},
            silhouettes={int(k): float(v) for k, v in d.get("silhouettes", {}).items()},
        )


def cluster_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """Transformed behavioural features of customers with an order (log1p of counts/amounts, gap imputed with T)."""
    buyers = features[features["orders"] > 0]
    gap = buyers["avg_days_between_orders"].fillna(buyers["T"])  # one-time buyers: no repeat in T days yet
    raw = pd.DataFrame(
        {
            "frequency": buyers["frequency"],
            "gap_days": gap,
            "days_since_last_order": buyers["days_since_last_order"],
            "aov": buyers["aov"].clip(lower=0.0),
            "events_30d": buyers["events_30d"],
            "support_contacts": buyers["support_contacts"],
        },
        index=buyers.index,
    )
    out = np.log1p(raw.astype(float))
    for c in category_columns(features):
        out[c] = buyers[c].fillna(0.0)
    return out


def _kmeans(k: int, random_state: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=3, random_state=random_state)


def fit_clusters(
    features: pd.DataFrame,
    *,
    k_range: range = range(2, 9),
    previous: ClusterModel | None = None,
    fit_sample: int = 20_000,
    silhouette_sample: int = 4_000,
    random_state: int = 0,
    n_threads: int = 1,
) -> tuple[ClusterModel, pd.Series]:
    """Cluster customers with an order; returns the model and each customer's stable cluster id.

    k maximises the silhouette (on a sample) within `k_range`; k-means fits on up to `fit_sample` customers and
    assigns everyone (single-threaded unless `n_threads`). With `previous`, ids are carried over by Hungarian
    matching of centroids. Raises ValueError with fewer than 3 customers.
    """
    x_df = cluster_matrix(features)
    # Constant columns carry no information and would divide by zero in scaling.
    x_df = x_df.loc[:, x_df.std(ddof=0) > 0]
    n = len(x_df)
    if n < 3 or x_df.shape[1] == 0:
        raise ValueError("need at least 3 customers with orders and varying behaviour to cluster")
    x = x_df.to_numpy(dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / scale
    rng = np.random.default_rng(random_state)
    fit_idx = rng.choice(n, size=min(n, fit_sample), replace=False)
    z_fit = z[fit_idx]
    sil_idx = rng.choice(len(z_fit), size=min(len(z_fit), silhouette_sample), replace=False)

    silhouettes: dict[int, float] = {}
    best_k, best_model, best_score = 1, None, -np.inf
    distinct = len(np.unique(z_fit, axis=0))
    with threadpool_limits(n_threads):
        # One distance matrix for the silhouette sample, shared by every k.
        dist = pairwise_distances(z_fit[sil_idx])
        for k in k_range:
            if k >= distinct:
                break
            km = _kmeans(k, random_state).fit(z_fit)
            labels_s = km.labels_[sil_idx]
            if len(np.unique(labels_s)) < 2:
                continue
            score = float(silhouette_score(dist, labels_s, metric="precomputed"))
            silhouettes[k] = score
            if score > best_score:
                best_k, best_model, best_score = k, km, score
        if best_model is None:
            raise ValueError("customers are too alike to form clusters")
        labels = best_model.predict(z)
    centers_z = best_model.cluster_centers_
    centers = centers_z * scale + mean
    ids = match_ids(centers, previous, mean=mean, scale=scale, feature_names=list(x_df.columns))
    profiles = cluster_profiles(features.loc[x_df.index], labels, ids).reindex(ids)
    z_means = pd.DataFrame(z, columns=x_df.columns).groupby(labels).mean().reindex(range(best_k)).fillna(0.0)
    descriptions = {ids[j]: describe_cluster(profiles.loc[ids[j]], z_means.loc[j]) for j in range(best_k)}
    descriptions = disambiguate_descriptions(descriptions, z_means.set_axis([ids[j] for j in range(best_k)]))
    sizes = {ids[j]: int((labels == j).sum()) for j in range(best_k)}
    model = ClusterModel(
        k=best_k,
        feature_names=list(x_df.columns),
        mean=mean,
        scale=scale,
        centers=centers,
        cluster_ids=ids,
        descriptions=descriptions,
        sizes=sizes,
        silhouettes=silhouettes,
        profiles=profiles,
    )
    return model, pd.Series(np.asarray(ids)[labels], index=x_df.index, name="cluster_id")


def match_ids(
    centers: np.ndarray,
    previous: ClusterModel | None,
    *,
    mean: np.ndarray,
    scale: np.ndarray,
    feature_names: list[str],
) -> list[int]:
    """Stable ids for new centroids: Hungarian matching to the previous version's centroids in today's scaled units.

    Pairs farther apart than MAX_MATCH_DISTANCE, and extra new clusters, get fresh ids above every id used before.
    """
    k = len(centers)
    if previous is None:
        return list(range(k))
    shared = [f for f in feature_names if f in previous.feature_names]
    new_cols = [feature_names.index(f) for f in shared]
    old_cols = [previous.feature_names.index(f) for f in shared]
    new_z = (centers[:, new_cols] - mean[new_cols]) / scale[new_cols]
    old_z = (previous.centers[:, old_cols] - mean[new_cols]) / scale[new_cols]
    cost = np.sqrt(((new_z[:, None, :] - old_z[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    ids: list[int | None] = [None] * k
    for r, c in zip(rows, cols, strict=True):
        if cost[r, c] <= MAX_MATCH_DISTANCE:
            ids[r] = previous.cluster_ids[c]
    next_id = max(previous.cluster_ids, default=-1) + 1
    out: list[int] = []
    for i in ids:
        if i is None:
            i, next_id = next_id, next_id + 1
        out.append(i)
    return out


def cluster_profiles(features: pd.DataFrame, labels: np.ndarray, ids: list[int]) -> pd.DataFrame:
    """Per cluster id: size, medians of behaviour in original units, repeat-buyer share and mean category shares."""
    f = features.assign(_cluster=np.asarray(ids)[labels], _repeat=(features["frequency"] > 0).astype(float))
    g = f.groupby("_cluster")
    prof = pd.DataFrame(
        {
            "customers": g.size(),
            "gap_days": g["avg_days_between_orders"].median(),
            "days_since_last_order": g["days_since_last_order"].median(),
            "aov": g["aov"].median(),
            "orders": g["orders"].median(),
            "repeat_share": g["_repeat"].mean(),
            "events_30d": g["events_30d"].mean(),
            "support_contacts": g["support_contacts"].mean(),
        }
    )
    cats = category_columns(features)
    if cats:
        prof = prof.join(g[cats].mean())
    prof.index.name = "cluster_id"
    return prof


def _every(days: float) -> str:
    if days < 10:
        return f"every {max(round(days), 1)} days"
    if days < 60:
        return f"every {round(days / 7)} weeks"
    return f"every {round(days / 30)} months"


def describe_cluster(profile: pd.Series, z_mean: pd.Series, *, threshold: float = 0.5, max_phrases: int = 4) -> str:
    """Plain words from what sets a cluster apart: z_mean is its mean scaled features (population = 0, sd = 1)."""
    phrases: list[tuple[float, str]] = []
    if profile["repeat_share"] >= 0.5 and np.isfinite(profile["gap_days"]):
        phrases.append((10.0, f"orders {_every(float(profile['gap_days']))}"))
    elif profile["repeat_share"] < 0.2:
        phrases.append((9.0, "mostly one-time buyers"))
    cats = [c for c in profile.index if str(c).startswith("cat_")]
    if cats:
        top = max(cats, key=lambda c: profile[c])
        if profile[top] >= 0.5:
            phrases.append((8.0, f"mostly {str(top)[4:]}"))
    z = z_mean.to_dict()
    if abs(z.get("aov", 0.0)) >= threshold:
        phrases.append((abs(z["aov"]), "high spend" if z["aov"] > 0 else "low spend"))
    d = z.get("days_since_last_order", 0.0)
    if d >= threshold:
        months = profile["days_since_last_order"] / 30
        phrases.append((d, f"no order for {max(round(months), 1)} months" if months >= 1 else "lapsing"))
    elif d <= -threshold:
        phrases.append((-d, "ordered recently"))
    if z.get("events_30d", 0.0) >= threshold:
        phrases.append((z["events_30d"], "active on the site"))
    if z.get("support_contacts", 0.0) >= threshold:
        phrases.append((z["support_contacts"], "contacts support often"))
    phrases.sort(key=lambda p: -p[0])
    return ", ".join(p for _, p in phrases[:max_phrases]) or "typical customers"


# What tells apart clusters whose plain words came out the same: feature, words when higher, when lower.
_CONTRASTS = (
    ("aov", "bigger orders", "smaller orders"),
    ("frequency", "more orders", "fewer orders"),
    ("days_since_last_order", "longer since the last order", "more recent orders"),
    ("gap_days", "longer gaps between orders", "shorter gaps between orders"),
)


def disambiguate_descriptions(descriptions: dict[int, str], z_means: pd.DataFrame) -> dict[int, str]:
    """Clusters that share a description get the contrast that sets each apart from the others sharing it
    (z_means: mean scaled features by cluster id); a label that would still repeat gets a number."""
    out = dict(descriptions)
    groups: dict[str, list[int]] = {}
    for cid, text in descriptions.items():
        groups.setdefault(text, []).append(cid)
    for text, members in groups.items():
        if len(members) < 2:
            continue
        cols = [c for c, _, _ in _CONTRASTS if c in z_means.columns]
        group = z_means.loc[members, cols]
        rel = group - group.mean()
        for cid in members:
            if not cols:
                break
            col = str(rel.loc[cid].abs().idxmax())
            _, higher, lower = next(c for c in _CONTRASTS if c[0] == col)
            out[cid] = f"{text}, {higher if rel.loc[cid, col] > 0 else lower}"
    seen: dict[str, int] = {}
    for cid in sorted(out):
        text = out[cid]
        seen[text] = seen.get(text, 0) + 1
        if seen[text] > 1:
            out[cid] = f"{text} ({seen[text]})"
    return out


def assign_clusters(model: ClusterModel, features: pd.DataFrame) -> pd.Series:
    """Stable cluster id of each customer with an order under an existing model (nearest centroid)."""
    x_df = cluster_matrix(features).reindex(columns=model.feature_names, fill_value=0.0)
    z = (x_df.to_numpy(dtype=float) - model.mean) / model.scale
    cz = (model.centers - model.mean) / model.scale
    nearest = ((z[:, None, :] - cz[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    return pd.Series(np.asarray(model.cluster_ids)[nearest], index=x_df.index, name="cluster_id")

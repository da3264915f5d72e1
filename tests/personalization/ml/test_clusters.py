"""Clusters: k by silhouette, plain-word descriptions, ids stable across retrains."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personalization.ml.clusters import ClusterModel, assign_clusters, disambiguate_descriptions, fit_clusters


def _group(rng: np.random.Generator, n: int, start: int, *, gap: float, aov: float, espresso: float) -> pd.DataFrame:
    freq = np.full(n, round(300 / gap))  # regular buyers: repeat purchases follow from the gap
    return pd.DataFrame(
        {
            "orders": freq + 1,
            "frequency": freq,
            "T": 300.0,
            "avg_days_between_orders": rng.normal(gap, gap * 0.05, n),
            "days_since_last_order": rng.normal(gap / 2, 2, n).clip(0),
            "aov": rng.normal(aov, aov * 0.05, n),
            "events_30d": 0,
            "support_contacts": 0,
            "cat_espresso": espresso,
            "cat_tea": 1 - espresso,
        },
        index=pd.RangeIndex(start, start + n, name="customer_id"),
    )


def _population(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.concat(
        [
            _group(rng, 300, 0, gap=21, aov=90, espresso=0.9),  # every 3 weeks, espresso, high spend
            _group(rng, 300, 1000, gap=90, aov=20, espresso=0.1),  # every 3 months, tea, low spend
            _group(rng, 300, 2000, gap=45, aov=40, espresso=0.5),
        ]
    )


def test_finds_the_groups_and_describes_them_in_plain_words():
    model, labels = fit_clusters(_population(0), k_range=range(2, 7))
    assert model.k == 3
    assert labels.loc[0:299].nunique() == 1 and labels.loc[1000:1299].nunique() == 1
    espresso = model.descriptions[int(labels.loc[0])]
    assert "orders every 3 weeks" in espresso and "mostly espresso" in espresso and "high spend" in espresso
    tea = model.descriptions[int(labels.loc[1000])]
    assert "every 3 months" in tea and "mostly tea" in tea and "low spend" in tea
    assert max(model.silhouettes, key=model.silhouettes.get) == 3


def test_ids_survive_a_retrain_on_new_data_and_a_round_trip_through_json():
    first, labels1 = fit_clusters(_population(0), k_range=range(2, 7), random_state=1)
    previous = ClusterModel.from_dict(first.as_dict())
    second, labels2 = fit_clusters(_population(5), k_range=range(2, 7), previous=previous, random_state=9)
    for start in (0, 1000, 2000):
        assert labels2.loc[start] == labels1.loc[start]
    assert sorted(second.cluster_ids) == sorted(first.cluster_ids)


def test_a_new_kind_of_customer_gets_a_new_id():
    first, _ = fit_clusters(_population(0), k_range=range(3, 4))
    rng = np.random.default_rng(2)
    grown = pd.concat([_population(1), _group(rng, 300, 5000, gap=5, aov=400, espresso=0.0)])
    _, labels = fit_clusters(grown, k_range=range(4, 5), previous=first)
    assert labels.loc[5000] not in first.cluster_ids
    assert {labels.loc[0], labels.loc[1000], labels.loc[2000]} <= set(first.cluster_ids)


def test_assign_uses_the_stored_model():
    model, labels = fit_clusters(_population(0), k_range=range(3, 4))
    assigned = assign_clusters(ClusterModel.from_dict(model.as_dict()), _population(0))
    assert (assigned == labels).all()


def test_clusters_with_the_same_words_get_what_sets_them_apart() -> None:
    z = pd.DataFrame(
        {"aov": [1.5, 0.2, 0.0], "frequency": [0.1, 0.0, -1.0], "days_since_last_order": [0.0, 0.1, 0.0]},
        index=[3, 7, 9],
    )
    same = "orders every 2 months, mostly Coffee beans, high spend"
    out = disambiguate_descriptions({3: same, 7: same, 9: "mostly one-time buyers"}, z)
    assert out == {3: f"{same}, bigger orders", 7: f"{same}, smaller orders", 9: "mostly one-time buyers"}
    assert len(set(out.values())) == 3

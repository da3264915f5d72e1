"""Group the messages the bot could not answer by similarity, so an owner sees the biggest gaps first.

Pure: texts (and optionally their sentence embeddings) in, groups out. Average-linkage agglomerative
clustering on cosine distance, cut at a distance threshold; without embeddings, TF-IDF over word and
character n-grams stands in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

SEMANTIC_DISTANCE = 0.45  # cosine distance between MiniLM embeddings under which questions are "the same"
LEXICAL_DISTANCE = 0.65


@dataclass(frozen=True)
class QuestionGroup:
    """Indices into the input of one group; `representative` is the member nearest the group's centre."""

    members: list[int]
    representative: int
    examples: list[int] = field(default_factory=list)  # distinct members, representative first

    @property
    def count(self) -> int:
        return len(self.members)


def _lexical_vectors(texts: Sequence[str]) -> np.ndarray:
    # Content words carry the topic; character n-grams catch spelling variants ("cafe"/"café", plurals).
    word = TfidfVectorizer(
        stop_words="english", sublinear_tf=True, strip_accents="unicode", token_pattern=r"(?u)\b\w+\b"
    )
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, strip_accents="unicode")
    try:
        words = word.fit_transform(texts)
    except ValueError:  # only stop words
        words = sparse.csr_matrix((len(texts), 0))
    chars = char.fit_transform(texts)
    return np.asarray(normalize(sparse.hstack([words * 0.8, chars * 0.6]).tocsr()).toarray(), dtype=np.float32)


def group_questions(
    texts: Sequence[str],
    embeddings: np.ndarray | None = None,
    *,
    distance: float | None = None,
    max_examples: int = 5,
) -> list[QuestionGroup]:
    """Cluster `texts` (optionally with L2-normalised `embeddings`, one row per text); biggest group first.

    `distance` is the cosine-distance cut (defaults differ for embeddings and lexical vectors). Texts that
    are identical ignoring case and spaces always share a group. Cost is quadratic: pass at most a few
    thousand texts.
    """
    if not texts:
        return []
    keys = [" ".join(t.lower().split()) for t in texts]
    if embeddings is not None and len(embeddings) != len(texts):
        raise ValueError("embeddings must have one row per text")
    cut = distance if distance is not None else (SEMANTIC_DISTANCE if embeddings is not None else LEXICAL_DISTANCE)
    distinct = sorted(set(keys))
    if len(distinct) == 1:
        labels_by_key = {distinct[0]: 0}
        vectors = None
    else:
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        rows = [first[k] for k in distinct]
        if embeddings is not None:
            vectors = normalize(np.asarray(embeddings, dtype=np.float32)[rows])
        else:
            vectors = _lexical_vectors([texts[i] for i in rows])
        model = AgglomerativeClustering(n_clusters=None, distance_threshold=cut, metric="cosine", linkage="average")
        labels = model.fit_predict(vectors)
        labels_by_key = {k: int(label) for k, label in zip(distinct, labels, strict=True)}

    members: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(labels_by_key[key], []).append(i)
    groups: list[QuestionGroup] = []
    position = {k: i for i, k in enumerate(distinct)}
    for idx in members.values():
        group_keys = sorted({keys[i] for i in idx})
        if vectors is not None and len(group_keys) > 1:
            positions = [position[k] for k in group_keys]
            centre = vectors[positions].mean(axis=0)
            best_key = group_keys[int(np.argmax(vectors[positions] @ centre))]
        else:
            # one distinct wording: the most frequent one is the group's face
            best_key = group_keys[0]
        counts = {k: sum(1 for i in idx if keys[i] == k) for k in group_keys}
        representative = next(i for i in idx if keys[i] == best_key)
        ordered = [best_key, *sorted((k for k in group_keys if k != best_key), key=lambda k: (-counts[k], k))]
        examples = [next(i for i in idx if keys[i] == k) for k in ordered[:max_examples]]
        groups.append(QuestionGroup(members=idx, representative=representative, examples=examples))
    groups.sort(key=lambda g: (-g.count, texts[g.representative].lower()))
    return groups

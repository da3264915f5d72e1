"""The knowledge index: lexical (TF-IDF word + char n-grams), sentence embeddings, and a classifier
trained on each entry's phrasings (and answers), combined into one confidence per entry.

An index is built once per knowledge-base version (a background job), stored as bytes with
`to_bytes()`, and loaded in the serving process with `KnowledgeIndex.from_bytes(data, embedder=...)`.
"""

from __future__ import annotations

import io
import itertools
import logging
import pickle
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from .embeddings import Embedder, EngineInfo, feature_encoder, same_weights

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Bumped when a rebuild would score better than an index stored by an earlier engine, which still loads and
# scores as it did. 2: the classifier also uses the embedder's extra features (embeddings.FEATURE_LAYER).
ENGINE_REVISION = 2

# Off-topic messages trained as an extra "none of the entries" class, so that in a small knowledge
# base an unrelated message does not get most of the probability just because there are few entries.
BACKGROUND = (
    "what is the capital of france",
    "who won the game last night",
    "tell me a joke",
    "what's the weather like tomorrow",
    "how old is the universe",
    "what is 17 times 23",
    "who is the president",
    "can you sing a song",
    "what time is it in tokyo",
    "translate hello into spanish",
    "how tall is mount everest",
    "what's your favourite movie",
    "do you believe in aliens",
    "how do I cook pasta",
    "set an alarm for 7am",
    "what's the meaning of life",
    "play some music",
    "how many legs does a spider have",
    "what is the population of china",
    "write me a poem about the sea",
    "book me a flight to paris",
    "what's the exchange rate for dollars to euros",
    "are you a robot",
    "how far is the moon",
)


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ entry. `id` is the caller's key (e.g. the database primary key as a string)."""

    id: str
    question: str
    phrasings: Sequence[str] = ()
    answer: str = ""
    tags: Sequence[str] = ()


@dataclass(frozen=True)
class Article:
    """A longer article; retrievable like an entry (title and opening paragraphs count as phrasings)."""

    id: str
    title: str
    body: str = ""
    tags: Sequence[str] = ()


@dataclass(frozen=True)
class Match:
    """A retrieved entry and its confidence in [0, 1] that it answers the message."""

    entry_id: str
    score: float
    kind: Literal["faq", "article"] = "faq"
    title: str = ""


@dataclass(frozen=True)
class IndexConfig:
    """Build parameters. Weights scale feature blocks for the classifier; defaults were tuned on CLINC150."""

    word_weight: float = 0.5
    char_weight: float = 0.5
    answer_weight: float = 0.5
    background_weight: float = 0.5  # weight of the built-in off-topic class (0 disables it)
    background_overlap_semantic: float = 0.6  # off-topic examples this close to a phrasing are left out
    background_overlap_lexical: float = 0.8  # short texts share "what is", "can you": drop near-copies only
    classifier_c: float = 10.0
    # Weight of the embedder's extra features (a middle layer's mean, see embeddings.FEATURE_LAYER) in the
    # classifier; 0 leaves them out. Chosen on CLINC150 validation among layers 1-5 and weights 0.5-1.5.
    feature_weight: float = 1.0
    max_word_features: int = 4000
    max_char_features: int = 8000
    similarity_weight: float = 2.0  # confidence = geometric mean of probability (weight 1) and similarity
    # With embeddings, lexical similarity counts as lex**power beside the semantic one: an exact rare term
    # (lex near 1) still counts, while the moderate overlap any short question has ("what is", "can you") no
    # longer lifts an off-topic message (CLINC150 validation: out-of-scope AUC 0.965 -> 0.971).
    lexical_similarity_power: float = 2.0
    max_article_paragraphs: int = 5


@dataclass
class QueryAnalysis:
    """Everything computed once per message: its embedding (None in lexical mode) and its ranked matches."""

    text: str
    embedding: np.ndarray | None
    matches: list[Match] = field(default_factory=list)


_PARAGRAPH_SPLIT = re.compile(r"\n\s*\n")


def _article_texts(article: Article, max_paragraphs: int) -> tuple[list[str], list[str]]:
    paragraphs = [p.strip() for p in _PARAGRAPH_SPLIT.split(article.body) if p.strip()]
    return [article.title], paragraphs[:max_paragraphs]


class KnowledgeIndex:
    """Retrieval over a fixed set of entries. Build with `build_index`; do not construct directly."""

    def __init__(self, state: dict[str, Any], embedder: Embedder | None) -> None:
        self._s = state
        self.embedder = embedder if state["model"] is not None else None
        self.entry_ids: list[str] = state["entry_ids"]
        self.kinds: list[str] = state["kinds"]
        self.titles: list[str] = state["titles"]
        self._pos = {entry_id: i for i, entry_id in enumerate(self.entry_ids)}
        # Transposed once here: `x @ m.T` on a CSR `m` would convert it to CSR again on every query.
        self._phrase_word_t = state["phrase_word"].T.tocsr()
        self._phrase_char_t = state["phrase_char"].T.tocsr()
        # The dense rows (embedding and extra features) are used by every query: float32 once here.
        dense_dim = 0 if state["centroids"] is None else state["centroids"].shape[1] + int(state.get("extra_dim", 0))
        self._coef_dense = None if state["coef"] is None else state["coef"][:dense_dim].astype(np.float32)

    # -- facts ------------------------------------------------------------------------------------
    @property
    def info(self) -> EngineInfo:
        """Semantic when the index was built with embeddings and an embedder is attached, else lexical."""
        if self._s["model"] is not None and self.embedder is not None:
            return EngineInfo("semantic", self._s["model"], "sentence embeddings and lexical matching")
        if self._s["model"] is not None:
            return EngineInfo("lexical", None, "index has embeddings but no embedder is loaded: lexical only")
        return EngineInfo("lexical", None, "index built without an embedding model: lexical matching only")

    @property
    def mode(self) -> str:
        return self.info.mode

    @property
    def engine_revision(self) -> int:
        """The engine revision that built this index; below `ENGINE_REVISION` a rebuild would improve it."""
        return int(self._s.get("engine_revision", 1))

    def __len__(self) -> int:
        return len(self.entry_ids)

    def title(self, entry_id: str) -> str:
        return self.titles[self._pos[entry_id]]

    # -- query ------------------------------------------------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray | None:
        """Embed with the attached embedder, or None in lexical mode."""
        if self.info.mode != "semantic" or self.embedder is None:
            return None
        return self.embedder.encode(texts)

    def _lexical(self, texts: list[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        return _tfidf(self._s["word"], texts), _tfidf(self._s["char"], texts)

    def _query_vectors(
        self, texts: list[str], embeddings: np.ndarray | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(sentence embeddings, extra classifier features or None); None, None in lexical mode.

        `embeddings` may be the embedder's `encode` rows or its wider `encode_features` rows."""
        if self.info.mode != "semantic" or self.embedder is None:
            return None, None
        extra_dim = int(self._s.get("extra_dim", 0))
        dim = int(self._s["centroids"].shape[1])
        if embeddings is not None and (not extra_dim or embeddings.shape[1] == dim + extra_dim):
            return embeddings[:, :dim], (embeddings[:, dim:] if extra_dim else None)
        if extra_dim:
            encoder = feature_encoder(self.embedder)
            if encoder is not None and encoder.feature_dim == dim + extra_dim:
                full = encoder.encode_features(texts)  # from its cache when `embeddings` were just computed
                return full[:, :dim], full[:, dim:]
            if not self._s.get("_warned"):
                self._s["_warned"] = True
                logger.warning("the embedder gives no classifier features: scoring without them (less accurate)")
        return (embeddings if embeddings is not None else self.embedder.encode(texts)), None

    def scores(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Confidence for every (text, entry): array (len(texts), len(index)) in [0, 1].

        `embeddings` may be passed when already computed (batching); otherwise they are computed here.
        """
        return self._scores(texts, *self._query_vectors(texts, embeddings) if texts else (None, None))

    def _scores(self, texts: list[str], embeddings: np.ndarray | None, extra: np.ndarray | None) -> np.ndarray:
        n_entries = len(self.entry_ids)
        if n_entries == 0 or not texts:
            return np.zeros((len(texts), n_entries), dtype=np.float32)
        s = self._s
        word, char = self._lexical(texts)

        # Lexical similarity: best cosine to any phrasing of the entry (rare exact terms count here).
        lex_phr = 0.5 * (word @ self._phrase_word_t).toarray() + 0.5 * (char @ self._phrase_char_t).toarray()
        lex = np.maximum.reduceat(lex_phr, s["phrase_starts"], axis=1)

        if embeddings is not None:
            sem = np.clip(_row_by_row(embeddings, s["centroids"].T), 0.0, 1.0)
            sim = np.maximum(sem, lex ** s["config"].lexical_similarity_power)
        else:
            sim = lex

        coef = s["coef_lex"] if embeddings is None else s["coef"]
        if coef is None:  # one entry, or an embedding index without its embedder: similarity alone
            return np.clip(sim, 0.0, 1.0).astype(np.float32)
        intercept = s["intercept"] if embeddings is not None else s["intercept_lex"]
        lexical = sparse.hstack([word * s["config"].word_weight, char * s["config"].char_weight]).tocsr()
        dense: list[np.ndarray] = []
        if embeddings is not None:
            dense.append(embeddings)
            extra_dim = int(s.get("extra_dim", 0))
            if extra_dim:  # without the features (an embedder that lacks them) their block is left out
                dense.append(
                    extra * s["config"].feature_weight
                    if extra is not None
                    else np.zeros((len(texts), extra_dim), np.float32)
                )
        logits = np.tile(np.asarray(intercept, dtype=np.float64), (len(texts), 1))
        offset = 0
        if dense and self._coef_dense is not None:
            block = np.hstack(dense).astype(np.float32, copy=False)
            offset = block.shape[1]
            logits += _row_by_row(block, self._coef_dense)
        used = np.unique(lexical.indices)  # only the coefficient rows of words present (float16 -> 32)
        logits += np.asarray(lexical[:, used] @ coef[offset + used].astype(np.float32))
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=1, keepdims=True)
        prob = prob[:, :n_entries]  # the last column, if any, is the built-in off-topic class
        w = s["config"].similarity_weight
        conf = np.exp((np.log(prob.clip(1e-12)) + w * np.log(np.clip(sim, 1e-6, 1.0))) / (1.0 + w))
        return conf.astype(np.float32)

    def analyze(self, text: str, k: int = 5) -> QueryAnalysis:
        """Embed the message once and rank the entries; used by the policy."""
        embedding, extra = self._query_vectors([text], None)
        ranked = self._top(self._scores([text], embedding, extra)[0], k)
        return QueryAnalysis(text=text, embedding=None if embedding is None else embedding[0], matches=ranked)

    def analyze_many(self, texts: list[str], k: int = 5) -> list[QueryAnalysis]:
        """`analyze` for many messages in one scoring call (the sparse products' overhead is per call); each
        message gets exactly the scores `analyze` gives it alone."""
        if not texts:
            return []
        embeddings, extra = self._query_vectors(texts, None)
        conf = self._scores(texts, embeddings, extra)
        return [
            QueryAnalysis(text=text, embedding=None if embeddings is None else embeddings[i], matches=self._top(row, k))
            for i, (text, row) in enumerate(zip(texts, conf, strict=True))
        ]

    def search(self, text: str, k: int = 5) -> list[Match]:
        """The k best entries for a message, best first."""
        return self.analyze(text, k).matches

    def search_batch(self, texts: list[str], k: int = 5) -> list[list[Match]]:
        """`search` for many messages with one batched embedding call."""
        conf = self.scores(texts)
        return [self._top(row, k) for row in conf]

    def _top(self, row: np.ndarray, k: int) -> list[Match]:
        if row.size == 0:
            return []
        order = np.argsort(-row, kind="stable")[:k]
        return [
            Match(self.entry_ids[i], float(row[i]), "article" if self.kinds[i] == "article" else "faq", self.titles[i])
            for i in order
        ]

    # -- storage ----------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise (pickle of numpy arrays and fitted vectorisers). Only load bytes this platform wrote."""
        buffer = io.BytesIO()
        pickle.dump({"format": FORMAT_VERSION, "state": self._s}, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, embedder: Embedder | None = None) -> KnowledgeIndex:
        """Load an index written by `to_bytes`; raises ValueError for another format version.

        Pass the same embedder model the index was built with (in either precision: the int8 and float variants'
        vectors agree closely enough to score each other's index until it is rebuilt); without one the index
        runs lexical only.
        """
        payload = pickle.loads(data)  # noqa: S301 - bytes come from our own storage, never from users
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
            raise ValueError("unsupported knowledge index format")
        state = payload["state"]
        if embedder is not None and state["model"] is not None and not same_weights(embedder.name, state["model"]):
            raise ValueError(f"index was built with {state['model']!r}, not {embedder.name!r}")
        return cls(state, embedder)

    @property
    def stats(self) -> dict[str, Any]:
        """Build facts for the dashboard: sizes, mode, build seconds."""
        return dict(self._s["stats"])


def _row_by_row(rows: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """`rows @ matrix`, one row at a time: BLAS may round a many-row product differently from a one-row one, and a
    message's scores must not depend on what it is scored with (the sparse products are row by row already)."""
    if len(rows) == 1:
        return np.asarray(rows @ matrix)
    return np.vstack([rows[i : i + 1] @ matrix for i in range(len(rows))])


_ANALYZERS: dict[int, tuple[Any, dict[str, int], np.ndarray]] = {}


def _tfidf(vectorizer: TfidfVectorizer, texts: list[str]) -> sparse.csr_matrix:
    """`vectorizer.transform(texts)` for a fitted sublinear-TF, L2-normalised TfidfVectorizer, without
    scikit-learn's per-call input validation (most of the cost for the one message a chat reply scores)."""
    key = id(vectorizer)
    cached = _ANALYZERS.get(key)
    if cached is None or cached[1] is not vectorizer.vocabulary_:
        cached = (vectorizer.build_analyzer(), vectorizer.vocabulary_, np.asarray(vectorizer.idf_, dtype=np.float64))
        _ANALYZERS[key] = cached
    analyze, vocabulary, idf = cached
    indptr: list[int] = [0]
    indices: list[int] = []
    counts: list[int] = []
    for text in texts:
        found = Counter(map(vocabulary.get, analyze(text), itertools.repeat(-1)))  # vocabulary.get(token, -1)
        found.pop(-1, None)  # out-of-vocabulary tokens
        cols = sorted(found)
        indices.extend(cols)
        counts.extend(map(found.__getitem__, cols))
        indptr.append(len(indices))
    # One log for the whole batch rather than one per token: the char n-grams' transform of 8 messages took 0.5 ms
    # instead of 1.3. Bit for bit the same values (an array's log equals the scalar's; each norm is still its own
    # row's dot product).
    cols_all = np.asarray(indices, dtype=np.int32)
    values = (np.log(np.asarray(counts, dtype=np.float64)) + 1.0) * idf[cols_all]
    for start, end in itertools.pairwise(indptr):
        row = values[start:end]
        norm = float(np.sqrt(row @ row)) if end > start else 0.0
        if norm > 0:
            values[start:end] = row / norm
    return sparse.csr_matrix(
        (values, cols_all, np.asarray(indptr, dtype=np.int32)), shape=(len(texts), len(vocabulary))
    )


def _fit_classifier(features: sparse.csr_matrix, labels: np.ndarray, weights: np.ndarray, c: float) -> Any:
    model = LogisticRegression(C=c, max_iter=1000)
    model.fit(features, labels, sample_weight=weights)
    return model


def build_index(
    entries: Sequence[FaqEntry],
    articles: Sequence[Article] = (),
    *,
    embedder: Embedder | None,
    config: IndexConfig | None = None,
) -> KnowledgeIndex:
    """Fit vectorisers, embed phrasings, train the classifier. Pure and deterministic for fixed inputs.

    Entry ids must be unique across entries and articles (ValueError otherwise). Slow part: embedding
    (about 5 ms per phrasing on a CPU core) and the classifier fit; run it in a background job.
    """
    config = config or IndexConfig()
    started = time.perf_counter()
    ids: list[str] = []
    kinds: list[str] = []
    titles: list[str] = []
    phrases: list[str] = []  # what visitors would type: question + phrasings (article titles/openings)
    phrase_owner: list[int] = []
    train_texts: list[str] = []
    train_labels: list[int] = []
    train_weights: list[float] = []

    def add(entry_index: int, texts: Sequence[str], extra: Sequence[str]) -> None:
        seen: set[str] = set()
        for text in texts:
            text = text.strip()
            if text and text.lower() not in seen:
                seen.add(text.lower())
                phrases.append(text)
                phrase_owner.append(entry_index)
                train_texts.append(text)
                train_labels.append(entry_index)
                train_weights.append(1.0)
        for text in extra:
            text = text.strip()
            if text and config.answer_weight > 0:
                train_texts.append(text[:1000])
                train_labels.append(entry_index)
                train_weights.append(config.answer_weight)

    for entry in entries:
        ids.append(str(entry.id))
        kinds.append("faq")
        titles.append(entry.question)
        add(len(ids) - 1, [entry.question, *entry.phrasings], [entry.answer] if entry.answer else [])
    for article in articles:
        ids.append(str(article.id))
        kinds.append("article")
        titles.append(article.title)
        heads, paragraphs = _article_texts(article, config.max_article_paragraphs)
        add(len(ids) - 1, heads, paragraphs)
    if len(set(ids)) != len(ids):
        raise ValueError("entry ids must be unique across FAQ entries and articles")
    missing = set(range(len(ids))) - set(phrase_owner)
    if missing:
        raise ValueError(f"entries without any question text: {[ids[i] for i in sorted(missing)]}")

    # Phrases grouped by owner so a max over each group is one reduceat.
    order = np.argsort(np.asarray(phrase_owner, dtype=np.int64), kind="stable")
    phrases = [phrases[i] for i in order]
    owners = np.asarray(phrase_owner, dtype=np.int64)[order]
    starts = np.searchsorted(owners, np.arange(len(ids))).astype(np.int64)

    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=config.max_word_features)
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, max_features=config.max_char_features
    )
    corpus = train_texts or ["empty knowledge base"]  # an empty index still needs fitted vectorisers
    word.fit(corpus)
    char.fit(corpus)

    model_name = getattr(embedder, "name", None) if embedder is not None else None
    phrase_embeddings = centroids = None
    train_embeddings: np.ndarray | None = None
    train_extra: np.ndarray | None = None
    encoder = feature_encoder(embedder) if config.feature_weight > 0 else None
    extra_dim = 0 if encoder is None or embedder is None else encoder.feature_dim - embedder.dim

    def embed(texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        assert embedder is not None
        if not extra_dim or encoder is None:
            return embedder.encode(texts), None
        full = encoder.encode_features(texts)
        return full[:, : full.shape[1] - extra_dim], full[:, full.shape[1] - extra_dim :] * config.feature_weight

    if embedder is not None:
        train_embeddings, train_extra = embed(train_texts)
        text_pos = {text: i for i, text in enumerate(train_texts)}
        phrase_embeddings = train_embeddings[[text_pos[p] for p in phrases]]
        sums = np.add.reduceat(phrase_embeddings, starts, axis=0)
        centroids = (sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)

    background = list(BACKGROUND) if config.background_weight > 0 and ids else []
    background_embeddings: np.ndarray | None = None
    background_extra: np.ndarray | None = None
    if background:
        # An off-topic example that one of the knowledge base's own phrasings resembles ("tell me a joke" in
        # a base that tells jokes) would teach the classifier to refuse that entry: leave such examples out.
        if embedder is not None and phrase_embeddings is not None:
            background_embeddings, background_extra = embed(background)
            overlap = (background_embeddings @ phrase_embeddings.T).max(axis=1)
            keep = overlap < config.background_overlap_semantic
            background_embeddings = background_embeddings[keep]
            if background_extra is not None:
                background_extra = background_extra[keep]
        else:
            overlap = (word.transform(background) @ word.transform(phrases).T).toarray().max(axis=1)
            keep = overlap < config.background_overlap_lexical
        background = [text for text, kept in zip(background, keep, strict=True) if kept]
    fit_texts = train_texts + background
    labels = np.asarray(train_labels + [len(ids)] * len(background))
    weights = np.asarray(train_weights + [config.background_weight] * len(background))
    coef = intercept = coef_lex = intercept_lex = None
    # Coefficients are stored float16 (transposed: features x entries) to keep the stored index small.
    if len(set(labels.tolist())) >= 2:
        word_train = word.transform(fit_texts) * config.word_weight
        char_train = char.transform(fit_texts) * config.char_weight
        lex_features = sparse.hstack([word_train, char_train]).tocsr()
        if train_embeddings is not None and embedder is not None:
            dense = [train_embeddings] if train_extra is None else [np.hstack([train_embeddings, train_extra])]
            if background and background_embeddings is not None:
                dense.append(
                    background_embeddings
                    if background_extra is None
                    else np.hstack([background_embeddings, background_extra])
                )
            full = sparse.hstack([sparse.csr_matrix(np.vstack(dense)), lex_features]).tocsr()
            full_model = _fit_classifier(full, labels, weights, config.classifier_c)
            coef = np.ascontiguousarray(full_model.coef_.T, dtype=np.float16)
            intercept = full_model.intercept_.astype(np.float32)
        else:
            lexical_model = _fit_classifier(lex_features, labels, weights, config.classifier_c)
            coef_lex = np.ascontiguousarray(lexical_model.coef_.T, dtype=np.float16)
            intercept_lex = lexical_model.intercept_.astype(np.float32)
    for vectorizer in (word, char):
        if hasattr(vectorizer, "stop_words_"):
            vectorizer.stop_words_ = None  # the pruned vocabulary is only for inspection; it is large

    state: dict[str, Any] = {
        "config": config,
        "engine_revision": ENGINE_REVISION,
        "model": model_name,
        "entry_ids": ids,
        "kinds": kinds,
        "titles": titles,
        "word": word,
        "char": char,
        "phrase_word": word.transform(phrases or ["-"])[: len(phrases)].tocsr(),
        "phrase_char": char.transform(phrases or ["-"])[: len(phrases)].tocsr(),
        "phrase_starts": starts,
        "centroids": centroids,
        "extra_dim": extra_dim if centroids is not None else 0,  # width of the embedder's extra features
        "coef": coef,
        "intercept": intercept,
        "coef_lex": coef_lex,
        "intercept_lex": intercept_lex,
        "stats": {
            "entries": len(ids),
            "phrasings": len(phrases),
            "training_texts": len(train_texts),
            "background_examples": len(background),
            "model": model_name,
            "extra_features": extra_dim,
            "build_seconds": round(time.perf_counter() - started, 3),
        },
    }
    return KnowledgeIndex(state, embedder)

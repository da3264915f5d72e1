from __future__ import annotations

import numpy as np
import pytest

from chatbot.engine import FaqEntry, KnowledgeIndex, build_index, engine_info


def test_paraphrase_finds_shipping(semantic_index: KnowledgeIndex) -> None:
    matches = semantic_index.search("when will my beans arrive", k=3)
    assert matches[0].entry_id == "shipping"
    assert matches[0].score > matches[1].score


def test_rare_exact_term_wins_lexically(semantic_index: KnowledgeIndex, lexical_index: KnowledgeIndex) -> None:
    for index in (semantic_index, lexical_index):
        assert index.search("do you still stock bx-4471?")[0].entry_id == "sku"
        assert index.search("encore esp")[0].entry_id == "grinder"


def test_articles_are_retrievable(semantic_index: KnowledgeIndex) -> None:
    top = semantic_index.search("should I keep my beans in the freezer?")[0]
    assert (top.entry_id, top.kind) == ("storage", "article")


def test_off_topic_scores_lower_than_on_topic(semantic_index: KnowledgeIndex) -> None:
    on = semantic_index.search("can I pay using paypal")[0]
    off = semantic_index.search("what is the capital of australia")[0]
    assert on.entry_id == "payment"
    assert off.score < on.score / 2


def test_round_trip_keeps_scores(semantic_index: KnowledgeIndex, embedder) -> None:
    blob = semantic_index.to_bytes()
    loaded = KnowledgeIndex.from_bytes(blob, embedder=embedder)
    text = ["how long until my order gets here", "BX-4471"]
    np.testing.assert_allclose(loaded.scores(text), semantic_index.scores(text), rtol=1e-5)
    assert loaded.entry_ids == semantic_index.entry_ids
    assert loaded.info.mode == "semantic"


def test_loaded_without_embedder_falls_back_to_lexical(semantic_index: KnowledgeIndex) -> None:
    loaded = KnowledgeIndex.from_bytes(semantic_index.to_bytes(), embedder=None)
    assert loaded.info.mode == "lexical"
    assert loaded.search("BX-4471 decaf?")[0].entry_id == "sku"


def test_lexical_index_says_so(lexical_index: KnowledgeIndex) -> None:
    assert lexical_index.info.mode == "lexical"
    assert "lexical" in lexical_index.info.reason
    again = KnowledgeIndex.from_bytes(lexical_index.to_bytes())
    assert again.search("refund policy")[0].entry_id == "returns"


def test_engine_info_reports_semantic_when_installed(embedder) -> None:
    assert engine_info().mode == "semantic"


def test_engine_info_lexical_without_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatbot.engine import embeddings

    monkeypatch.setattr(embeddings, "_sentence_transformers_installed", lambda: False)
    info = embeddings.engine_info()
    assert info.mode == "lexical"
    assert "not installed" in info.reason


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unique"):
        build_index([FaqEntry("a", "q1"), FaqEntry("a", "q2")], embedder=None)
    with pytest.raises(ValueError, match="format"):
        KnowledgeIndex.from_bytes(b"\x80\x05N.")


def test_single_entry_and_empty_index() -> None:
    one = build_index([FaqEntry("only", "How do I reset my password?")], embedder=None)
    assert one.search("reset password")[0].entry_id == "only"
    empty = build_index([], embedder=None)
    assert empty.search("anything") == []


def test_fast_tfidf_matches_scikit_learn(lexical_index: KnowledgeIndex) -> None:
    from chatbot.engine.index import _tfidf

    texts = ["How long does SHIPPING take??", "", "zzz qqq", "pour over pour over recipe", "Café opening hours"]
    for name in ("word", "char"):
        vectorizer = lexical_index._s[name]
        expected = vectorizer.transform(texts).toarray()
        assert np.allclose(_tfidf(vectorizer, texts).toarray(), expected, atol=1e-12)


def test_a_batch_of_messages_is_scored_exactly_as_each_alone(
    semantic_index: KnowledgeIndex, lexical_index: KnowledgeIndex
) -> None:
    texts = ["when will my beans arrive", "do you still stock bx-4471?", "can I pay using paypal", "hello", "BX-4471"]
    for index in (semantic_index, lexical_index):
        together = index.analyze_many(texts, k=4)
        for text, batched in zip(texts, together, strict=True):
            alone = index.analyze(text, k=4)
            assert batched.text == text
            assert [(m.entry_id, m.score) for m in batched.matches] == [(m.entry_id, m.score) for m in alone.matches]
            if alone.embedding is None:
                assert batched.embedding is None
            else:
                assert np.array_equal(batched.embedding, alone.embedding)
    assert semantic_index.analyze_many([], k=4) == []

"""Grouping unanswered questions: paraphrases together, unrelated apart, biggest group first."""

from __future__ import annotations

from chatbot.engine import Embedder
from chatbot.engine.unanswered import group_questions

QUESTIONS = [
    "do you have oat milk?",
    "Do you have oat milk?",
    "is there oat milk in the cafe",
    "do you offer oat milk",
    "can I bring my dog to the cafe",
    "are dogs allowed in the café?",
    "do you ship to Canada?",
]


def _by_text(groups: list, texts: list[str]) -> list[set[str]]:
    return [{texts[i].lower() for i in g.members} for g in groups]


def test_lexical_grouping() -> None:
    groups = group_questions(QUESTIONS)
    assert groups[0].count == 4  # the oat-milk question, asked four ways
    assert {QUESTIONS[i].lower() for i in groups[0].members} == {q.lower() for q in QUESTIONS[:4]}
    assert QUESTIONS[groups[0].representative].lower() in {q.lower() for q in QUESTIONS[:4]}
    assert len(groups[0].examples) == 3  # distinct wordings only (case-insensitive duplicates folded)
    assert sum(g.count for g in groups) == len(QUESTIONS)
    assert any(g.members == [6] for g in groups)  # shipping stands alone


def test_semantic_grouping_joins_paraphrases(embedder: Embedder) -> None:
    groups = group_questions(QUESTIONS, embedder.encode(QUESTIONS))
    sets = _by_text(groups, QUESTIONS)
    assert {q.lower() for q in QUESTIONS[:4]} in sets
    assert {QUESTIONS[4].lower(), QUESTIONS[5].lower()} in sets  # dogs, with no shared content word but "cafe"
    assert {QUESTIONS[6].lower()} in sets


def test_edge_cases() -> None:
    assert group_questions([]) == []
    [only] = group_questions(["hello?", "Hello? "])
    assert only.count == 2 and only.examples == [0]

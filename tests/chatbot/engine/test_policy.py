from __future__ import annotations

from chatbot.engine import Decision, KnowledgeIndex, Thresholds, Turn, decide


def _decide(index: KnowledgeIndex, text: str, history: list[Turn] | None = None, **overrides: float) -> Decision:
    return decide(text, history or [], index, Thresholds.from_mapping(overrides))


def test_answer(semantic_index: KnowledgeIndex) -> None:
    d = _decide(semantic_index, "when will my beans arrive")
    assert (d.action, d.entry_id) == ("answer", "shipping")
    assert d.confidence >= Thresholds().answer
    assert "How long does shipping take?" in d.reason


def test_asked_for_a_person_hands_off(semantic_index: KnowledgeIndex) -> None:
    d = _decide(semantic_index, "can I talk to a real person")
    assert d.action == "handoff"
    assert d.intent == "human"
    assert "asked for a person" in d.reason


def test_clarify_offers_top_entries(semantic_index: KnowledgeIndex) -> None:
    # A message between two entries; thresholds set around its confidence so clarify is forced.
    text = "subscription payment"
    top = semantic_index.search(text)[0].score
    d = _decide(semantic_index, text, answer=top + 0.01, clarify=top - 0.01, clarify_ratio=0.3)
    assert d.action == "clarify"
    assert 2 <= len(d.candidates) <= 3
    assert {c.entry_id for c in d.candidates} >= {"subscription", "payment"}


def test_fallback_then_handoff_on_second_low_confidence(semantic_index: KnowledgeIndex) -> None:
    first = _decide(semantic_index, "what is the capital of australia")
    assert first.action == "fallback"
    history = [Turn("visitor", "what is the capital of australia"), Turn("bot", "Sorry…", first.action)]
    second = _decide(semantic_index, "who won the football world cup in 1998", history)
    assert second.action == "handoff"
    assert "2 messages in a row" in second.reason


def test_agent_turn_resets_low_confidence_streak(semantic_index: KnowledgeIndex) -> None:
    history = [Turn("bot", "Sorry…", "fallback"), Turn("agent", "back to the bot")]
    assert _decide(semantic_index, "what is the capital of australia", history).action == "fallback"


def test_strongly_negative_hands_off(semantic_index: KnowledgeIndex) -> None:
    d = _decide(semantic_index, "Your coffee is disgusting and your service is the worst, I hate this")
    assert d.action == "handoff"
    assert "negative" in d.reason
    assert d.sentiment <= -0.6


def test_frustration_hands_off(semantic_index: KnowledgeIndex) -> None:
    history = [Turn("visitor", "how long does shipping take"), Turn("bot", "2-4 days", "answer")]
    d = _decide(semantic_index, "HOW LONG DOES SHIPPING TAKE, THIRD TIME I ASK", history)
    assert d.action == "handoff"
    assert "frustrated" in d.reason
    assert d.frustration >= 0.7


def test_small_talk(semantic_index: KnowledgeIndex) -> None:
    assert _decide(semantic_index, "hello!").action == "small_talk"
    assert _decide(semantic_index, "thanks a lot").intent == "thanks"


def test_order_status_is_answered_by_the_caller(semantic_index: KnowledgeIndex) -> None:
    d = _decide(semantic_index, "where is my order?")
    assert d.intent == "order_status"
    assert d.action == "answer"


def test_product_suggestions(semantic_index: KnowledgeIndex) -> None:
    d = _decide(semantic_index, "can you recommend something")
    assert (d.action, d.intent, d.entry_id) == ("answer", "product_suggestions", None)


def test_lexical_mode_still_decides(lexical_index: KnowledgeIndex) -> None:
    d = _decide(lexical_index, "Is BX-4471 decaf?")
    assert (d.action, d.entry_id) == ("answer", "sku")


def test_decision_is_json_ready(semantic_index: KnowledgeIndex) -> None:
    import json

    data = _decide(semantic_index, "can I pay with paypal").as_dict()
    assert json.loads(json.dumps(data))["entry_id"] == "payment"


def test_thresholds_from_mapping_ignores_unknown_keys() -> None:
    t = Thresholds.from_mapping({"answer": 0.5, "nonsense": 1})
    assert t.answer == 0.5
    assert t.clarify == Thresholds().clarify

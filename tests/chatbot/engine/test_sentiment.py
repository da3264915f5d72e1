from __future__ import annotations

from chatbot.engine import frustration, sentiment, similarity


def test_sentiment_sign() -> None:
    assert sentiment("Thanks, this is great, I love it!") > 0.5
    assert sentiment("This is awful, I hate it, worst service ever") < -0.6


def test_calm_question_is_not_frustrated() -> None:
    assert frustration("How long does shipping take?", ["hi"]).score == 0.0


def test_repeated_question() -> None:
    earlier = ["where is my refund", "hello"]
    result = frustration("where is my refund??", earlier)
    assert result.score >= 0.4
    assert any("repeated" in s for s in result.signals)


def test_exasperated_phrases() -> None:
    for text in ["this is the third time I ask", "it's still not working", "I already told you my order number"]:
        assert frustration(text).score >= 0.4, text


def test_shouting_and_profanity() -> None:
    assert "shouting (capitals or !!)" in frustration("WHERE IS MY PARCEL").signals
    assert frustration("answer me!!").score >= 0.3
    assert "profanity" in frustration("this damn thing").signals


def test_signals_add_up_to_a_handoff_level() -> None:
    result = frustration("THIS IS THE THIRD TIME, WHERE IS MY REFUND!!", ["where is my refund"])
    assert result.score >= 0.7
    assert len(result.signals) == 3


def test_similarity() -> None:
    assert similarity("where is my refund", "Where is my refund?") > 0.9
    assert similarity("where is my refund", "do you sell decaf") < 0.3


def test_an_earlier_question_inside_a_longer_message_is_a_repeat() -> None:
    result = frustration("hello again, where is my refund for order 1234? I need an answer", ["where is my refund"])
    assert result.signals == ["repeated a question asked 1 time before"]
    assert frustration("hello, how long does shipping take?", ["where is my refund", "hi"]).score == 0.0


def test_similarity_of_short_messages() -> None:
    assert similarity("ok", "OK!") == 1.0
    assert similarity("ok", "no") == 0.0

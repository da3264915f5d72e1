from __future__ import annotations

import pytest

from chatbot.engine import Intent, IntentRecognizer

CASES = [
    (Intent.GREETING, ["hi", "Hello there!", "good morning", "hey"]),
    (Intent.THANKS, ["thanks!", "thank you so much", "great, thanks", "much appreciated"]),
    (Intent.GOODBYE, ["bye", "ok bye!", "see you later", "have a nice day"]),
    (
        Intent.HUMAN,
        [
            "I want to talk to a human",
            "can I speak with a real person please",
            "connect me to an agent",
            "agent",
            "I need a person, not a bot",
            "put me through to your support team",
        ],
    ),
    (
        Intent.ORDER_STATUS,
        [
            "where is my order?",
            "what's the status of my order",
            "has my package shipped yet",
            "my parcel hasn't arrived",
            "order #10453",
            "can you track my delivery",
        ],
    ),
    (
        Intent.PRODUCT_SUGGESTIONS,
        [
            "can you recommend something",
            "what should I buy for a beginner",
            "any suggestions for a gift?",
            "what are your best sellers",
        ],
    ),
]


@pytest.mark.parametrize(("intent", "text"), [(i, t) for i, texts in CASES for t in texts])
def test_patterns_recognise_paraphrases(intent: Intent, text: str) -> None:
    assert IntentRecognizer().recognise(text).intent is intent


@pytest.mark.parametrize(
    "text",
    [
        "How long does shipping take?",
        "someone stole the package from my porch and the travel agent was rude",
        "hi, I would like to know which payment methods you accept for subscriptions",
        "Is the grinder good for espresso?",
    ],
)
def test_ordinary_questions_are_not_built_in_intents(text: str) -> None:
    assert IntentRecognizer().recognise(text).intent in (Intent.NONE, Intent.ORDER_STATUS)


def test_long_message_with_greeting_is_not_small_talk() -> None:
    result = IntentRecognizer().recognise("hello, which payment methods do you accept for a subscription")
    assert result.intent is Intent.NONE


def test_embeddings_catch_what_patterns_miss(embedder) -> None:
    text = "what products are most popular"
    assert IntentRecognizer().recognise(text).intent is Intent.NONE
    result = IntentRecognizer(embedder).recognise(text)
    assert (result.intent, result.via) == (Intent.PRODUCT_SUGGESTIONS, "embedding")


def test_embeddings_do_not_turn_faq_questions_into_intents(embedder) -> None:
    assert IntentRecognizer(embedder).recognise("How long does shipping take?").intent is Intent.NONE


@pytest.mark.parametrize(
    "text", ["are you real", "are you a real person?", "is it true your a real person", "could you be a real person"]
)
def test_asking_whether_the_bot_is_a_person_is_not_asking_for_one(text: str, embedder) -> None:
    assert IntentRecognizer().recognise(text).intent is not Intent.HUMAN
    assert IntentRecognizer(embedder).recognise(text).intent is not Intent.HUMAN


@pytest.mark.parametrize(
    "text",
    [
        "are you a bot? I want a real person",
        "you are a bot, connect me to a human",
        "is this a bot? I need to speak to someone",
    ],
)
def test_asking_for_a_person_after_asking_about_the_bot_still_hands_off(text: str) -> None:
    assert IntentRecognizer().recognise(text).intent is Intent.HUMAN

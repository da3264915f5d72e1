"""Fixtures for the pure engine: a small coffee-shop knowledge base, indexed with and without embeddings."""

from __future__ import annotations

import pytest

from chatbot.engine import Article, FaqEntry, KnowledgeIndex, build_index, get_embedder

ENTRIES = [
    FaqEntry(
        "shipping",
        "How long does shipping take?",
        ("When will I receive my delivery?", "What are your delivery times?"),
        "Orders ship within 1 business day and arrive in 2-4 days.",
        ("shipping",),
    ),
    FaqEntry(
        "returns",
        "Can I return a product?",
        ("What is your refund policy?", "How do I send something back?"),
        "You can return unopened items within 30 days for a full refund.",
    ),
    FaqEntry(
        "grinder",
        "Does the Baratza Encore ESP grind fine enough for espresso?",
        ("Encore ESP espresso grind",),
        "Yes, the Encore ESP has a dedicated espresso range.",
    ),
    FaqEntry(
        "sku",
        "Is SKU BX-4471 decaf?",
        ("BX-4471 caffeine content",),
        "BX-4471 is our Swiss-water decaf blend.",
    ),
    FaqEntry(
        "subscription",
        "How do I pause my coffee subscription?",
        ("Can I skip a month of my subscription?", "cancel subscription"),
        "Go to Account > Subscription and choose Pause or Skip.",
    ),
    FaqEntry(
        "payment",
        "Which payment methods do you accept?",
        ("Can I pay with PayPal?", "do you take credit cards"),
        "We accept Visa, Mastercard, Amex and PayPal.",
    ),
    FaqEntry(
        "brewing",
        "How should I brew a pour-over?",
        ("pour over recipe", "what ratio of coffee to water for filter coffee"),
        "Use 15 g of coffee for 250 g of water at 94 °C.",
    ),
    FaqEntry(
        "opening",
        "What are your café opening hours?",
        ("when is the shop open", "are you open on sunday"),
        "Monday to Saturday 8-18, Sunday 9-15.",
    ),
]
ARTICLES = [
    Article(
        "storage",
        "Storing coffee beans",
        "Keep beans in an airtight container away from light and heat.\n\nDo not freeze beans you use daily.",
    ),
]


@pytest.fixture(scope="session")
def embedder():
    found = get_embedder()
    if found is None:
        pytest.skip("sentence-transformers or the packaged MiniLM model is not installed (embeddings extra)")
    return found


@pytest.fixture(scope="session")
def semantic_index(embedder) -> KnowledgeIndex:
    return build_index(ENTRIES, ARTICLES, embedder=embedder)


@pytest.fixture(scope="session")
def lexical_index() -> KnowledgeIndex:
    return build_index(ENTRIES, ARTICLES, embedder=None)

"""Fixtures for the knowledge base and the bot: a small coffee-shop knowledge base in tenant A."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatbot.bot import index_cache_clear
from chatbot.engine import get_embedder
from chatbot.knowledge import faq_entry_create, knowledge_changed
from chatbot.models import FaqEntry
from tenants.models import Tenant

KB = [
    (
        "How long does shipping take?",
        ["When will I receive my delivery?", "What are your delivery times?", "how fast do you ship"],
        "Orders ship within 1 business day and usually arrive in 2-4 days.",
    ),
    (
        "Can I return a product?",
        ["What is your refund policy?", "How do I send something back?"],
        "You can return unopened bags within 30 days for a full refund.",
    ),
    (
        "How do I pause my coffee subscription?",
        ["Can I skip a month of my subscription?", "cancel subscription"],
        "Go to Account > Subscription and choose Pause or Skip.",
    ),
    (
        "Which payment methods do you accept?",
        ["Can I pay with PayPal?", "do you take credit cards"],
        "We accept Visa, Mastercard, Amex and PayPal.",
    ),
    (
        "What are your café opening hours?",
        ["when is the cafe open", "are you open on sunday"],
        "Monday to Saturday 8-18, Sunday 9-15.",
    ),
]


@pytest.fixture(autouse=True)
def _fresh_index_cache() -> Iterator[None]:
    index_cache_clear()
    yield
    index_cache_clear()


@pytest.fixture(params=["lexical", "semantic"])
def engine_mode(request: pytest.FixtureRequest, settings: pytest.FixtureRequest) -> str:
    """Run a test with embeddings switched off and on (skipped when the embeddings extra is missing)."""
    if request.param == "semantic" and get_embedder() is None:
        pytest.skip("the embeddings extra (sentence-transformers + packaged MiniLM) is not installed")
    settings.CX_BOT_EMBEDDINGS = request.param == "semantic"  # type: ignore[attr-defined]
    return str(request.param)


@pytest.fixture
def lexical(settings: pytest.FixtureRequest) -> None:
    settings.CX_BOT_EMBEDDINGS = False  # type: ignore[attr-defined]


@pytest.fixture
def kb(in_tenant: Tenant) -> list[FaqEntry]:
    """Five FAQ entries in tenant A, indexed (one rebuild)."""
    entries = [faq_entry_create(question=q, phrasings=p, answer=a, rebuild=False) for q, p, a in KB]
    knowledge_changed()
    return entries

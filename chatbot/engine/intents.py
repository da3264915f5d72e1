"""Built-in intents: small talk, asking for a person, order status, product suggestions.

Patterns catch the usual wordings; when an embedding is available, nearness to example phrasings
catches paraphrases the patterns miss.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from .embeddings import Embedder


class Intent(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    HUMAN = "human"
    ORDER_STATUS = "order_status"
    PRODUCT_SUGGESTIONS = "product_suggestions"
    NONE = "none"


SMALL_TALK = frozenset({Intent.GREETING, Intent.THANKS, Intent.GOODBYE})


@dataclass(frozen=True)
class IntentResult:
    """The recognised intent, a confidence in [0, 1], and how it was found (`pattern`, `embedding`, `none`)."""

    intent: Intent
    confidence: float
    via: str


_PATTERNS: list[tuple[Intent, re.Pattern[str]]] = [
    (
        Intent.HUMAN,
        re.compile(
            r"\b(?:talk|speak|chat|connect|transfer|put|pass)\b[^.?!]{0,20}\b(?:to|with|me)\b[^.?!]{0,25}"
            r"\b(?:person|human|agent|someone|somebody|manager|representative|rep|staff|operator|people|team)\b"
            r"|\b(?:real|live|actual)\s+(?:person|human|agent|people|support)\b"
            r"|^\W*(?:an?\s+)?(?:human|agent|operator|representative|person)\W*(?:please|pls|now)?\W*$"
            r"|\b(?:want|need|get|give|is there)\b[^.?!]{0,15}\b(?:a human|a person|an agent|a representative|"
            r"someone real|a manager)\b"
            r"|\bnot\s+(?:a|the|this|your|some)\s+(?:bot|robot|machine)\b|\bare you (?:a )?(?:human|real)\b",
            re.I,
        ),
    ),
    (
        Intent.ORDER_STATUS,
        re.compile(
            r"\b(?:where(?:'s| is| are)?|status|track(?:ing)?|when will|when does|when do|has|have|did|update)\b"
            r".*\b(?:my|the|our)\s+(?:\w+\s)?(?:order|package|parcel|delivery|shipment|purchase|stuff|items?)\b"
            r"|\border\s*(?:#|number|no\.?)\s*\w+|\b(?:order|package|parcel) (?:status|tracking)\b"
            r"|\bhasn'?t (?:arrived|come|shipped)\b|\bnot (?:arrived|received|delivered)\b",
            re.I,
        ),
    ),
    (
        Intent.PRODUCT_SUGGESTIONS,
        re.compile(
            r"\b(?:recommend|recommendations?|suggest|suggestions?|what should i (?:buy|get|order|try)|"
            r"something (?:good|nice|new|similar) to|what(?:'s| is) (?:good|popular|best)|best ?sellers?|"
            r"popular (?:products?|items?)|gift ideas?|help me (?:choose|pick|find))\b",
            re.I,
        ),
    ),
    (
        Intent.GOODBYE,
        re.compile(
            r"^\W*(?:ok(?:ay)?,?\s+)?(?:bye|goodbye|good bye|bye bye|see (?:you|ya)|cya|farewell|later|"
            r"talk (?:to you )?(?:later|soon)|have a (?:good|nice|great) (?:day|one|evening|night)|"
            r"good ?night|that'?s all|i'?m done)\b",
            re.I,
        ),
    ),
    (
        Intent.THANKS,
        re.compile(
            r"^\W*(?:(?:ok(?:ay)?|great|perfect|awesome|cool|brilliant),?\s+)?(?:thanks|thank you|thank u|thx|ty|"
            r"cheers|much appreciated|appreciate it|many thanks|thanks a lot)\b|\bthat(?:'s| was| is) (?:very )?"
            r"helpful\b",
            re.I,
        ),
    ),
    (
        Intent.GREETING,
        re.compile(
            r"^\W*(?:hi+|hello+|hey+|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening)|hallo|hola|"
            r"bonjour)\b",
            re.I,
        ),
    ),
]

# "Are you a real person?" asks about the assistant, not for a person: unless the message also asks for one,
# it is not a handoff request (the knowledge base or the fallback, which offers a person, answers it).
_ABOUT_THE_BOT = re.compile(
    r"\b(?:are|r)\s+(?:you|u)\s+(?:an?\s+|even\s+|really\s+)?(?:real|human|person|bot|robot|machine)\b"
    r"|\b(?:you(?:'re|\s+are)|your|ur)\s+(?:an?\s+)?(?:real\s+)?(?:person|human|bot|robot)\b"
    r"|\b(?:is|am i talking to)\s+(?:this|it)\s+(?:an?\s+)?(?:real\s+)?(?:person|human|bot|robot)\b"
    r"|\b(?:could|can|would)\s+you\s+(?:be|act|pretend)\b[^.?!]{0,30}\b(?:person|human)\b",
    re.I,
)
_ASKS_FOR_ONE = re.compile(r"\b(?:talk|speak|chat|connect|transfer|put|pass|want|need|get|give|prefer)\b", re.I)


def _about_the_bot(text: str) -> bool:
    return bool(_ABOUT_THE_BOT.search(text)) and not _ASKS_FOR_ONE.search(text)


# Example phrasings for the embedding matcher (paraphrases beyond the patterns).
EXAMPLES: dict[Intent, list[str]] = {
    Intent.GREETING: ["hello", "hi there", "good morning", "hey, anyone there?"],
    Intent.THANKS: ["thank you so much", "thanks, that helped", "great, appreciate it"],
    Intent.GOODBYE: ["bye", "see you later", "that's all I needed, goodbye"],
    Intent.HUMAN: [
        "I want to talk to a human",
        "can I speak to a real person",
        "connect me with customer support staff",
        "transfer me to an agent please",
        "is there a person I can chat with",
    ],
    Intent.ORDER_STATUS: [
        "where is my order",
        "what's the status of my order",
        "has my package shipped yet",
        "track my delivery",
        "my parcel still hasn't arrived",
    ],
    Intent.PRODUCT_SUGGESTIONS: [
        "can you recommend something",
        "what should I buy",
        "suggest a product for me",
        "what are your most popular products",
        "I need a gift idea",
    ],
}

EMBEDDING_THRESHOLD = 0.72
_MAX_SMALL_TALK_WORDS = 8


class IntentRecognizer:
    """Recognise a built-in intent. Thread-safe; example embeddings are computed once per embedder."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder
        self._lock = threading.Lock()
        self._examples: np.ndarray | None = None
        self._labels: list[Intent] = []

    def _example_matrix(self) -> np.ndarray | None:
        if self.embedder is None:
            return None
        with self._lock:
            if self._examples is None:
                texts = [t for intent in EXAMPLES for t in EXAMPLES[intent]]
                self._labels = [intent for intent in EXAMPLES for _ in EXAMPLES[intent]]
                self._examples = self.embedder.encode(texts)
        return self._examples

    def recognise(self, text: str, embedding: np.ndarray | None = None) -> IntentResult:
        """Patterns first (in priority order: person, order, suggestions, goodbye, thanks, greeting), then embeddings.

        Small talk matched by pattern only counts for short messages ("hi, where is my order" is an order question).
        """
        words = len(text.split())
        for intent, pattern in _PATTERNS:
            if pattern.search(text):
                if intent in SMALL_TALK and words > _MAX_SMALL_TALK_WORDS:
                    continue
                if intent is Intent.HUMAN and _about_the_bot(text):
                    continue
                return IntentResult(intent, 0.9, "pattern")
        examples = self._example_matrix()
        if examples is not None:
            if embedding is None and self.embedder is not None:
                embedding = self.embedder.encode([text])[0]
            if embedding is not None:
                sims = examples @ embedding
                best = int(np.argmax(sims))
                intent = self._labels[best]
                too_long = intent in SMALL_TALK and words > _MAX_SMALL_TALK_WORDS
                about_bot = intent is Intent.HUMAN and _about_the_bot(text)
                if sims[best] >= EMBEDDING_THRESHOLD and not too_long and not about_bot:
                    return IntentResult(intent, float(sims[best]), "embedding")
        return IntentResult(Intent.NONE, 0.0, "none")


_recognisers: dict[int, IntentRecognizer] = {}
_recognisers_lock = threading.Lock()


def recogniser_for(embedder: Embedder | None) -> IntentRecognizer:
    """A shared recogniser per embedder (so example embeddings are computed once per process)."""
    key = id(embedder)
    with _recognisers_lock:
        if key not in _recognisers:
            _recognisers[key] = IntentRecognizer(embedder)
        return _recognisers[key]


def recognise(text: str, embedding: np.ndarray | None = None, embedder: Embedder | None = None) -> IntentResult:
    """Recognise a built-in intent; see `IntentRecognizer.recognise`."""
    return recogniser_for(embedder).recognise(text, embedding)

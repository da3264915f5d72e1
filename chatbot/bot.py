"""The bot's reply to one visitor message: the engine's decision on the tenant's active knowledge index,
the tenant's thresholds, and personal answers (greeting by name, latest order, recommendations).

Indexes are cached per process, keyed by tenant and index version: each reply checks (one small query)
which version is active and loads it only when it changed, so a rebuild never interrupts answering.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chatbot.engine import Decision, KnowledgeIndex, QueryAnalysis, Thresholds, Turn, analysis_k, build_index, decide
from chatbot.engine.intents import Intent
from chatbot.knowledge import bot_embedder, bot_settings_get, index_is_current, index_rebuild_request
from chatbot.models import Article, FaqEntry, IndexStatus, KnowledgeIndexVersion
from journeys.models import Customer, Order, OrderStatus
from personalization.recommendations import recommend_products
from tenants.context import current_tenant_id

logger = logging.getLogger(__name__)

__all__ = [
    "BotContext",
    "BotReply",
    "bot_answer_entry",
    "bot_context",
    "bot_reply",
    "bot_texts_analyze",
    "bot_texts_embed",
    "index_cache_clear",
]

RECOMMENDATIONS = 3
ARTICLE_EXCERPT = 600
_WS = re.compile(r"\s+")

FALLBACK_TEXT = (
    "Sorry, I don't know the answer to that yet. I can connect you with a person from our team, "
    "or you can leave your email address and we'll get back to you."
)
HANDOFF_TEXT = "I'm bringing in a person from our team to help you with this."
CLARIFY_TEXT = "I'm not completely sure what you mean. Is it one of these?"
ORDER_STATUS_TEXT = {
    OrderStatus.PLACED: "has been received and is waiting for payment confirmation",
    OrderStatus.PAID: "is paid and being prepared for shipping",
    OrderStatus.FULFILLED: "has shipped",
    OrderStatus.CANCELLED: "was cancelled",
    OrderStatus.REFUNDED: "was refunded",
}


@dataclass
class BotReply:
    """What the bot says: text, optional buttons ({"label", "entry_id"}), the decision to store, handoff flag."""

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    decision: dict[str, Any] = field(default_factory=dict)
    handoff: bool = False


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


def bot_texts_embed(texts: Sequence[str]) -> None:
    """Embed `texts` in one model call ahead of replying to each of them: the embedder keeps recent texts'
    vectors (SentenceTransformerEmbedder's cache), so each reply then finds its message's vector there."""
    embedder = bot_embedder()
    unique = list(dict.fromkeys(_clean(t) for t in texts))
    if embedder is not None and unique:
        embedder.encode(unique)


# -- index cache ------------------------------------------------------------------------------------------
_cache: dict[int, tuple[int, KnowledgeIndex]] = {}
_empty: dict[str, KnowledgeIndex] = {}
_lock = threading.Lock()


def index_cache_clear() -> None:
    """Forget every loaded index (tests; a process that switched embedding model)."""
    with _lock:
        _cache.clear()
        _empty.clear()


def _empty_index() -> KnowledgeIndex:
    embedder = bot_embedder()
    key = embedder.name if embedder is not None else ""
    with _lock:
        if key not in _empty:
            _empty[key] = build_index([], embedder=embedder)
        return _empty[key]


def active_index() -> tuple[KnowledgeIndex, int | None]:
    """The current tenant's active index and its version id (an empty index and None before the first build)."""
    tenant_id = current_tenant_id()
    assert tenant_id is not None, "bot_reply needs a current tenant"
    version_id = KnowledgeIndexVersion.objects.filter(status=IndexStatus.ACTIVE).values_list("pk", flat=True).first()
    if version_id is None:
        return _empty_index(), None
    cached = _cache.get(tenant_id)
    if cached is not None and cached[0] == version_id:
        return cached[1], version_id
    row = KnowledgeIndexVersion.objects.filter(pk=version_id).values_list("data", "engine_model", "stats").first()
    if row is None or not row[0]:  # switched away between the two queries: keep what we have
        return (cached[1], cached[0]) if cached else (_empty_index(), None)
    data, engine_model, stats = row
    embedder = bot_embedder()
    try:
        index = KnowledgeIndex.from_bytes(bytes(data), embedder=embedder)
    except ValueError:  # built with another embedding model than this process has: lexical until rebuilt
        logger.warning("knowledge index %s does not match this process's embedder; lexical only", version_id)
        index = KnowledgeIndex.from_bytes(bytes(data), embedder=None)
    if not index_is_current(engine_model, stats or {}):
        # Built by another model, variant (CX_BOT_MODEL_QUANTIZE=auto on another CPU) or engine: it answers until
        # a rebuild replaces it. Asked once per version and process; coalesced with a queued rebuild, and a
        # worker that would build the same again skips it.
        logger.info("knowledge index %s was built by %r; requesting a rebuild", version_id, engine_model)
        index_rebuild_request()
    with _lock:
        _cache[tenant_id] = (version_id, index)
    return index, version_id


# -- answers ----------------------------------------------------------------------------------------------
def _split_id(entry_id: str) -> tuple[str, int] | None:
    kind, _, pk = entry_id.partition(":")
    return (kind, int(pk)) if kind in ("faq", "article") and pk.isdigit() else None


def _entry_answer(entry_id: str) -> tuple[str, str] | None:
    """(title, answer text) of an index entry id, or None when it was deleted or deactivated since the build."""
    parsed = _split_id(entry_id)
    if parsed is None:
        return None
    kind, pk = parsed
    if kind == "faq":
        entry = FaqEntry.objects.filter(pk=pk, active=True).values_list("question", "answer").first()
        return (entry[0], entry[1]) if entry else None
    article = Article.objects.filter(pk=pk, active=True).values_list("title", "body").first()
    if article is None:
        return None
    return article[0], _excerpt(article[1])


def _excerpt(body: str) -> str:
    body = body.strip()
    return body if len(body) <= ARTICLE_EXCERPT else body[:ARTICLE_EXCERPT].rsplit(" ", 1)[0] + " …"


def _entry_answers(entry_ids: set[str]) -> dict[str, tuple[str, str] | None]:
    """`_entry_answer` of many entry ids, in one query per kind of entry."""
    parsed = {entry_id: _split_id(entry_id) for entry_id in entry_ids}
    faq_ids = [pk for kind, pk in filter(None, parsed.values()) if kind == "faq"]
    article_ids = [pk for kind, pk in filter(None, parsed.values()) if kind == "article"]
    found: dict[tuple[str, int], tuple[str, str]] = {}
    if faq_ids:
        rows = FaqEntry.objects.filter(pk__in=faq_ids, active=True).values_list("pk", "question", "answer")
        found.update((("faq", pk), (question, answer)) for pk, question, answer in rows)
    if article_ids:
        rows = Article.objects.filter(pk__in=article_ids, active=True).values_list("pk", "title", "body")
        found.update((("article", pk), (title, _excerpt(body))) for pk, title, body in rows)
    return {entry_id: found.get(key) if key else None for entry_id, key in parsed.items()}


def _first_name(customer: Customer | None) -> str:
    if customer is None or not customer.name.strip():
        return ""
    return customer.name.split()[0]


def _small_talk(intent: str, customer: Customer | None) -> str:
    name = _first_name(customer)
    if intent == Intent.GREETING:
        return f"Hi {name}! How can I help you today?" if name else "Hi! How can I help you today?"
    if intent == Intent.THANKS:
        return f"You're welcome{', ' + name if name else ''}! Is there anything else I can help with?"
    if intent == Intent.GOODBYE:
        return f"Goodbye{', ' + name if name else ''}, and thanks for getting in touch!"
    return "How can I help you?"


def _order_status(customer: Customer | None) -> tuple[str, dict[str, Any]]:
    if customer is None:
        return (
            "I can look up your order once I know who you are: sign in to your account on our site, "
            "or ask for a person and they'll check it for you.",
            {"personal": "order_status", "customer_known": False},
        )
    order = Order.objects.filter(customer=customer).order_by("-placed_at", "-pk").first()
    if order is None:
        return (
            "I can't find any order on your account yet. If you ordered as a guest, a person from our team can "
            "look it up for you.",
            {"personal": "order_status", "customer_known": True, "order": None},
        )
    state = ORDER_STATUS_TEXT.get(OrderStatus(order.status), f"is {order.get_status_display().lower()}")
    text = f"Your latest order {order.external_id}, placed on {order.placed_at:%B} {order.placed_at.day}, {state}."
    return text, {"personal": "order_status", "customer_known": True, "order": order.external_id}


def _recommendations(customer: Customer | None) -> tuple[str, dict[str, Any]]:
    if customer is None or not customer.consent_personalization:
        return (
            "I can suggest products when you're signed in and have allowed personalised recommendations in your "
            "account settings. Meanwhile, our shop lists everything that's in stock.",
            {"personal": "recommendations", "consent": False, "products": []},
        )
    products = recommend_products(customer=customer, limit=RECOMMENDATIONS)
    if not products:
        return (
            "I don't have a suggestion for you right now, sorry.",
            {"personal": "recommendations", "consent": True, "products": []},
        )
    lines = [f"• {p.name} ({p.price} {p.currency})" for p in products]
    name = _first_name(customer)
    intro = f"Here are a few picks for you{', ' + name if name else ''}:"
    return "\n".join([intro, *lines]), {
        "personal": "recommendations",
        "consent": True,
        "products": [p.sku for p in products],
    }


def _reply_for(
    decision: Decision, customer: Customer | None, answers: dict[str, tuple[str, str] | None] | None = None
) -> BotReply:
    data = decision.as_dict()
    personal = decision.action == "answer" and decision.intent in (Intent.ORDER_STATUS, Intent.PRODUCT_SUGGESTIONS)
    if personal and decision.intent == Intent.ORDER_STATUS:
        text, extra = _order_status(customer)
        return BotReply(text=text, decision={**data, **extra})
    if personal and decision.intent == Intent.PRODUCT_SUGGESTIONS:
        text, extra = _recommendations(customer)
        return BotReply(text=text, decision={**data, **extra})
    if decision.action == "answer" and decision.entry_id:
        if answers is None:
            found = _entry_answer(decision.entry_id)
        else:  # a batch of replies reads each entry once
            if decision.entry_id not in answers:
                answers[decision.entry_id] = _entry_answer(decision.entry_id)
            found = answers[decision.entry_id]
        if found is not None:
            return BotReply(text=found[1], decision={**data, "entry_title": found[0]})
        data["reason"] += "; the entry was removed since the index was built"
        return BotReply(text=FALLBACK_TEXT, decision={**data, "action": "fallback", "entry_id": None})
    if decision.action == "small_talk":
        return BotReply(text=_small_talk(decision.intent, customer), decision=data)
    if decision.action == "clarify":
        buttons = [{"label": m.title, "entry_id": m.entry_id} for m in decision.candidates]
        return BotReply(text=CLARIFY_TEXT, buttons=buttons, decision=data)
    if decision.action == "handoff":
        return BotReply(text=HANDOFF_TEXT, decision=data, handoff=True)
    return BotReply(text=FALLBACK_TEXT, decision={**data, "offer": ["person", "email"]})


@dataclass(frozen=True)
class BotContext:
    """What every reply of the current tenant needs: its active index (and version id) and thresholds."""

    index: KnowledgeIndex
    version_id: int | None
    thresholds: Thresholds
    answers: dict[str, tuple[str, str] | None] = field(default_factory=dict)  # entry answers read so far
    analyses: dict[str, QueryAnalysis] = field(default_factory=dict)  # by cleaned text (`bot_texts_analyze`)


def bot_texts_analyze(texts: Sequence[str], context: BotContext) -> None:
    """Rank the entries for `texts` in one scoring call and read their best entries' answers in one query per
    kind, ahead of replying to each of them: `bot_reply` with this `context` finds them there."""
    unique = [t for t in dict.fromkeys(_clean(t) for t in texts) if t not in context.analyses]
    analyses = context.index.analyze_many(unique, k=analysis_k(context.thresholds))
    context.analyses.update(zip(unique, analyses, strict=True))
    best = {a.matches[0].entry_id for a in analyses if a.matches} - set(context.answers)
    if best:
        context.answers.update(_entry_answers(best))


def bot_context() -> BotContext:
    """The current tenant's index and thresholds now (two small queries; the index itself is cached)."""
    index, version_id = active_index()
    return BotContext(index, version_id, bot_settings_get().thresholds())


def bot_reply(
    *, customer: Customer | None, history: Sequence[Turn], text: str, context: BotContext | None = None
) -> BotReply:
    """The bot's reply to `text` in the current tenant, given the conversation so far (oldest first).

    `customer` is the identified customer or None; `context` (from `bot_context`) may be shared by a batch of
    replies. Never raises for an empty knowledge base: the bot then handles small talk, personal intents and
    handoff, and falls back otherwise.
    """
    context = context or bot_context()
    cleaned = _clean(text)
    decision = decide(cleaned, list(history), context.index, context.thresholds, context.analyses.get(cleaned))
    reply = _reply_for(decision, customer, context.answers)
    reply.decision["index_version"] = context.version_id
    reply.decision["engine"] = context.index.mode
    return reply


def bot_answer_entry(*, entry_id: str) -> BotReply | None:
    """The reply when a visitor picks a clarify button: that entry's answer, or None if it no longer exists."""
    found = _entry_answer(entry_id)
    if found is None:
        return None
    decision = Decision("answer", f'the visitor chose "{found[0]}"', entry_id=entry_id, confidence=1.0).as_dict()
    return BotReply(text=found[1], decision={**decision, "entry_title": found[0]})

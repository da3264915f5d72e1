"""The bot's decision for one visitor message: answer, clarify, fallback, handoff or small talk, and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from .index import KnowledgeIndex, Match, QueryAnalysis
from .intents import SMALL_TALK, Intent, recognise
from .sentiment import frustration, sentiment

Action = Literal["answer", "clarify", "fallback", "handoff", "small_talk"]
LOW_CONFIDENCE_ACTIONS = frozenset({"fallback"})


@dataclass(frozen=True)
class Thresholds:
    """Per-tenant policy thresholds with sensible defaults.

    `answer` 0.27 is the earlier engine's default, kept (tenants' stored settings keep meaning the same). On
    CLINC150 (bench/bench_bot_clinc150.py) it gives 86.4% in-scope / 85% out-of-scope recall on validation;
    the validation rule there (best in-scope accuracy with validation OOS recall >= 0.80) would pick 0.23.
    """

    answer: float = 0.27  # confidence at or above which the bot answers with the best entry
    clarify: float = 0.18  # between clarify and answer: offer the top entries as buttons
    clarify_ratio: float = 0.5  # a runner-up is offered when its score is at least this share of the best
    max_clarify_options: int = 3
    negative_sentiment: float = -0.6  # VADER compound at or below this hands off
    frustration: float = 0.7  # frustration at or above this hands off
    low_confidence_turns: int = 2  # this many low-confidence replies in a row hands off
    repeat_similarity: float = 0.5

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Thresholds:
        """Defaults overridden by known keys of `values` (e.g. a tenant's JSON settings); unknown keys ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (values or {}).items() if k in known})


@dataclass(frozen=True)
class Turn:
    """One earlier message. `role` is visitor, bot or agent; bot turns carry their decision's action."""

    role: Literal["visitor", "bot", "agent"]
    text: str
    action: str | None = None


@dataclass(frozen=True)
class Decision:
    """What the bot does with a message, with the evidence shown to agents and stored with the message.

    For intents order_status and product_suggestions the action is `answer`; `entry_id` is None unless the
    knowledge base also answers confidently: the caller answers personally (latest order, products).
    """

    action: Action
    reason: str
    entry_id: str | None = None
    confidence: float = 0.0
    candidates: list[Match] = field(default_factory=list)
    intent: str = Intent.NONE.value
    sentiment: float = 0.0
    frustration: float = 0.0
    frustration_signals: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage and the API."""
        return asdict(self)


def _low_confidence_streak(history: Sequence[Turn]) -> int:
    streak = 0
    for turn in reversed(history):
        if turn.role == "visitor":
            continue
        if turn.role == "agent" or turn.action not in LOW_CONFIDENCE_ACTIONS:
            break
        streak += 1
    return streak


def analysis_k(thresholds: Thresholds | None = None) -> int:
    """How many ranked entries `decide` looks at."""
    return max((thresholds or Thresholds()).max_clarify_options, 3)


def decide(
    message: str,
    history: Sequence[Turn],
    index: KnowledgeIndex,
    thresholds: Thresholds | None = None,
    analysis: QueryAnalysis | None = None,
) -> Decision:
    """Decide the bot's action for `message` given the conversation so far (oldest first). Pure; no I/O.
    `analysis`: the message's `index.analyze_many` result with k >= `analysis_k(thresholds)`, when batched.

    Order: asked for a person; strongly negative or frustrated; personal intents worded unambiguously (with the
    entry too when the knowledge base also answers confidently); confident answer; other personal intents;
    small talk; clarify between thresholds; low confidence twice in a row; fallback.
    """
    t = thresholds or Thresholds()
    if analysis is None or analysis.text != message:
        analysis = index.analyze(message, k=analysis_k(t))
    matches = analysis.matches
    intent = recognise(message, analysis.embedding, index.embedder if index.mode == "semantic" else None)
    mood = sentiment(message)
    earlier = [turn.text for turn in history if turn.role == "visitor"]
    frus = frustration(message, earlier, repeat_similarity=t.repeat_similarity)
    top = matches[0] if matches else None
    confidence = top.score if top else 0.0
    common: dict[str, Any] = {
        "confidence": confidence,
        "candidates": matches,
        "intent": intent.intent.value,
        "sentiment": mood,
        "frustration": frus.score,
        "frustration_signals": frus.signals,
    }

    if intent.intent is Intent.HUMAN:
        return Decision("handoff", "the visitor asked for a person", **common)
    if mood <= t.negative_sentiment:
        return Decision("handoff", f"the visitor's message is strongly negative (sentiment {mood:.2f})", **common)
    if frus.score >= t.frustration:
        because = "; ".join(frus.signals)
        return Decision("handoff", f"the visitor seems frustrated ({because})", **common)
    personal = intent.intent in (Intent.ORDER_STATUS, Intent.PRODUCT_SUGGESTIONS)
    if personal and intent.via == "pattern":  # an unambiguous wording beats a chance lexical overlap
        also = top is not None and confidence >= t.answer
        return Decision(
            "answer",
            f"built-in intent {intent.intent.value} (pattern)"
            + (f'; the knowledge base also matches "{top.title}" ({confidence:.2f})' if also and top else ""),
            entry_id=top.entry_id if also and top else None,
            **common,
        )
    if top is not None and confidence >= t.answer:
        return Decision(
            "answer", f'confident match with "{top.title}" ({confidence:.2f})', entry_id=top.entry_id, **common
        )
    if intent.intent in (Intent.ORDER_STATUS, Intent.PRODUCT_SUGGESTIONS):
        return Decision("answer", f"built-in intent {intent.intent.value} ({intent.via})", **common)
    if intent.intent in SMALL_TALK:
        return Decision("small_talk", f"small talk: {intent.intent.value}", **common)
    if top is not None and confidence >= t.clarify:
        options = [m for m in matches if m.score >= max(t.clarify_ratio * confidence, t.clarify * t.clarify_ratio)]
        options = options[: t.max_clarify_options]
        titles = ", ".join(f'"{m.title}"' for m in options)
        return Decision(
            "clarify",
            f"not sure enough to answer ({confidence:.2f}); offering {titles}",
            **{**common, "candidates": options},
        )
    streak = _low_confidence_streak(history) + 1
    if streak >= t.low_confidence_turns:
        return Decision(
            "handoff",
            f"the bot could not answer {streak} messages in a row (best confidence {confidence:.2f})",
            **common,
        )
    return Decision("fallback", f"no entry matches well enough (best confidence {confidence:.2f})", **common)

"""Read queries shared by the widget endpoints, the inbox pages, the API and the sockets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from chatbot.models import OPEN_STATES, Conversation, ConversationState, Message
from journeys.models import Customer, Feedback, Order
from journeys.selectors import customer_orders, customer_summary, customer_timeline
from personalization.models import ClusterLabel, CustomerScore, RuleSegment
from personalization.rules.selectors import customer_rule_segments
from personalization.selectors import customer_score
from tenants.context import all_tenants
from tenants.models import User, WidgetKey

MESSAGES_PAGE = 200
INBOX_VIEWS = ("waiting", "mine", "open", "resolved", "all")


_KEY_CACHE: dict[str, tuple[float, WidgetKey | None]] = {}
KEY_CACHE_SECONDS = 10.0


def widget_key_lookup(raw_key: str) -> WidgetKey | None:
    """The active widget key `raw_key` of any tenant (the key names the tenant), or None. Cached in the
    process for KEY_CACHE_SECONDS: a revoked key or an origin change applies within that time."""
    if not raw_key or len(raw_key) > 64:
        return None
    now = time.monotonic()
    cached = _KEY_CACHE.get(raw_key)
    if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
        return cached[1]
    with all_tenants():
        key = WidgetKey.all_tenants.select_related("tenant").filter(key=raw_key, revoked_at=None).first()
    if len(_KEY_CACHE) > 10_000:
        _KEY_CACHE.clear()
    _KEY_CACHE[raw_key] = (now, key)
    return key


def widget_key_cache_clear() -> None:
    _KEY_CACHE.clear()


def conversation_latest(*, visitor_id: str) -> Conversation | None:
    return Conversation.objects.filter(visitor_id=visitor_id).order_by("-created", "-id").first()


def messages_after(*, conversation: Conversation | int, after: int = 0, limit: int = MESSAGES_PAGE) -> list[Message]:
    """Messages of the conversation with an id above `after`, oldest first (at most `limit`)."""
    conversation_id = conversation if isinstance(conversation, int) else conversation.pk
    return list(
        Message.objects.filter(conversation_id=conversation_id, id__gt=after)
        .select_related("author", "conversation")
        .order_by("id")[:limit]
    )


def conversation_list(
    *, view: str = "open", user: User | None = None, q: str = "", state: str | None = None
) -> QuerySet[Conversation]:
    """Inbox lists: waiting (oldest handoff first), mine, open, resolved, all; `q` searches customer and text."""
    last_text = Message.objects.filter(conversation=OuterRef("pk")).order_by("-id").values("text")[:1]
    qs = Conversation.objects.select_related("customer", "assignee").annotate(last_text=Subquery(last_text))
    if state:
        qs = qs.filter(state=state)
    if view == "waiting":
        qs = qs.filter(state=ConversationState.WAITING).order_by(F("handoff_at").asc(nulls_last=True), "id")
    elif view == "mine":
        qs = qs.filter(assignee=user, state__in=OPEN_STATES).order_by("-last_message_at", "-id")
    elif view == "resolved":
        qs = qs.filter(state=ConversationState.RESOLVED).order_by("-resolved_at", "-id")
    elif view == "open":
        qs = qs.filter(state__in=OPEN_STATES).order_by("-last_message_at", "-id")
    else:
        qs = qs.order_by("-last_message_at", "-id")
    q = q.strip()
    if q:
        matching = Message.objects.filter(text__icontains=q).values("conversation_id")
        qs = qs.filter(
            Q(customer__name__icontains=q) | Q(customer__email__icontains=q) | Q(customer__external_id=q)
            | Q(pk__in=Subquery(matching))
        )  # fmt: skip
    return qs


def inbox_counts(*, user: User) -> dict[str, int]:
    qs = Conversation.objects.all()
    return {
        "waiting": qs.filter(state=ConversationState.WAITING).count(),
        "mine": qs.filter(assignee=user, state__in=OPEN_STATES).count(),
        "open": qs.filter(state__in=OPEN_STATES).count(),
    }


@dataclass(frozen=True)
class CustomerPredictions:
    """Personalization's view of one customer: scores (None before the first scoring run), cluster, segments."""

    score: CustomerScore | None
    cluster: ClusterLabel | None
    rule_segments: list[RuleSegment]


@dataclass(frozen=True)
class CustomerContext:
    customer: Customer | None
    summary: Any
    orders: list[Order]
    timeline: list[Any]
    conversations: list[Conversation]
    feedback: list[Feedback]
    predictions: CustomerPredictions | None = None


def customer_predictions(*, customer: Customer) -> CustomerPredictions:
    """RFM segment, cluster, predicted value, churn band and reasons, and the rule segments the customer is in
    (current tenant; at most three queries)."""
    score = customer_score(customer_id=customer.pk)
    cluster = None
    if score is not None and score.cluster is not None:
        cluster = ClusterLabel.objects.filter(cluster_id=score.cluster).first()
    segments = list(customer_rule_segments(customer_id=customer.pk))
    return CustomerPredictions(score=score, cluster=cluster, rule_segments=segments)


def conversation_context(*, conversation: Conversation) -> CustomerContext:
    """What the agent sees beside a conversation: profile and consent, orders, recent events, earlier chats,
    and personalization's segments and predictions."""
    customer = conversation.customer
    earlier = Conversation.objects.exclude(pk=conversation.pk)
    if customer is None:
        earlier = earlier.filter(visitor_id=conversation.visitor_id)
        return CustomerContext(None, None, [], [], list(earlier.order_by("-created")[:5]), [])
    earlier = earlier.filter(Q(customer=customer) | Q(visitor_id=conversation.visitor_id))
    return CustomerContext(
        customer=customer,
        summary=customer_summary(customer=customer),
        orders=list(customer_orders(customer=customer, limit=5)),
        timeline=customer_timeline(customer=customer, limit=10),
        conversations=list(earlier.order_by("-created")[:5]),
        feedback=list(Feedback.objects.filter(customer=customer).order_by("-created")[:5]),
        predictions=customer_predictions(customer=customer),
    )

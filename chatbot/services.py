"""Everything that changes conversations: one function per use case. Run inside a tenant context.

A message is written (the conversation row locked, so ids grow in commit order within a conversation),
the transaction commits, and only then is it published to the widget and the inbox (chatbot.realtime).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatbot import realtime
from chatbot.engine.policy import Turn
from chatbot.models import (
    OPEN_STATES,
    Conversation,
    ConversationState,
    Message,
    ResolvedPolicy,
    Sender,
    WidgetSettings,
)
from chatbot.selectors import widget_key_cache_clear
from journeys.models import ConsentSource, Customer, EventType, Feedback, FeedbackKind, VisitorIdentity
from journeys.services import customer_upsert, events_ingest, feedback_create, visitor_identify
from tenants.models import User, WidgetKey

logger = logging.getLogger(__name__)

HISTORY_TURNS = 12
CLIENT_ID_MAX = 64
AUTOMATED_NOTICE = "I'm an automated assistant; a person from our team is available if you ask for one."


class ConversationClosedError(ValidationError):
    """The action needs an open (or a resolved) conversation."""


# --- Widget keys and settings ----------------------------------------------------------------------------


def origin_normalize(value: str) -> str:
    """ "https://Shop.example:443/path" -> "https://shop.example"; raises ValidationError when not an origin."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"allowed_origins": f"{value!r} is not an origin like https://shop.example."})
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def widget_key_create(*, allowed_origins: Sequence[str], identity_required: bool = False) -> WidgetKey:
    """A new public widget key with a fresh identity secret, for the current tenant."""
    return WidgetKey.objects.create(
        key="wk_" + secrets.token_urlsafe(24),
        allowed_origins=sorted({origin_normalize(o) for o in allowed_origins}),
        identity_secret=secrets.token_hex(32),
        identity_required=identity_required,
    )


def widget_key_update(*, widget_key: WidgetKey, allowed_origins: Sequence[str], identity_required: bool) -> WidgetKey:
    widget_key.allowed_origins = sorted({origin_normalize(o) for o in allowed_origins if o.strip()})
    widget_key.identity_required = identity_required
    widget_key.save(update_fields=["allowed_origins", "identity_required"])
    widget_key_cache_clear()  # this process applies it at once; others within the cache's lifetime
    return widget_key


def widget_settings_get() -> WidgetSettings:
    """The current tenant's widget settings, created with defaults on first use."""
    found = WidgetSettings.objects.first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return WidgetSettings.objects.create()
    except IntegrityError:  # created concurrently
        return WidgetSettings.objects.get()


def visitor_token_new() -> str:
    return secrets.token_urlsafe(24)


def visitor_id_for(token: str) -> str:
    """The stored, shareable id of a visitor: a hash of their secret token (the token itself is never stored)."""
    return "cxw_" + hashlib.sha256(token.encode()).hexdigest()[:32]


def identity_hash(*, secret: str, external_id: str) -> str:
    """What the business's server computes for identify(): hex HMAC-SHA256 of the customer id."""
    return hmac.new(secret.encode(), external_id.encode(), hashlib.sha256).hexdigest()


def identity_verify(*, widget_key: WidgetKey, external_id: str, given: str) -> bool:
    """Constant-time comparison of the visitor's hash with the expected one."""
    expected = identity_hash(secret=widget_key.identity_secret, external_id=external_id)
    return hmac.compare_digest(expected.encode(), (given or "").strip().lower().encode())


# --- Journeys events and webhooks --------------------------------------------------------------------------


def _record_event(conversation: Conversation, *, kind: str, name: str, properties: dict[str, Any]) -> None:
    """A conversation's start, handoff or resolution as a journeys event of its customer or visitor."""
    item: dict[str, Any] = {
        "idempotency_key": f"chat:{conversation.pk}:{name}:{timezone.now().timestamp():.6f}",
        "anonymous_id": conversation.visitor_id,
        "type": kind,
        "name": name,
        "properties": {"conversation_id": conversation.pk, **properties},
        "channel": "chat",
        "occurred_at": timezone.now().isoformat(),
    }
    if conversation.customer_id is not None:
        item["customer"] = conversation.customer.external_id  # type: ignore[union-attr]
    result = events_ingest(items=[item])
    if result.rejected:
        logger.warning("chat event %s of conversation %s rejected: %s", name, conversation.pk, result.results)


def _webhook(event: str, payload: dict[str, Any]) -> None:
    try:
        from tenants.webhooks import webhook_emit  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the webhooks module lands separately
        return
    webhook_emit(event=event, payload=payload)


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "state": conversation.state,
        "visitor_id": conversation.visitor_id,
        "customer": conversation.customer.external_id if conversation.customer_id else None,  # type: ignore[union-attr]
        "assignee": conversation.assignee.email if conversation.assignee_id else None,  # type: ignore[union-attr]
        "handoff_reason": conversation.handoff_reason,
        "created": conversation.created.isoformat(),
    }


def _after_commit(fn: Any) -> None:
    transaction.on_commit(fn)


# --- Writing messages --------------------------------------------------------------------------------------


def _message_add(
    conversation: Conversation,
    *,
    sender: str,
    text: str,
    author: User | None = None,
    buttons: list[dict[str, str]] | None = None,
    decision: dict[str, Any] | None = None,
    client_id: str | None = None,
) -> Message:
    """Insert one message; the caller holds the conversation's row lock inside a transaction."""
    now = timezone.now()
    message = Message.objects.create(
        conversation=conversation, sender=sender, author=author, text=text, buttons=buttons or [],
        decision=decision, client_id=client_id or None, created=now,
    )  # fmt: skip
    conversation.last_message_at = now
    message.conversation = conversation
    realtime.publish_message(message)
    _after_commit(lambda: _webhook("message.created", realtime.message_api_dict(message)))
    return message


def _locked(conversation_id: int) -> Conversation:
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("customer", "assignee")
        .get(pk=conversation_id)
    )


def _save(conversation: Conversation, *fields: str) -> None:
    conversation.save(update_fields=["last_message_at", *fields])
    realtime.publish_conversation(conversation)


def _history(conversation: Conversation, before_id: int) -> list[Turn]:
    rows = list(
        Message.objects.filter(conversation=conversation, id__lt=before_id)
        .exclude(sender=Sender.SYSTEM)
        .order_by("-id")
        .values_list("sender", "text", "decision")[:HISTORY_TURNS]
    )
    rows.reverse()
    return [
        Turn(role=sender, text=text, action=(decision or {}).get("action") if sender == Sender.BOT else None)
        for sender, text, decision in rows
    ]


def _clean_text(text: str, *, max_chars: int) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": "A message needs some text."})
    if len(text) > max_chars:
        raise ValidationError({"text": f"Messages are limited to {max_chars} characters; this one has {len(text)}."})
    return text


def _clean_client_id(client_id: str | None) -> str | None:
    if client_id is None or client_id == "":
        return None
    if len(client_id) > CLIENT_ID_MAX:
        raise ValidationError({"client_id": f"At most {CLIENT_ID_MAX} characters."})
    return client_id


def conversation_start(*, visitor_id: str, customer: Customer | None = None, page_url: str = "") -> Conversation:
    """A new conversation with the bot, opened by its greeting (which says it is automated)."""
    look = widget_settings_get()
    if customer is None:
        identity = VisitorIdentity.objects.filter(anonymous_id=visitor_id).select_related("customer").first()
        customer = identity.customer if identity is not None else None
    with transaction.atomic():
        conversation = Conversation.objects.create(visitor_id=visitor_id, customer=customer, page_url=page_url[:2000])
        greeting = look.greeting.strip()
        _message_add(conversation, sender=Sender.BOT, text=f"{greeting} {AUTOMATED_NOTICE}".strip())
        _save(conversation)
        _record_event(conversation, kind=EventType.CHAT_STARTED, name="chat_started", properties={})
    _after_commit(lambda: _webhook("conversation.created", conversation_payload(conversation)))
    return conversation


def _visitor_conversation(visitor_id: str, *, customer: Customer | None, page_url: str) -> Conversation:
    """The visitor's conversation to write in, locked: the latest one, reopened or replaced after resolution."""
    latest = (
        Conversation.objects.filter(visitor_id=visitor_id).order_by("-created", "-id").values_list("pk", flat=True)
    ).first()
    if latest is None:
        return _locked(conversation_start(visitor_id=visitor_id, customer=customer, page_url=page_url).pk)
    conversation = _locked(latest)
    if conversation.state != ConversationState.RESOLVED:
        return conversation
    if widget_settings_get().after_resolved == ResolvedPolicy.NEW:
        return _locked(conversation_start(visitor_id=visitor_id, customer=conversation.customer, page_url=page_url).pk)
    conversation.state = ConversationState.ASSIGNED if conversation.assignee_id else ConversationState.BOT
    conversation.resolved_at = None
    conversation.bot_resolved = None
    _message_add(conversation, sender=Sender.SYSTEM, text="The conversation was reopened.")
    _save(conversation, "state", "resolved_at", "bot_resolved")
    return conversation


def _replies_to(message: Message) -> list[Message]:
    """A stored visitor message and what answered it (for a resend with the same client id)."""
    after = list(Message.objects.filter(conversation_id=message.conversation_id, id__gt=message.pk).order_by("id")[:4])
    replies: list[Message] = []
    for m in after:
        if m.sender == Sender.VISITOR:
            break
        replies.append(m)
    return [message, *replies]


def visitor_message_post(
    *,
    visitor_id: str,
    text: str,
    client_id: str | None = None,
    entry_id: str | None = None,
    customer: Customer | None = None,
    page_url: str = "",
    max_chars: int = 2000,
) -> list[Message]:
    """Store a visitor's message and, while the bot has the conversation, the bot's reply (a handoff when it
    decides so). `entry_id` is a clarify button the visitor picked. Resending the same `client_id` returns
    the stored messages and adds nothing. Returns the new messages, oldest first."""
    from chatbot.bot import bot_answer_entry, bot_reply

    text = _clean_text(text, max_chars=max_chars)
    client_id = _clean_client_id(client_id)
    with transaction.atomic():
        conversation = _visitor_conversation(visitor_id, customer=customer, page_url=page_url)
        if client_id is not None:
            existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
            if existing is not None:
                return _replies_to(existing)
        message = _message_add(conversation, sender=Sender.VISITOR, text=text, client_id=client_id)
        created = [message]
        if conversation.state != ConversationState.BOT:
            _save(conversation)
            return created
        reply = bot_answer_entry(entry_id=entry_id) if entry_id else None
        if reply is None:
            reply = bot_reply(customer=conversation.customer, history=_history(conversation, message.pk), text=text)
        created.append(
            _message_add(
                conversation, sender=Sender.BOT, text=reply.text, buttons=reply.buttons, decision=reply.decision
            )
        )
        if reply.handoff:
            reason = str(reply.decision.get("reason") or "the bot handed over")
            created.extend(_hand_off(conversation, reason=reason))
        else:
            _save(conversation)
    return created


def _hand_off(conversation: Conversation, *, reason: str) -> list[Message]:
    look = widget_settings_get()
    conversation.state = ConversationState.WAITING
    conversation.handoff_at = timezone.now()
    conversation.handoff_reason = reason[:300]
    minutes = look.expected_wait_minutes
    note = _message_add(
        conversation,
        sender=Sender.SYSTEM,
        text=(
            f"A person from our team will join this chat; it usually takes about {minutes} minute"
            f"{'s' if minutes != 1 else ''}. You can keep writing here, and you can close this page: "
            "the reply will be waiting when you come back."
        ),
    )
    _save(conversation, "state", "handoff_at", "handoff_reason")
    _record_event(conversation, kind=EventType.CUSTOM, name="chat_handoff", properties={"reason": reason[:300]})
    _after_commit(lambda: _webhook("conversation.handoff_requested", conversation_payload(conversation)))
    return [note]


def conversation_hand_off(*, conversation: Conversation, reason: str) -> Conversation:
    """Move an open conversation from the bot to the waiting queue. Raises ConversationClosedError when
    it is not with the bot."""
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        if conversation.state != ConversationState.BOT:
            raise ConversationClosedError(
                {"state": f"Only a conversation with the bot can be handed off; this one is {conversation.state}."}
            )
        _hand_off(conversation, reason=reason)
    return conversation


def conversation_assign(*, conversation: Conversation, agent: User) -> Conversation:
    """Give an open conversation to `agent` (taking it from the bot or the queue)."""
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        _assign(conversation, agent=agent)
    return conversation


def _assign(conversation: Conversation, *, agent: User) -> None:
    if conversation.state == ConversationState.RESOLVED:
        raise ConversationClosedError({"state": "This conversation is resolved; it reopens when the visitor writes."})
    if conversation.assignee_id == agent.pk and conversation.state == ConversationState.ASSIGNED:
        return
    fields = ["state", "assignee"]
    if conversation.handoff_at is None:
        conversation.handoff_at = timezone.now()
        conversation.handoff_reason = "an agent took over"
        fields += ["handoff_at", "handoff_reason"]
    conversation.state = ConversationState.ASSIGNED
    conversation.assignee = agent
    _message_add(conversation, sender=Sender.SYSTEM, text=f"{agent.name or 'An agent'} joined the conversation.")
    _save(conversation, *fields)
    _after_commit(lambda: _webhook("conversation.assigned", conversation_payload(conversation)))


def agent_message_post(
    *, conversation: Conversation, author: User | None, text: str, client_id: str | None = None, max_chars: int = 5000
) -> Message:
    """An agent's reply (author None: an integration through the API). Takes the conversation from the bot or
    the queue for the author; reopens a resolved one. Idempotent on `client_id`."""
    text = _clean_text(text, max_chars=max_chars)
    client_id = _clean_client_id(client_id)
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        if client_id is not None:
            existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
            if existing is not None:
                return existing
        fields: list[str] = []
        if conversation.state == ConversationState.RESOLVED:
            conversation.state = ConversationState.ASSIGNED if conversation.assignee_id else ConversationState.WAITING
            conversation.resolved_at = None
            conversation.bot_resolved = None
            fields += ["state", "resolved_at", "bot_resolved"]
        if author is not None and conversation.state in (ConversationState.BOT, ConversationState.WAITING):
            _assign(conversation, agent=author)
        message = _message_add(conversation, sender=Sender.AGENT, text=text, author=author, client_id=client_id)
        if conversation.first_human_reply_at is None:
            conversation.first_human_reply_at = message.created
            if conversation.handoff_at is None:
                conversation.handoff_at = message.created
                conversation.handoff_reason = "an agent took over"
                fields += ["handoff_at", "handoff_reason"]
            fields.append("first_human_reply_at")
        _save(conversation, *fields)
    return message


def conversation_resolve(*, conversation: Conversation) -> Conversation:
    """Close an open conversation; records whether the bot resolved it alone. Raises when already resolved."""
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        if conversation.state == ConversationState.RESOLVED:
            raise ConversationClosedError({"state": "This conversation is already resolved."})
        now = timezone.now()
        conversation.state = ConversationState.RESOLVED
        conversation.resolved_at = now
        conversation.bot_resolved = not Message.objects.filter(conversation=conversation, sender=Sender.AGENT).exists()
        _message_add(conversation, sender=Sender.SYSTEM, text="This conversation was marked as resolved.")
        _save(conversation, "state", "resolved_at", "bot_resolved")
        _record_event(
            conversation,
            kind=EventType.CUSTOM,
            name="chat_resolved",
            properties={"bot_resolved": conversation.bot_resolved},
        )
    _after_commit(lambda: _webhook("conversation.resolved", conversation_payload(conversation)))
    return conversation


def conversation_hand_back(*, conversation: Conversation) -> Conversation:
    """Give an open conversation back to the bot."""
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        if conversation.state == ConversationState.RESOLVED:
            raise ConversationClosedError({"state": "A resolved conversation cannot be handed to the bot."})
        conversation.state = ConversationState.BOT
        conversation.assignee = None
        _message_add(conversation, sender=Sender.SYSTEM, text="The assistant is back in this conversation.")
        _save(conversation, "state", "assignee")
    return conversation


# --- Visitor identity, tracking, CSAT ---------------------------------------------------------------------


def visitor_identify_check(*, widget_key: WidgetKey, external_id: str, given_hash: str | None) -> bool:
    """True when the identity is verified. Raises ValidationError for a wrong hash, or a missing one when the
    tenant requires verification (the identity is then ignored)."""
    if given_hash:
        if not identity_verify(widget_key=widget_key, external_id=external_id, given=given_hash):
            raise ValidationError({"hash": "The identity hash does not match; the identity was ignored."})
        return True
    if widget_key.identity_required:
        raise ValidationError({"hash": "This business requires a verified identity (hash); the identity was ignored."})
    return False


def visitor_identify_do(*, visitor_id: str, external_id: str, email: str = "", name: str = "") -> Customer:
    """Link the visitor to the customer `external_id` (created when new): their events, and conversations."""
    external_id = external_id.strip()
    if not external_id or len(external_id) > 128:
        raise ValidationError({"id": "A customer id of 1 to 128 characters is required."})
    data = {k: v for k, v in (("email", email.strip()), ("name", name.strip())) if v}
    with transaction.atomic():
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is None or any(getattr(customer, k) != v for k, v in data.items()):
            customer, _ = customer_upsert(
                external_id=external_id, data=data, replace=False, consent_source=ConsentSource.WIDGET
            )
        visitor_identify(anonymous_id=visitor_id, customer=customer)
        changed = list(Conversation.objects.filter(visitor_id=visitor_id, customer=None).values_list("pk", flat=True))
        Conversation.objects.filter(pk__in=changed).update(customer=customer)
    for pk in changed:
        _after_commit(lambda pk=pk: realtime.publish_conversation(Conversation.objects.get(pk=pk)))
    return customer


def visitor_track(
    *, visitor_id: str, customer: Customer | None, event: str, properties: dict[str, Any], url: str
) -> str:
    """Record a widget `track(event, properties)` call as a journeys event; returns stored/duplicate."""
    kind = event if event in EventType.values and event != EventType.CUSTOM else EventType.CUSTOM
    item: dict[str, Any] = {
        "anonymous_id": visitor_id,
        "type": kind,
        "name": event[:200],
        "properties": properties,
        "url": url[:2000],
        "channel": "widget",
        "occurred_at": timezone.now().isoformat(),
        "idempotency_key": f"w:{visitor_id}:{secrets.token_hex(8)}",
    }
    if customer is not None:
        item["customer"] = customer.external_id
    result = events_ingest(items=[item])
    if result.rejected:
        raise ValidationError(result.results[0].get("errors") or {"event": "The event was rejected."})
    return str(result.results[0]["status"])


def conversation_rate(*, conversation: Conversation, score: int, comment: str = "") -> Feedback:
    """The visitor's CSAT (1–5) for a resolved conversation, stored as journeys Feedback; once per conversation."""
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        if conversation.state != ConversationState.RESOLVED:
            raise ConversationClosedError({"conversation": "Only a resolved conversation can be rated."})
        if conversation.csat_score is not None or Feedback.objects.filter(conversation_id=conversation.pk).exists():
            raise ConversationClosedError({"conversation": "This conversation has already been rated."})
        feedback = feedback_create(
            kind=FeedbackKind.CSAT, score=score, comment=comment.strip()[:2000], channel="chat",
            customer=conversation.customer, conversation_id=conversation.pk, page_url=conversation.page_url,
        )  # fmt: skip
        conversation.csat_score = score
        conversation.save(update_fields=["csat_score"])
    payload = {"id": feedback.pk, "kind": "csat", "score": score, "comment": feedback.comment}
    _after_commit(lambda: _webhook("feedback.created", {**payload, "conversation_id": conversation.pk}))
    realtime.publish_conversation(conversation)
    return feedback


def conversations_open_count(*, agent: User) -> int:
    return Conversation.objects.filter(assignee=agent, state__in=OPEN_STATES).count()


def tenant_widget_ready() -> WidgetKey:
    """The current tenant's active widget key, created (with no allowed origin) when it has none."""
    key = WidgetKey.objects.filter(revoked_at=None).order_by("created").first()
    return key or widget_key_create(allowed_origins=[])

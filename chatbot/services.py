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
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.mail.utils import DNS_NAME
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Window
from django.db.models.fields.json import KT
from django.db.models.functions import RowNumber
from django.utils import timezone

from chatbot import realtime
from chatbot.engine.policy import Turn
from chatbot.hours import DAYS, hours_next_open, hours_open_at
from chatbot.models import (
    OPEN_STATES,
    AgentPresence,
    CannedResponse,
    Conversation,
    ConversationState,
    Message,
    ResolvedPolicy,
    Sender,
    WidgetIdentity,
    WidgetSettings,
)
from chatbot.selectors import conversation_latest, widget_key_cache_clear
from journeys.models import ConsentSource, Customer, EventType, Feedback, FeedbackKind
from journeys.services import customer_upsert, events_ingest, feedback_create, visitor_identify
from tenants.context import current_tenant
from tenants.db.rows import row_insert, row_select_first, rows_insert
from tenants.jobs import task_dispatch
from tenants.models import Membership, Role, User, WidgetKey
from tenants.webhooks import webhook_emit_on_commit

if TYPE_CHECKING:
    from chatbot.bot import BotReply

logger = logging.getLogger(__name__)

HISTORY_TURNS = 12
CLIENT_ID_MAX = 64
AUTOMATED_NOTICE = "I'm an automated assistant; a person from our team is available if you ask for one."
HANDOFF_AWAY_TEXT = "I'll pass this on to a person from our team."
PRESENCE_TTL = timedelta(seconds=90)  # the inbox heartbeats every 30 s; an agent unseen for longer is offline
WORK_ROLES = (Role.OWNER, Role.ADMIN, Role.AGENT)


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
    # WidgetSettings.objects.first() written out (one row per tenant): its compiling cost more than its running.
    found = row_select_first(WidgetSettings, "WHERE tenant_id = %s LIMIT 1", [current_tenant().pk])
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


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "state": conversation.state,
        "visitor_id": conversation.visitor_id,
        "customer": conversation.customer.external_id if conversation.customer_id else None,  # type: ignore[union-attr]
        "assignee": conversation.assignee.email if conversation.assignee_id else None,  # type: ignore[union-attr]
        "handoff_reason": conversation.handoff_reason,
        "customer_verified": conversation.customer_verified,
        "claimed_identity": conversation.claimed_identity,
        "contact_email": conversation.contact_email,
        "reply_by_email": conversation.reply_by_email,
        "created": conversation.created.isoformat(),
    }


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
    is_note: bool = False,
    awaiting_bot: bool = False,
    reply_to_id: int | None = None,
) -> Message:
    """Insert one message; the caller holds the conversation's row lock inside a transaction."""
    now = timezone.now()
    message = Message(
        tenant_id=conversation.tenant_id, conversation=conversation, sender=sender, author=author, text=text,
        buttons=buttons or [], decision=decision, client_id=client_id or None, is_note=is_note, created=now,
        awaiting_bot=awaiting_bot, reply_to_id=reply_to_id,
    )  # fmt: skip
    row_insert(message)
    conversation.last_message_at = now
    message.conversation = conversation
    realtime.publish_message(message)
    webhook_emit_on_commit("message.created", lambda: [realtime.message_api_dict(message)])
    return message


def _locked(conversation_id: int) -> Conversation:
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("customer", "assignee")
        .get(pk=conversation_id)
    )


_WIDGET_FIELDS = frozenset({"state", "email_requested", "contact_email", "reply_by_email"})


def _save(conversation: Conversation, *fields: str) -> None:
    if fields:
        conversation.save(update_fields=["last_message_at", *fields])
    else:  # a new message, the common case: save(update_fields=["last_message_at"]) written out (nothing
        # listens to a Conversation's save signals; compiling the ORM's UPDATE cost more than running it)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE chatbot_conversation SET last_message_at = %s WHERE tenant_id = %s AND id = %s",
                [conversation.last_message_at, conversation.tenant_id, conversation.pk],
            )
    realtime.publish_conversation(conversation, to_visitor=bool(_WIDGET_FIELDS.intersection(fields)))


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


def conversation_start(*, visitor_id: str, page_url: str = "") -> Conversation:
    """A new conversation with the bot, opened by its greeting (which says it is automated), inside the caller's
    transaction, which then writes the visitor's first message and saves the conversation (`_save`: its last
    message time and the inbox's publish). The visitor's customer is the one their last verified identify()
    named; an unverified one is only a claim."""
    look = widget_settings_get()
    identity = row_select_first(
        WidgetIdentity, "WHERE tenant_id = %s AND visitor_id = %s", [current_tenant().pk, visitor_id]
    )
    customer, verified, claim = None, False, None
    if identity is not None and identity.verified and identity.customer is not None:
        customer, verified = identity.customer, True
    elif identity is not None and not identity.verified:
        claim = identity.claim()
    # No savepoint of its own: whatever fails here fails the caller's whole transaction.
    with transaction.atomic(savepoint=False):
        conversation = Conversation(
            tenant_id=current_tenant().pk, visitor_id=visitor_id, customer=customer, customer_verified=verified,
            claimed_identity=claim, page_url=page_url[:2000],
        )  # fmt: skip
        row_insert(conversation)
        greeting = look.greeting.strip()
        _message_add(conversation, sender=Sender.BOT, text=f"{greeting} {AUTOMATED_NOTICE}".strip())
        _record_event(conversation, kind=EventType.CHAT_STARTED, name="chat_started", properties={})
    webhook_emit_on_commit("conversation.created", lambda: [conversation_payload(conversation)])
    return conversation


def _latest_locked(visitor_id: str) -> Conversation | None:
    """The visitor's latest conversation, locked: the ORM's select_for_update().filter().order_by().first()
    written out (compiling it cost more CPU than running it, in every visitor message). RLS applies to it."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # SQLite locks the database instead
    where = "WHERE tenant_id = %s AND visitor_id = %s ORDER BY created DESC, id DESC LIMIT 1" + lock
    return row_select_first(Conversation, where, [current_tenant().pk, visitor_id])


def _visitor_conversation(visitor_id: str, *, page_url: str) -> Conversation:
    """The visitor's conversation to write in, locked: the latest one, reopened or replaced after resolution."""
    # One query: the latest, locked (its customer and assignee load only when a publish needs their names).
    conversation = _latest_locked(visitor_id)
    if conversation is None:  # created in this transaction, so no other one can see it yet: no lock to take
        return conversation_start(visitor_id=visitor_id, page_url=page_url)
    if conversation.state != ConversationState.RESOLVED:
        return conversation
    if widget_settings_get().after_resolved == ResolvedPolicy.NEW:
        return conversation_start(visitor_id=visitor_id, page_url=page_url)
    conversation.state = ConversationState.ASSIGNED if conversation.assignee_id else ConversationState.BOT
    conversation.resolved_at = None
    conversation.bot_resolved = None
    _message_add(conversation, sender=Sender.SYSTEM, text="The conversation was reopened.")
    _save(conversation, "state", "resolved_at", "bot_resolved")
    return conversation


def _resent(visitor_id: str, client_id: str | None) -> Message | None:
    """The message of the visitor's latest conversation with this client id (committed by now), if any."""
    conversation = conversation_latest(visitor_id=visitor_id) if client_id is not None else None
    if conversation is None:
        return None
    return Message.objects.filter(conversation=conversation, client_id=client_id).first()


def _replies_to(message: Message) -> list[Message]:
    """A stored visitor message and what answered it (for a resend with the same client id)."""
    after = list(
        Message.objects.filter(conversation_id=message.conversation_id, id__gt=message.pk, is_note=False).order_by(
            "id"
        )[:4]
    )
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
    page_url: str = "",
    max_chars: int = 2000,
) -> list[Message]:
    """Store a visitor's message (committed, then published). While the bot has the conversation it waits
    for the bot's reply, which chatbot.replies produces: here, when replies are inline (and returned too), or
    in the background. `entry_id` is a clarify button the visitor picked. Resending the same `client_id`
    returns the stored messages and adds nothing. Returns the new messages, oldest first."""
    from chatbot import replies

    text = _clean_text(text, max_chars=max_chars)
    client_id = _clean_client_id(client_id)
    try:
        with transaction.atomic():
            conversation = _visitor_conversation(visitor_id, page_url=page_url)
            to_bot = conversation.state == ConversationState.BOT
            # A resend (its client id already in the conversation) fails the unique constraint: no look-up first.
            message = _message_add(
                conversation, sender=Sender.VISITOR, text=text, client_id=client_id, awaiting_bot=to_bot,
                decision={"picked": entry_id} if entry_id and to_bot else None,
            )  # fmt: skip
            created = [message]
            email = _clean_email(text) if not to_bot and conversation.asks_email else None
            if email is not None:  # asked for an email out of hours, they wrote it in the chat
                created.append(_contact_email_store(conversation, email))
            else:
                _save(conversation)
    except IntegrityError:
        existing = _resent(visitor_id, client_id)
        if existing is None:
            raise
        return _replies_to(existing)  # all the transaction did (a reopening too) was rolled back
    if to_bot:
        created += replies.bot_reply_request(tenant_id=conversation.tenant_id, conversation_id=conversation.pk)
    return created


def bot_replies_answer(*, conversation_ids: Sequence[int]) -> list[Message]:
    """Answer every visitor message still waiting for the bot in these conversations of the current tenant,
    in order, each seeing the replies to the ones before it; one model call embeds them all (before any lock
    is taken). A conversation no longer with the bot gets no reply: its messages stop waiting. Safe to call
    twice for the same messages (each is answered once). Returns the messages written, oldest first."""
    from chatbot.bot import bot_answer_entry, bot_context, bot_reply, bot_texts_analyze, bot_texts_embed

    ids = sorted(set(conversation_ids))
    waiting = Message.objects.filter(conversation_id__in=ids, awaiting_bot=True)
    texts = list(waiting.values_list("text", flat=True))
    if not texts:
        return []
    created: list[Message] = []
    bot_texts_embed(texts)
    with transaction.atomic():
        conversations = {
            c.pk: c
            for c in Conversation.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(pk__in=ids)
            .order_by("pk")
        }
        pending: dict[int, list[tuple[int, str, str | None]]] = {}  # read again under the locks
        for pk, conversation_id, text, picked in waiting.order_by("conversation_id", "id").values_list(
            "id", "conversation_id", "text", KT("decision__picked")
        ):
            pending.setdefault(conversation_id, []).append((pk, text, picked))
        if not pending:
            return []
        recent: dict[int, list[tuple[int, Turn]]] = {}
        for pk, conversation_id, sender, text, action in (
            Message.objects.filter(conversation_id__in=list(pending), is_note=False)
            .exclude(sender=Sender.SYSTEM)
            .annotate(n=Window(RowNumber(), partition_by=[F("conversation_id")], order_by=F("id").desc()))
            .filter(n__lte=HISTORY_TURNS + max(len(v) for v in pending.values()))
            .order_by("id")
            .values_list("id", "conversation_id", "sender", "text", KT("decision__action"))
        ):
            turn = Turn(role=sender, text=text, action=action if sender == Sender.BOT else None)
            recent.setdefault(conversation_id, []).append((pk, turn))
        context = bot_context()
        bot_texts_analyze(
            [text for messages in pending.values() for _, text, picked in messages if not picked], context
        )
        team_in: bool | None = None
        answered: list[int] = []
        plain: list[tuple[Conversation, list[tuple[int, BotReply]]]] = []
        handoffs: list[tuple[Conversation, list[tuple[int, BotReply]]]] = []
        for conversation_id, messages in pending.items():
            conversation = conversations[conversation_id]
            answered += [pk for pk, _, _ in messages]
            if conversation.state != ConversationState.BOT:
                continue  # a person has it now (or it was resolved): the bot stays quiet
            # Personal answers (name, orders, recommendations) only for an identity with a valid HMAC.
            known = conversation.customer if conversation.customer_verified else None
            first = messages[0][0]
            history = [turn for pk, turn in recent.get(conversation_id, []) if pk < first]
            replies: list[tuple[int, BotReply]] = []
            for pk, text, picked in messages:
                reply = bot_answer_entry(entry_id=picked) if picked else None
                if reply is None:
                    reply = bot_reply(customer=known, history=history[-HISTORY_TURNS:], text=text, context=context)
                replies.append((pk, reply))
                history += [Turn("visitor", text), Turn("bot", reply.text, reply.decision.get("action"))]
                if reply.handoff:
                    break  # what the visitor wrote after it waits for a person
            if replies[-1][1].handoff:
                handoffs.append((conversation, replies))
            else:
                plain.append((conversation, replies))
        created += _bot_messages_add(plain)
        for conversation, replies in handoffs:
            for pk, reply in replies:
                if reply.handoff:
                    team_in = team_hours_status()[0] if team_in is None else team_in
                    if not team_in:
                        reply.text = HANDOFF_AWAY_TEXT  # nobody joins now: the system message that follows says when
                created.append(
                    _message_add(
                        conversation,
                        sender=Sender.BOT,
                        text=reply.text,
                        buttons=reply.buttons,
                        decision=reply.decision,
                        reply_to_id=pk,
                    )
                )
            reason = str(replies[-1][1].decision.get("reason") or "the bot handed over")
            created.extend(_hand_off(conversation, reason=reason))
        Message.objects.filter(pk__in=answered).update(awaiting_bot=False)
    return sorted(created, key=lambda m: m.pk)


def _bot_messages_add(plans: list[tuple[Conversation, list[tuple[int, BotReply]]]]) -> list[Message]:
    """The replies of a batch that hand nothing over, in one INSERT and one UPDATE of the conversations the
    caller holds locked; published (and sent to webhooks) after the commit like `_message_add`'s."""
    if not plans:
        return []
    now = timezone.now()
    rows = [
        Message(
            tenant_id=conversation.tenant_id,
            conversation=conversation,
            sender=Sender.BOT,
            text=reply.text,
            buttons=reply.buttons or [],
            decision=reply.decision,
            reply_to_id=pk,
            created=now,
        )
        for conversation, replies in plans
        for pk, reply in replies
    ]
    rows_insert(rows)
    for message in rows:
        realtime.publish_message(message)
    webhook_emit_on_commit("message.created", lambda: [realtime.message_api_dict(m) for m in rows])
    conversations = [conversation for conversation, _ in plans]
    for conversation in conversations:
        conversation.last_message_at = now
    # One value for all: a plain UPDATE, where bulk_update would send a CASE over every id.
    Conversation.objects.filter(pk__in=[c.pk for c in conversations]).update(last_message_at=now)
    for conversation in conversations:
        realtime.publish_conversation(conversation, to_visitor=False)
    return rows


def _when(opening: datetime, now: datetime) -> str:
    """ "today at 09:00", "tomorrow at 09:00", "on Monday at 09:00" (both in the tenant's timezone)."""
    days = (opening.date() - now.astimezone(opening.tzinfo).date()).days
    day = "today" if days == 0 else "tomorrow" if days == 1 else f"on {DAYS[opening.weekday()]}"
    return f"{day} at {opening:%H:%M}"


def team_hours_status(*, at: datetime | None = None) -> tuple[bool, datetime | None]:
    """(is the team in now, next opening when not) by the current tenant's business hours."""
    look = widget_settings_get()
    if not look.hours_enabled:
        return True, None
    tz = current_tenant().timezone
    at = at or timezone.now()
    if hours_open_at(look.business_hours, at, tz):
        return True, None
    return False, hours_next_open(look.business_hours, at, tz)


def _hand_off(conversation: Conversation, *, reason: str) -> list[Message]:
    look = widget_settings_get()
    now = timezone.now()
    conversation.state = ConversationState.WAITING
    conversation.handoff_at = now
    conversation.handoff_reason = reason[:300]
    fields = ["state", "handoff_at", "handoff_reason"]
    is_open, back = team_hours_status(at=now)
    if is_open:
        minutes = look.expected_wait_minutes
        text = (
            f"A person from our team will join this chat; it usually takes about {minutes} minute"
            f"{'s' if minutes != 1 else ''}. You can keep writing here, and you can close this page: "
            "the reply will be waiting when you come back."
        )
    else:
        when = f"We're back {_when(back, now)} ({current_tenant().timezone})." if back else ""
        text = (
            f"Our team is away right now. {when} Leave your email address and we'll reply by email, "
            "or keep writing here and we'll answer when we're back."
        ).replace("  ", " ")
        if not conversation.contact_email:
            conversation.email_requested = True
            fields.append("email_requested")
    note = _message_add(conversation, sender=Sender.SYSTEM, text=text)
    _save(conversation, *fields)
    _record_event(conversation, kind=EventType.CUSTOM, name="chat_handoff", properties={"reason": reason[:300]})
    webhook_emit_on_commit("conversation.handoff_requested", lambda: [conversation_payload(conversation)])
    if is_open:
        _auto_assign(only=conversation)
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
        previous = conversation.assignee_id
        _assign(conversation, agent=agent)
        if previous is not None and previous != agent.pk:
            _auto_assign()  # the previous assignee has room for one more
    return conversation


def _take_over(conversation: Conversation, *, at: datetime) -> list[str]:
    """An agent takes a conversation nobody handed off: record it as a handoff (event and webhook)."""
    conversation.handoff_at = at
    conversation.handoff_reason = "an agent took over"
    _record_event(conversation, kind=EventType.CUSTOM, name="chat_handoff", properties={"reason": "agent_took_over"})
    webhook_emit_on_commit("conversation.handoff_requested", lambda: [conversation_payload(conversation)])
    return ["handoff_at", "handoff_reason"]


def _assign(conversation: Conversation, *, agent: User) -> None:
    if conversation.state == ConversationState.RESOLVED:
        raise ConversationClosedError({"state": "This conversation is resolved; it reopens when the visitor writes."})
    if conversation.assignee_id == agent.pk and conversation.state == ConversationState.ASSIGNED:
        return
    fields = ["state", "assignee"]
    if conversation.handoff_at is None:
        fields += _take_over(conversation, at=timezone.now())
    conversation.state = ConversationState.ASSIGNED
    conversation.assignee = agent
    _message_add(conversation, sender=Sender.SYSTEM, text=f"{agent.name or 'An agent'} joined the conversation.")
    _save(conversation, *fields)
    webhook_emit_on_commit("conversation.assigned", lambda: [conversation_payload(conversation)])


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
                fields += _take_over(conversation, at=message.created)
            fields.append("first_human_reply_at")
        _save(conversation, *fields)
        if conversation.reply_by_email and conversation.contact_email:
            from chatbot.tasks import reply_email_task  # tasks import this module

            transaction.on_commit(partial(task_dispatch, reply_email_task, message.tenant_id, message.pk))
    return message


def _mail_id(kind: str, *ids: int) -> str:
    """A Message-ID of ours, the same every time for the same object: `<cx-reply-3-41@example.com>`."""
    _, _, domain = str(getattr(settings, "DEFAULT_FROM_EMAIL", "")).rstrip(">").rpartition("@")
    return f"<cx-{kind}-{'-'.join(map(str, ids))}@{domain or DNS_NAME}>"


def reply_email_send(*, message: Message) -> bool:
    """Email an agent's reply to the address its conversation follows up by (a Celery task calls this after
    the commit, so the reply is stored and shown whatever the mail server says) and mark it emailed.

    Every send of one reply has the same Message-ID (mail clients show a copy sent again after a worker died
    between sending and marking it as one message), and a conversation's replies reference one thread id, so
    the visitor's mail client shows them as one thread.

    False when there is nothing to send: already emailed (a redelivered task), or the conversation no longer
    has an address. Raises what the mail backend raises; the message then stays unmarked."""
    if message.emailed_at is not None or message.is_note or message.sender != Sender.AGENT:
        return False
    conversation = message.conversation
    if not (conversation.reply_by_email and conversation.contact_email):
        return False
    tenant, author = current_tenant(), message.author
    signature = f"{author.name or 'Our team'}, {tenant.name}" if author is not None else tenant.name
    EmailMessage(
        subject=f"Re: your chat with {tenant.name}",
        body=f"{message.text}\n\n{signature}\n\n(You asked us in the chat on our website to reply by email.)",
        to=[conversation.contact_email],
        reply_to=[author.email] if author is not None and author.email else None,
        headers={
            "Message-ID": _mail_id("reply", message.tenant_id, message.pk),
            "References": (thread := _mail_id("conversation", message.tenant_id, conversation.pk)),
            "In-Reply-To": thread,
        },
    ).send()
    message.emailed_at = timezone.now()
    Message.objects.filter(pk=message.pk).update(emailed_at=message.emailed_at)
    return True


def agent_note_add(*, conversation: Conversation, author: User | None, text: str, max_chars: int = 5000) -> Message:
    """A private note in the transcript: agents (inbox, API) see it, the visitor never does. Changes neither
    the state nor the assignee nor the reply timings."""
    text = _clean_text(text, max_chars=max_chars)
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        message = _message_add(conversation, sender=Sender.AGENT, text=text, author=author, is_note=True)
        _save(conversation)
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
        conversation.bot_resolved = not Message.objects.filter(
            conversation=conversation, sender=Sender.AGENT, is_note=False
        ).exists()
        _message_add(conversation, sender=Sender.SYSTEM, text="This conversation was marked as resolved.")
        _save(conversation, "state", "resolved_at", "bot_resolved")
        _record_event(
            conversation,
            kind=EventType.CUSTOM,
            name="chat_resolved",
            properties={"bot_resolved": conversation.bot_resolved},
        )
        if conversation.assignee_id is not None:
            _auto_assign()
    webhook_emit_on_commit("conversation.resolved", lambda: [conversation_payload(conversation)])
    return conversation


def conversation_hand_back(*, conversation: Conversation) -> Conversation:
    """Give an open conversation back to the bot."""
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        if conversation.state == ConversationState.RESOLVED:
            raise ConversationClosedError({"state": "A resolved conversation cannot be handed to the bot."})
        had_assignee = conversation.assignee_id is not None
        conversation.state = ConversationState.BOT
        conversation.assignee = None
        _message_add(conversation, sender=Sender.SYSTEM, text="The assistant is back in this conversation.")
        _save(conversation, "state", "assignee")
        if had_assignee:
            _auto_assign()
    return conversation


def conversation_contact_email_set(*, conversation: Conversation, email: str) -> tuple[Conversation, Message]:
    """The visitor's email for a reply by email: stored on the conversation (and on its customer when that
    has none); a waiting conversation stays in the queue marked reply_by_email. Returns the conversation and
    the confirmation message. Raises for a bad address."""
    cleaned = _clean_email(email)
    if cleaned is None:
        raise ValidationError({"email": "Enter a valid email address, like you@example.com."})
    with transaction.atomic():
        conversation = _locked(conversation.pk)
        if not conversation.is_open:
            raise ConversationClosedError({"conversation": "This conversation is resolved."})
        message = _contact_email_store(conversation, cleaned)
    return conversation, message


def _clean_email(text: str) -> str | None:
    email = text.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        return None
    return email


def _contact_email_store(conversation: Conversation, email: str) -> Message:
    """Store a valid `email` on the conversation the caller holds locked; returns the visitor's confirmation."""
    conversation.contact_email = email
    conversation.reply_by_email = conversation.state == ConversationState.WAITING or conversation.email_requested
    customer = conversation.customer
    if customer is not None and conversation.customer_verified and not customer.email:
        customer.email = email
        customer.save(update_fields=["email"])
    thanks = _message_add(conversation, sender=Sender.SYSTEM, text=f"Thanks! We'll reply to {email} by email.")
    _save(conversation, "contact_email", "reply_by_email")
    return thanks


# --- Auto-assignment: round-robin among online agents with room ------------------------------------------


def agent_presence_touch(*, agent: User, available: bool | None = None, online: bool = True) -> AgentPresence:
    """The agent's inbox is open (a socket connect or heartbeat), or closed (`online=False`), or they switched
    their availability. Coming online or available gives them the oldest waiting conversations they have
    room for (when the tenant auto-assigns)."""
    presence, _ = AgentPresence.objects.get_or_create(user=agent)
    presence.last_seen = timezone.now() if online else None
    if available is not None:
        presence.available = available
    presence.save(update_fields=["last_seen", "available"])
    if online and presence.available:
        conversations_auto_assign()  # after the presence row is written: it takes the tenant's lock first
    return presence


def conversations_auto_assign() -> list[Conversation]:
    """Assign what waits to online agents with room, now (e.g. auto-assignment was just switched on)."""
    with transaction.atomic():
        return _auto_assign()


def agents_online() -> list[AgentPresence]:
    """Presences of agents whose inbox heartbeated within PRESENCE_TTL and who are available."""
    members = Membership.objects.filter(role__in=WORK_ROLES).values("user_id")
    return list(
        AgentPresence.objects.select_related("user")
        .filter(available=True, last_seen__gte=timezone.now() - PRESENCE_TTL, user_id__in=members)
        .order_by(F("last_assigned_at").asc(nulls_first=True), "user_id")
    )


def _auto_assign(*, only: Conversation | None = None) -> list[Conversation]:
    """Give waiting conversations (oldest handoff first; `only`, when given, which the caller holds locked) to
    online agents with fewer than the tenant's cap of open conversations, least recently assigned first.
    Runs inside the caller's transaction. The tenant's settings row is the lock that serialises assignments,
    and conversations another transaction holds are skipped, so no two paths wait on each other."""
    look = widget_settings_get()
    waiting = Conversation.objects.filter(state=ConversationState.WAITING, reply_by_email=False)
    if not look.auto_assign or (only is None and not waiting.exists()):  # most heartbeats stop here
        return []
    WidgetSettings.objects.select_for_update().filter(pk=look.pk).first()
    presences = agents_online()
    if not presences:
        return []
    counts = dict(
        Conversation.objects.filter(assignee_id__in=[p.user_id for p in presences], state__in=OPEN_STATES)
        .values_list("assignee_id")
        .annotate(n=Count("id"))
        .values_list("assignee_id", "n")
    )
    room = [p for p in presences if counts.get(p.user_id, 0) < look.agent_cap]
    if only is not None:
        queue = [only] if only.state == ConversationState.WAITING and not only.reply_by_email else []
    else:
        ids = list(
            waiting.order_by(F("handoff_at").asc(nulls_last=True), "id")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[: len(room) * look.agent_cap]
        )
        queue = [_locked(pk) for pk in ids]
    assigned: list[Conversation] = []
    for conversation in queue:
        presence = next((p for p in room if counts.get(p.user_id, 0) < look.agent_cap), None)
        if presence is None:
            break
        _assign(conversation, agent=presence.user)
        counts[presence.user_id] = counts.get(presence.user_id, 0) + 1
        presence.last_assigned_at = timezone.now()
        presence.save(update_fields=["last_assigned_at"])
        room = [*(p for p in room if p is not presence), presence]  # to the back of the rotation
        assigned.append(conversation)
    return assigned


# --- Canned responses ----------------------------------------------------------------------------------------


def canned_response_save(*, shortcut: str, text: str, canned: CannedResponse | None = None) -> CannedResponse:
    """Create (or update `canned`) a canned response; raises ValidationError for a bad or taken shortcut."""
    canned = canned or CannedResponse()
    canned.shortcut = shortcut.strip().lstrip("/").lower()
    canned.text = text.strip()
    canned.updated = timezone.now()
    canned.full_clean(exclude=["tenant"], validate_unique=False)
    if CannedResponse.objects.filter(shortcut=canned.shortcut).exclude(pk=canned.pk).exists():
        raise ValidationError({"shortcut": f"/{canned.shortcut} is already a canned response."})
    canned.save()
    return canned


def canned_response_delete(*, canned: CannedResponse) -> None:
    canned.delete()


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


def visitor_identify_do(
    *, visitor_id: str, external_id: str, verified: bool, email: str = "", name: str = ""
) -> Customer | None:
    """A verified identity links the visitor to the customer `external_id` (created when new, name and email
    updated): their events and conversations, and the bot may answer personally. An unverified one links
    nothing and changes no customer: it is recorded as a claim agents see beside the visitor's conversations."""
    external_id = external_id.strip()
    if not external_id or len(external_id) > 128:
        raise ValidationError({"id": "A customer id of 1 to 128 characters is required."})
    email, name = email.strip(), name.strip()[:200]
    with transaction.atomic():
        identity = WidgetIdentity.objects.select_for_update().filter(visitor_id=visitor_id).first()
        identity = identity or WidgetIdentity(visitor_id=visitor_id)
        if not verified and identity.verified:
            return None  # a claim never replaces the identity the business's server vouched for
        identity.external_id, identity.name, identity.email = external_id, name, email
        identity.verified, identity.updated = verified, timezone.now()
        customer = None
        if verified:
            data = {k: v for k, v in (("email", email), ("name", name)) if v}
            customer = Customer.objects.filter(external_id=external_id).first()
            if customer is None or any(getattr(customer, k) != v for k, v in data.items()):
                customer, _ = customer_upsert(
                    external_id=external_id, data=data, replace=False, consent_source=ConsentSource.WIDGET
                )
            visitor_identify(anonymous_id=visitor_id, customer=customer)
        identity.customer = customer
        identity.save()
        conversations = Conversation.objects.filter(visitor_id=visitor_id)
        if verified:
            changed = list(conversations.filter(customer=None).values_list("pk", flat=True))
            conversations.filter(Q(pk__in=changed) | Q(customer=customer)).update(
                customer=customer, customer_verified=True, claimed_identity=None
            )
        else:
            changed = list(conversations.filter(customer_verified=False).exclude(state=ConversationState.RESOLVED)
                           .values_list("pk", flat=True))  # fmt: skip
            Conversation.objects.filter(pk__in=changed).update(claimed_identity=identity.claim())
    for pk in changed:
        transaction.on_commit(partial(_publish_conversation, pk))
    return customer


def _publish_conversation(pk: int) -> None:
    realtime.publish_conversation(Conversation.objects.get(pk=pk))


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
    webhook_emit_on_commit("feedback.created", lambda: [{**payload, "conversation_id": conversation.pk}])
    realtime.publish_conversation(conversation)
    return feedback


def conversations_open_count(*, agent: User) -> int:
    return Conversation.objects.filter(assignee=agent, state__in=OPEN_STATES).count()


def tenant_widget_ready() -> WidgetKey:
    """The current tenant's active widget key, created (with no allowed origin) when it has none."""
    key = WidgetKey.objects.filter(revoked_at=None).order_by("created").first()
    return key or widget_key_create(allowed_origins=[])

"""Publishing stored messages and conversation changes to sockets (Django Channels groups).

Called only after the transaction that wrote them committed. A publish that fails (Redis down) is
logged and dropped: clients catch up from the database with "everything after id N" on reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chatbot.models import Conversation, Message, Sender

logger = logging.getLogger(__name__)

EVENT_TYPE = "chat.event"  # handled by the consumers' chat_event()


def visitor_group(tenant_id: int, visitor_id: str) -> str:
    return f"chat.t{tenant_id}.{visitor_id}"


def conversation_group(tenant_id: int, conversation_id: int) -> str:
    return f"chat.t{tenant_id}.c{conversation_id}"


def inbox_group(tenant_id: int) -> str:
    return f"chat.t{tenant_id}.inbox"


def _author_name(message: Message) -> str:
    if message.sender == Sender.AGENT:
        author = message.author
        return (author.name or "Support").split()[0] if author is not None else "Support"
    return ""


def message_widget_dict(message: Message) -> dict[str, Any]:
    """What a visitor may see of a message (no decision, no author email)."""
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "sender": message.sender,
        "author": _author_name(message),
        "text": message.text,
        "buttons": message.buttons or [],
        "client_id": message.client_id,
        "created": message.created.isoformat(),
    }


def message_inbox_dict(message: Message) -> dict[str, Any]:
    """What agents and the API see: the visitor's view plus the bot's decision and whether it is a private note."""
    return {**message_widget_dict(message), "decision": message.decision, "note": message.is_note}


def conversation_widget_dict(conversation: Conversation) -> dict[str, Any]:
    """What the visitor's widget knows of its conversation: state, and whether to show the email field."""
    return {"id": conversation.pk, "state": conversation.state, "ask_email": conversation.asks_email}


message_api_dict = message_inbox_dict


def conversation_summary(conversation: Conversation) -> dict[str, Any]:
    customer = conversation.customer if conversation.customer_id else None
    assignee = conversation.assignee if conversation.assignee_id else None
    return {
        "id": conversation.pk,
        "state": conversation.state,
        "customer": (customer.name or customer.email or customer.external_id) if customer else None,
        "assignee_id": conversation.assignee_id,
        "assignee": (assignee.name or assignee.email) if assignee else None,
        "handoff_reason": conversation.handoff_reason,
        "handoff_at": conversation.handoff_at.isoformat() if conversation.handoff_at else None,
        "last_message_at": conversation.last_message_at.isoformat(),
        "contact_email": conversation.contact_email,
        "reply_by_email": conversation.reply_by_email,
    }


_pending = threading.local()


def _send(group: str, event: dict[str, Any]) -> None:
    """Publish an event after the current transaction commits (at once outside one). Everything a transaction
    publishes goes out in one batch; a rolled-back transaction publishes nothing."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _deliver([(group, event)])
        return
    queue: list[tuple[str, dict[str, Any]]] | None = getattr(_pending, "queue", None)
    if queue is None or not any(entry[1] is _flush for entry in connection.run_on_commit):
        queue = _pending.queue = []  # (a queue whose transaction rolled back is dropped)
        transaction.on_commit(_flush)
    queue.append((group, event))


def _flush() -> None:
    queue: list[tuple[str, dict[str, Any]]] = getattr(_pending, "queue", None) or []
    _pending.queue = None
    _deliver(queue)


def _deliver(queue: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None or not queue:
        return

    async def send_all() -> None:
        results = await asyncio.gather(
            *(layer.group_send(group, {"type": EVENT_TYPE, "event": event}) for group, event in queue),
            return_exceptions=True,
        )
        for (group, _), result in zip(queue, results, strict=True):
            if isinstance(result, BaseException):  # clients catch up from the database
                logger.warning("could not publish to %s: %r", group, result)

    try:
        async_to_sync(send_all)()
    except Exception:
        logger.warning("could not publish %d events", len(queue), exc_info=True)


def publish_message(message: Message) -> None:
    """A stored message to the visitor's widget (unless it is a private note) and to agents watching its
    conversation."""
    conversation = message.conversation
    tenant_id = conversation.tenant_id
    if not message.is_note:
        _send(
            visitor_group(tenant_id, conversation.visitor_id),
            {"kind": "message", "message": message_widget_dict(message)},
        )
    _send(conversation_group(tenant_id, conversation.pk), {"kind": "message", "message": message_inbox_dict(message)})


def publish_conversation(conversation: Conversation) -> None:
    """A conversation's new state or activity to the inbox lists, and its state to the visitor."""
    tenant_id = conversation.tenant_id
    summary = conversation_summary(conversation)
    _send(inbox_group(tenant_id), {"kind": "conversation", "conversation": summary})
    _send(
        visitor_group(tenant_id, conversation.visitor_id),
        {
            "kind": "state",
            "conversation": conversation.pk,
            "state": conversation.state,
            "ask_email": conversation.asks_email,
        },
    )


def publish_typing(*, tenant_id: int, conversation: Conversation, who: str, name: str = "") -> None:
    """Someone is typing: a visitor (to agents) or an agent (to the visitor)."""
    event = {"kind": "typing", "conversation": conversation.pk, "who": who, "name": name}
    if who == "visitor":
        _send(conversation_group(tenant_id, conversation.pk), event)
        _send(inbox_group(tenant_id), event)
    else:
        _send(visitor_group(tenant_id, conversation.visitor_id), event)

"""Publishing stored messages and conversation changes to sockets (Django Channels groups).

Called only after the transaction that wrote them committed. A publish that fails (Redis down) is
logged and dropped: clients catch up from the database with "everything after id N" on reconnect.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import transaction
from redis.exceptions import NoScriptError

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
    if isinstance(layer, RedisChannelLayer):
        _publisher().submit(layer, queue)  # returns at once; sent in order by the process's publisher loop
        return
    try:  # the in-memory layer lives in the loop of this process's server: send from here, as Channels does
        async_to_sync(_send_all)(layer, queue)
    except Exception:
        logger.warning("could not publish %d events", len(queue), exc_info=True)


async def _send_all(layer: Any, queue: list[tuple[str, dict[str, Any]]]) -> None:
    """Every (group, event) of `queue`; a failure is logged (clients catch up from the database)."""
    try:
        if isinstance(layer, RedisChannelLayer) and layer.ring_size == 1:
            await _redis_group_send_many(layer, [(group, {"type": EVENT_TYPE, "event": e}) for group, e in queue])
            return
    except Exception as exc:  # noqa: BLE001 - whatever failed, clients catch up from the database
        logger.warning("could not publish %d events: %r", len(queue), exc)
        return
    results = await asyncio.gather(
        *(layer.group_send(group, {"type": EVENT_TYPE, "event": event}) for group, event in queue),
        return_exceptions=True,
    )
    for (group, _), result in zip(queue, results, strict=True):
        if isinstance(result, BaseException):
            logger.warning("could not publish to %s: %r", group, result)


# channels_redis's own group_send script, over many channel keys at once, dropping expired messages first. A
# channel is a sorted set by time: the copies get increasing scores so each socket receives them in order.
_GROUP_SEND_LUA = """
local n = #KEYS
local now = tonumber(ARGV[2 * n + 1])
local expiry = tonumber(ARGV[2 * n + 2])
local over = 0
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, now - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], now + i * 0.000001, ARGV[i])  -- receivers pop lowest scores first
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over = over + 1
    end
end
return over
"""
_GROUP_SEND_SHA = hashlib.sha1(_GROUP_SEND_LUA.encode()).hexdigest()  # noqa: S324 - Redis names scripts so


_last_score = [0.0]


async def _redis_group_send_many(layer: RedisChannelLayer, items: list[tuple[str, dict[str, Any]]]) -> None:
    """channels_redis's group_send for many (group, message) pairs in two Redis round trips (one to read the
    groups' members, one script that queues every copy), where group_send takes four per group."""
    connection = layer.connection(0)
    now = max(time.time(), _last_score[0])  # never below the previous batch's last copy
    keys = list(dict.fromkeys(layer._group_key(group) for group, _ in items))
    async with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.zremrangebyscore(key, min=0, max=int(now) - layer.group_expiry)
            pipe.zrange(key, 0, -1)
        replies = await pipe.execute()
    members = {key: replies[2 * i + 1] for i, key in enumerate(keys)}
    channel_keys: list[str] = []
    messages: list[bytes] = []
    capacities: list[int] = []
    for group, message in items:
        names = [m.decode("utf8") for m in members[layer._group_key(group)]]
        by_connection, key_message, key_capacity = layer._map_channel_keys_to_connection(names, message)
        for channel_key in by_connection.get(0, []):
            channel_keys.append(channel_key)
            messages.append(key_message[channel_key])
            capacities.append(key_capacity[channel_key])
    if not channel_keys:
        return
    _last_score[0] = now + (len(channel_keys) + 1) * 0.000001
    args = [*channel_keys, *messages, *capacities, repr(now), layer.expiry]
    try:
        over = await connection.evalsha(_GROUP_SEND_SHA, len(channel_keys), *args)
    except NoScriptError:
        over = await connection.eval(_GROUP_SEND_LUA, len(channel_keys), *args)
    if over:
        logger.info("%s messages dropped: channels over capacity", over)


_Events = list[tuple[str, dict[str, Any]]]
_Marker = Callable[[], Any]  # called (and awaited when it returns an awaitable) once what precedes it is sent
_Item = tuple[Any, _Events, _Marker | None]


async def _call(marker: _Marker) -> None:
    try:
        result = marker()
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.warning("after-publish call failed", exc_info=True)


class _Publisher:
    """A process's publishing loop (a daemon thread): events are handed over without waiting, and sent in the
    order handed over, everything queued meanwhile in one batch. Its Redis connections stay open (a loop per
    publish, as async_to_sync from a plain thread makes, would connect anew every time)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue[_Item] | None = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), name="cx-publisher", daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.queue = asyncio.Queue()
        self.loop.call_soon(ready.set)
        self.loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        assert self.queue is not None
        while True:
            items = [await self.queue.get()]
            while not self.queue.empty():  # whatever else waits goes out in the same round trips
                items.append(self.queue.get_nowait())
            # Every event first, in order, then the markers, in order: each marker still runs after all that was
            # handed over before it (and maybe more), and the events of many requests share one batch, where a
            # marker between each request's events (worker replies) made a batch, and round trips, per request.
            layer: Any = None
            batch: list[tuple[str, dict[str, Any]]] = []
            for item_layer, events, _ in items:
                if not events:
                    continue
                if batch and item_layer is not layer:
                    await _send_all(layer, batch)
                    batch = []
                layer = item_layer
                batch += events
            if batch:
                await _send_all(layer, batch)
            for _, _, marker in items:
                if marker is not None:
                    await _call(marker)

    def submit(self, layer: Any, events: list[tuple[str, dict[str, Any]]], marker: _Marker | None = None) -> None:
        assert self.queue is not None
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (layer, list(events), marker))


_publisher_lock = threading.Lock()
_publishers: dict[int, _Publisher] = {}


def _publisher() -> _Publisher:
    pid = os.getpid()  # a forked child gets its own (the parent's thread did not survive the fork)
    found = _publishers.get(pid)
    if found is None:
        with _publisher_lock:
            found = _publishers.get(pid) or _publishers.setdefault(pid, _Publisher())
    return found


def after_published(fn: _Marker) -> None:
    """Call `fn` once everything this thread published so far is sent (at once when publishing is synchronous).
    `fn` runs in the publisher's loop; it may return an awaitable, which is awaited there."""
    layer = get_channel_layer()
    if isinstance(layer, RedisChannelLayer):
        _publisher().submit(layer, [], fn)
        return
    result = fn()
    if inspect.isawaitable(result):
        async_to_sync(_call)(lambda: result)


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


def publish_conversation(conversation: Conversation, *, to_visitor: bool = True) -> None:
    """A conversation's new state or activity to the inbox lists, and (unless `to_visitor` is False: nothing
    the widget shows changed) its state to the visitor."""
    tenant_id = conversation.tenant_id
    summary = conversation_summary(conversation)
    _send(inbox_group(tenant_id), {"kind": "conversation", "conversation": summary})
    if not to_visitor:
        return
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

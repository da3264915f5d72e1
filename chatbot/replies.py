"""Where the bot's replies are computed. A visitor message to the bot is stored first (`awaiting_bot`), then
answered by `services.bot_replies_answer`, in one of three ways (setting CX_BOT_REPLIES):

- "inline": in the visitor's request, right after their message is committed; the reply comes back with it.
  The embedded default (no Redis) and tests.
- "thread": by a batching thread of the web process that stored the message; the request answers at once.
- "worker": by `manage.py chat_bot_worker` processes reading a Redis stream in batches; the request answers
  at once (production, see docker-compose.yml).

Batches are what is waiting when the previous batch is done (up to BATCH_MAX conversations): no batch waits for
more to come, so a quiet bot answers at once and a busy one embeds many messages in one model call. Whatever is
left waiting (a process died between the commit and its request) is answered by the sweep, which every bot
thread and worker runs every SWEEP_SECONDS for messages waiting longer than SWEEP_AFTER seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.utils import timezone

from chatbot import realtime, services
from chatbot.models import Message
from tenants.context import all_tenants, tenant_context
from tenants.models import Tenant

logger = logging.getLogger(__name__)

MODES = ("inline", "thread", "worker")
BATCH_MAX = 64
SWEEP_SECONDS = 5.0
SWEEP_AFTER = timedelta(seconds=15)
STREAM = "cx:bot:requests"
STREAM_GROUP = "bots"
STREAM_MAXLEN = 100_000
STREAM_CLAIM_IDLE_MS = 60_000


def reply_mode() -> str:
    """CX_BOT_REPLIES, by default "inline" without Redis and "thread" with it."""
    mode = settings.CX_BOT_REPLIES
    if not mode:
        return "thread" if getattr(settings, "REDIS_URL", "") else "inline"
    if mode not in MODES:
        raise ValueError(f"CX_BOT_REPLIES must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def bot_reply_request(*, tenant_id: int, conversation_id: int) -> list[Message]:
    """After a visitor message to the bot was committed: answer it now ("inline": the messages written are
    returned) or hand the conversation to the bot thread or workers (returns [])."""
    mode = reply_mode()
    if mode == "inline":
        return services.bot_replies_answer(conversation_ids=[conversation_id])
    # Once the visitor's message is published, so its reply cannot overtake it on the way to their sockets.
    if mode == "thread":
        realtime.after_published(lambda: _bot_thread().put(tenant_id, conversation_id))
    else:
        realtime.after_published(lambda: _stream_add(tenant_id, conversation_id))
    return []


_async_clients: dict[int, Any] = {}
_stream_pending: list[tuple[int, int]] = []  # handed to the stream by the publisher's loop, in one pipeline


def _stream_add(tenant_id: int, conversation_id: int) -> None:
    """In the publisher's loop: queue a request for the stream; the requests of one drain go out together."""
    _stream_pending.append((tenant_id, conversation_id))
    if len(_stream_pending) == 1:
        asyncio.get_running_loop().create_task(_stream_flush())


async def _stream_flush() -> None:
    import redis.asyncio

    loop = id(asyncio.get_running_loop())  # the publisher's loop, which lives as long as the process
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    requests = list(_stream_pending)
    _stream_pending.clear()
    try:
        async with client.pipeline(transaction=False) as pipe:
            for tenant_id, conversation_id in requests:
                pipe.xadd(STREAM, {"t": tenant_id, "c": conversation_id}, maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()
    except Exception:  # the messages are stored: the sweep answers them
        logger.warning("could not queue %d conversations for the bot", len(requests), exc_info=True)


def bot_model_load() -> bool:
    """Load the bot's embedding model now and run it once, before the first visitor waits for it; False when the
    bot matches lexically (no model)."""
    from chatbot.knowledge import bot_embedder

    embedder = bot_embedder()
    if embedder is None:
        return False
    embedder.encode(["warm up"])
    return True


def bot_model_warm() -> threading.Thread | None:
    """`bot_model_load` in the background, where this process writes the bot's replies itself (inline, as the
    embedded default does, or thread): a server calls it at start-up. None when there is nothing to load here
    (chat_bot_worker loads it for itself)."""
    if reply_mode() == "worker" or not getattr(settings, "CX_BOT_EMBEDDINGS", True):
        return None

    def warm() -> None:
        try:
            bot_model_load()
        except Exception:  # the first reply loads it (and reports the problem) instead
            logger.warning("could not load the bot's embedding model at start-up", exc_info=True)

    thread = threading.Thread(target=warm, name="cx-bot-warm", daemon=True)
    thread.start()
    return thread


# -- answering batches --------------------------------------------------------------------------------------
stats = {"batches": 0, "conversations": 0, "written": 0}  # this process's, for the worker's log and benches


def _tenant(tenant_id: int) -> Tenant | None:
    """Read for every batch (one query for many replies): a long-lived worker sees a tenant's changes."""
    with all_tenants():
        return Tenant.objects.filter(pk=tenant_id).first()


def _connections_refresh() -> None:
    """As a request's end does: drop obsolete or broken database connections (never inside a transaction)."""
    if not connection.in_atomic_block:
        close_old_connections()


def answer_batch(requests: Iterable[tuple[int, int]]) -> int:
    """Answer what waits in these (tenant id, conversation id) pairs, a batch per tenant; returns how many
    messages were written. A failing tenant's batch is logged and left to the sweep."""
    by_tenant: dict[int, set[int]] = defaultdict(set)
    for tenant_id, conversation_id in requests:
        by_tenant[int(tenant_id)].add(int(conversation_id))
    written = 0
    _connections_refresh()
    try:
        for tenant_id, conversation_ids in by_tenant.items():
            tenant = _tenant(tenant_id)
            if tenant is None:
                continue
            try:
                with tenant_context(tenant):
                    written += len(services.bot_replies_answer(conversation_ids=sorted(conversation_ids)))
            except Exception:
                logger.exception("bot replies for tenant %s failed; the sweep retries them", tenant_id)
    finally:
        _connections_refresh()
    stats["batches"] += 1
    stats["conversations"] += sum(len(c) for c in by_tenant.values())
    stats["written"] += written
    return written


def sweep() -> int:
    """Answer messages left waiting longer than SWEEP_AFTER (of every tenant); returns messages written."""
    _connections_refresh()
    try:
        with all_tenants():
            stale = list(
                Message.all_tenants.filter(awaiting_bot=True, created__lt=timezone.now() - SWEEP_AFTER)
                .values_list("tenant_id", "conversation_id")
                .distinct()[: BATCH_MAX * 4]
            )
    finally:
        _connections_refresh()
    if stale:
        logger.info("answering %d conversations left waiting for the bot", len(stale))
    return answer_batch(stale) if stale else 0


# -- "thread": a batching thread per web process -----------------------------------------------------------
class _BotThread:
    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="cx-bot", daemon=True).start()

    def put(self, tenant_id: int, conversation_id: int) -> None:
        self.queue.put((tenant_id, conversation_id))

    def _run(self) -> None:
        next_sweep = time.monotonic() + SWEEP_SECONDS
        while True:
            try:
                batch = [self.queue.get(timeout=max(0.01, next_sweep - time.monotonic()))]
            except queue.Empty:
                batch = []
            while batch and len(batch) < BATCH_MAX:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                if batch:
                    answer_batch(batch)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + SWEEP_SECONDS
                    sweep()
            except Exception:
                logger.exception("bot thread batch failed")
            if self.queue.empty():
                connections.close_all()  # idle: hold no connection (a pooled one goes back to its pool)


_thread_lock = threading.Lock()
_threads: dict[int, _BotThread] = {}


def _bot_thread() -> _BotThread:
    pid = os.getpid()  # a forked child starts its own
    found = _threads.get(pid)
    if found is None:
        with _thread_lock:
            found = _threads.get(pid) or _threads.setdefault(pid, _BotThread())
    return found


# -- "worker": processes reading a Redis stream --------------------------------------------------------------
_clients: dict[int, Any] = {}


def _redis() -> Any:
    import redis

    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        client = _clients[pid] = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10, health_check_interval=30)
    return client


def worker_run(*, consumer: str | None = None, stop: threading.Event | None = None) -> None:
    """Read the stream as one consumer of the bots' group and answer in batches until `stop` is set.
    Entries are acknowledged once answered; a dead consumer's unacknowledged entries are claimed after
    STREAM_CLAIM_IDLE_MS, and the sweep answers anything the stream lost."""
    from redis.exceptions import ResponseError

    client = _redis()
    consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
    try:
        client.xgroup_create(STREAM, STREAM_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    stop = stop or threading.Event()
    next_sweep = 0.0
    logger.info("bot worker %s reading %s", consumer, STREAM)
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_sweep:
            next_sweep = now + SWEEP_SECONDS
            claimed = client.xautoclaim(STREAM, STREAM_GROUP, consumer, STREAM_CLAIM_IDLE_MS, count=BATCH_MAX)
            _answer_entries(client, claimed[1] if claimed else [])
            sweep()
        read = client.xreadgroup(STREAM_GROUP, consumer, {STREAM: ">"}, count=BATCH_MAX, block=1000)
        for _stream, entries in read or []:
            _answer_entries(client, entries)
        if not read:
            connections.close_all()  # idle: hold no connection (a pooled one goes back to its pool)
    connections.close_all()


def _answer_entries(client: Any, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
    entries = [(entry_id, fields) for entry_id, fields in entries if fields]
    if not entries:
        return
    answer_batch((int(fields[b"t"]), int(fields[b"c"])) for _, fields in entries)
    client.xack(STREAM, STREAM_GROUP, *(entry_id for entry_id, _ in entries))

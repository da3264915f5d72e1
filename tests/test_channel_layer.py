"""The Redis channel layer that reads a process's socket messages in batches (cxplatform/channel_layer.py), on real
Redis: every message reaches every socket it was sent to, in order, and a read cut short loses nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis
from django.conf import settings

from cxplatform.channel_layer import BatchReadingRedisChannelLayer

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (make test and CI set it)")


def _layer() -> BatchReadingRedisChannelLayer:
    return BatchReadingRedisChannelLayer(hosts=[settings.REDIS_URL], prefix=f"cxtest-{uuid.uuid4().hex[:8]}")


async def _receive_all(layer: BatchReadingRedisChannelLayer, channel: str, n: int) -> list[Any]:
    return [(await asyncio.wait_for(layer.receive(channel), timeout=10))["n"] for _ in range(n)]


def test_group_and_direct_messages_reach_every_socket_in_order() -> None:
    async def scenario() -> None:
        layer = _layer()
        sockets = [await layer.new_channel() for _ in range(12)]
        for channel in sockets:
            await layer.group_add("everyone", channel)
        await layer.group_add("few", sockets[0])
        await layer.group_add("few", sockets[5])
        # Queued before anyone reads, so reads find many waiting and take them in batches.
        for n in range(30):
            await layer.group_send("everyone", {"type": "chat", "n": n})
            if n % 3 == 0:
                await layer.group_send("few", {"type": "chat", "n": 1000 + n})
            await layer.send(sockets[7], {"type": "chat", "n": 2000 + n})
        counts = {channel: 30 for channel in sockets}
        counts[sockets[0]] = counts[sockets[5]] = 40
        counts[sockets[7]] = 60
        received = await asyncio.gather(*(_receive_all(layer, c, counts[c]) for c in sockets))
        by_socket = dict(zip(sockets, received, strict=True))
        assert by_socket[sockets[1]] == list(range(30))
        expected_few = [m for n in range(30) for m in ([n, 1000 + n] if n % 3 == 0 else [n])]
        assert by_socket[sockets[0]] == by_socket[sockets[5]] == expected_few
        assert by_socket[sockets[7]] == [m for n in range(30) for m in (n, 2000 + n)]
        # And with the queue drained, a read waits for the next message (channels_redis's blocking read).
        waiting = asyncio.ensure_future(layer.receive(sockets[3]))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await layer.send(sockets[3], {"type": "chat", "n": 99})
        assert (await asyncio.wait_for(waiting, timeout=10))["n"] == 99
        await layer.flush()

    asyncio.run(scenario())


def test_a_receive_cancelled_while_its_read_is_under_way_loses_nothing() -> None:
    """The socket whose receive reads the shared queue closes (its receive is cancelled) after Redis popped a
    message meant for another socket of the process: that socket still gets it."""

    async def scenario() -> None:
        layer = _layer()
        mine, other = await layer.new_channel(), await layer.new_channel()
        key = layer.prefix + layer.non_local_name(other)
        blocking = redis.Redis.from_url(settings.REDIS_URL)
        for n in range(20):
            reading = asyncio.ensure_future(layer.receive(mine))
            await asyncio.sleep(0.01)  # the read is waiting in Redis
            # Sent, and handed by Redis to the read, without letting this loop run (a blocking client), so that
            # the read's reply is still unread when the receive is cancelled.
            message = layer.serialize({"type": "chat", "n": n, "__asgi_channel__": other})
            blocking.zadd(key, {message: time.time()})
            while blocking.zcard(key):
                time.sleep(0.001)
            reading.cancel()
            assert (await asyncio.wait_for(layer.receive(other), timeout=10))["n"] == n
        await layer.flush()

    asyncio.run(scenario())

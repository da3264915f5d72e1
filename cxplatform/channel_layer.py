"""The Redis channel layer, reading a process's sockets' messages in batches, one round trip each.

All the sockets a server process holds share one Redis queue (channels_redis's process-local channels, named
`...!<id>`). channels_redis reads it one message at a time, in four round trips each: a script that puts back
what an interrupted read left in a backup queue, a blocking pop, a copy of the message into the backup queue,
and, once delivered, its removal from there. The backup exists because the socket whose receive does the read
can be cancelled (it closed) while the pop is under way, which would drop a message meant for another socket.
With many sockets and a message or two for each visitor message, those round trips were most of the socket
process's CPU (bench/bench_chat_load.py).

Here a read is one pipeline: a blocking pop of the oldest message, then, in the same round trip, up to
READ_BATCH - 1 more. The read runs as a task of its own that a cancelled receive does not stop (asyncio.shield):
whatever it pops is kept for the next receive, so no backup queue is needed. Messages still come out in the
order they were queued. As with channels_redis, what a process had read but not yet delivered is gone if the
process dies (its sockets go with it, and clients catch up from the database when they reconnect).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from channels_redis.core import RedisChannelLayer

READ_BATCH = 100


class BatchReadingRedisChannelLayer(RedisChannelLayer):  # type: ignore[misc]  # channels_redis has no type hints
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._taken: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._reading: asyncio.Task[None] | None = None

    async def receive_single(self, channel: str) -> tuple[Any, dict[str, Any]]:
        """The next message of a process-local queue, read in batches. `receive` calls this under its lock, one
        caller at a time; other channels go to channels_redis's own read."""
        if "!" not in channel:
            return await super().receive_single(channel)  # type: ignore[no-any-return]
        while not self._taken:
            reading = self._reading
            if reading is None or reading.get_loop() is not asyncio.get_running_loop():
                reading = self._reading = asyncio.ensure_future(self._read(channel))
                reading.add_done_callback(_retrieved)  # a failed read nobody awaits any more is not an error to log
            await asyncio.shield(reading)  # if this receive is cancelled, the read goes on and keeps its messages
        queue_channel, message = self._taken.popleft()
        if "__asgi_channel__" in message:  # the socket (or, for a group, the sockets) of this process it is for
            return message.pop("__asgi_channel__"), message
        return queue_channel, message

    async def close_pools(self) -> None:
        if self._reading is not None:  # its connection is about to close
            self._reading.cancel()
        await super().close_pools()

    async def _read(self, channel: str) -> None:
        key = self.prefix + channel
        try:
            async with self.connection(self.consistent_hash(channel)).pipeline(transaction=False) as pipe:
                pipe.bzpopmin(key, timeout=self.brpop_timeout)
                pipe.zpopmin(key, READ_BATCH - 1)
                first, rest = await pipe.execute()
        finally:
            if self._reading is asyncio.current_task():
                self._reading = None
        if first is not None:
            self._taken.append((channel, self.deserialize(first[1])))
        self._taken.extend((channel, self.deserialize(member)) for member, _score in rest)


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()

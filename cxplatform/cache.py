"""Django's Redis cache, with redis-py clients and connection pools shared by the whole process.

Django keeps a cache backend per request context under ASGI (each request runs in a new context
and thread), and every backend instance opens its own connection pool; it also builds a new
`redis.Redis` for every operation. So each API request paid new TCP connections to Redis plus the
client set-up. Here one client per server serves the process: redis-py clients and pools are
thread-safe, and a pool notices a fork and reconnects in the child.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends import redis as django_redis

_clients: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


class RedisCacheClient(django_redis.RedisCacheClient):
    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        base: Any = self  # Django's private helpers, which django-stubs does not declare
        index = base._get_connection_pool_index(write)
        shared = (base._servers[index], repr(sorted(base._pool_options.items(), key=lambda kv: kv[0])))
        client = _clients.get(shared)
        if client is None:
            with _lock:
                client = _clients.get(shared)
                if client is None:
                    client = _clients[shared] = base._client(connection_pool=base._get_connection_pool(write))
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


@dataclass
class WindowHit:
    """One hit on a fixed-window counter: cache key `key`, whose window of `seconds` starts with its
    first hit (INCR, EXPIRE NX and TTL). Once counted, `count` and `left` (seconds) are set."""

    key: str
    seconds: int
    count: int | None = None
    left: int = 1

    def queue(self, pipe: Any, full_key: str) -> None:
        pipe.incr(full_key)
        pipe.expire(full_key, self.seconds, nx=True)
        pipe.ttl(full_key)

    def counted(self, count: Any, left: Any) -> None:
        self.count, self.left = int(count), max(int(left), 1)


def get_many_and_hit(keys: list[str], hit: WindowHit) -> dict[str, Any] | None:
    """`cache.get_many(keys)` and `hit` counted, in one round trip to Redis; None, and nothing done,
    when the default cache is not Redis."""
    if not isinstance(caches["default"], django_redis.RedisCache):
        return None
    backend: Any = caches["default"]
    full_keys = {backend.make_and_validate_key(key): key for key in keys}
    client = backend._cache.get_client(write=True)  # the counter is written: the primary
    pipe = client.pipeline(transaction=False)
    pipe.mget(list(full_keys))
    hit.queue(pipe, backend.make_and_validate_key(hit.key))
    values, count, _, left = pipe.execute()
    hit.counted(count, left)
    loads = backend._cache._serializer.loads  # as Django's RedisCacheClient.get_many
    return {key: loads(value) for key, value in zip(full_keys.values(), values, strict=True) if value is not None}

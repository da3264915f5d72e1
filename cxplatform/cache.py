"""Django's Redis cache, with redis-py clients and connection pools shared by the whole process.

Django keeps a cache backend per request context under ASGI (each request runs in a new context
and thread), and every backend instance opens its own connection pool; it also builds a new
`redis.Redis` for every operation. So each API request paid new TCP connections to Redis plus the
client set-up. Here one client per server serves the process: redis-py clients and pools are
thread-safe, and a pool notices a fork and reconnects in the child.
"""

from __future__ import annotations

import threading
from typing import Any

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

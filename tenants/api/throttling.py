"""Per-key request rate: a fixed-window counter, one cache round trip per request.

DRF's SimpleRateThrottle keeps a list of every request time in the window and rewrites it on each
request; at hundreds of requests a second that list is the most expensive thing in the request.
A counter per key whose window starts with its first request (INCR, EXPIRE NX and TTL in one
Redis pipeline) costs the same at any rate.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from tenants.models import ApiKey


def _count_hit(key: str, ttl: int) -> tuple[int, int]:
    """Add one to the counter `key`, whose window of `ttl` seconds starts with its first hit.

    Returns the new count and the seconds left in the window."""
    if isinstance(cache, RedisCache) or isinstance(getattr(cache, "_wrapped", None), RedisCache):
        backend: Any = getattr(cache, "_wrapped", cache)
        full_key = backend.make_and_validate_key(key)
        client = backend._cache.get_client(full_key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, ttl, nx=True)
        pipe.ttl(full_key)
        count, _, left = pipe.execute()
        return int(count), max(int(left), 1)
    cache.add(key, 0, ttl)
    try:
        return int(cache.incr(key)), ttl
    except ValueError:  # expired between add and incr
        cache.add(key, 1, ttl)
        return 1, ttl


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per API key (or per signed-in user) request rate; over it, 429 with Retry-After."""

    scope = "api_key"
    retry_after = 1
    num_requests: int  # set from the rate by SimpleRateThrottle
    duration: int

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey):
            ident = f"key{request.auth.prefix}"
        elif request.user is not None and getattr(request.user, "pk", None):
            ident = f"user{request.user.pk}"
        else:
            ident = f"ip{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        count, self.retry_after = _count_hit(self.key, self.duration)
        return count <= self.num_requests

    def wait(self) -> float:
        return float(self.retry_after)

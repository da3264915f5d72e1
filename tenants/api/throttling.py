"""Per-key request rate: a fixed-window counter, one cache round trip per request.

DRF's SimpleRateThrottle keeps a list of every request time in the window and rewrites it on each
request; at hundreds of requests a second that list is the most expensive thing in the request.
A counter per key whose window starts with its first request (INCR, EXPIRE NX and TTL in one
Redis pipeline) costs the same at any rate. Without Redis, windows are aligned to the clock.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from cxplatform.cache import WindowHit
from tenants.models import ApiKey


def _count_hit(key: str, ttl: int) -> tuple[int, int]:
    """Add one to the counter `key` for the current window of `ttl` seconds (with Redis the window
    starts with the key's first hit; otherwise windows are aligned to the clock).

    Returns the new count and the seconds left in the window."""
    if isinstance(caches["default"], RedisCache):  # not `cache`: a proxy, never an instance of it
        backend: Any = caches["default"]
        full_key = backend.make_and_validate_key(key)
        pipe = backend._cache.get_client(full_key, write=True).pipeline(transaction=False)
        hit = WindowHit(key, ttl)
        hit.queue(pipe, full_key)
        hit.counted(*pipe.execute()[::2])
        assert hit.count is not None
        return hit.count, hit.left
    # Other caches cannot tell a key's TTL; with windows aligned to the clock the time left is known.
    now = time.time()
    window = int(now // ttl)
    left = math.ceil((window + 1) * ttl - now)
    window_key = f"{key}:{window}"
    if cache.add(window_key, 1, left + 1):
        return 1, max(left, 1)
    try:
        return int(cache.incr(window_key)), max(left, 1)
    except ValueError:  # expired between add and incr
        cache.add(window_key, 1, left + 1)
        return 1, max(left, 1)


def api_key_hit(prefix: str) -> WindowHit | None:
    """The hit a request with the API key `prefix` makes on its rate counter (None when unthrottled),
    for the key look-up to count in its own cache round trip (tenants.middleware)."""
    throttle = ApiKeyRateThrottle()
    if throttle.rate is None:
        return None
    return WindowHit(throttle.cache_format % {"scope": throttle.scope, "ident": f"key{prefix}"}, throttle.duration)


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
        hit: WindowHit | None = getattr(request._request, "api_key_hit", None)
        if hit is not None and hit.count is not None and (hit.key, hit.seconds) == (self.key, self.duration):
            count, self.retry_after = hit.count, hit.left  # counted with the key look-up
            hit.count = None  # once
        else:
            count, self.retry_after = _count_hit(self.key, self.duration)
        return count <= self.num_requests

    def wait(self) -> float:
        return float(self.retry_after)

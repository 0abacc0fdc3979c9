"""The shared cache (aiocache): process memory by default, Redis across replicas."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiocache import Cache
from aiocache.base import BaseCache
from aiocache.serializers import StringSerializer
from redis import asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

#: What a cache call may raise when its backend is down.
CACHE_ERRORS: Final = (OSError, ConnectionError, TimeoutError, RedisError)
#: How long a connection to Redis may take to be made.
CONNECT_SECONDS: Final = 2.0


def create_cache(redis_url: str | None) -> BaseCache:
    """In this process's memory, or in Redis when there is one; values are strings.

    The Redis client is redis-py's own, made from the URL as redis-py reads it (as
    :func:`gateway.store.shared.redis_client` does): ``rediss://`` for TLS, a user name for
    Redis ACLs, and the URL's options (``gateway.config.check_redis_url`` lists those the
    gateway takes), none of which aiocache's own URL parsing understands."""
    if not redis_url:
        cache = Cache(Cache.MEMORY)
    else:
        cache = Cache(Cache.REDIS)
        # The client aiocache made (not connected yet) gives way to redis-py's from the URL;
        # closing the cache closes it, and its pool with it.
        cache.client = redis.Redis.from_url(
            redis_url, decode_responses=False, socket_connect_timeout=CONNECT_SECONDS
        )
    cache.serializer = StringSerializer()
    return cache


class ReadThrough:
    """Values fetched from elsewhere and kept in the cache for ``ttl`` seconds.

    However many callers miss the same key at once, one fetch runs in this process and the
    others wait for it. If the cache is down, values are fetched directly. Keys are the
    caller's to make unique: a key must name everything the value depends on.
    """

    def __init__(self, cache: BaseCache, *, ttl: float, namespace: str) -> None:
        self._cache = cache
        self._ttl = ttl
        self._namespace = namespace
        self._pending: dict[str, asyncio.Future[str]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[str]]) -> str:
        full = f"{self._namespace}:{key}"
        if self._ttl > 0:
            try:
                cached = await self._cache.get(full)
            except CACHE_ERRORS as exc:
                log.warning("the cache is unavailable", extra={"error": repr(exc)})
                cached = None
            if isinstance(cached, str):
                return cached
        pending = self._pending.get(full)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(full, fetch))
            self._pending[full] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(full, None))
        return await asyncio.shield(pending)

    async def _fetch(self, full: str, fetch: Callable[[], Awaitable[str]]) -> str:
        value = await fetch()
        if self._ttl > 0:
            try:
                await self._cache.set(full, value, ttl=self._ttl)
            except CACHE_ERRORS as exc:
                log.warning("the cache is unavailable", extra={"error": repr(exc)})
        return value

"""The shared cache (aiocache): process memory by default, Redis across replicas."""

from __future__ import annotations

from typing import Final

from aiocache import Cache
from aiocache.base import BaseCache
from aiocache.serializers import StringSerializer
from redis.exceptions import RedisError

#: What a cache call may raise when its backend is down.
CACHE_ERRORS: Final = (OSError, ConnectionError, TimeoutError, RedisError)


def create_cache(url: str) -> BaseCache:
    """``memory://`` or ``redis://host:port/db``; values are strings."""
    cache = Cache.from_url(url)
    cache.serializer = StringSerializer()
    return cache

"""State the replicas share through Redis: locks, and counts of failed logins.

Without Redis (the embedded default, one process) both live in this process's memory.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Final

import redis.asyncio as redis
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)

_PREFIX: Final = "fng-gateway:"


class SharedLocks:
    """Mutual exclusion across replicas (redis-py's lock); a no-op without Redis, where the
    callers' own asyncio locks already suffice."""

    def __init__(self, client: redis.Redis | None, *, timeout: float, wait: float) -> None:
        self._client = client
        self._timeout = timeout
        self._wait = wait

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        if self._client is None:
            yield
            return
        lock = self._client.lock(
            f"{_PREFIX}lock:{name}", timeout=self._timeout, blocking_timeout=self._wait
        )
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            log.warning(
                "Redis is unavailable; going on without the shared lock",
                extra={"lock": name, "error": repr(exc)},
            )
            acquired = False
        try:
            yield
        finally:
            if acquired:
                with contextlib.suppress(LockError, RedisError):
                    await lock.release()


class FailedLogins:
    """Counts failed logins per key (an account, a client address) in a sliding window; at
    ``limit`` the key is refused until the window has passed. Shared across replicas through
    Redis when there is one; while Redis is unreachable each replica counts on its own, so
    throttling never switches off."""

    def __init__(self, client: redis.Redis | None, *, limit: int, window: float) -> None:
        self._client = client
        self.limit = limit
        self._window = window
        self._local: dict[str, tuple[int, float]] = {}

    async def blocked(self, *keys: str) -> bool:
        if self.limit <= 0:
            return False
        if self._client is not None:
            try:
                values = await self._client.mget([f"{_PREFIX}failed:{key}" for key in keys])
            except RedisError as exc:
                log.warning(
                    "Redis is unavailable; failed logins are counted by this replica alone",
                    extra={"error": repr(exc)},
                )
            else:
                shared = any(v is not None and int(v) >= self.limit for v in values)
                return shared or self._blocked_here(keys)
        return self._blocked_here(keys)

    async def failed(self, *keys: str) -> None:
        if self.limit <= 0:
            return
        if self._client is not None:
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        name = f"{_PREFIX}failed:{key}"
                        pipe.incr(name)
                        pipe.expire(name, int(self._window) or 1)
                    await pipe.execute()
                return
            except RedisError as exc:
                log.warning(
                    "Redis is unavailable; a failed login is counted by this replica alone",
                    extra={"error": repr(exc)},
                )
        self._count_here(keys)

    def _blocked_here(self, keys: tuple[str, ...]) -> bool:
        if not self._local:
            return False
        now = time.monotonic()
        return any(
            count >= self.limit and until > now
            for count, until in (self._local.get(key, (0, 0.0)) for key in keys)
        )

    def _count_here(self, keys: tuple[str, ...]) -> None:
        now = time.monotonic()
        for key in keys:
            count, until = self._local.get(key, (0, 0.0))
            if until <= now:
                count = 0
            self._local[key] = (count + 1, now + self._window)
        if len(self._local) > 100_000:
            self._local = {k: v for k, v in self._local.items() if v[1] > now}


#: Connections to Redis one process keeps at most. A call that finds them all in use waits
#: for one (up to the same 2 s as a Redis command), rather than failing at once as redis-py's
#: default pool does: a burst of cold calls would otherwise skip the shared failed-login
#: counts, or the shared token lock.
REDIS_CONNECTIONS: Final = 64


def redis_client(url: str | None) -> redis.Redis | None:
    if not url:
        return None
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_CONNECTIONS,
        timeout=2.0,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
    )
    return redis.Redis.from_pool(pool)  # closing the client closes the pool

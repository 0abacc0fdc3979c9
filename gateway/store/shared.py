"""State the replicas share through Redis: locks, and counts of failed logins.

Without Redis (the embedded default, one process) both live in this process's memory.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
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
    """Failed logins per key (an account, an address, an account at an address) over a
    sliding window: the times of each key's failures in the last ``window`` seconds, at most
    ``keep`` of them (the newest). What they mean is the caller's to decide.

    Shared across replicas through Redis (a sorted set a key, scored by the time) when there
    is one; while Redis is unreachable each replica counts on its own, so throttling never
    switches off. Times are wall-clock seconds, so that they compare with an operator's
    unlock recorded in the store."""

    def __init__(self, client: redis.Redis | None, *, window: float, keep: int) -> None:
        self._client = client
        self.window = window
        self._keep = max(keep, 1)
        self._local: dict[str, list[float]] = {}

    async def recent(self, *keys: str) -> list[list[float]]:
        """The times of each key's failures in the window, oldest first."""
        now = time.time()
        here = [self._here(key, now) for key in keys]
        if self._client is not None:
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.zrangebyscore(
                            _failures(key), now - self.window, "+inf", withscores=True
                        )
                    shared = await pipe.execute()
            except RedisError as exc:
                _counted_alone(exc)
            else:
                return [
                    sorted([score for _member, score in found] + mine)
                    for found, mine in zip(shared, here, strict=True)
                ]
        return here

    async def failed(self, *keys: str) -> list[int]:
        """Count a failure of each key now; how many each has in the window with it."""
        now = time.time()
        if self._client is not None:
            member = f"{now:.6f}:{secrets.token_hex(4)}"
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        name = _failures(key)
                        pipe.zadd(name, {member: now})
                        pipe.zremrangebyscore(name, "-inf", now - self.window)
                        pipe.zremrangebyrank(name, 0, -self._keep - 1)
                        pipe.expire(name, math.ceil(self.window))
                        pipe.zcard(name)
                    results = await pipe.execute()
            except RedisError as exc:
                _counted_alone(exc)
            else:
                counts = results[4::5]
                return [
                    int(count) + len(self._here(key, now))
                    for key, count in zip(keys, counts, strict=True)
                ]
        return [self._count_here(key, now) for key in keys]

    async def forget(self, before: float, *keys: str) -> None:
        """Drop the failures of ``keys`` up to the time ``before`` (an operator's unlock)."""
        for key in keys:
            times = self._local.get(key)
            if times is not None:
                times[:] = [at for at in times if at > before]
        if self._client is not None:
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.zremrangebyscore(_failures(key), "-inf", before)
                    await pipe.execute()
            except RedisError as exc:
                _counted_alone(exc)

    def _here(self, key: str, now: float) -> list[float]:
        times = self._local.get(key)
        if not times:
            return []
        return [at for at in times if at > now - self.window]

    def _count_here(self, key: str, now: float) -> int:
        times = self._here(key, now)
        times = [*times, now][-self._keep :]
        self._local[key] = times
        if len(self._local) > 100_000:
            self._local = {k: v for k, v in self._local.items() if v and v[-1] > now - self.window}
        return len(times)


def _failures(key: str) -> str:
    return f"{_PREFIX}failures:{key}"


def _counted_alone(exc: RedisError) -> None:
    log.warning(
        "Redis is unavailable; failed logins are counted by this replica alone",
        extra={"error": repr(exc)},
    )


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

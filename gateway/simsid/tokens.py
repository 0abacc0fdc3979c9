"""SIMS ID access tokens: fetched once, shared, refreshed ahead of expiry.

Two levels hold a vendor's token: this process's memory, and the shared aiocache
(memory, or Redis across replicas) where it is kept encrypted under the master key.
However many calls find the token missing, one request goes to SIMS ID: callers queue on
a per-vendor lock (and, across replicas, on a shared lock when one is configured) and the
first one in fetches while the others find its token when they get the lock. A fetch that
fails fails for every caller that was queued behind it too: they do not each try again in
turn, which while SIMS ID is slow would keep the last of them waiting many timeouts long.

A token is refreshed in the background once it enters its refresh window (a jittered
lead before expiry), so calls do not wait for it. If SIMS ID is down, a token that is still
valid keeps being used and the refresh is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import aiohttp
from aiocache.base import BaseCache
from pydantic import SecretStr

from gateway.config import SimsIdSettings
from gateway.errors import TokenUnavailable
from gateway.simsid.clientauth import client_auth
from gateway.store.cache import CACHE_ERRORS
from gateway.tenancy.model import VendorCredentials
from gateway.tenancy.secrets import SecretBox

log = logging.getLogger(__name__)

#: A token this close to expiry (or a tenth of its lifetime, if less) is not sent: it could
#: expire on the way.
EXPIRY_MARGIN: Final = 5.0


@dataclass(frozen=True, slots=True)
class Token:
    value: SecretStr
    usable_until: float  # wall clock, seconds since the epoch
    refresh_at: float = field(compare=False)

    def usable(self, now: float) -> bool:
        return now < self.usable_until


SharedLock = Callable[[str], AbstractAsyncContextManager[None]]


class TokenObserver(Protocol):
    """Told of each token wanted (held already, or not) and each fetch's outcome."""

    def looked_up(self, *, hit: bool) -> None: ...

    def fetched(self, *, ok: bool) -> None: ...


@contextlib.asynccontextmanager
async def _no_shared_lock(_key: str) -> AsyncIterator[None]:
    yield


class TokenProvider:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        cache: BaseCache,
        box: SecretBox,
        settings: SimsIdSettings,
        *,
        shared_lock: SharedLock = _no_shared_lock,
        observe: TokenObserver | None = None,
    ) -> None:
        self._session = session
        self._cache = cache
        self._box = box
        self._settings = settings
        self._shared_lock = shared_lock
        self._observe = observe
        self._local: dict[str, Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        #: The last failed fetch of each vendor: when it ended (monotonic) and why.
        self._failed: dict[str, tuple[float, str]] = {}
        #: The last token FNG refused, per vendor: never taken from the shared cache again.
        self._refused: dict[str, Token] = {}

    async def get(self, vendor: VendorCredentials) -> Token:
        """A usable token for ``vendor``; raises :class:`TokenUnavailable` if none can be had."""
        key = vendor.cache_key
        now = time.time()
        token = self._local.get(key)
        if token is not None and token.usable(now):
            if now >= token.refresh_at:
                self._refresh_in_background(vendor, token)
            if self._observe is not None:
                self._observe.looked_up(hit=True)
            return token
        if self._observe is not None:
            self._observe.looked_up(hit=False)
        lock = self._locks.setdefault(key, asyncio.Lock())
        queued_at = time.monotonic()
        async with lock:
            token = self._local.get(key)
            if token is not None and token.usable(time.time()):
                return token
            failed = self._failed.get(key)
            if failed is not None and failed[0] >= queued_at:
                raise TokenUnavailable(failed[1])  # the fetch this call waited for failed
            try:
                return await self._obtain(vendor, stale=token)
            except TokenUnavailable as exc:
                self._failed[key] = (time.monotonic(), exc.message)
                raise

    async def invalidate(self, vendor: VendorCredentials, token: Token) -> None:
        """FNG refused ``token``: drop it, unless a newer one has replaced it already."""
        key = vendor.cache_key
        # Remembered at once: a caller that reads the shared cache before the copy there is
        # deleted must not take the refused token back.
        self._refused[key] = token
        if self._local.get(key) == token:
            del self._local[key]
        shared = await self._read_shared(key)
        if shared == token:
            await self._cache.delete(self._shared_key(key))

    def _takes(self, key: str, shared: Token, stale: Token | None) -> bool:
        """Whether a token found in the shared cache is worth using."""
        return shared.usable(time.time()) and shared != stale and shared != self._refused.get(key)

    async def _obtain(self, vendor: VendorCredentials, stale: Token | None) -> Token:
        key = vendor.cache_key
        shared = await self._read_shared(key)
        if shared is not None and self._takes(key, shared, stale):
            self._local[key] = shared
            return shared
        async with self._shared_lock(key):
            # Another replica may have fetched while this one waited for the lock.
            shared = await self._read_shared(key)
            if shared is not None and self._takes(key, shared, stale):
                self._local[key] = shared
                return shared
            token = await self._fetch(vendor)
            self._local[key] = token
            await self._write_shared(key, token)
            return token

    def _refresh_in_background(self, vendor: VendorCredentials, token: Token) -> None:
        key = vendor.cache_key
        if key in self._refreshing:
            return
        task = asyncio.create_task(self._refresh(vendor, token), name=f"simsid-refresh-{key}")
        self._refreshing[key] = task
        task.add_done_callback(lambda _t: self._refreshing.pop(key, None))

    async def _refresh(self, vendor: VendorCredentials, token: Token) -> None:
        key = vendor.cache_key
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if self._local.get(key) != token:
                    return  # someone refreshed already
                await self._obtain(vendor, stale=token)
        except TokenUnavailable as exc:
            # Keep using the current token while it lasts; try again a little later.
            log.warning(
                "token refresh failed; the current token stays in use",
                extra={"vendor_id": vendor.vendor_id, "error": exc.message},
            )
            retry_at = time.time() + self._settings.retry_seconds
            current = self._local.get(key)
            if current == token:
                self._local[key] = Token(token.value, token.usable_until, retry_at)

    async def _fetch(self, vendor: VendorCredentials) -> Token:
        try:
            token = await self._request(vendor)
        except TokenUnavailable:
            if self._observe is not None:
                self._observe.fetched(ok=False)
            raise
        if self._observe is not None:
            self._observe.fetched(ok=True)
        return token

    async def _request(self, vendor: VendorCredentials) -> Token:
        body = f"grant_type=client_credentials&scope={self._settings.scope}"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        uri, headers, body = client_auth(vendor).prepare("POST", vendor.token_url, headers, body)
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout_seconds)
        try:
            async with self._session.post(
                uri,
                data=body.encode(),
                headers=headers,
                timeout=timeout,
                middlewares=(),
                trace_request_ctx={"upstream": "simsid", "operation": "token"},
            ) as response:
                payload: Any = None
                with contextlib.suppress(aiohttp.ContentTypeError, json.JSONDecodeError):
                    payload = await response.json(content_type=None)
                if response.status != 200:
                    error = payload.get("error") if isinstance(payload, dict) else None
                    raise TokenUnavailable(
                        f"SIMS ID refused the token request (HTTP {response.status}"
                        + (f", {error}" if isinstance(error, str) else "")
                        + ")"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TokenUnavailable(f"SIMS ID could not be reached: {type(exc).__name__}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
            raise TokenUnavailable("SIMS ID answered without an access token")
        lifetime = float(payload.get("expires_in", 3600))
        now = time.time()
        lead = min(
            self._settings.refresh_before_seconds
            + random.uniform(0, self._settings.refresh_jitter_seconds),
            lifetime / 2,
        )
        usable_until = now + lifetime - min(EXPIRY_MARGIN, lifetime / 10)
        return Token(SecretStr(payload["access_token"]), usable_until, now + lifetime - lead)

    @staticmethod
    def _shared_key(key: str) -> str:
        return f"simsid-token:{key}"

    async def _read_shared(self, key: str) -> Token | None:
        try:
            raw = await self._cache.get(self._shared_key(key))
        except CACHE_ERRORS as exc:
            log.warning("the shared token cache is unavailable", extra={"error": repr(exc)})
            return None
        if not raw:
            return None
        try:
            data = json.loads(self._box.decrypt(raw).get_secret_value())
            return Token(SecretStr(data["t"]), float(data["e"]), float(data["r"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def _write_shared(self, key: str, token: Token) -> None:
        data = json.dumps(
            {"t": token.value.get_secret_value(), "e": token.usable_until, "r": token.refresh_at}
        )
        ttl = max(1, int(token.usable_until - time.time()))
        try:
            await self._cache.set(self._shared_key(key), self._box.encrypt(data), ttl=ttl)
        except CACHE_ERRORS as exc:
            log.warning("the shared token cache is unavailable", extra={"error": repr(exc)})

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        for task in list(self._refreshing.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task

"""Refusing whoever guesses passwords, and no one else.

A payment provider may call for hundreds of schools, one account each, from one address, so
failed logins are counted three ways, each over the same sliding window:

- one account from one address (``auth.max_failures``): that account is refused from that
  address; the other accounts there, and the same account from elsewhere, still log in;
- one account from every address (``auth.max_account_failures``): guessing one account's
  password from many addresses; that account is refused everywhere;
- one address, whatever the accounts (``auth.max_address_failures``, far above the first):
  guessing across many accounts; that address is refused.

A refusal says how long to wait (``TooManyAttempts.retry_after``): until enough of the
failures that reached the limit are older than the window. Refused attempts are not
counted, so a lock ends on time however often the caller tries. An operator's unlock
(``accounts.unlocked_at``, from the command line or the admin API, through the store so
that it reaches every replica) makes the account's failures counted before it not count.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import sqlalchemy as sa

from gateway.config import AuthSettings
from gateway.errors import TooManyAttempts
from gateway.store import Store
from gateway.store.shared import FailedLogins
from gateway.store.tables import accounts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Count:
    key: str
    limit: int
    #: Whom a refusal names: "for this account", "from this address", …
    whom: str
    #: Whether an unlock of the account clears it.
    of_account: bool


def failure_keep(settings: AuthSettings) -> int:
    """How many failures a key needs to remember: as many as the largest limit."""
    return max(settings.max_failures, settings.max_account_failures, settings.max_address_failures)


class Lockout:
    def __init__(self, failures: FailedLogins, store: Store, settings: AuthSettings) -> None:
        self._failures = failures
        self._store = store
        self._settings = settings

    def _counts(self, username: str, address: str | None) -> list[_Count]:
        address = address or "-"
        counts = (
            _Count(
                f"account-address:{address}|{username}",
                self._settings.max_failures,
                "for this account from this address",
                of_account=True,
            ),
            _Count(
                f"account:{username}",
                self._settings.max_account_failures,
                "for this account",
                of_account=True,
            ),
            _Count(
                f"address:{address}",
                self._settings.max_address_failures,
                "from this address",
                of_account=False,
            ),
        )
        return [count for count in counts if count.limit > 0]

    async def check(self, username: str, address: str | None) -> None:
        """Raise :class:`TooManyAttempts` while any limit this login meets is reached."""
        counts = self._counts(username, address)
        if not counts:
            return
        recent = await self._failures.recent(*(count.key for count in counts))
        if any(times for count, times in zip(counts, recent, strict=True) if count.of_account):
            recent = await self._after_unlock(username, counts, recent)
        now = time.time()
        waits = [
            (times[len(times) - count.limit] + self._failures.window - now, count)
            for count, times in zip(counts, recent, strict=True)
            if len(times) >= count.limit
        ]
        if not waits:
            return
        wait, count = max(waits, key=lambda item: item[0])
        seconds = max(1, math.ceil(wait))
        raise TooManyAttempts(
            f"too many failed logins {count.whom}; try again in {seconds} seconds",
            retry_after=seconds,
        )

    async def failed(self, username: str, address: str | None) -> None:
        counts = self._counts(username, address)
        if not counts:
            return
        totals = await self._failures.failed(*(count.key for count in counts))
        for count, total in zip(counts, totals, strict=True):
            if total == count.limit:
                log.warning(
                    "locked after %d failed logins %s",
                    total,
                    count.whom.replace("this", "the"),
                    extra={"account": username, "address": address},
                )

    async def _after_unlock(
        self, username: str, counts: list[_Count], recent: list[list[float]]
    ) -> list[list[float]]:
        """``recent`` without the account's failures from before an operator's unlock."""
        async with self._store.read() as conn:
            unlocked_at = await conn.scalar(
                sa.select(accounts.c.unlocked_at).where(accounts.c.username == username)
            )
        if unlocked_at is None:
            return recent
        unlocked = unlocked_at.timestamp()
        stale = [
            count.key
            for count, times in zip(counts, recent, strict=True)
            if count.of_account and times and times[0] <= unlocked
        ]
        if not stale:
            return recent
        await self._failures.forget(unlocked, *stale)
        return [
            [at for at in times if at > unlocked] if count.of_account else times
            for count, times in zip(counts, recent, strict=True)
        ]

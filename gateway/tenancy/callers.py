"""Inbound resolution: credentials plus a partner key become a :class:`Caller`, or nothing.

Every way of failing (unknown user, wrong password, unknown key, a key of a database not
granted to the account, a key past its deadline) raises the same
:class:`AuthenticationFailed` with the same message after the same work, so a caller
cannot tell "no such key" from "not yours".

Successful resolutions are kept in process memory for a few seconds (a setting), keyed
by an HMAC of the credentials under a per-process secret, so the hot path does not pay
for scrypt or the store on every call. Failures are never cached. Past those seconds the
store is read again, but a password already verified against the hash the account still
has is not hashed again: a payment system posting for hundreds of schools would otherwise
pay one scrypt (tens of milliseconds of CPU) per school every few seconds. Only a login
that would succeed skips it, so every refusal still costs the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gateway.errors import AuthenticationFailed
from gateway.store import Store
from gateway.store.tables import (
    UtcDateTime,
    account_systems,
    accounts,
    databases,
    grants,
    partner_keys,
    schools,
    vendors,
)
from gateway.tenancy.keys import key_digest, normalise_key
from gateway.tenancy.lockout import Lockout
from gateway.tenancy.model import (
    AuthMethod,
    Caller,
    DatabaseTarget,
    Interface,
    KeyState,
    VendorCredentials,
)
from gateway.tenancy.passwords import dummy_hash, verify_password_async
from gateway.tenancy.secrets import SecretBox

REFUSED = "the credentials or the database key were not accepted"
NOT_A_KEY = (
    "Database must be the partner key GUID (8-4-4-4-12 hexadecimal digits) that the "
    "gateway's operator issued for the school's FNG database, not a database name "
    "(on the plain XML binding, the X-School-Key header)"
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Cached:
    caller: Caller
    key_retire_at: datetime | None
    expires: float


class CallerResolver:
    def __init__(
        self,
        store: Store,
        box: SecretBox,
        *,
        cache_seconds: float,
        lockout: Lockout | None = None,
        cache_size: int = 10_000,
    ) -> None:
        self._store = store
        self._box = box
        self._lockout = lockout
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, _Cached] = OrderedDict()
        self._pepper = secrets.token_bytes(32)
        self._pending: dict[bytes, asyncio.Future[tuple[Caller, datetime | None]]] = {}
        # HMAC of (username, password) -> the password hash that password was verified against.
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        #: scrypt verifications run, the dummy hash's included.
        self.password_checks = 0

    def _cache_key(self, username: str, password: str, digest: str, interface: Interface) -> bytes:
        return self._hmac(username, password, digest, interface.value)

    def _hmac(self, *parts: str) -> bytes:
        return hmac.new(self._pepper, "\0".join(parts).encode(), hashlib.sha256).digest()

    def _remembers(self, verified: bytes, account: Any, now: datetime) -> bool:
        """Whether this password was verified against a hash the account still accepts."""
        known = self._verified.get(verified)
        if known is None:
            return False
        if known in _accepted_hashes(account, now):
            self._verified.move_to_end(verified)
            return True
        del self._verified[verified]
        return False

    async def _verify_password(self, password: str, account: Any, now: datetime) -> str | None:
        """The account's password hash that ``password`` matches, or None; for no account,
        the same work against a dummy hash."""
        if account is None:
            self.password_checks += 1
            await verify_password_async(password, dummy_hash())
            return None
        for encoded in _accepted_hashes(account, now):
            self.password_checks += 1
            if await verify_password_async(password, encoded):
                return encoded
        return None

    async def authenticate(
        self,
        username: str,
        password: str,
        partner_key: str,
        interface: Interface,
        remote: str | None = None,
    ) -> Caller:
        normalised = normalise_key(partner_key)
        if normalised is None:
            log.warning(
                "login refused: the database key is not a GUID",
                extra={"account": username, "interface": interface.value},
            )
            raise AuthenticationFailed(NOT_A_KEY)
        digest = key_digest(normalised)
        cache_key = self._cache_key(username, password, digest, interface)
        hit = self._cache.get(cache_key)
        if hit is not None:
            if hit.expires > time.monotonic() and (
                hit.key_retire_at is None or hit.key_retire_at > datetime.now(UTC)
            ):
                return hit.caller
            self._cache.pop(cache_key, None)
        if self._lockout is not None:
            await self._lockout.check(username, remote)
        # Identical calls arriving together share one resolution (and one scrypt).
        pending = self._pending.get(cache_key)
        if pending is None:
            pending = asyncio.ensure_future(self._resolve(username, password, digest, interface))
            self._pending[cache_key] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(cache_key, None))
        try:
            caller, retire_at = await asyncio.shield(pending)
        except AuthenticationFailed:
            if self._lockout is not None:
                await self._lockout.failed(username, remote)
            raise
        if self._cache_seconds > 0:
            self._cache[cache_key] = _Cached(
                caller=caller,
                key_retire_at=retire_at,
                expires=time.monotonic() + self._cache_seconds,
            )
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return caller

    async def _resolve(
        self, username: str, password: str, digest: str, interface: Interface
    ) -> tuple[Caller, datetime | None]:
        now = datetime.now(UTC)

        async with self._store.read() as conn:
            account = (
                await conn.execute(
                    sa.select(
                        accounts.c.id,
                        accounts.c.password_hash,
                        accounts.c.previous_password_hash,
                        accounts.c.previous_valid_until,
                        accounts.c.enabled,
                    ).where(accounts.c.username == username)
                )
            ).one_or_none()
            row = None
            systems: frozenset[str] = frozenset()
            if account is not None and digest:
                row = (
                    await conn.execute(_inbound_query(digest, account.id, interface), {"now": now})
                ).first()
                systems = frozenset(
                    (
                        await conn.execute(
                            sa.select(account_systems.c.system_identifier).where(
                                account_systems.c.account_id == account.id
                            )
                        )
                    ).scalars()
                )

        verified = self._hmac(username, password)
        password_ok = _refusal(account, True, row, now) is None and self._remembers(
            verified, account, now
        )
        if not password_ok:
            matched = await self._verify_password(password, account, now)
            password_ok = matched is not None
            if matched is not None:
                self._verified[verified] = matched
                while len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        reason = _refusal(account, password_ok, row, now)
        if reason is not None:
            # For the operator helping an integrator: who, and why; never the password.
            log.warning(
                "login refused: %s",
                reason,
                extra={"account": username, "interface": interface.value},
            )
            raise AuthenticationFailed(REFUSED)
        assert account is not None and row is not None
        caller = Caller(
            account_id=account.id,
            username=username,
            target=self._target(row),
            system_identifiers=systems,
        )
        return caller, row.retire_at if row.key_state == KeyState.RETIRING else None

    async def database_target(self, database_id: int) -> DatabaseTarget | None:
        """A database and its keys, for the gateway's own calls (its eProcurement work)."""
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    sa.select(*_TARGET_COLUMNS)
                    .select_from(_TARGET_FROM)
                    .where(databases.c.id == database_id),
                    {"now": datetime.now(UTC)},
                )
            ).first()
        if row is None or row.active_key_enc is None:
            return None
        return self._target(row)

    def _target(self, row: Any) -> DatabaseTarget:
        return DatabaseTarget(
            database_id=row.database_id,
            database_name=row.database_name,
            school_id=row.school_id,
            school_name=row.school_name,
            la_number=row.la_number,
            establishment_number=row.establishment_number,
            vendor=VendorCredentials(
                vendor_id=row.vendor_id,
                token_url=row.token_url,
                client_id=row.client_id,
                auth_method=AuthMethod(row.auth_method),
                credential=self._box.decrypt(row.credential_enc),
            ),
            fng_key=self._box.decrypt(row.fng_key_enc),
            partner_key=self._box.decrypt(row.active_key_enc),
            fng_key_next=self._box.decrypt(row.fng_key_next_enc) if row.fng_key_next_enc else None,
            partner_key_next=self._box.decrypt(row.next_key_enc) if row.next_key_enc else None,
            partner_key_previous=(
                self._box.decrypt(row.retiring_key_enc) if row.retiring_key_enc else None
            ),
        )

    def forget(self) -> None:
        """Drop every cached resolution (after a change made through this process)."""
        self._cache.clear()
        self._verified.clear()


def _accepted_hashes(account: Any, now: datetime) -> tuple[str, ...]:
    """The account's password hash, and the one before a change during its overlap."""
    current = str(account.password_hash)
    if (
        account.previous_password_hash is not None
        and account.previous_valid_until is not None
        and account.previous_valid_until > now
    ):
        return current, str(account.previous_password_hash)
    return (current,)


def _refusal(account: Any, password_ok: bool, row: Any, now: datetime) -> str | None:
    """Why a login is refused, for the server's log (the caller hears only REFUSED)."""
    if account is None:
        return "no such account"
    if not password_ok:
        return "wrong password"
    if not account.enabled:
        return "the account is disabled"
    if row is None:
        return "no database has that key"
    if not row.granted:
        return "the account is not granted that database for this interface"
    if row.active_key_enc is None:
        return "the database has no active key"
    if row.key_state == KeyState.RETIRING and (row.retire_at is None or row.retire_at <= now):
        return "the key is retired (past its grace period)"
    return None


def _key_in_state(state: KeyState) -> sa.ScalarSelect[str]:
    key = partner_keys.alias(f"{state.value}_key")
    return (
        sa.select(key.c.key_enc)
        .where(key.c.database_id == databases.c.id, key.c.state == state.value)
        .correlate(databases)
        .scalar_subquery()
    )


#: Everything that makes a DatabaseTarget, the active partner key included.
_retiring = partner_keys.alias("retiring_key")
#: The most recently retired key still within its grace (FNG may not have the new one yet).
_RETIRING_KEY = (
    sa.select(_retiring.c.key_enc)
    .where(
        _retiring.c.database_id == databases.c.id,
        _retiring.c.state == KeyState.RETIRING.value,
        _retiring.c.retire_at > sa.bindparam("now", type_=UtcDateTime()),
    )
    .correlate(databases)
    .order_by(_retiring.c.retire_at.desc())
    .limit(1)
    .scalar_subquery()
)

_TARGET_COLUMNS = (
    databases.c.id.label("database_id"),
    databases.c.name.label("database_name"),
    databases.c.fng_key_enc,
    databases.c.fng_key_next_enc,
    schools.c.id.label("school_id"),
    schools.c.name.label("school_name"),
    schools.c.la_number,
    schools.c.establishment_number,
    vendors.c.id.label("vendor_id"),
    vendors.c.token_url,
    vendors.c.client_id,
    vendors.c.auth_method,
    vendors.c.credential_enc,
    _key_in_state(KeyState.ACTIVE).label("active_key_enc"),
    _key_in_state(KeyState.NEXT).label("next_key_enc"),
    _RETIRING_KEY.label("retiring_key_enc"),
)
_TARGET_FROM = databases.join(schools, databases.c.school_id == schools.c.id).join(
    vendors, databases.c.vendor_id == vendors.c.id
)


def _inbound_query(
    digest: str, account_id: int, interface: Interface
) -> sa.Select[tuple[object, ...]]:
    """The database a presented key names, whether the account is granted it, and the key's
    state."""
    granted = (
        sa.select(sa.literal(True))
        .where(
            grants.c.account_id == account_id,
            grants.c.database_id == databases.c.id,
            grants.c.interface == interface.value,
        )
        .exists()
    )
    return (
        sa.select(
            *_TARGET_COLUMNS,
            partner_keys.c.state.label("key_state"),
            partner_keys.c.retire_at,
            granted.label("granted"),
        )
        .select_from(_TARGET_FROM.join(partner_keys, partner_keys.c.database_id == databases.c.id))
        .where(partner_keys.c.digest == digest)
    )

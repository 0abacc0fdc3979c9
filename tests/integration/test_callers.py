"""Inbound resolution against a real store: what is hashed again, and what never is skipped.

The resolver runs with no cache of resolutions (``cache_seconds=0``), as after its few
seconds have passed, so every call reads the store again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.errors import AuthenticationFailed
from gateway.store import Store, create_store
from gateway.store.migrate import upgrade
from gateway.tenancy.callers import CallerResolver
from gateway.tenancy.model import Interface
from gateway.tenancy.rotation import KeyRotation
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin


@dataclass(frozen=True)
class Schools:
    store: Store
    box: SecretBox
    username: str
    password: str
    keys: tuple[str, str]  # partner keys of two databases granted to the account
    ungranted_key: str  # a third database's, not granted
    resolver: CallerResolver

    async def login(self, key: str, password: str | None = None) -> bool:
        try:
            await self.resolver.authenticate(
                self.username, password or self.password, key, Interface.EJOURNAL
            )
        except AuthenticationFailed:
            return False
        return True

    def rotation(self) -> KeyRotation:
        return KeyRotation(self.store, self.box, actor="test")


@pytest.fixture
async def schools(tmp_path: Path, box: SecretBox) -> AsyncIterator[Schools]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'callers.db'}"
    await upgrade(url)
    store = create_store(url)
    admin = TenancyAdmin(store, box, actor="test")
    vendor = await admin.add_vendor(
        "v", token_url="http://127.0.0.1:1/token", client_id="c", credential="s"
    )
    keys = []
    for n in range(3):
        school = await admin.add_school(
            f"school {n}", la_number="123", establishment_number=f"456{n}"
        )
        database = await admin.add_database(
            school, vendor_id=vendor, name="Public funds", fng_key=str(uuid.uuid4())
        )
        keys.append((database.database_id, database.partner_key))
    account = await admin.add_account("payments")
    for database_id, _key in keys[:2]:
        await admin.grant(account.account_id, database_id, [Interface.EJOURNAL])
    resolver = CallerResolver(store, box, cache_seconds=0)
    granted = (keys[0][1], keys[1][1])
    yield Schools(store, box, "payments", account.password, granted, keys[2][1], resolver)
    await store.close()


async def test_a_verified_password_is_not_hashed_again_for_another_school(
    schools: Schools,
) -> None:
    resolver = schools.resolver
    first, second = schools.keys
    assert await schools.login(first)
    assert resolver.password_checks == 1
    for key in (first, second, first, second):
        assert await schools.login(key)
    assert resolver.password_checks == 1


async def test_every_refusal_still_hashes_the_password(schools: Schools) -> None:
    resolver = schools.resolver
    first, _second = schools.keys
    assert await schools.login(first)
    checks = resolver.password_checks
    # The right password with a key that is not the account's, or of no database: refused
    # after the same work as a wrong password, so timing cannot tell the password was right.
    assert not await schools.login(schools.ungranted_key)
    assert not await schools.login(str(uuid.uuid4()))
    assert not await schools.login(first, "not the password")
    assert resolver.password_checks == checks + 3


async def test_a_changed_password_is_verified_afresh_and_the_old_one_refused(
    schools: Schools,
) -> None:
    resolver = schools.resolver
    first, _second = schools.keys
    assert await schools.login(first)
    rotation = schools.rotation()
    new = await rotation.change_password(schools.username, timedelta(0))
    checks = resolver.password_checks
    assert not await schools.login(first)
    assert await schools.login(first, new)
    assert resolver.password_checks == checks + 2
    assert await schools.login(first, new)
    assert resolver.password_checks == checks + 2


async def test_the_old_password_is_remembered_only_during_its_overlap(schools: Schools) -> None:
    resolver = schools.resolver
    first, _second = schools.keys
    rotation = schools.rotation()
    assert await schools.login(first)
    new = await rotation.change_password(schools.username, timedelta(hours=1))
    checks = resolver.password_checks
    # The old password, verified before the change, is the previous hash now: still good.
    assert await schools.login(first)
    assert resolver.password_checks == checks
    assert await schools.login(first, new)
    await rotation.change_password(schools.username, timedelta(0), password=new + "-later")
    assert not await schools.login(first)
    assert not await schools.login(first, new)

"""Every credential rotated while a payment system keeps posting: no call fails."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp

from gateway.app import STORE
from gateway.tenancy.rotation import KeyRotation
from tests.conftest import Gateway, Sandbox
from tests.support import (
    Auth,
    BankEntry,
    Txn,
    journal_xml,
    operation,
    post_journals_body,
    soap_call,
)


@dataclass
class PaymentSystem:
    """Posts one balanced journal every ``interval`` seconds, with the key it is given."""

    gateway: Gateway
    key: str
    password: str
    interval: float = 0.05
    posted: int = 0
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, http: aiohttp.ClientSession) -> None:
        while not self.stop.is_set():
            n = self.posted + 1
            document = journal_xml(
                [
                    BankEntry(
                        "BK1",
                        orders=[Txn(f"o{n}")],
                        settlements=[Txn(f"s{n}")],
                        base={"Orders": n - 1, "Settlements": n - 1},
                    )
                ],
                submission_id=f"R{n:05d}",
            )
            auth = Auth(self.gateway.demo.username, self.password, self.key)
            answer = await soap_call(
                http, self.gateway.soap_url, post_journals_body(document), auth
            )
            if answer.is_fault:
                self.failures.append(answer.fault_string)
            elif answer.result().get("isSuccess") != "true":
                self.failures.append(answer.raw.decode())
            else:
                self.posted += 1
            await asyncio.sleep(self.interval)


async def get_banks(http: aiohttp.ClientSession, gateway: Gateway, auth: Auth) -> str:
    answer = await soap_call(
        http, gateway.soap_url, operation("GetBanks", systemIdentifier="TPPCS"), auth
    )
    return answer.fault_code if answer.is_fault else "ok"


class TestRotation:
    async def test_keys_rotated_while_journals_post(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """rotate, the FNG key update, promote and the change in FNG's set-up screen, with a
        payment system posting throughout: no call fails, and the old key is refused after its
        deadline."""
        rotation = KeyRotation(gateway.app[STORE], gateway.box, "operator")
        database = gateway.demo.database_id
        old_key = gateway.demo.database_key
        client = PaymentSystem(gateway, old_key, gateway.demo.password)
        running = asyncio.create_task(client.run(http))
        pause = 0.4
        await asyncio.sleep(pause)
        new_key = await rotation.rotate_partner_key(database)  # shown once, to the operator
        await asyncio.sleep(pause)
        new_fng_key = str(uuid.uuid4())  # FNG issues a new key for the database ...
        await rotation.set_next_fng_key(database, new_fng_key)  # ... stored in the gateway ...
        await sandbox.state.databases.set_fng_key(
            sandbox.demo.database_id, new_fng_key
        )  # ... then live
        await asyncio.sleep(pause)
        deadline = await rotation.promote_partner_key(database, grace=timedelta(seconds=4))
        await asyncio.sleep(pause)
        await sandbox.state.databases.set_partner_key(
            sandbox.demo.database_id, new_key
        )  # entered in FNG
        await asyncio.sleep(pause)
        client.key = new_key  # the payment system moves to the new key within the grace
        await asyncio.sleep(pause)
        client.stop.set()
        await running
        assert client.failures == []
        assert client.posted >= 15
        assert (await sandbox.stats())["posted_submissions"] == client.posted
        keys = await rotation.partner_keys(database)
        assert [key["state"] for key in keys] == ["retiring", "active"]
        # Past the deadline, and past the few seconds a replica may remember a verified caller.
        remembered = gateway.settings.auth.registry_cache_seconds
        await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + remembered)
        old = Auth(gateway.demo.username, gateway.demo.password, old_key)
        new = Auth(gateway.demo.username, gateway.demo.password, new_key)
        assert await get_banks(http, gateway, old) == "AUTHENTICATION_FAILED"
        assert await get_banks(http, gateway, new) == "ok"

    async def test_next_key_accepted_by_fng_is_promoted_by_the_gateway(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        rotation = KeyRotation(gateway.app[STORE], gateway.box, "operator")
        database = gateway.demo.database_id
        new_key = await rotation.rotate_partner_key(database)
        await sandbox.state.databases.set_partner_key(sandbox.demo.database_id, new_key)
        assert await get_banks(http, gateway, gateway.auth) == "ok"  # FNG now wants the new key
        keys = await rotation.partner_keys(database)
        assert [key["state"] for key in keys] == ["retiring", "active"]
        assert keys[0]["retire_at"] is not None

    async def test_password_change_with_overlap(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        rotation = KeyRotation(gateway.app[STORE], gateway.box, "operator")
        old = gateway.auth
        new_password = await rotation.change_password(
            gateway.demo.username, overlap=timedelta(seconds=2)
        )
        new = Auth(old.username, new_password, old.database)
        assert await get_banks(http, gateway, old) == "ok"
        assert await get_banks(http, gateway, new) == "ok"
        await asyncio.sleep(2.1 + 5.0)  # past the overlap and the caller resolver's cache
        assert await get_banks(http, gateway, old) == "AUTHENTICATION_FAILED"
        assert await get_banks(http, gateway, new) == "ok"

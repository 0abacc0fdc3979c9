"""Guessing passwords gets a caller nowhere, and costs its neighbours nothing: failed logins
are counted per account at an address, per account and per address, and refused past each
limit; an operator can lift an account's lock.

The calls come from several loopback addresses (127.0.0.2, 127.0.0.3, …), as a provider's
server and a guesser elsewhere would."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from gateway.admin.tokens import AdminTokens
from gateway.app import STORE
from gateway.config import AuthSettings
from gateway.tenancy.model import Interface
from gateway.tenancy.secrets import SecretBox
from tests.conftest import Gateway, GatewayWith, own_redis_database
from tests.support import COMMAND, Auth, SoapAnswer, basic, cli_environment, operation, soap_call

GET_BANKS = operation("GetBanks", systemIdentifier="TPPCS")
WAIT = re.compile(r"try again in (\d+) seconds")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Lockouts:
    """A gateway with small limits, called from any loopback address."""

    gateway: Gateway
    key: bytes
    sessions: dict[str, aiohttp.ClientSession] = field(default_factory=dict)

    def session(self, address: str) -> aiohttp.ClientSession:
        if address not in self.sessions:
            connector = aiohttp.TCPConnector(local_addr=(address, 0))
            self.sessions[address] = aiohttp.ClientSession(connector=connector)
        return self.sessions[address]

    async def answer(self, address: str, auth: Auth, **options: Any) -> SoapAnswer:
        return await soap_call(
            self.session(address), self.gateway.soap_url, GET_BANKS, auth, **options
        )

    async def logins(self, address: str, auth: Auth, times: int = 1) -> list[str]:
        """Each call's fault code, or "ok"."""
        codes = []
        for _ in range(times):
            answer = await self.answer(address, auth)
            codes.append(answer.fault_code if answer.is_fault else "ok")
        return codes

    @property
    def right(self) -> Auth:
        return self.gateway.auth

    @property
    def wrong(self) -> Auth:
        return Auth(self.right.username, "a guess", self.right.database)

    async def other_account(self, username: str = "hill-payments-too") -> Auth:
        """Another account of the same provider, for the same school database."""
        tenancy = self.gateway.tenancy
        created = await tenancy.add_account(username)
        await tenancy.grant(
            created.account_id, self.gateway.demo.database_id, [Interface.EJOURNAL], ["TPPCS"]
        )
        return Auth(username, created.password, self.right.database)

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()


LIMITS = {
    "max_failures": 3,
    "max_account_failures": 5,
    "max_address_failures": 7,
    "failure_window_seconds": 600,
}


@pytest.fixture(params=["sqlite+memory", "postgresql+redis"])
async def lockouts(
    request: pytest.FixtureRequest, gateway_with: GatewayWith
) -> AsyncIterator[Lockouts]:
    """Both stores, and both places failed logins are counted (process memory, Redis)."""
    overrides: dict[str, Any] = {"auth": LIMITS, "admin": {"enabled": True}}
    if request.param == "postgresql+redis":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
        overrides["redis_url"] = await own_redis_database(12)
    key = Fernet.generate_key()
    gateway = await gateway_with(box=SecretBox([key]), **overrides)
    lockouts = Lockouts(gateway, key)
    yield lockouts
    await lockouts.close()


class TestOneAccountAtOneAddress:
    async def test_other_accounts_at_the_address_still_log_in(
        self, lockouts: Lockouts, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One account's bad logins lock that account at that address only, however long it
        goes on: another account there, and the account elsewhere, log in."""
        other = await lockouts.other_account()
        caplog.set_level(logging.WARNING, logger="gateway.tenancy.lockout")
        codes = await lockouts.logins("127.0.0.2", lockouts.wrong, 20)
        assert codes == ["AUTHENTICATION_FAILED"] * 3 + ["TOO_MANY_ATTEMPTS"] * 17
        assert await lockouts.logins("127.0.0.2", lockouts.right) == ["TOO_MANY_ATTEMPTS"]
        assert await lockouts.logins("127.0.0.2", other) == ["ok"]
        assert await lockouts.logins("127.0.0.3", lockouts.right) == ["ok"]
        assert "locked after 3 failed logins for the account from the address" in caplog.text
        assert lockouts.wrong.password not in caplog.text
        assert lockouts.right.password not in caplog.text

    async def test_the_fault_says_how_long_and_http_says_retry_after(
        self, lockouts: Lockouts
    ) -> None:
        """In SOAP 1.1, SOAP 1.2 and on the plain XML binding, the wait is in the message
        and in the Retry-After header, and it is the rest of the window."""
        await lockouts.logins("127.0.0.2", lockouts.wrong, 3)
        for version in ("1.1", "1.2"):
            answer = await lockouts.answer("127.0.0.2", lockouts.right, version=version)
            assert answer.fault_code == "TOO_MANY_ATTEMPTS"
            assert answer.fault_string.startswith(
                "AuthenticationException:too many failed logins for this account from this "
                "address; try again in "
            )
            match = WAIT.search(answer.fault_string)
            assert match is not None
            assert answer.headers["Retry-After"] == match[1]
            assert 590 <= int(match[1]) <= 600
        headers = {
            "Authorization": basic(lockouts.right.username, lockouts.right.password),
            "X-School-Key": lockouts.right.database,
        }
        async with lockouts.session("127.0.0.2").post(
            f"{lockouts.gateway.url}/xml/ejournal/GetBanks?systemIdentifier=TPPCS",
            headers=headers,
        ) as response:
            assert response.status == 429
            assert 590 <= int(response.headers["Retry-After"]) <= 600
            text = await response.text()
        assert f"try again in {response.headers['Retry-After']} seconds" in text


class TestOneAccountEverywhere:
    async def test_past_its_own_limit_the_account_is_refused_at_every_address(
        self, lockouts: Lockouts
    ) -> None:
        """Guesses from several addresses add up for the account (5 here), which is then
        refused even at an address it never failed from; its neighbours are not."""
        other = await lockouts.other_account()
        assert (
            await lockouts.logins("127.0.0.2", lockouts.wrong, 3) == ["AUTHENTICATION_FAILED"] * 3
        )
        assert (
            await lockouts.logins("127.0.0.3", lockouts.wrong, 2) == ["AUTHENTICATION_FAILED"] * 2
        )
        locked = await lockouts.answer("127.0.0.4", lockouts.right)
        assert locked.fault_code == "TOO_MANY_ATTEMPTS"
        assert "too many failed logins for this account; try again in" in locked.fault_string
        assert await lockouts.logins("127.0.0.4", other) == ["ok"]


class TestOneAddress:
    def test_its_limit_is_far_above_one_account_s(self) -> None:
        """By default an address is refused only after ten accounts' worth of failures, and
        a limit at or below one account's is refused as a setting."""
        defaults = AuthSettings()
        assert defaults.max_address_failures >= 10 * defaults.max_failures
        with pytest.raises(ValidationError, match="must be above max_failures"):
            AuthSettings(max_failures=10, max_address_failures=10)

    async def test_guessing_across_accounts_refuses_the_address(self, lockouts: Lockouts) -> None:
        """Three names guessed three times each from one address (7 here): the address is
        refused, even for an account with the right password; other addresses are not."""
        for name in ("guess-1", "guess-2", "guess-3"):
            await lockouts.logins("127.0.0.5", Auth(name, "a guess", lockouts.right.database), 3)
        locked = await lockouts.answer("127.0.0.5", lockouts.right)
        assert locked.fault_code == "TOO_MANY_ATTEMPTS"
        assert "too many failed logins from this address; try again in" in locked.fault_string
        assert await lockouts.logins("127.0.0.6", lockouts.right) == ["ok"]


class TestUnlock:
    async def test_from_the_command_line(self, lockouts: Lockouts, tmp_path: Path) -> None:
        """``accounts unlock`` lifts the lock at once (the gateway is another process), the
        failures before it no longer count, and the operator is in the audit log."""
        gateway = lockouts.gateway
        await lockouts.logins("127.0.0.2", lockouts.wrong, 3)
        assert await lockouts.logins("127.0.0.2", lockouts.right) == ["TOO_MANY_ATTEMPTS"]
        env = cli_environment(
            tmp_path,
            FNG_GATEWAY_DATABASE_URL=gateway.settings.database_url,
            FNG_GATEWAY_MASTER_KEYS=lockouts.key.decode(),
        )
        command = [COMMAND, "accounts", "unlock", gateway.demo.username, "--actor", "ops"]
        done = await asyncio.to_thread(
            subprocess.run, [*command, "--json"], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"username": gateway.demo.username, "done": "unlock"}
        assert (
            await lockouts.logins("127.0.0.2", lockouts.wrong, 3) == ["AUTHENTICATION_FAILED"] * 3
        )
        assert await lockouts.logins("127.0.0.2", lockouts.wrong) == ["TOO_MANY_ATTEMPTS"]
        await self.assert_audited(gateway, "cli:ops")

        unknown = await asyncio.to_thread(
            subprocess.run,
            [COMMAND, "accounts", "unlock", "ghost"],
            capture_output=True,
            text=True,
            env=env,
        )
        assert unknown.returncode == 3
        assert unknown.stderr.strip() == "fng-gateway: there is no account named 'ghost'"

    async def test_through_the_admin_api(self, lockouts: Lockouts) -> None:
        """``POST /admin/accounts/{id}/unlock`` lifts the account's locks at every address,
        in the operator's name; an unknown account is 404."""
        gateway = lockouts.gateway
        await lockouts.logins("127.0.0.2", lockouts.wrong, 3)
        await lockouts.logins("127.0.0.3", lockouts.wrong, 2)
        assert await lockouts.logins("127.0.0.4", lockouts.right) == ["TOO_MANY_ATTEMPTS"]
        token = await AdminTokens(gateway.app[STORE], "test").create("alice")
        headers = {"Authorization": f"Bearer {token}"}
        http = lockouts.session("127.0.0.1")
        url = f"{gateway.url}/admin/accounts/{gateway.demo.account_id}/unlock"
        async with http.post(url, headers=headers) as response:
            assert response.status == 200
            assert await response.json() == {
                "subject": f"account:{gateway.demo.account_id}",
                "done": "account.unlock",
            }
        for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            assert await lockouts.logins(address, lockouts.right) == ["ok"]
        await self.assert_audited(gateway, "admin:alice")

        async with http.post(f"{gateway.url}/admin/accounts/99999/unlock", headers=headers) as r:
            assert r.status == 404
            assert r.content_type == "application/problem+json"
            assert (await r.json())["title"] == "NotFoundException:there is no account 99999"

    @staticmethod
    async def assert_audited(gateway: Gateway, actor: str) -> None:
        entries = await gateway.tenancy.audit_entries(
            subject=f"account:{gateway.demo.account_id}", limit=1
        )
        assert [(entry["action"], entry["actor"]) for entry in entries] == [
            ("account.unlock", actor)
        ]


@pytest.mark.parametrize("shared", ["memory", "redis", "redis-down"])
async def test_a_lock_ends_with_the_window(
    gateway_with: GatewayWith,
    http: aiohttp.ClientSession,
    shared: str,
) -> None:
    """Locked even with the right password, until the window has passed; with Redis down
    each replica counts on its own, never not at all."""
    overrides: dict[str, Any] = {"auth": {"max_failures": 3, "failure_window_seconds": 2}}
    if shared == "redis-down":
        overrides["redis_url"] = f"redis://127.0.0.1:{closed_port()}/0"
    if shared == "redis":
        overrides["redis_url"] = await own_redis_database(12)
    gateway = await gateway_with(**overrides)
    right = gateway.auth
    wrong = Auth(right.username, "guess", right.database)
    codes = [
        (await soap_call(http, gateway.soap_url, GET_BANKS, wrong)).fault_code for _ in range(4)
    ]
    assert codes == ["AUTHENTICATION_FAILED"] * 3 + ["TOO_MANY_ATTEMPTS"]
    locked = await soap_call(http, gateway.soap_url, GET_BANKS, right)
    assert locked.fault_code == "TOO_MANY_ATTEMPTS"  # even the right password, for now
    await asyncio.sleep(2.2)
    assert not (await soap_call(http, gateway.soap_url, GET_BANKS, right)).is_fault

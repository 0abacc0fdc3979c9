"""Two gateway processes sharing one PostgreSQL and one Redis behave as one gateway.

Both run ``fng-gateway serve`` as a replica would; the sandbox runs in this test's process.
The test also reads everything both replicas logged, and the audit log, for any secret.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from gateway.admin.tokens import AdminTokens
from gateway.cli.quickstart import Registered, register_demo
from gateway.store import create_store
from gateway.store.migrate import upgrade
from gateway.store.tables import audit_log
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.conftest import Sandbox, own_redis_database
from tests.support import Auth, operation, post_journals_body, sample_journal, soap_call

COMMAND = str(Path(sys.executable).with_name("fng-gateway"))
GET_BANKS = operation("GetBanks", systemIdentifier="TPPCS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def soap(self) -> str:
        return f"{self.url}/soap/ejournal"


@dataclass
class Cluster:
    replicas: list[Replica]
    demo: Registered
    admin_token: str
    secrets: list[str]
    database_url: str


async def wait_ready(http: aiohttp.ClientSession, replica: Replica) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert replica.process.poll() is None, replica.log.read_text()
        try:
            async with http.get(f"{replica.url}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("a replica did not become ready")


@pytest.fixture
async def cluster(
    postgres_url: str, sandbox: Sandbox, tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[Cluster]:
    redis_url = await own_redis_database(12)
    key = Fernet.generate_key()
    await upgrade(postgres_url)
    store = create_store(postgres_url)
    box = SecretBox([key])
    demo = await register_demo(TenancyAdmin(store, box), sandbox.demo, sandbox.url)
    admin_token = await AdminTokens(store, "test").create("ops")
    await store.close()
    env = {name: value for name, value in os.environ.items() if not name.startswith("FNG_GATEWAY_")}
    env.update(
        {
            "FNG_GATEWAY_DATABASE_URL": postgres_url,
            "FNG_GATEWAY_REDIS_URL": redis_url,
            "FNG_GATEWAY_MASTER_KEYS": key.decode(),
            "FNG_GATEWAY_FNG__BASE_URL": f"{sandbox.url}/fng",
            "FNG_GATEWAY_ADMIN__ENABLED": "true",
            "FNG_GATEWAY_EPROC__ENABLED": "false",
            "FNG_GATEWAY_LOG_LEVEL": "DEBUG",
        }
    )
    replicas = []
    for index in range(2):
        port = free_port()
        log = tmp_path / f"replica-{index}.log"
        process = subprocess.Popen(
            [COMMAND, "serve"],
            env={**env, "FNG_GATEWAY_PORT": str(port)},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        replicas.append(Replica(process, f"http://127.0.0.1:{port}", log))
    try:
        for replica in replicas:
            await wait_ready(http, replica)
        secrets = [
            sandbox.demo.client_secret,
            sandbox.demo.fng_key,
            demo.database_key,
            demo.password,
            admin_token,
            key.decode(),
            sandbox.demo.portal_password,
        ]
        yield Cluster(replicas, demo, admin_token, secrets, postgres_url)
    finally:
        for replica in replicas:
            replica.process.terminate()
        for replica in replicas:
            replica.process.wait(30)


def admin(cluster: Cluster) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.admin_token}"}


class TestReplicas:
    async def test_one_token_request_for_both_under_load(
        self, cluster: Cluster, sandbox: Sandbox
    ) -> None:
        await sandbox.faults({"target": "simsid", "kind": "latency", "latency_ms": 300})
        auth = Auth(cluster.demo.username, cluster.demo.password, cluster.demo.database_key)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            answers = await asyncio.gather(
                *(
                    soap_call(http, cluster.replicas[n % 2].soap, GET_BANKS, auth)
                    for n in range(200)
                )
            )
        assert [answer.part("isSuccess") for answer in answers] == ["true"] * 200
        assert (await sandbox.stats())["token_requests"] == 1

    async def test_a_submission_sent_to_both_at_once_posts_once(
        self, cluster: Cluster, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        auth = Auth(cluster.demo.username, cluster.demo.password, cluster.demo.database_key)
        body = post_journals_body(sample_journal("7001"))
        answers = await asyncio.gather(
            *(soap_call(http, cluster.replicas[n % 2].soap, body, auth) for n in range(10))
        )
        assert [answer.result().get("isSuccess") for answer in answers] == ["true"] * 10
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["requests"]["PostJournals"]) == (1, 1)

    async def test_a_school_added_through_one_is_served_by_the_other(
        self, cluster: Cluster, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        one, other = cluster.replicas
        fng_key, partner_key = str(uuid.uuid4()), str(uuid.uuid4())
        database_id = await sandbox.state.databases.add(
            "Public funds",
            school_name="New School",
            la_number="321",
            establishment_number="7654",
            client_id=sandbox.demo.client_id,
            fng_key=fng_key,
            partner_key=partner_key,
        )
        await sandbox.state.journals.add_payment_system(
            database_id,
            "TPPCS",
            "Payments",
            {
                "bank": {"BK1": "B1"},
                "product": {"WATBTL1": "P"},
                "vat": {"VAT20": "S"},
                "charge": {"CHARGE30": "C"},
                "charge_vat": {"CHARGEVAT0": "Z"},
            },
        )

        async def post(path: str, body: dict[str, object]) -> dict[str, object]:
            async with http.post(f"{one.url}/admin{path}", json=body, headers=admin(cluster)) as r:
                assert r.status in (200, 201), await r.text()
                result: dict[str, object] = await r.json()
                return result

        school = await post(
            "/schools", {"name": "New School", "la_number": "321", "establishment_number": "7654"}
        )
        database = await post(
            "/databases",
            {
                "school_id": school["id"],
                "vendor_id": 1,
                "name": "Public funds",
                "fng_key": fng_key,
                "partner_key": partner_key,
            },
        )
        account = await post("/accounts", {"username": "new-school-payments"})
        await post(
            f"/accounts/{account['id']}/grant",
            {
                "database_id": database["id"],
                "interfaces": ["ejournal"],
                "system_identifiers": ["TPPCS"],
            },
        )
        cluster.secrets += [fng_key, partner_key, str(account["password"])]
        auth = Auth("new-school-payments", str(account["password"]), partner_key)
        answer = await soap_call(http, other.soap, GET_BANKS, auth)
        assert answer.part("isSuccess") == "true", answer.raw

    async def test_a_key_rotated_through_one_is_honoured_by_the_other(
        self, cluster: Cluster, http: aiohttp.ClientSession
    ) -> None:
        one, other = cluster.replicas
        database = cluster.demo.database_id
        async with http.post(
            f"{one.url}/admin/databases/{database}/partner-keys/rotate",
            json={},
            headers=admin(cluster),
        ) as response:
            assert response.status == 201, await response.text()
            next_key = str((await response.json())["next_key"])
        cluster.secrets.append(next_key)
        auth = Auth(cluster.demo.username, cluster.demo.password, next_key)
        answer = await soap_call(http, other.soap, GET_BANKS, auth)
        assert answer.part("isSuccess") == "true", answer.raw

    async def test_nothing_secret_in_logs_or_audit(
        self, cluster: Cluster, http: aiohttp.ClientSession
    ) -> None:
        """After calls of every kind, with DEBUG logs: no secret in what either replica
        wrote, nor in the audit log."""
        auth = Auth(cluster.demo.username, cluster.demo.password, cluster.demo.database_key)
        wrong = Auth(cluster.demo.username, "not-the-password", cluster.demo.database_key)
        for replica in cluster.replicas:
            await soap_call(http, replica.soap, GET_BANKS, auth)
            await soap_call(http, replica.soap, GET_BANKS, wrong)
            await soap_call(http, replica.soap, post_journals_body(sample_journal("7100")), auth)
            async with http.get(
                f"{replica.url}/admin/accounts", headers=admin(cluster)
            ) as response:
                assert response.status == 200
        for replica in cluster.replicas:
            replica.process.terminate()
            replica.process.wait(30)
        logs = "".join(replica.log.read_text() for replica in cluster.replicas)
        assert "POST /soap/ejournal" in logs  # the logs are there to be read
        store = create_store(cluster.database_url)
        async with store.read() as conn:
            audit = " ".join(str(row) for row in await conn.execute(sa.select(audit_log)))
        await store.close()
        for secret in cluster.secrets:
            assert secret not in logs, "a secret is in the logs"
            assert secret not in audit, "a secret is in the audit log"
        assert "eyJ" not in logs  # nor any token (JWTs start so)

"""PostgreSQL and Redis restarted under two running replicas, while callers keep posting.

Two ``fng-gateway serve`` processes share a PostgreSQL and a Redis of this test's own (the
machine's shared servers are never touched), with the sandbox in this test's process as FNG,
SIMS ID and the demo supplier portal. Journal clients (one per bank of the demo school) post
a chain of journals, each attempt to the other replica than the last and a failed one again
with the same submission id; budget clients import budgets and, once the services are back,
send each failed one again. Meanwhile both replicas run the eProcurement scheduler.

PostgreSQL is restarted twice (a clean fast stop, then an immediate one as a crash would
leave it), then Redis once (its keys lost, as with a real cache restart). The test asserts:

- every call ends within a bound, with a success or a fault whose code says to try again;
- while PostgreSQL is down, readiness answers 503 naming the store; while Redis is down it
  stays 200 naming the cache as degraded, and journals and budgets keep being served;
- after each restart both replicas, never restarted themselves, are ready again and serve;
- every journal, every budget and every valid portal document ends up in FNG exactly once,
  each journal posted to FNG once, and the authorised order reaches the portal once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from lxml import etree

from gateway import ns
from gateway.cli.quickstart import register_demo
from gateway.sandbox import ebis
from gateway.sandbox.portal.demo import LINES, ORDER_DATE
from gateway.sandbox.portal.portals import NewDocument
from gateway.store import create_store
from gateway.store.migrate import upgrade
from gateway.store.tables import eproc_documents
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.conftest import Sandbox
from tests.faults.private_services import PrivatePostgres, PrivateRedis, free_port
from tests.faults.processes import wait_until
from tests.integration.test_budget import import_body, valid_budget
from tests.integration.test_replicas import Replica, wait_ready
from tests.support import (
    Auth,
    BankEntry,
    SoapAnswer,
    Txn,
    errors_of,
    journal_xml,
    post_journals_body,
)
from tests.support import soap_call as raw_soap_call

COMMAND = str(Path(sys.executable).with_name("fng-gateway"))

#: The longest a call may take: the ledger's wait (2 s) and an FNG call (4 s), plus room
#: for a loaded machine. Anything longer is a hang.
CALL_LIMIT = 12.0
#: Faults that tell the caller to send the same request again.
RETRYABLE = frozenset(
    {"STORE_UNAVAILABLE", "SUBMISSION_IN_PROGRESS", "OUTCOME_UNKNOWN", "RECONCILIATION_FAILED"}
)
#: One journal client per bank of the demo school: a bank's journals form a chain.
JOURNAL_CLIENTS = ("BK1", "BK2", "BK3")
#: How long a service stays down: long enough for every client to meet the outage.
DOWN_SECONDS = 2.0
#: Extra valid orders on the demo portal, so its delivery is still going on at the restart.
EXTRA_ORDERS = 12


@dataclass
class Call:
    client: str
    replica: int
    request: str
    started: float
    seconds: float
    outcome: str  # "ok", a fault's code, "refused: CODES", or what went wrong on the wire


@dataclass
class Cluster:
    replicas: list[Replica]
    auth: Auth
    postgres: PrivatePostgres
    redis: PrivateRedis
    calls: list[Call] = field(default_factory=list)


@pytest.fixture
async def cluster(
    sandbox: Sandbox, portal_documents: list[str], tmp_path: Path
) -> AsyncIterator[Cluster]:
    """Both replicas, started once the portal holds its documents (they poll it at once)."""
    redis = PrivateRedis.create(tmp_path)
    postgres = await asyncio.to_thread(PrivatePostgres.create)
    replicas: list[Replica] = []
    try:
        await asyncio.to_thread(postgres.start)
        redis.start()
        key = Fernet.generate_key()
        await upgrade(postgres.url)
        store = create_store(postgres.url)
        demo = await register_demo(
            TenancyAdmin(store, SecretBox([key])), sandbox.demo, sandbox.url, poll_seconds=10
        )
        await store.close()
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("FNG_GATEWAY_")
        }
        env.update(
            {
                "FNG_GATEWAY_DATABASE_URL": postgres.url,
                "FNG_GATEWAY_REDIS_URL": redis.url,
                "FNG_GATEWAY_MASTER_KEYS": key.decode(),
                "FNG_GATEWAY_FNG__BASE_URL": f"{sandbox.url}/fng",
                "FNG_GATEWAY_FNG__TIMEOUT_SECONDS": "4",
                "FNG_GATEWAY_FNG__CONNECT_TIMEOUT_SECONDS": "2",
                "FNG_GATEWAY_LEDGER__WAIT_SECONDS": "2",
                # Longer than an FNG call, so a live post is never taken over.
                "FNG_GATEWAY_LEDGER__LEASE_SECONDS": "5",
                "FNG_GATEWAY_EPROC__TICK_SECONDS": "0.2",
                "FNG_GATEWAY_EPROC__CALL_TIMEOUT_SECONDS": "3",
                "FNG_GATEWAY_EPROC__POLL_TIMEOUT_SECONDS": "4",
                "FNG_GATEWAY_EPROC__MAX_BACKOFF_SECONDS": "1",
                "FNG_GATEWAY_SHUTDOWN__DRAIN_SECONDS": "0",
                "FNG_GATEWAY_SHUTDOWN__GRACE_SECONDS": "2",
                "FNG_GATEWAY_LOG_FORMAT": "text",
            }
        )
        for index in range(2):
            port = free_port()
            log = tmp_path / f"replica-{index}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [COMMAND, "serve"],
                    env={**env, "FNG_GATEWAY_PORT": str(port)},
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            replicas.append(Replica(process, f"http://127.0.0.1:{port}", log))
        async with aiohttp.ClientSession() as http:
            for replica in replicas:
                await wait_ready(http, replica)
        yield Cluster(
            replicas, Auth(demo.username, demo.password, demo.database_key), postgres, redis
        )
    finally:
        for replica in replicas:
            replica.process.terminate()
        for replica in replicas:
            try:
                replica.process.wait(5)
            except subprocess.TimeoutExpired:
                # A poll under way holds a draining replica; nothing more is asked of it.
                replica.process.kill()
                replica.process.wait(10)
        redis.kill()
        await asyncio.to_thread(postgres.remove)


# -- calls, timed and classified -------------------------------------------------------------


async def timed_call(
    cluster: Cluster,
    client: str,
    replica: int,
    request: str,
    call: Callable[[str], Awaitable[str]],
) -> str:
    """Make one call to a replica and record how long it took and how it ended."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(CALL_LIMIT * 3):
            outcome = await call(cluster.replicas[replica].url)
    except TimeoutError:
        outcome = "no answer (hung)"
    except (aiohttp.ClientError, etree.XMLSyntaxError) as exc:
        outcome = f"no answer ({type(exc).__name__})"
    cluster.calls.append(
        Call(client, replica, request, started, time.monotonic() - started, outcome)
    )
    return outcome


def classify(answer: SoapAnswer) -> str:
    if answer.is_fault:
        code = answer.root.findtext(f".//{{{ns.FAULT}}}code")
        return code or "a fault without a code"
    result = answer.result()
    if result.get("isSuccess") == "true":
        return "ok"
    return "refused: " + " ".join(error["code"] for error in errors_of(result))


def journal(bank: str, number: int) -> tuple[str, str]:
    """The client's ``number``th journal on its bank: one order and one settlement that
    cancel out (the control total stays 0), row versions following the ones before."""
    submission = f"{bank}-{number:04d}"
    document = journal_xml(
        [
            BankEntry(
                bank,
                orders=[Txn(str(number))],
                settlements=[Txn(str(number))],
                base={"Orders": number - 1, "Settlements": number - 1},
            )
        ],
        submission_id=submission,
    )
    return submission, post_journals_body(document)


async def journal_client(
    cluster: Cluster, http: aiohttp.ClientSession, bank: str, stop: asyncio.Event, give_up: float
) -> list[str]:
    """Post journals one after another until ``stop``; a journal that fails is sent again,
    the same, until it succeeds (the next one's row versions depend on it). Returns the
    submission ids that succeeded."""
    done: list[str] = []
    attempt = 0
    number = 0
    while not stop.is_set():
        number += 1
        submission, body = journal(bank, number)

        async def post(url: str, body: str = body) -> str:
            answer = await raw_soap_call(http, f"{url}/soap/ejournal", body, cluster.auth)
            return classify(answer)

        while True:
            outcome = await timed_call(cluster, bank, attempt % 2, submission, post)
            attempt += 1
            if outcome == "ok":
                done.append(submission)
                break
            if time.monotonic() > give_up:
                return done
            await asyncio.sleep(0.25)
        await asyncio.sleep(0.05)
    return done


async def budget_client(
    cluster: Cluster,
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    first: int,
    stop: asyncio.Event,
) -> tuple[list[int], list[int]]:
    """Import budgets with serial numbers from ``first`` until ``stop``; a failed one is left
    for later. Returns the serials sent and those that failed."""
    sent: list[int] = []
    failed: list[int] = []
    serial = first
    while not stop.is_set():
        outcome = await import_once(cluster, http, sandbox, f"budget-{first}", serial, len(sent))
        sent.append(serial)
        if outcome != "ok":
            failed.append(serial)
        serial += 1
        await asyncio.sleep(0.2)
    return sent, failed


async def import_once(
    cluster: Cluster,
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    client: str,
    serial: int,
    attempt: int,
) -> str:
    body = import_body(valid_budget(sandbox, serial))

    async def post(url: str) -> str:
        answer = await raw_soap_call(
            http, f"{url}/soap/budget", body, cluster.auth, namespace=ns.BUDGET
        )
        return classify(answer)

    return await timed_call(cluster, client, attempt % 2, str(serial), post)


# -- the services, and what the replicas say of them -----------------------------------------


async def readiness(http: aiohttp.ClientSession, replica: Replica) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{replica.url}/readyz") as response:
        return response.status, await response.json(content_type=None)


async def assert_reported_down(http: aiohttp.ClientSession, cluster: Cluster, check: str) -> None:
    """Both replicas report the check down (within a few seconds): the store fails readiness
    (503), the cache only degrades it (200), since the gateway serves without Redis."""
    status_expected, listed_as = (503, "failed") if check == "store" else (200, "degraded")
    for replica in cluster.replicas:
        seen: list[tuple[int, dict[str, Any]]] = []

        async def unready(replica: Replica = replica, seen: list[Any] = seen) -> bool:
            seen.append(await readiness(http, replica))
            status, body = seen[-1]
            return status == status_expected and check in body.get(listed_as, [])

        try:
            await wait_until(unready, 6, f"{replica.url} reports {check} unavailable")
        except AssertionError:
            raise AssertionError(f"readiness while {check} is down: {seen[-3:]}") from None


async def assert_recovered(http: aiohttp.ClientSession, cluster: Cluster, since: float) -> None:
    """Both replicas ready again, and every journal client served, by both, after ``since``
    (leases left by calls the outage cut have lapsed)."""
    for replica in cluster.replicas:

        async def ready(replica: Replica = replica) -> bool:
            assert replica.process.poll() is None, replica.log.read_text()
            return (await readiness(http, replica))[0] == 200

        await wait_until(ready, 20, f"{replica.url} is ready again")

    async def served() -> bool:
        after = [
            call
            for call in cluster.calls
            if call.started > since and call.outcome == "ok" and call.client in JOURNAL_CLIENTS
        ]
        return {call.replica for call in after} == {0, 1} and {
            call.client for call in after
        } == set(JOURNAL_CLIENTS)

    await wait_until(served, 20, "both replicas serve every journal client again")


async def outage(
    http: aiohttp.ClientSession,
    cluster: Cluster,
    check: str,
    stop: Callable[[], None],
    start: Callable[[], None],
) -> tuple[float, float]:
    """Stop a service, see readiness fail, keep it down while the clients go on, start it,
    see both replicas recover. Returns when it went down and when it was back."""
    down = time.monotonic()
    await asyncio.to_thread(stop)
    await assert_reported_down(http, cluster, check)
    await asyncio.sleep(max(0.0, down + DOWN_SECONDS - time.monotonic()))
    await asyncio.to_thread(start)
    back = time.monotonic()
    await assert_recovered(http, cluster, back)
    return down, back


# -- eProcurement ----------------------------------------------------------------------------


async def add_orders(sandbox: Sandbox) -> list[str]:
    """More valid content orders on the demo portal; their ids."""
    documents = [
        NewDocument(
            "order",
            ebis.to_text(
                ebis.order(
                    number=f"WEB-{5000 + index}",
                    order_date=ORDER_DATE,
                    supplier_duns=sandbox.demo.supplier_duns,
                    buyer_duns=sandbox.demo.school_duns,
                    lines=LINES[:2],
                )
            ),
            uuid=f"restart-order-{index}",
        )
        for index in range(EXTRA_ORDERS)
    ]
    await sandbox.state.portals.add_documents(sandbox.demo.portal_name, documents)
    return [f"restart-order-{index}" for index in range(EXTRA_ORDERS)]


async def delivered(sandbox: Sandbox) -> list[str]:
    return sorted(
        document["document_id"] for document in await sandbox.state.procurement.documents()
    )


# -- the test --------------------------------------------------------------------------------


@pytest.fixture
async def portal_documents(sandbox: Sandbox) -> list[str]:
    """The valid documents the portal offers, with FNG slow to take each, so that their
    delivery is under way when PostgreSQL goes down."""
    extra = await add_orders(sandbox)
    await sandbox.faults(
        {"target": "fng", "path": "EProcurement/Documents", "kind": "latency", "latency_ms": 250}
    )
    valid = [uuid for uuid, _type, outcome in sandbox.demo.portal_documents if outcome == "valid"]
    return sorted(valid + extra)


async def test_postgres_and_redis_restarted_mid_run(
    portal_documents: list[str], cluster: Cluster, sandbox: Sandbox
) -> None:
    pids = [replica.process.pid for replica in cluster.replicas]
    stop = asyncio.Event()
    give_up = time.monotonic() + 90
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        journals = [
            asyncio.create_task(journal_client(cluster, http, bank, stop, give_up))
            for bank in JOURNAL_CLIENTS
        ]
        budgets = [
            asyncio.create_task(budget_client(cluster, http, sandbox, first, stop))
            for first in (1000, 2000)
        ]
        try:

            async def under_way() -> bool:
                clients = {call.client for call in cluster.calls if call.outcome == "ok"}
                return len(clients) == 5 and len(await delivered(sandbox)) > 0

            await wait_until(under_way, 30, "every client and the portal's delivery are going")
            assert len(await delivered(sandbox)) < len(portal_documents), (
                "every document arrived before the restart: the test proves nothing for them"
            )
            postgres_outages = [
                await outage(http, cluster, "store", cluster.postgres.stop, cluster.postgres.start),
                await outage(
                    http,
                    cluster,
                    "store",
                    lambda: cluster.postgres.stop("immediate"),
                    cluster.postgres.start,
                ),
            ]
            redis_down, redis_back = await outage(
                http, cluster, "cache", cluster.redis.kill, cluster.redis.start
            )
        finally:
            stop.set()
        posted = [await task for task in journals]
        imported: list[int] = []
        failed: list[int] = []
        for task in budgets:
            sent, not_yet = await task
            imported += sent
            failed += not_yet

        async def again(serial: int) -> None:
            attempt = 0
            while await import_once(cluster, http, sandbox, "retry", serial, attempt) != "ok":
                attempt += 1
                assert time.monotonic() < give_up, f"budget {serial} never went through"
                await asyncio.sleep(0.25)

        # The services are back: every failed budget goes again, the same.
        await asyncio.gather(*(again(serial) for serial in failed))

    logs = "\n".join(replica.log.read_text(errors="replace") for replica in cluster.replicas)
    calls = cluster.calls

    # Every call ended in time, with a success or a fault saying to try again.
    slow = [call for call in calls if call.seconds > CALL_LIMIT]
    assert not slow, f"calls past {CALL_LIMIT} s: {slow[:5]}"
    unclear = [call for call in calls if call.outcome != "ok" and call.outcome not in RETRYABLE]
    assert not unclear, f"calls that ended unclearly: {unclear[:5]}"
    for down, back in postgres_outages:
        assert any(
            call.outcome == "STORE_UNAVAILABLE" and down <= call.started <= back for call in calls
        ), "no call met a PostgreSQL outage: the test proves nothing"
    assert "Traceback" not in logs, "a replica failed unexpectedly; see its log"
    # While only Redis was down, journals and budgets kept being served.
    during_redis = [call for call in calls if redis_down < call.started < redis_back]
    assert {call.client for call in during_redis} >= set(JOURNAL_CLIENTS), during_redis
    assert all(call.outcome == "ok" for call in during_redis), during_redis

    # Every journal and every budget in FNG exactly once; each journal posted once.
    expected = sorted(submission for client in posted for submission in client)
    assert all(len(client) >= 3 for client in posted), posted
    in_fng = sorted(entry["submission_id"] for entry in await sandbox.journals())
    assert in_fng == expected
    stats = await sandbox.stats()
    assert stats["requests"]["PostJournals"] == len(expected)
    budgets_in_fng = sorted(
        int(budget["serial_number"]) for budget in await sandbox.state.budgets.imported()
    )
    assert budgets_in_fng == sorted(imported)
    # A budget whose outcome was lost is sent once more, and FNG refuses it as a duplicate
    # serial (which FNG's state alone cannot tell): at most one more request per failed one.
    assert len(imported) <= stats["requests"]["ImportBudget"] <= len(imported) + len(failed)

    # Every valid document in FNG once and acknowledged at the portal; the order sent once.
    async def all_done() -> bool:
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        processed = sorted(d["uuid"] for d in portal["documents"] if d["processed"])
        (authorised,) = await sandbox.state.procurement.authorised_orders()
        return (
            await delivered(sandbox) == portal_documents
            and processed == portal_documents
            and authorised["state"] == "sent"
        )

    await wait_until(
        all_done, 40, "every valid document is in FNG and acknowledged, and the order sent"
    )
    assert (await sandbox.stats())["documents_received"] == len(portal_documents)
    store = create_store(cluster.postgres.url)
    try:
        async with store.read() as conn:
            states = dict(
                (
                    await conn.execute(
                        sa.select(eproc_documents.c.document_id, eproc_documents.c.state)
                    )
                ).all()
            )
    finally:
        await store.close()
    assert {document: states.get(document) for document in portal_documents} == dict.fromkeys(
        portal_documents, "acknowledged"
    )
    orders = (await sandbox.state.portals.describe(sandbox.demo.portal_name))["orders"]
    assert len(orders) == 1, orders

    # The replicas were never restarted.
    assert [replica.process.pid for replica in cluster.replicas] == pids
    assert all(replica.process.poll() is None for replica in cluster.replicas)

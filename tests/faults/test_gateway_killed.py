"""The gateway killed (SIGKILL: no drain, no clean-up, as when a node dies) in the middle of
a journal post, a budget import and the eProcurement pipeline, then started again: each
journal, budget and document ends up in FNG exactly once, whatever FNG did with the request
the dead process had sent; the caller's retry gets a success or a clear fault, never a second
post; nothing invalid is acknowledged to a portal.

The gateway runs as a real process (``fng-gateway serve``) against the sandbox in this test's
process; a sandbox fault holds the request at the step where the process is killed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.conftest import Sandbox
from tests.faults.clients import Client, Submissions, assert_in_fng_once
from tests.faults.processes import Deployment, count, wait_until

#: The ledger lease of the first process's entry: a retry after it lapses reconciles.
LEASE = 3.0
HOLD_MS = 1000

POSTS: dict[str, str] = {
    "journal": "JournalInterface/PostJournals",
    "budget": "BudgetInterface/ImportBudget",
}

#: What FNG does with the request the killed process was waiting for.
FATES: dict[str, list[dict[str, Any]]] = {
    "FNG commits it after the gateway died": [{"kind": "latency", "latency_ms": HOLD_MS}],
    "FNG never commits it": [
        {"kind": "latency", "latency_ms": HOLD_MS},
        {"kind": "drop_before"},
    ],
}


async def fault_rules_left(http: aiohttp.ClientSession, sandbox: Sandbox) -> int:
    async with http.get(f"{sandbox.url}/_sandbox/faults") as response:
        return sum(int(rule["count"]) for rule in (await response.json())["rules"])


async def send(sent: Submissions, client: Client, interface: str) -> None:
    if interface == "journal":
        await sent.post_journals(client, "BK1", 1)
    else:
        await sent.import_budgets(client, 1)


@pytest.mark.parametrize("fate", list(FATES))
@pytest.mark.parametrize("interface", list(POSTS))
async def test_killed_mid_post_and_restarted(
    interface: str, fate: str, deployment: Deployment, sandbox: Sandbox
) -> None:
    settings = {
        "ledger__lease_seconds": LEASE,
        "ledger__wait_seconds": 0.5,
        "eproc__enabled": "false",
    }
    gateway = await deployment.start(**settings)
    sent = Submissions(sandbox.demo)
    async with aiohttp.ClientSession() as http:
        first = Client(http, gateway.url, deployment.auth, bound=30)
        await send(sent, first, interface)  # token, chart of accounts: the steady state
        assert [a.outcome for a in first.answers] == ["success"], [str(a) for a in first.answers]

        await sandbox.faults(*({"target": "fng", "path": POSTS[interface], "count": 1, **rule}
                               for rule in FATES[fate]))  # fmt: skip
        call = asyncio.create_task(send(sent, first, interface))

        async def held() -> bool:
            return await fault_rules_left(http, sandbox) == 0

        await wait_until(held, 10, "FNG holds the post")
        gateway.kill()
        await call
        assert first.answers[-1].outcome == "no answer", str(first.answers[-1])
        await asyncio.sleep(HOLD_MS / 1000 + 0.3)  # FNG is done with what it held
        stats = await sandbox.stats()
        committed = stats["posted_submissions"] + stats["budgets_imported"]
        assert committed == (2 if fate.startswith("FNG commits") else 1)

        restarted = await deployment.start(**settings)
        retry = Client(http, restarted.url, deployment.auth, bound=30)
        # Until the dead process's lease lapses the entry is in progress: a clear fault, and
        # nothing sent. After it, the retry reconciles with FNG and settles the submission.
        for _ in range(40):
            await sent.retry_unsettled(retry)
            if not sent.unsettled:
                break
            await asyncio.sleep(0.25)
        assert not sent.unsettled, [str(a) for a in retry.answers]
        assert retry.answers[-1].outcome == "success"
        for answer in retry.answers[:-1]:
            assert (answer.outcome, answer.code) == ("fault", "SUBMISSION_IN_PROGRESS"), str(answer)
        await assert_in_fng_once(sandbox, sent)
        # A replay of the settled submission is answered from the ledger.
        before = await sandbox.stats()
        sent.unsettled |= {a.what for a in first.answers}
        assert all(a.outcome == "success" for a in await sent.retry_unsettled(retry))
        assert await sandbox.stats() == before
    assert restarted.stop() == 0


STEPS: dict[str, dict[str, Any]] = {
    # FetchDoc done and recorded; FNG never answers the delivery.
    "after FetchDoc": {
        "target": "fng",
        "path": "EProcurement/Documents",
        "kind": "latency",
        "latency_ms": 120_000,
        "count": 1,
    },
    # FNG holds the document; the portal never answers the acknowledgement.
    "after the FNG post": {
        "target": "portal",
        "action": "UpdateDocumentStatus",
        "kind": "latency",
        "latency_ms": 120_000,
        "count": 1,
    },
    # The portal marked it processed, but its answer was lost before the gateway recorded it.
    "before the acknowledgement is recorded": {
        "target": "portal",
        "action": "UpdateDocumentStatus",
        "kind": "drop_after",
        "count": 1,
    },
}


@pytest.mark.parametrize("step", list(STEPS))
async def test_killed_mid_document_and_restarted(
    step: str, deployment: Deployment, sandbox: Sandbox
) -> None:
    database = deployment.database
    settings = {
        "eproc__tick_seconds": 0.2,
        "eproc__poll_timeout_seconds": 4,
        "eproc__call_timeout_seconds": 60,
    }
    valid = sorted(
        uuid for uuid, _t, outcome in sandbox.demo.portal_documents if outcome == "valid"
    )
    await sandbox.faults(STEPS[step])

    async def reached() -> bool:
        if step == "after FetchDoc":
            return count(database, "select count(*) from eproc_documents") > 0
        if step == "after the FNG post":
            return bool((await sandbox.stats())["documents_received"])
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        acknowledged = any(d["processed"] for d in portal["documents"])
        return (
            acknowledged
            and count(database, "select count(*) from eproc_documents where state = 'delivered'")
            > 0
        )

    gateway = deployment.process(**settings)
    gateway.start()
    try:
        await wait_until(reached, 60, step)
    finally:
        gateway.kill()
    await sandbox.clear_faults()
    # A failed poll put the portal in back-off; time would pass, this test cannot wait.
    deployment.make_portals_due()

    async def finished() -> bool:
        documents = [d["document_id"] for d in await sandbox.state.procurement.documents()]
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        processed = sorted(d["uuid"] for d in portal["documents"] if d["processed"])
        # The gateway records the acknowledgement just after the portal has taken it.
        recorded = count(
            database, "select count(*) from eproc_documents where state = 'acknowledged'"
        )
        return sorted(documents) == valid and processed == valid and recorded == len(valid)

    restarted = await deployment.start(**settings)
    await wait_until(finished, 90, "every valid document is in FNG and acknowledged")
    assert restarted.stop() == 0
    documents = [d["document_id"] for d in await sandbox.state.procurement.documents()]
    assert sorted(documents) == valid  # once each
    assert (await sandbox.stats())["documents_received"] == len(valid)

"""SIMS ID down, slow, or revoking its tokens mid-run, while journals and budgets are posted
at once: a valid token keeps being used while SIMS ID is out; without one every caller gets a
clear fault in time and nothing reaches FNG; once SIMS ID is back the same gateway process
(shared by the module's tests, never restarted) takes the retries, each exactly once; and a
token revoked while a journal is in flight is replaced, the journal posted once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.faults.clients import Client, assert_in_fng_once
from tests.faults.conftest import Rig, open_rig

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.usefixtures("faults_cleared")]

#: The gateway's timeouts of a token request and of an FNG call, and how much longer a call
#: may take end to end (authentication, the ledger, a loaded test machine).
SIMSID_TIMEOUT = 1.0
FNG_TIMEOUT = 2.0
MARGIN = 2.0

OUTAGES: dict[str, dict[str, Any]] = {
    "down": {"kind": "error", "status": 503},
    "dropping connections": {"kind": "drop_before"},
    "slow": {"kind": "latency", "latency_ms": 2500},
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    directory: Path = tmp_path_factory.mktemp("simsid-faults")
    async with open_rig(
        directory,
        simsid__timeout_seconds=SIMSID_TIMEOUT,
        fng__timeout_seconds=FNG_TIMEOUT,
        eproc__enabled="false",
    ) as opened:
        yield opened


def client(rig: Rig) -> Client:
    # A call may wait for FNG's 401 and then for one token request.
    return Client(
        rig.http, rig.gateway.url, rig.deployment.auth, bound=SIMSID_TIMEOUT + FNG_TIMEOUT + MARGIN
    )


@pytest.mark.parametrize("outage", list(OUTAGES))
async def test_a_simsid_outage_changes_nothing_until_the_token_is_refused(
    outage: str, rig: Rig
) -> None:
    sandbox, sent = rig.sandbox, rig.sent
    calls = client(rig)
    answers = await sent.burst(calls, journals=1, budget_callers=1, budgets=1)
    assert all(a.outcome == "success" for a in answers), [str(a) for a in answers]

    await sandbox.faults({"target": "simsid", **OUTAGES[outage]})
    # The token the gateway holds is valid: SIMS ID being out changes nothing.
    answers = await sent.burst(calls, journals=1, budget_callers=2, budgets=1)
    assert all(a.outcome == "success" for a in answers), [str(a) for a in answers]
    await assert_in_fng_once(sandbox, sent)

    # Now FNG refuses that token, and no other can be had: a clear fault for every caller,
    # all at once and each in time; nothing is posted.
    await sandbox.revoke_tokens()
    in_fng = await sandbox.stats()
    answers = await sent.burst(calls, journals=2, budget_callers=3, budgets=2)
    assert len(answers) == 12
    for answer in answers:
        assert (answer.outcome, answer.code) == ("fault", "TOKEN_UNAVAILABLE"), str(answer)
    stats = await sandbox.stats()
    assert (stats["posted_submissions"], stats["budgets_imported"]) == (
        in_fng["posted_submissions"],
        in_fng["budgets_imported"],
    )

    # SIMS ID is back: the same process takes every retry, each posted once.
    await sandbox.clear_faults()
    if OUTAGES[outage]["kind"] == "latency":
        await asyncio.sleep(OUTAGES[outage]["latency_ms"] / 1000)  # held requests are done
    retried = await sent.retry_unsettled(calls)
    assert len(retried) == 12
    assert all(answer.outcome == "success" for answer in retried), [str(a) for a in retried]
    await assert_in_fng_once(sandbox, sent)
    assert rig.gateway.running


async def test_token_revoked_while_journals_are_in_flight(rig: Rig) -> None:
    """FNG holds every call a while; the tokens are revoked while some are held. FNG refuses
    them (401), the gateway fetches one new token, sends each again, and each lands once."""
    sandbox, sent = rig.sandbox, rig.sent
    calls = client(rig)
    answers = await sent.burst(calls, journals=1, budget_callers=1, budgets=1)
    assert all(a.outcome == "success" for a in answers), [str(a) for a in answers]
    tokens = (await sandbox.stats())["token_requests"]

    await sandbox.faults({"target": "fng", "kind": "latency", "latency_ms": 700, "count": 1000})
    burst = asyncio.create_task(sent.burst(calls, journals=2, budget_callers=2, budgets=1))

    async def held() -> bool:
        """At least four calls are held at FNG now."""
        async with rig.http.get(f"{sandbox.url}/_sandbox/faults") as response:
            (rule,) = (await response.json())["rules"]
        return int(rule["count"]) <= 1000 - 4

    while not await held():
        await asyncio.sleep(0.02)
    await sandbox.revoke_tokens()
    answers = await burst
    await sandbox.clear_faults()
    assert all(a.outcome == "success" for a in answers), [str(a) for a in answers]
    await assert_in_fng_once(sandbox, sent)
    assert (await sandbox.stats())["token_requests"] == tokens + 1

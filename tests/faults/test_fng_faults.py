"""FNG slow, failing, dropping connections before and after committing, answering garbage,
while journals and budgets are posted at once: every call is answered in time, with a
success or a fault that has its code; once the fault is cleared every caller's retry of what
failed succeeds, every journal and budget is in FNG exactly once, and the same gateway
process (never restarted: the module's tests share it, one fault after another) serves on.

The gateway is a real ``fng-gateway serve`` process; the sandbox plays FNG in this test's
process and injects the faults.
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

#: The gateway's timeout of one FNG call, and how much longer a call may take end to end
#: (authentication, the ledger, a loaded test machine).
FNG_TIMEOUT = 2.0
MARGIN = 2.0
READ_RETRIES = 1

#: Each fault, on every FNG call: the rule, and the fault code writes and reads then get.
FNG_FAULTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "slow": ({"kind": "latency", "latency_ms": 3000}, "OUTCOME_UNKNOWN", "UPSTREAM_TIMEOUT"),
    "500": ({"kind": "error", "status": 500}, "OUTCOME_UNKNOWN", "UPSTREAM_ERROR"),
    "502": ({"kind": "error", "status": 502}, "OUTCOME_UNKNOWN", "UPSTREAM_ERROR"),
    "503": ({"kind": "error", "status": 503}, "OUTCOME_UNKNOWN", "UPSTREAM_ERROR"),
    "dropped before committing": ({"kind": "drop_before"}, "OUTCOME_UNKNOWN", "UPSTREAM_ERROR"),
    "dropped after committing": ({"kind": "drop_after"}, "OUTCOME_UNKNOWN", "UPSTREAM_ERROR"),
    "garbage": ({"kind": "garbage"}, "OUTCOME_UNKNOWN", "UPSTREAM_ERROR"),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    directory: Path = tmp_path_factory.mktemp("fng-faults")
    async with open_rig(
        directory,
        fng__timeout_seconds=FNG_TIMEOUT,
        fng__read_retries=READ_RETRIES,
        eproc__enabled="false",
    ) as opened:
        yield opened


def clients(rig: Rig) -> tuple[Client, Client]:
    """A client for writes, and one for reads, which FNG_GATEWAY_FNG__READ_RETRIES more
    attempts (after 0.2 s, 0.4 s, …) may make longer."""
    url, auth = rig.gateway.url, rig.deployment.auth
    writes = Client(rig.http, url, auth, bound=FNG_TIMEOUT + MARGIN)
    reads = Client(rig.http, url, auth, bound=(READ_RETRIES + 1) * FNG_TIMEOUT + 0.2 + MARGIN)
    return writes, reads


@pytest.mark.parametrize("fault", list(FNG_FAULTS))
async def test_fng_fault_while_journals_and_budgets_post(fault: str, rig: Rig) -> None:
    sandbox, sent = rig.sandbox, rig.sent
    writes, reads = clients(rig)
    # Running normally (the token and the chart of accounts are then held by the gateway).
    answers = await sent.burst(writes, journals=1, budget_callers=1, budgets=1)
    assert all(a.outcome == "success" for a in answers), [str(a) for a in answers]

    rule, write_code, read_code = FNG_FAULTS[fault]
    await sandbox.faults({"target": "fng", **rule})
    during, read = await asyncio.gather(
        sent.burst(writes, journals=2, budget_callers=3, budgets=2), reads.get_banks()
    )
    assert len(during) == 12
    for answer in during:
        assert (answer.outcome, answer.code) == ("fault", write_code), str(answer)
    assert (read.outcome, read.code) == ("fault", read_code), str(read)

    await sandbox.clear_faults()
    if rule["kind"] == "latency":
        await asyncio.sleep(rule["latency_ms"] / 1000)  # what FNG held has been handled
    # The same process answers normally at once.
    assert (await reads.get_banks()).outcome == "success"
    retried = await sent.retry_unsettled(writes)
    assert len(retried) == 12
    assert all(answer.outcome == "success" for answer in retried), [str(a) for a in retried]
    assert not sent.unsettled
    await assert_in_fng_once(sandbox, sent)
    # And goes on: new journals and budgets post as if nothing had happened.
    answers = await sent.burst(writes, journals=1, budget_callers=1, budgets=1)
    assert all(a.outcome == "success" for a in answers), [str(a) for a in answers]
    await assert_in_fng_once(sandbox, sent)
    assert rig.gateway.running

"""FNG slow, failing, dropping connections before and after committing, or answering garbage
while the eProcurement scheduler delivers the demo portal's documents: no document is
acknowledged to the portal before FNG has it, and once FNG is well again the same gateway
process (never restarted) delivers every valid document exactly once and acknowledges it.

The gateway is a real ``fng-gateway serve`` process; the sandbox plays FNG and the supplier
portal in this test's process and injects the faults.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.faults.processes import Deployment, count, wait_until

FAULTS: dict[str, dict[str, Any]] = {
    "slow": {"kind": "latency", "latency_ms": 3000},
    "500": {"kind": "error", "status": 500},
    "502": {"kind": "error", "status": 502},
    "503": {"kind": "error", "status": 503},
    "dropped before committing": {"kind": "drop_before"},
    "dropped after committing": {"kind": "drop_after"},
    "garbage": {"kind": "garbage"},
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fng_fault_while_documents_are_delivered(
    fault: str, deployment: Deployment, sandbox: Sandbox
) -> None:
    valid = sorted(
        uuid for uuid, _t, outcome in sandbox.demo.portal_documents if outcome == "valid"
    )
    await sandbox.faults({"target": "fng", "path": "EProcurement/Documents", **FAULTS[fault]})
    gateway = await deployment.start(
        fng__timeout_seconds=1,
        eproc__tick_seconds=0.2,
        eproc__call_timeout_seconds=5,
        eproc__poll_timeout_seconds=10,
    )

    async def attempted() -> bool:
        """Every valid document has been offered to FNG at least twice."""
        deployment.make_portals_due()
        return count(
            deployment.database,
            "select count(*) from eproc_documents where attempts >= 2",
        ) >= len(valid)

    await wait_until(attempted, 60, "every document has been tried twice")
    portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
    assert not [d["uuid"] for d in portal["documents"] if d["processed"]]

    await sandbox.clear_faults()
    if fault == "slow":
        await asyncio.sleep(3)  # what FNG held has been handled

    async def finished() -> bool:
        deployment.make_portals_due()
        documents = [d["document_id"] for d in await sandbox.state.procurement.documents()]
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        processed = sorted(d["uuid"] for d in portal["documents"] if d["processed"])
        # The gateway records the acknowledgement just after the portal has taken it.
        recorded = count(
            deployment.database,
            "select count(*) from eproc_documents where state = 'acknowledged'",
        )
        return sorted(documents) == valid and processed == valid and recorded == len(valid)

    await wait_until(finished, 60, "every valid document is in FNG and acknowledged")
    documents = [d["document_id"] for d in await sandbox.state.procurement.documents()]
    assert sorted(documents) == valid  # once each
    assert gateway.running
    assert gateway.stop() == 0

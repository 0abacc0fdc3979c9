"""The calls that reached each database, by operation: what isolation tests observe."""

from __future__ import annotations

import uuid

from tests.sandbox.budgets import fmt, year_start
from tests.sandbox.conftest import Sandbox
from tests.sandbox.test_budget_exports import _other_database


async def test_calls_are_counted_for_the_database_they_reach(sandbox: Sandbox) -> None:
    """Only calls FNG let through count, each for the database its keys name; reset zeroes."""
    demo = str(sandbox.demo.database_id)
    other_id, other_keys = await _other_database(sandbox, "Other School")
    other = str(other_id)
    token = await sandbox.token()
    assert await sandbox.control("GET", "/stats/databases") == {}

    assert (await sandbox.get_banks(token)).status == 200
    assert (await sandbox.get_banks(token)).status == 200
    day = fmt(year_start(sandbox.demo.open_year))
    assert (await sandbox.export_chart(day, token)).status == 200
    assert (await sandbox.export_years(token, **other_keys)).status == 200
    # Refused: a wrong key, keys that name no database together, no token.
    assert (await sandbox.get_banks(token, client_key=str(uuid.uuid4()))).status == 403
    mixed = {"psk": sandbox.demo.fng_key, "client_key": other_keys["client_key"]}
    assert (await sandbox.get_banks(token, **mixed)).status == 403
    assert (await sandbox.get_banks("not a token")).status == 401

    counted = await sandbox.control("GET", "/stats/databases")
    assert set(counted) == {demo, other}
    assert (counted[demo]["GetBanks"], counted[demo]["ExportGlAccount"]) == (2, 1)
    assert sum(counted[demo].values()) == 3
    assert counted[other]["ExportFinancialYears"] == sum(counted[other].values()) == 1
    # Every call is still counted by operation, refused or not.
    assert (await sandbox.control("GET", "/stats"))["requests"]["GetBanks"] == 5

    await sandbox.control("POST", "/stats/reset")
    assert await sandbox.control("GET", "/stats/databases") == {}

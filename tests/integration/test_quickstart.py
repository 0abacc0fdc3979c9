"""The README's run command, as a new user runs it: a real process, a real SOAP client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import zeep
from lxml import etree

from tests.support import budget_xml, get_json, info_written, sample_journal

COMMAND = str(Path(sys.executable).with_name("fng-gateway"))


def run_demo(info: dict[str, Any], version: str, submission: str) -> tuple[str, str]:
    """What an integrator does with the printed details: GetBanks, PostJournals, GetBanks,
    PostAuditMessage. Returns BK1's order row version before and after."""
    client = zeep.Client(info["wsdl"]["ejournal"])
    api = client.bind("EJournalService", "EJournalSoap" if version == "1.1" else "EJournalSoap12")
    auth = {
        "AuthHeader": {
            "Username": info["account"]["username"],
            "Password": info["account"]["password"],
            "Database": info["schools"][0]["database_key"],
        }
    }
    system = info["payment_system"]["system_identifier"]

    def order_version() -> str:
        response = api.GetBanks(systemIdentifier=system, _soapheaders=auth)
        assert response.isSuccess is True
        bank = response.GetBanksResult._value_1.find("Banks/Bank[@externalReference='BK1']")
        return str(bank.get("lastOrderRowVersion"))

    before = order_version()
    journal = sample_journal(submission)
    if before:  # the second run continues from the first's row versions and control total
        journal = journal.replace('lastRowVersion="1"', f'lastRowVersion="{int(before) + 1}"')
    result = api.PostJournals(
        xmlData={"_value_1": etree.fromstring(journal.encode())}, _soapheaders=auth
    )
    assert result.get("isSuccess") == "true", etree.tostring(result)
    audit = api.PostAuditMessage(message=f"journal {submission} posted", _soapheaders=auth)
    assert audit.get("isSuccess") == "true"
    return before, order_version()


def run_budget_demo(info: dict[str, Any], version: str, serial: int) -> list[dict[str, Any]]:
    """What a budget planning tool does: read the chart of accounts and the financial years,
    build a budget from them, import it. Returns the budgets the sandbox then holds."""
    client = zeep.Client(info["wsdl"]["budget"])
    api = client.bind("BudgetService", "BudgetSoap" if version == "1.1" else "BudgetSoap12")
    auth = {
        "AuthHeader": {
            "Username": info["account"]["username"],
            "Password": info["account"]["password"],
            "Database": info["schools"][0]["database_key"],
        }
    }
    years = api.GetFinancialYears(_soapheaders=auth)
    year = years.find("YearDefinitions/YearDefinition[YearState='Open']")
    chart = api.GetChartOfAccounts(date=year.findtext("ThisYearStarts")[:10], _soapheaders=auth)
    assert chart.findtext("Header/FinancialYearDescription") == year.findtext("YearDescription")
    entry = chart.find("LedgerCodes/LedgerCode[LedgerType='EX']")
    fund = entry.find("Funds/Fund")
    centre = chart.findtext("CostCentres/CostCentre/CostCentreCode")
    budget = budget_xml(
        serial,
        year.findtext("YearDescription"),
        [
            (
                entry.findtext("LedgerCode"),
                fund.findtext("FundCode"),
                fund.findtext("CFRCode"),
                "1500.00",
            )
        ],
        [(entry.findtext("LedgerCode"), centre, "500.00")],
        la_number=chart.findtext("Header/LANumber"),
        school_number=chart.findtext("Header/SchoolNumber"),
    )
    result = api.ImportBudget(xmlData={"_value_1": etree.fromstring(budget)}, _soapheaders=auth)
    assert result.get("isSuccess") == "true", etree.tostring(result)
    with urllib.request.urlopen(f"{info['sandbox_url']}/_sandbox/budgets") as response:
        budgets: list[dict[str, Any]] = json.loads(response.read())
    return budgets


def readme_budget() -> bytes:
    """The budget ``Message`` the README shows."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("A budget for the demo school", 1)[1].split("```xml\n", 1)[1]
    return block.split("```", 1)[0].encode()


def import_readme_budget(info: dict[str, Any]) -> str | None:
    """The README's budget, imported as its zeep line says; the result's ``isSuccess``."""
    client = zeep.Client(info["wsdl"]["budget"])
    auth = {
        "AuthHeader": {
            "Username": info["account"]["username"],
            "Password": info["account"]["password"],
            "Database": info["schools"][0]["database_key"],
        }
    }
    message = etree.fromstring(readme_budget())
    result = client.service.ImportBudget(xmlData={"_value_1": message}, _soapheaders=auth)
    return result.get("isSuccess")  # type: ignore[no-any-return]


def eproc_settled(info: dict[str, Any], seconds: float) -> tuple[list[str], list[str], Any]:
    """Wait for the demo portal's valid documents to reach FNG; what FNG holds, what the
    portal has had acknowledged, and the portal's state."""
    valid = sorted(d["id"] for d in info["eproc"]["documents"] if d["expected"] == "valid")
    deadline = time.monotonic() + seconds
    while True:
        delivered = sorted(
            d["document_id"] for d in get_json(f"{info['sandbox_url']}/_sandbox/eproc/documents")
        )
        portal = get_json(f"{info['sandbox_url']}/_sandbox/portals/{info['eproc']['portal']}")
        acknowledged = sorted(d["uuid"] for d in portal["documents"] if d["processed"])
        if (
            delivered == valid and acknowledged == valid and portal["orders"]
        ) or time.monotonic() > deadline:
            return delivered, acknowledged, portal
        time.sleep(0.25)


class TestQuickstart:
    async def test_sandbox_command_serves_a_soap_client(self, tmp_path: Path) -> None:
        info_file = tmp_path / "info.json"
        env = {
            key: value for key, value in os.environ.items() if not key.startswith("FNG_GATEWAY_")
        }
        process = subprocess.Popen(
            [COMMAND, "sandbox", "--port", "0", "--info-file", str(info_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            info = await asyncio.to_thread(info_written, info_file, process)
            assert oct(info_file.stat().st_mode & 0o777) == "0o600"
            assert await asyncio.to_thread(run_demo, info, "1.1", "0071") == ("", "1")
            assert await asyncio.to_thread(run_demo, info, "1.2", "0072") == ("1", "2")
            budgets = await asyncio.to_thread(run_budget_demo, info, "1.1", 1)
            assert [str(budget["serial_number"]) for budget in budgets] == ["1"]
            budgets = await asyncio.to_thread(run_budget_demo, info, "1.2", 2)
            assert [str(budget["serial_number"]) for budget in budgets] == ["1", "2"]
            assert await asyncio.to_thread(import_readme_budget, info) == "true"
            # Within one poll interval of starting, the demo portal's valid documents are in
            # FNG and acknowledged; the invalid ones are not; the authorised order was sent.
            delivered, acknowledged, portal = await asyncio.to_thread(
                eproc_settled, info, info["eproc"]["poll_seconds"] + 5
            )
            valid = sorted(d["id"] for d in info["eproc"]["documents"] if d["expected"] == "valid")
            assert delivered == valid and acknowledged == valid
            assert len(portal["orders"]) == 1
            request = urllib.request.Request(
                f"{info['admin']['url']}schools",
                headers={"Authorization": f"Bearer {info['admin']['token']}"},
            )
            with urllib.request.urlopen(request) as response:  # the operators' API is there too
                assert [s["name"] for s in json.loads(response.read())] == ["Demo Primary School"]
        finally:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.to_thread(process.communicate, timeout=30)
        assert process.returncode == 0, stderr
        assert info["account"]["password"] in stdout  # shown to the user, once
        assert info["account"]["password"] not in stderr  # and never logged
        assert info["wsdl"]["ejournal"] in stdout

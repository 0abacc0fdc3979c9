"""FNG's Budget Import: FMS's checks, every broken rule reported, imported at most once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import aiohttp
import pytest
from lxml import etree

from gateway.xmlsafe import SchemaRegistry
from tests.sandbox.budgets import centre, demo_budget, fund, message
from tests.sandbox.conftest import Sandbox, errors_of


async def _import(
    sandbox: Sandbox, schemas: SchemaRegistry, body: bytes, token: str | None = None
) -> etree._Element:
    """Send a budget; the answer must be a BudgetImportResult valid against its schema."""
    response = await sandbox.send_budget(body, token)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/xml"
    result = etree.fromstring(await response.read())
    assert result.tag == "BudgetImportResult"
    assert schemas.issues("budget/BudgetResult.xsd", result) == []
    return result


async def _refused(sandbox: Sandbox, schemas: SchemaRegistry, body: bytes) -> list[dict[str, str]]:
    """Send a budget that must be refused and leave nothing imported; return its errors."""
    result = await _import(sandbox, schemas, body)
    assert result.get("isSuccess") == "false"
    assert await sandbox.control("GET", "/budgets") == []
    assert (await sandbox.control("GET", "/stats"))["budgets_imported"] == 0
    return errors_of(result)


def _open(sandbox: Sandbox, funds: list[str] | None = None, **options: Any) -> bytes:
    """A budget for the demo's open year and school with the given sections."""
    return message(sandbox.demo.open_year, funds, **options)


class TestImport:
    async def test_demo_budget_imports(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """A budget of every valid fund allocation and two cost centres imports, and reads back."""
        demo = sandbox.demo
        result = await _import(sandbox, schemas, demo_budget(demo, serial="41"))
        assert {str(k): str(v) for k, v in result.attrib.items()} == {
            "isSuccess": "true",
            "serialNumber": "41",
        }
        assert len(result) == 0
        (budget,) = await sandbox.control("GET", "/budgets")
        assert budget["database_id"] == demo.database_id
        assert budget["serial_number"] == "41"
        assert budget["financial_year"] == demo.open_year
        assert budget["client_id"] == demo.client_id
        assert budget["date_created"] == "2026-03-02T09:30:00"
        assert budget["imported_at"]
        funds = [a for a in budget["allocations"] if a["allocation"] == "FundAllocation"]
        centres = [a for a in budget["allocations"] if a["allocation"] == "CostCentreAllocation"]
        assert [(a["ledger_code"], a["fund_code"], a["cfr_code"]) for a in funds] == list(
            demo.fund_allocations
        )
        assert [a["position"] for a in funds] == list(range(1, len(demo.fund_allocations) + 1))
        assert {a["amount"] for a in funds} == {"1000.00"}
        assert centres == [
            {
                "allocation": "CostCentreAllocation",
                "position": 1,
                "ledger_code": "5300",
                "cost_centre": "ENG",
                "amount": "250.00",
                "profile": "Twelfths",
            },
            {
                "allocation": "CostCentreAllocation",
                "position": 2,
                "ledger_code": "5300",
                "cost_centre": "MAT",
                "amount": "125.50",
                "profile": None,
            },
        ]
        assert (await sandbox.control("GET", "/stats"))["budgets_imported"] == 1

    async def test_either_section_alone(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """Fund allocations alone import, and so do cost-centre allocations alone."""
        only_funds = _open(sandbox, [fund("5004", "01", "E01", "-12.5")], serial="1")
        only_centres = message(sandbox.demo.open_year, None, [centre("1400", "ADM")], serial="2")
        for body in (only_funds, only_centres):
            assert (await _import(sandbox, schemas, body)).get("isSuccess") == "true"
        assert len(await sandbox.control("GET", "/budgets")) == 2

    async def test_cost_centre_cfr_is_ignored(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A cost-centre allocation's CFR code is not checked, nor kept."""
        body = message(sandbox.demo.open_year, None, [centre("5004", "SEN", cfr="NONSENSE")])
        assert (await _import(sandbox, schemas, body)).get("isSuccess") == "true"
        (budget,) = await sandbox.control("GET", "/budgets")
        assert "cfr_code" not in budget["allocations"][0]

    async def test_codes_are_read_collapsed(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """Codes are compared as their schema reads them, surrounding whitespace collapsed."""
        body = message(f" {sandbox.demo.open_year}\n", [fund(" 5004 ", "01 ", "\tE01")])
        assert (await _import(sandbox, schemas, body)).get("isSuccess") == "true"

    async def test_serial_numbers_are_per_database(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """The same serial number imports once into each database."""
        state, demo = sandbox.state, sandbox.demo
        psk, client_key = str(uuid.uuid4()), str(uuid.uuid4())
        other = await state.databases.add(
            "Non-public funds",
            school_name="Demo Primary School",
            la_number="123",
            establishment_number="4567",
            client_id=demo.client_id,
            fng_key=psk,
            partner_key=client_key,
        )
        await state.planning.add_financial_year(other, "2026/27", date(2026, 4, 1), closed=False)
        await state.planning.add_ledger_code(
            other, "2026/27", "IN", "1500", "Donations", {"03": "I07"}
        )
        body = message("2026/27", [fund("1500", "03", "I07")], serial="0007")
        assert (await _import(sandbox, schemas, demo_budget(demo, serial="7"))).get(
            "isSuccess"
        ) == "true"
        response = await sandbox.send_budget(body, psk=psk, client_key=client_key)
        result = etree.fromstring(await response.read())
        assert (result.get("isSuccess"), result.get("serialNumber")) == ("true", "7")
        budgets = await sandbox.control("GET", "/budgets")
        assert [(b["database_id"], b["serial_number"]) for b in budgets] == [
            (demo.database_id, "7"),
            (other, "7"),
        ]


class TestRules:
    async def test_another_schools_numbers_are_wrong_school(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """LANo and SchoolNo must be the database's school's: WRONG_SCHOOL, expected vs sent."""
        body = demo_budget(sandbox.demo).replace(b"<SchoolNo>4567", b"<SchoolNo>9999")
        (error,) = await _refused(sandbox, schemas, body)
        assert error["code"] == "WRONG_SCHOOL"
        assert error["allocation"] == "Header"
        assert (error["expected"], error["sent"]) == ("123/4567", "123/9999")
        assert "123/9999" in error["text"]

    async def test_another_las_number_is_wrong_school(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """Another LA's number is WRONG_SCHOOL too."""
        (error,) = await _refused(
            sandbox, schemas, _open(sandbox, [fund("5004", "01", "E01")], la="999")
        )
        assert (error["code"], error["sent"]) == ("WRONG_SCHOOL", "999/4567")

    async def test_a_serial_imported_before_is_a_duplicate(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A serial number imported before is DUPLICATE_SERIAL, even written another way."""
        first = await _import(sandbox, schemas, demo_budget(sandbox.demo, serial="12"))
        assert first.get("isSuccess") == "true"
        again = _open(sandbox, [fund("5100", "01", "E02")], serial="+012")
        result = await _import(sandbox, schemas, again)
        assert (result.get("isSuccess"), result.get("serialNumber")) == ("false", "12")
        (error,) = errors_of(result)
        assert (error["code"], error["allocation"], error["sent"]) == (
            "DUPLICATE_SERIAL",
            "Header",
            "12",
        )
        assert len(await sandbox.control("GET", "/budgets")) == 1

    async def test_serial_numbers_of_any_length(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A SerialNumber has no upper bound: five thousand digits import and read back."""
        serial = "9" * 5000
        result = await _import(sandbox, schemas, demo_budget(sandbox.demo, serial=f"00{serial}"))
        assert (result.get("isSuccess"), result.get("serialNumber")) == ("true", serial)
        (budget,) = await sandbox.control("GET", "/budgets")
        assert budget["serial_number"] == serial

    async def test_an_unknown_year_is_reported(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A year the database does not have is UNKNOWN_YEAR; its chart cannot be checked."""
        demo = sandbox.demo
        body = message("1999/00", [fund("9999", "01", "E01")])
        (error,) = await _refused(sandbox, schemas, body)
        assert (error["code"], error["allocation"], error["sent"]) == (
            "UNKNOWN_YEAR",
            "Header",
            "1999/00",
        )
        assert demo.open_year in error["expected"]
        assert demo.closed_year in error["expected"]

    async def test_a_closed_year_names_the_open_one(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A closed year is YEAR_CLOSED, naming the open year expected."""
        demo = sandbox.demo
        (error,) = await _refused(sandbox, schemas, demo_budget(demo, year=demo.closed_year))
        assert (error["code"], error["allocation"], error["sent"]) == (
            "YEAR_CLOSED",
            "Header",
            demo.closed_year,
        )
        assert demo.open_year in error["expected"]

    async def test_a_budget_without_allocations_is_refused(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A budget without any allocation is NO_ALLOCATIONS."""
        (error,) = await _refused(sandbox, schemas, message(sandbox.demo.open_year))
        assert (error["code"], error["allocation"]) == ("NO_ALLOCATIONS", "Header")
        assert error["sent"] == "0"

    async def test_empty_sections_break_the_schema(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """Present but empty allocation sections are SCHEMA errors."""
        errors = await _refused(sandbox, schemas, message(sandbox.demo.open_year, [], []))
        assert {e["code"] for e in errors} == {"SCHEMA"}

    async def test_an_unknown_ledger_code_is_reported_in_either_section(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A ledger code not in the year's chart is UNKNOWN_LEDGER_CODE, in either section."""
        body = message(
            sandbox.demo.open_year,
            [fund("5004", "01", "E01"), fund("9999", "01", "E01")],
            [centre("5004", "ADM"), centre("4242", "ADM")],
        )
        fund_error, centre_error = await _refused(sandbox, schemas, body)
        assert fund_error == {
            "code": "UNKNOWN_LEDGER_CODE",
            "allocation": "FundAllocation",
            "position": "2",
            "ledgerCode": "9999",
            "fundCode": "01",
            "cfrCode": "E01",
            "expected": f"a ledger code of the chart of {sandbox.demo.open_year}",
            "sent": "9999",
            "text": fund_error["text"],
        }
        assert "9999" in fund_error["text"]
        assert (centre_error["code"], centre_error["allocation"]) == (
            "UNKNOWN_LEDGER_CODE",
            "CostCentreAllocation",
        )
        assert (centre_error["position"], centre_error["costCentre"]) == ("2", "ADM")
        assert centre_error["sent"] == "4242"

    async def test_an_unknown_fund_is_reported_with_the_codes_funds(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A fund the ledger code does not have is UNKNOWN_FUND, listing its funds."""
        (error,) = await _refused(sandbox, schemas, _open(sandbox, [fund("5004", "02", "E01")]))
        assert error["code"] == "UNKNOWN_FUND"
        assert (error["allocation"], error["position"]) == ("FundAllocation", "1")
        assert (error["ledgerCode"], error["fundCode"], error["cfrCode"]) == ("5004", "02", "E01")
        assert error["sent"] == "02"
        assert error["expected"] == "a fund of ledger code 5004 (01)"

    async def test_a_wrong_cfr_code_is_reported(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A CFR code other than the chart's for that ledger code and fund is WRONG_CFR."""
        body = _open(sandbox, [fund("5300", "02", "E19"), fund("5100", "01", "E01")])
        (error,) = await _refused(sandbox, schemas, body)
        assert error["code"] == "WRONG_CFR"
        assert (error["allocation"], error["position"]) == ("FundAllocation", "2")
        assert (error["ledgerCode"], error["fundCode"], error["cfrCode"]) == ("5100", "01", "E01")
        assert (error["expected"], error["sent"]) == ("E02", "E01")

    async def test_unknown_cost_centre(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """A cost centre the database does not have is UNKNOWN_COST_CENTRE."""
        body = message(sandbox.demo.open_year, None, [centre("5300", "ENG"), centre("5300", "ART")])
        (error,) = await _refused(sandbox, schemas, body)
        assert error["code"] == "UNKNOWN_COST_CENTRE"
        assert (error["allocation"], error["position"]) == ("CostCentreAllocation", "2")
        assert (error["ledgerCode"], error["costCentre"], error["sent"]) == ("5300", "ART", "ART")
        assert error["expected"] == "a cost centre of this database (ADM, ENG, MAT, SEN)"

    async def test_every_error_is_reported(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """All broken rules come back together: the header's, then each section's in order."""
        demo = sandbox.demo
        await _import(sandbox, schemas, demo_budget(demo, serial="3"))
        body = message(
            demo.closed_year,
            [fund("5004", "01", "E09"), fund("0000", "01", "E01"), fund("1400", "01", "I08")],
            [centre("5004", "XYZ")],
            serial="3",
            la="321",
        )
        result = await _import(sandbox, schemas, body)
        assert result.get("isSuccess") == "false"
        assert [(e["code"], e.get("allocation"), e.get("position")) for e in errors_of(result)] == [
            ("WRONG_SCHOOL", "Header", None),
            ("DUPLICATE_SERIAL", "Header", None),
            ("YEAR_CLOSED", "Header", None),
            ("WRONG_CFR", "FundAllocation", "1"),
            ("UNKNOWN_LEDGER_CODE", "FundAllocation", "2"),
            ("UNKNOWN_FUND", "FundAllocation", "3"),
            ("UNKNOWN_COST_CENTRE", "CostCentreAllocation", "1"),
        ]
        assert len(await sandbox.control("GET", "/budgets")) == 1

    @pytest.mark.parametrize(
        ("before", "after", "where"),
        [
            (b"<Amount>1000.00</Amount>", b"<Amount>12.345</Amount>", b"Amount"),
            (b"<LANo>123</LANo>", b"<LANo>12</LANo>", b"LANo"),
            (b"<SerialNumber>5</SerialNumber>", b"<SerialNumber>0</SerialNumber>", b"SerialNumber"),
            (b"<FundCode>01</FundCode>", b"", b"CFRCode"),
        ],
    )
    async def test_a_budget_breaking_the_schema_imports_nothing(
        self, sandbox: Sandbox, schemas: SchemaRegistry, before: bytes, after: bytes, where: bytes
    ) -> None:
        """A budget that breaks BudgetImport.xsd gets SCHEMA errors and imports nothing."""
        body = demo_budget(sandbox.demo, serial="5")
        assert before in body
        result = await _import(sandbox, schemas, body.replace(before, after, 1))
        assert result.get("isSuccess") == "false"
        errors = errors_of(result)
        assert errors
        assert {e["code"] for e in errors} == {"SCHEMA"}
        assert where.decode() in errors[0]["text"]
        assert await sandbox.control("GET", "/budgets") == []

    async def test_schema_error_echoes_the_serial(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A SCHEMA answer still names the serial number the document states."""
        body = demo_budget(sandbox.demo, serial="77").replace(b"<LANo>123", b"<LANo>ABC")
        result = await _import(sandbox, schemas, body)
        assert (result.get("isSuccess"), result.get("serialNumber")) == ("false", "77")

    async def test_wrong_root_is_a_schema_error(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """Another document entirely is answered with a SCHEMA error."""
        errors = await _refused(sandbox, schemas, b"<GLAccounts/>")
        assert [e["code"] for e in errors] == ["SCHEMA"]

    async def test_a_body_that_is_not_xml_is_400(self, sandbox: Sandbox) -> None:
        """A body that is not XML is 400 problem+json; a DTD is refused the same way."""
        for body in (b"<Message><Header>", b'<!DOCTYPE m [<!ENTITY e "x">]><Message>&e;</Message>'):
            response = await sandbox.send_budget(body)
            assert response.status == 400
            assert response.content_type == "application/problem+json"

    async def test_xml_content_type_is_required(self, sandbox: Sandbox) -> None:
        """A budget sent as text/plain is 415."""
        token = await sandbox.token()
        headers = {**sandbox.headers(token), "Content-Type": "text/plain"}
        response = await sandbox.client.post(
            "/fng/api/BudgetInterface/ImportBudget",
            data=demo_budget(sandbox.demo),
            headers=headers,
        )
        assert response.status == 415


@pytest.mark.parametrize("state", ["memory", "file"], indirect=True)
class TestConcurrency:
    async def test_identical_imports_import_once(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """Eight identical budgets sent at once: exactly one is imported."""
        token = await sandbox.token()
        body = demo_budget(sandbox.demo, serial="900")
        results = await asyncio.gather(*(_import(sandbox, schemas, body, token) for _ in range(8)))
        assert sorted(str(r.get("isSuccess")) for r in results) == ["false"] * 7 + ["true"]
        for result in results:
            if result.get("isSuccess") == "false":
                assert [e["code"] for e in errors_of(result)] == ["DUPLICATE_SERIAL"]
        assert len(await sandbox.control("GET", "/budgets")) == 1
        assert (await sandbox.control("GET", "/stats"))["budgets_imported"] == 1


class TestFaults:
    async def test_error_fault_imports_nothing(self, sandbox: Sandbox) -> None:
        """An error rule on ImportBudget answers its status, unprocessed and uncounted."""
        token = await sandbox.token()
        rule = {"target": "fng", "kind": "error", "status": 503, "path": "ImportBudget"}
        await sandbox.control("PUT", "/faults", {"rules": [rule]})
        response = await sandbox.send_budget(demo_budget(sandbox.demo), token)
        assert response.status == 503
        assert (await sandbox.export_years(token)).status == 200
        assert await sandbox.control("GET", "/budgets") == []
        assert (await sandbox.control("GET", "/stats"))["requests"]["ImportBudget"] == 0

    async def test_drop_after_imports_then_disconnects(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """drop_after imports the budget unanswered; the retry finds its serial taken."""
        token = await sandbox.token()
        rule = {"target": "fng", "kind": "drop_after", "path": "ImportBudget", "count": 1}
        await sandbox.control("PUT", "/faults", {"rules": [rule]})
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await sandbox.send_budget(demo_budget(sandbox.demo), token)
        assert len(await sandbox.control("GET", "/budgets")) == 1
        retry = await _import(sandbox, schemas, demo_budget(sandbox.demo), token)
        assert [e["code"] for e in errors_of(retry)] == ["DUPLICATE_SERIAL"]

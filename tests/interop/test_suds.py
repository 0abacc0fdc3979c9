"""suds, a second SOAP client written independently of zeep, uses the service over SOAP 1.1.

suds speaks SOAP 1.1 only. It marshals ``xs:any`` content through its own object model,
so the journal is handed over as raw XML (``suds.sax.text.Raw``), as suds users do.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from suds import WebFault
from suds.client import Client
from suds.sax.text import Raw

from tests.conftest import Gateway, Sandbox
from tests.support import sample_journal, strip_declaration


def client_for(gateway: Gateway, password: str | None = None) -> Client:
    client = Client(f"{gateway.soap_url}?wsdl", cache=None)
    auth = client.factory.create("AuthHeader")
    auth.Username = gateway.auth.username
    auth.Password = password or gateway.auth.password
    auth.Database = gateway.auth.database
    client.set_options(soapheaders=auth, port="EJournalSoap")
    return client


def banks_of(response: Any) -> dict[str, tuple[str, str]]:
    return {
        bank._externalReference: (bank._lastOrderRowVersion, bank._lastSettlementRowVersion)
        for bank in response.GetBanksResult.Request.Banks.Bank
    }


class TestSuds:
    async def test_get_banks_post_journals_post_audit_message(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        def scenario() -> None:
            client = client_for(gateway)
            before = client.service.GetBanks("TPPCS")
            assert before.isSuccess is True
            assert banks_of(before)["BK1"] == ("", "")
            result = client.service.PostJournals(Raw(strip_declaration(sample_journal("0071"))))
            assert result.JournalResult._isSuccess == "true"
            after = client.service.GetBanks("TPPCS")
            assert banks_of(after)["BK1"] == ("1", "1")
            audit = client.service.PostAuditMessage("posted 0071")
            assert audit.AuditResult._isSuccess == "true"

        await asyncio.to_thread(scenario)
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["audit_messages"]) == (1, 1)

    async def test_a_wrong_password_is_a_fault_with_its_code(self, gateway: Gateway) -> None:
        def scenario() -> WebFault:
            with pytest.raises(WebFault) as refused:
                client_for(gateway, password="wrong").service.GetBanks("TPPCS")
            return refused.value

        fault = await asyncio.to_thread(scenario)
        assert fault.fault.faultstring.startswith("AuthenticationException:")
        assert fault.fault.detail.GatewayFault.code == "AUTHENTICATION_FAILED"

"""zeep, given only the WSDL URL and credentials, uses the E-Journal service in SOAP 1.1 and 1.2.

zeep is synchronous, so each scenario runs in a thread while the servers run on the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from gateway import ns
from tests.conftest import Gateway, Sandbox
from tests.support import sample_journal


def client_for(gateway: Gateway) -> zeep.Client:
    return zeep.Client(f"{gateway.soap_url}?wsdl")


def service(client: zeep.Client, version: str) -> Any:
    port = "EJournalSoap" if version == "1.1" else "EJournalSoap12"
    return client.bind("EJournalService", port)


def header(gateway: Gateway, with_password: bool = True) -> dict[str, str]:
    values = {"Database": gateway.auth.database}
    if with_password:
        values.update(Username=gateway.auth.username, Password=gateway.auth.password)
    return values


def banks_of(response: Any) -> dict[str, tuple[str, str]]:
    document = response.GetBanksResult._value_1
    return {
        bank.get("externalReference"): (
            bank.get("lastOrderRowVersion"),
            bank.get("lastSettlementRowVersion"),
        )
        for bank in document.iterfind("Banks/Bank")
    }


@pytest.mark.parametrize("version", ["1.1", "1.2"])
class TestZeep:
    async def test_get_banks_post_journals_post_audit_message(
        self, gateway: Gateway, sandbox: Sandbox, version: str
    ) -> None:
        def scenario() -> None:
            api = service(client_for(gateway), version)
            auth = {"AuthHeader": header(gateway)}
            before = api.GetBanks(systemIdentifier="TPPCS", _soapheaders=auth)
            assert before.isSuccess is True
            assert banks_of(before)["BK1"] == ("", "")
            journal = etree.fromstring(sample_journal("0071").encode())
            result = api.PostJournals(xmlData={"_value_1": journal}, _soapheaders=auth)
            assert (result.tag, result.get("isSuccess")) == ("JournalResult", "true")
            after = api.GetBanks(systemIdentifier="TPPCS", _soapheaders=auth)
            assert banks_of(after)["BK1"] == ("1", "1")
            audit = api.PostAuditMessage(message="posted 0071", _soapheaders=auth)
            assert audit.get("isSuccess") == "true"

        await asyncio.to_thread(scenario)
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["audit_messages"]) == (1, 1)

    async def test_a_ws_security_username_token_authenticates(
        self, gateway: Gateway, version: str
    ) -> None:
        def scenario() -> bool:
            client = zeep.Client(
                f"{gateway.soap_url}?wsdl",
                wsse=UsernameToken(gateway.auth.username, gateway.auth.password),
            )
            api = service(client, version)
            response = api.GetBanks(
                systemIdentifier="TPPCS", _soapheaders={"AuthHeader": header(gateway, False)}
            )
            return bool(response.isSuccess)

        assert await asyncio.to_thread(scenario)

    async def test_password_digest_is_refused(self, gateway: Gateway, version: str) -> None:
        def scenario() -> Fault:
            client = zeep.Client(
                f"{gateway.soap_url}?wsdl",
                wsse=UsernameToken(gateway.auth.username, gateway.auth.password, use_digest=True),
            )
            with pytest.raises(Fault) as refused:
                service(client, version).GetBanks(
                    systemIdentifier="TPPCS", _soapheaders={"AuthHeader": header(gateway, False)}
                )
            return refused.value

        fault = await asyncio.to_thread(scenario)
        assert fault.message.startswith("AuthenticationException:only PasswordText")

    async def test_fault_carries_the_code(self, gateway: Gateway, version: str) -> None:
        def scenario() -> Fault:
            api = service(client_for(gateway), version)
            wrong = {"AuthHeader": {**header(gateway), "Password": "wrong"}}
            with pytest.raises(Fault) as refused:
                api.GetBanks(systemIdentifier="TPPCS", _soapheaders=wrong)
            return refused.value

        fault = await asyncio.to_thread(scenario)
        assert fault.message == (
            "AuthenticationException:the credentials or the database key were not accepted"
        )
        assert fault.detail.findtext(f"{{{ns.FAULT}}}GatewayFault/{{{ns.FAULT}}}code") == (
            "AUTHENTICATION_FAILED"
        )
        expected = "Client" if version == "1.1" else "Sender"
        assert fault.code.endswith(expected)

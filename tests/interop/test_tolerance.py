"""What real SOAP clients send, accepted; and the WSDL's address is the one the client used."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from lxml import etree

from gateway import ns
from tests.conftest import Gateway, GatewayWith, Sandbox
from tests.support import auth_header, envelope, operation

GET_BANKS = operation("GetBanks", systemIdentifier="TPPCS")


def get_banks(gateway: Gateway, version: str = "1.1") -> bytes:
    return envelope(GET_BANKS, auth_header(gateway.auth), version).encode()


async def succeeds(http: aiohttp.ClientSession, gateway: Gateway, data: Any, **kwargs: Any) -> str:
    async with http.post(gateway.soap_url, data=data, **kwargs) as response:
        text = await response.text()
        assert response.status == 200, text
    assert "<tns:isSuccess>true</tns:isSuccess>" in text
    return text


class TestTolerance:
    async def test_expect_100_continue(self, gateway: Gateway, http: aiohttp.ClientSession) -> None:
        """.NET's ASMX clients wait for 100 Continue before sending the body."""
        await succeeds(
            http,
            gateway,
            get_banks(gateway),
            expect100=True,
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": f'"{ns.EJOURNAL}/GetBanks"',
            },
        )

    async def test_a_chunked_body_is_accepted(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        data = get_banks(gateway)

        async def chunks():  # type: ignore[no-untyped-def]
            for start in range(0, len(data), 100):
                yield data[start : start + 100]
                await asyncio.sleep(0)

        await succeeds(http, gateway, chunks(), headers={"Content-Type": "text/xml"})

    async def test_a_byte_order_mark_is_accepted(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        await succeeds(
            http,
            gateway,
            b"\xef\xbb\xbf" + get_banks(gateway),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        )

    async def test_a_utf16_body_is_accepted(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        text = get_banks(gateway).decode().replace('encoding="utf-8"', 'encoding="utf-16"')
        await succeeds(
            http,
            gateway,
            text.encode("utf-16"),
            headers={"Content-Type": "text/xml; charset=utf-16"},
        )

    @pytest.mark.parametrize(
        "action",
        [
            '"urn:fng-gateway:ejournal/GetBanks"',
            "urn:fng-gateway:ejournal/GetBanks",
            '""',
            "",
            "GetBanks",
        ],
    )
    async def test_every_soapaction_form_is_accepted(
        self, gateway: Gateway, http: aiohttp.ClientSession, action: str
    ) -> None:
        await succeeds(
            http,
            gateway,
            get_banks(gateway),
            headers={"Content-Type": "text/xml", "SOAPAction": action},
        )

    async def test_a_call_without_soapaction_is_accepted(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        await succeeds(http, gateway, get_banks(gateway), headers={"Content-Type": "text/xml"})

    async def test_soap12_action_parameter_and_stray_soapaction(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        content_type = f'application/soap+xml; charset=utf-8; action="{ns.EJOURNAL}/GetBanks"'
        await succeeds(
            http,
            gateway,
            get_banks(gateway, "1.2"),
            headers={"Content-Type": content_type, "SOAPAction": "GetBanks"},
        )

    async def test_wrong_soapaction_is_a_fault(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        async with http.post(
            gateway.soap_url,
            data=get_banks(gateway),
            headers={"Content-Type": "text/xml", "SOAPAction": f'"{ns.EJOURNAL}/PostJournals"'},
        ) as response:
            text = await response.text()
        assert response.status == 500 and "<gw:code>ACTION_MISMATCH</gw:code>" in text
        assert (await sandbox.stats())["requests"]["GetBanks"] == 0


class TestWsdl:
    async def test_address_is_the_one_the_client_used(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        url = gateway.soap_url.replace("127.0.0.1", "localhost")
        async with http.get(f"{url}?wsdl") as response:
            assert response.status == 200
            wsdl = etree.fromstring(await response.read())
        locations = wsdl.xpath("//@location")
        assert locations == [url, url]

    async def test_forwarded_headers_ignored_from_untrusted_peers(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        headers = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
        async with http.get(f"{gateway.soap_url}?wsdl", headers=headers) as response:
            text = await response.text()
        assert "evil.example" not in text and f'location="{gateway.soap_url}"' in text

    async def test_forwarded_headers_honoured_from_trusted_proxies(
        self, gateway_with: GatewayWith, http: aiohttp.ClientSession
    ) -> None:
        gateway = await gateway_with(trusted_proxies=("127.0.0.0/8",))
        headers = {
            "X-Forwarded-Host": "gateway.example.org",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Prefix": "/fng",
        }
        async with http.get(f"{gateway.soap_url}?wsdl", headers=headers) as response:
            text = await response.text()
        assert 'location="https://gateway.example.org/fng/soap/ejournal"' in text

    async def test_host_header_cannot_inject_markup(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        async with http.get(
            f"{gateway.soap_url}?wsdl", headers={"Host": 'x"/><evil a="'}
        ) as response:
            text = await response.text()
        assert "<evil" not in text
        etree.fromstring(text.encode())

"""Hostile XML sent to the gateway gets a fault and reaches nothing (the sandbox sees no call)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import aiohttp
import pytest

from gateway import ns
from tests.conftest import Gateway, GatewayWith, Sandbox
from tests.support import auth_header, envelope, operation, sample_journal, strip_declaration

BOMB_DTD = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


def with_doctype(doctype: str, body: str, header: str) -> bytes:
    document = envelope(body, header)
    declaration, rest = document.split("?>", 1)
    return f"{declaration}?>{doctype}{rest}".encode()


async def send(
    http: aiohttp.ClientSession, gateway: Gateway, data: bytes, **headers: str
) -> tuple[int, str]:
    async with http.post(
        gateway.soap_url, data=data, headers={"Content-Type": "text/xml; charset=utf-8", **headers}
    ) as response:
        return response.status, await response.text()


def assert_fault(status: int, text: str, code: str) -> None:
    assert status == 500, text
    assert f"<gw:code>{code}</gw:code>" in text, text
    assert "<faultcode>soap:Client</faultcode>" in text
    assert "InvalidXmlException:" in text


async def nothing_reached(sandbox: Sandbox) -> None:
    stats = await sandbox.stats()
    assert stats["token_requests"] == 0
    assert sum(stats["requests"].values()) == 0


class TestHostileEnvelopes:
    async def test_an_entity_expansion_bomb_is_refused_before_fng(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        body = operation("PostAuditMessage", message="&lol9;")
        assert_fault(
            *await send(http, gateway, with_doctype(BOMB_DTD, body, auth_header(gateway.auth))),
            "XML_REJECTED",
        )
        await nothing_reached(sandbox)

    async def test_external_entity_reading_a_file(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        secret = tmp_path / "secret.txt"
        secret.write_text("TOP-SECRET")
        doctype = f'<!DOCTYPE e [<!ENTITY x SYSTEM "file://{secret}">]>'
        body = operation("PostAuditMessage", message="&x;")
        status, text = await send(
            http, gateway, with_doctype(doctype, body, auth_header(gateway.auth))
        )
        assert_fault(status, text, "XML_REJECTED")
        assert "TOP-SECRET" not in text
        await nothing_reached(sandbox)

    async def test_external_dtd_url(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """The DTD's URL points at the sandbox: had it been fetched, the sandbox would know."""
        doctype = f'<!DOCTYPE e SYSTEM "{sandbox.url}/evil.dtd">'
        body = operation("GetBanks", systemIdentifier="TPPCS")
        assert_fault(
            *await send(http, gateway, with_doctype(doctype, body, auth_header(gateway.auth))),
            "XML_REJECTED",
        )
        await nothing_reached(sandbox)

    async def test_a_hundred_thousand_levels_deep_are_refused_before_fng(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        deep = "<a>" * 100_000 + "</a>" * 100_000
        body = operation("PostJournals", xmlData=deep)
        assert_fault(
            *await send(http, gateway, envelope(body, auth_header(gateway.auth)).encode()),
            "XML_REJECTED",
        )
        await nothing_reached(sandbox)

    async def test_a_body_over_the_limit_is_refused_before_fng(
        self, gateway_with: GatewayWith, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        gateway = await gateway_with(xml={"max_bytes": 64 * 1024})
        padding = "x" * (70 * 1024)
        body = operation("PostAuditMessage", message=padding)
        assert_fault(
            *await send(http, gateway, envelope(body, auth_header(gateway.auth)).encode()),
            "PAYLOAD_TOO_LARGE",
        )

        async def chunks():  # type: ignore[no-untyped-def]
            data = envelope(body, auth_header(gateway.auth)).encode()
            for start in range(0, len(data), 8192):
                yield data[start : start + 8192]

        # Chunked, so no Content-Length warns the gateway in advance.
        assert_fault(*await send(http, gateway, chunks()), "PAYLOAD_TOO_LARGE")  # type: ignore[arg-type]
        await nothing_reached(sandbox)


class TestHostileJournals:
    @pytest.mark.parametrize(
        "journal",
        [
            BOMB_DTD + "<ControlAccounts>&lol9;</ControlAccounts>",
            '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><ControlAccounts>&x;</ControlAccounts>',
            "<ControlAccounts>" + "<a>" * 1_000 + "</a>" * 1_000 + "</ControlAccounts>",
        ],
        ids=["bomb", "external-entity", "deep"],
    )
    async def test_journal_sent_as_escaped_text(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession, journal: str
    ) -> None:
        """A journal sent as a string is parsed with the same guards as the envelope."""
        body = operation("PostJournals", xmlData=escape(journal))
        assert_fault(
            *await send(http, gateway, envelope(body, auth_header(gateway.auth)).encode()),
            "XML_REJECTED",
        )
        await nothing_reached(sandbox)

    async def test_xinclude_inside_a_journal_is_inert(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        journal = strip_declaration(sample_journal()).replace(
            "<Banks>",
            '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
            'parse="text"/><Banks>',
        )
        status, text = await send(
            http,
            gateway,
            envelope(
                operation("PostJournals", xmlData=journal), auth_header(gateway.auth)
            ).encode(),
        )
        assert status == 200 and 'isSuccess="false"' in text and 'code="SCHEMA"' in text
        assert "root:" not in text
        assert (await sandbox.stats())["requests"]["PostJournals"] == 0


class TestMalformedEnvelopes:
    @pytest.mark.parametrize(
        ("document", "code"),
        [
            (f'<soap:Envelope xmlns:soap="{ns.SOAP11_ENV}"/>', "MALFORMED_REQUEST"),
            (
                f'<soap:Envelope xmlns:soap="{ns.SOAP11_ENV}"><soap:Body><a xmlns="{ns.EJOURNAL}"/>'
                f"</soap:Body><soap:Body><b/></soap:Body></soap:Envelope>",
                "MALFORMED_REQUEST",
            ),
            ('<Envelope xmlns="urn:not-soap"><Body/></Envelope>', "VERSION_MISMATCH"),
            ("<journal/>", "MALFORMED_REQUEST"),
            ("not xml at all", "XML_REJECTED"),
        ],
        ids=["no-body", "two-bodies", "unknown-envelope", "not-an-envelope", "not-xml"],
    )
    async def test_refused(
        self,
        gateway: Gateway,
        sandbox: Sandbox,
        http: aiohttp.ClientSession,
        document: str,
        code: str,
    ) -> None:
        status, text = await send(http, gateway, document.encode())
        assert status == 500 and f"<gw:code>{code}</gw:code>" in text, text
        await nothing_reached(sandbox)

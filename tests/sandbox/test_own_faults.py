"""The sandbox answers refusals with its own bytes: a supplier portal's SOAP faults and
FNG's problems are checked here to the letter, so a change in how the gateway writes its
faults cannot pass unseen on both sides of a test."""

from __future__ import annotations

import re

import pytest

from tests.sandbox.conftest import FNG, Sandbox
from tests.sandbox.portals import OTS, soap11_envelope, soap12_envelope

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
CALL_ID = re.compile(r"<gw:requestId>([0-9a-f]{32})</gw:requestId>")

FAULT11 = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><soap:Fault>'
    "<faultcode>{code}</faultcode><faultstring>{reason}</faultstring>"
    '<detail><gw:GatewayFault xmlns:gw="urn:fng-gateway:fault"><gw:code>{detail}</gw:code>'
    "<gw:requestId>ID</gw:requestId></gw:GatewayFault></detail>"
    "</soap:Fault></soap:Body></soap:Envelope>"
)
FAULT12 = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<soap:Envelope xmlns:soap="{SOAP12}"><soap:Body><soap:Fault>'
    "<soap:Code><soap:Value>{code}</soap:Value></soap:Code>"
    '<soap:Reason><soap:Text xml:lang="en">{reason}</soap:Text></soap:Reason>'
    '<soap:Detail><gw:GatewayFault xmlns:gw="urn:fng-gateway:fault"><gw:code>{detail}</gw:code>'
    "<gw:requestId>ID</gw:requestId></gw:GatewayFault></soap:Detail>"
    "</soap:Fault></soap:Body></soap:Envelope>"
)

HOSTILE = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body>'
    f'<FetchIndex xmlns="{OTS}">&lol2;</FetchIndex></soap:Body></soap:Envelope>'
).encode()

TWO_BODIES = (
    f'<soap:Envelope xmlns:soap="{SOAP12}"><soap:Body><FetchIndex xmlns="{OTS}"/></soap:Body>'
    f'<soap:Body><ResetAll xmlns="{OTS}"/></soap:Body></soap:Envelope>'
).encode()


async def _portal_fault(
    sandbox: Sandbox, body: bytes, content_type: str, action: str | None = None
) -> tuple[int, str, str]:
    """Status, content type and body of the demo portal's answer, its call id made ``ID``."""
    headers = {"Content-Type": content_type}
    if action is not None:
        headers["SOAPAction"] = f'"{OTS}/{action}"'
    response = await sandbox.client.post(sandbox.demo.portal_path, data=body, headers=headers)
    text = (await response.read()).decode("utf-8")
    assert len(CALL_ID.findall(text)) == 1, text
    return (
        response.status,
        response.headers["Content-Type"],
        CALL_ID.sub("<gw:requestId>ID</gw:requestId>", text),
    )


class TestPortalFaults:
    async def test_hostile_xml(self, sandbox: Sandbox) -> None:
        """A document type with entities is refused before anything reads it: SOAP 1.1's
        Client fault, InvalidXmlException, XML_REJECTED."""
        found = await _portal_fault(sandbox, HOSTILE, "text/xml; charset=utf-8", "FetchIndex")
        reason = "InvalidXmlException:document type declarations and entities are not allowed"
        expected = FAULT11.format(code="soap:Client", reason=reason, detail="XML_REJECTED")
        assert found == (500, "text/xml; charset=utf-8", expected)

    async def test_malformed_envelope_in_soap12(self, sandbox: Sandbox) -> None:
        """An envelope with two Bodies gets SOAP 1.2's Sender fault, with status 400."""
        found = await _portal_fault(sandbox, TWO_BODIES, "application/soap+xml; charset=utf-8")
        reason = "InvalidRequestException:the envelope must have exactly one Body"
        expected = FAULT12.format(code="soap:Sender", reason=reason, detail="MALFORMED_REQUEST")
        assert found == (400, "application/soap+xml; charset=utf-8", expected)

    async def test_version_mismatch(self, sandbox: Sandbox) -> None:
        """A SOAP 1.2 envelope sent as text/xml is answered in the SOAP it was declared as,
        with the VersionMismatch fault code."""
        body = soap12_envelope("FetchIndex", username="demo-primary", password="x")
        found = await _portal_fault(sandbox, body, "text/xml", "FetchIndex")
        reason = "InvalidRequestException:a SOAP 1.2 envelope was sent as text/xml"
        expected = FAULT11.format(
            code="soap:VersionMismatch", reason=reason, detail="VERSION_MISMATCH"
        )
        assert found == (500, "text/xml; charset=utf-8", expected)

    @pytest.mark.parametrize(
        ("operation", "parameters", "password", "reason", "detail"),
        [
            (
                "FetchIndex",
                "",
                "not the password",
                "AuthenticationException:the username or password is not valid",
                "AUTHENTICATION_FAILED",
            ),
            (
                "FetchDoc",
                "<DocID>nothing &amp; nobody</DocID>",
                None,
                "DocumentNotExistException:there is no document nothing &amp; nobody",
                "DOCUMENT_NOT_EXIST",
            ),
            (
                "FetchIndexFromDate",
                "<BeginDate>&lt;yesterday&gt;</BeginDate>",
                None,
                "InvalidRequestException:BeginDate must be an xs:dateTime; "
                "'&lt;yesterday&gt;' is not",
                "MALFORMED_REQUEST",
            ),
            (
                "SendOrder",
                "<Document>&lt;Invoice/&gt;</Document>",
                None,
                "InvalidXmlException:the document is not an eBIS-XML Order but 'Invoice'",
                "INVALID_XML",
            ),
        ],
    )
    async def test_refused_call(
        self,
        sandbox: Sandbox,
        operation: str,
        parameters: str,
        password: str | None,
        reason: str,
        detail: str,
    ) -> None:
        """A well-formed call the portal refuses: the reason escaped as XML text."""
        demo = sandbox.demo
        body = soap11_envelope(
            operation,
            parameters,
            username=demo.portal_username,
            password=demo.portal_password if password is None else password,
        )
        found = await _portal_fault(sandbox, body, "text/xml; charset=utf-8", operation)
        expected = FAULT11.format(code="soap:Client", reason=reason, detail=detail)
        assert found == (500, "text/xml; charset=utf-8", expected)


class TestFngProblems:
    async def test_hostile_xml(self, sandbox: Sandbox) -> None:
        """FNG answers hostile XML with its own problem document, not a SOAP fault."""
        token = await sandbox.token()
        headers = {**sandbox.headers(token), "Content-Type": "application/xml"}
        response = await sandbox.client.post(f"{FNG}/PostJournals", data=HOSTILE, headers=headers)
        assert response.status == 400
        assert response.headers["Content-Type"] == "application/problem+json; charset=utf-8"
        assert await response.text() == (
            '{"type": "about:blank", "title": "Bad Request", "status": 400, '
            '"detail": "document type declarations and entities are not allowed"}'
        )
        assert await sandbox.state.journals.posted() == []

"""SOAP 1.1 and 1.2 envelopes: reading requests, writing responses and faults."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from gateway import ns
from gateway.errors import GatewayError, MalformedRequest, MustUnderstand, VersionMismatch


class SoapVersion(Enum):
    V11 = "1.1"
    V12 = "1.2"

    @property
    def namespace(self) -> str:
        return ns.SOAP11_ENV if self is SoapVersion.V11 else ns.SOAP12_ENV

    @property
    def content_type(self) -> str:
        if self is SoapVersion.V11:
            return "text/xml; charset=utf-8"
        return "application/soap+xml; charset=utf-8"

    @classmethod
    def from_content_type(cls, content_type: str) -> SoapVersion | None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/soap+xml":
            return cls.V12
        if media in ("text/xml", "application/xml"):
            return cls.V11
        return None

    @classmethod
    def from_namespace(cls, namespace: str | None) -> SoapVersion | None:
        if namespace == ns.SOAP11_ENV:
            return cls.V11
        if namespace == ns.SOAP12_ENV:
            return cls.V12
        return None


#: Headers the gateway understands, so a mustUnderstand on them is honoured.
UNDERSTOOD_HEADER_NAMESPACES: Final = frozenset(
    {
        ns.WSSE,
        ns.WSU,
        "http://www.w3.org/2005/08/addressing",
        "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    }
)


@dataclass(frozen=True, slots=True)
class SoapMessage:
    version: SoapVersion
    headers: Sequence[etree._Element]
    body: etree._Element  # the single child of Body: the operation's wrapper element


def _must_understand(header: etree._Element, version: SoapVersion) -> bool:
    value = header.get(f"{{{version.namespace}}}mustUnderstand")
    return value in ("1", "true")


def read_message(root: etree._Element, understood: frozenset[str]) -> SoapMessage:
    """Check an envelope's shape and return its headers and its one body element.

    ``understood`` holds the namespaces of the service's own headers (its AuthHeader).
    """
    qname = etree.QName(root)
    if qname.localname != "Envelope":
        raise MalformedRequest("the request is not a SOAP envelope")
    version = SoapVersion.from_namespace(qname.namespace)
    if version is None:
        raise VersionMismatch(f"the envelope namespace {qname.namespace!r} is not SOAP 1.1 or 1.2")
    env = version.namespace
    header: etree._Element | None = None
    bodies: list[etree._Element] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue  # comments
        if child.tag == f"{{{env}}}Header" and header is None and not bodies:
            header = child
        elif child.tag == f"{{{env}}}Body":
            bodies.append(child)
        else:
            raise MalformedRequest(
                f"unexpected element {etree.QName(child).localname} in the envelope"
            )
    if len(bodies) != 1:
        raise MalformedRequest("the envelope must have exactly one Body")
    payload = [child for child in bodies[0] if isinstance(child.tag, str)]
    if len(payload) != 1:
        raise MalformedRequest("the Body must hold exactly one operation element")
    headers = (
        [child for child in header if isinstance(child.tag, str)] if header is not None else []
    )
    for item in headers:
        if _must_understand(item, version):
            namespace = etree.QName(item).namespace or ""
            if namespace not in UNDERSTOOD_HEADER_NAMESPACES and namespace not in understood:
                raise MustUnderstand(
                    f"the header {etree.QName(item).localname} is marked mustUnderstand "
                    "but the gateway does not process it"
                )
    return SoapMessage(version=version, headers=headers, body=payload[0])


def envelope(version: SoapVersion, body: bytes) -> bytes:
    """Wrap a serialized body element (UTF-8) in an envelope."""
    return (
        b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="'
        + version.namespace.encode()
        + b'"><soap:Body>'
        + body
        + b"</soap:Body></soap:Envelope>"
    )


def _fault_code(version: SoapVersion, error: GatewayError) -> str:
    if isinstance(error, VersionMismatch):
        return "soap:VersionMismatch"
    if isinstance(error, MustUnderstand):
        return "soap:MustUnderstand"
    if version is SoapVersion.V11:
        return "soap:Client" if error.caller_fault else "soap:Server"
    return "soap:Sender" if error.caller_fault else "soap:Receiver"


def fault_status(version: SoapVersion, error: GatewayError) -> int:
    """HTTP status of a fault: always 500 in SOAP 1.1 (WS-I), 400 or 500 in SOAP 1.2."""
    if version is SoapVersion.V12 and error.caller_fault:
        return 400
    return 500


def fault(version: SoapVersion, error: GatewayError, request_id: str) -> bytes:
    code = _fault_code(version, error)
    reason = escape(error.fault_string)
    detail = (
        f'<gw:GatewayFault xmlns:gw="{ns.FAULT}"><gw:code>{escape(error.code)}</gw:code>'
        f"<gw:requestId>{escape(request_id)}</gw:requestId></gw:GatewayFault>"
    )
    if version is SoapVersion.V11:
        inner = (
            f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{reason}</faultstring>"
            f"<detail>{detail}</detail></soap:Fault>"
        )
    else:
        inner = (
            f"<soap:Fault><soap:Code><soap:Value>{code}</soap:Value></soap:Code>"
            f'<soap:Reason><soap:Text xml:lang="en">{reason}</soap:Text></soap:Reason>'
            f"<soap:Detail>{detail}</soap:Detail></soap:Fault>"
        )
    return envelope(version, inner.encode())

"""The SOAP a supplier portal speaks, written by the sandbox itself: reading a call's
envelope, and writing its answer or its fault.

Like the ASMX services suppliers run, a portal answers SOAP 1.1 (``text/xml``) and 1.2
(``application/soap+xml``), each in its own envelope. A fault's string reads
``[ExceptionType]:[Message]``, as FMS's clients expect, and its detail carries a code and
an id for the call. These bytes are the sandbox's own on purpose: the gateway writes its
faults elsewhere, and a test that compares the two must not be comparing one writer with
itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from gateway import ns
from gateway.sandbox.errors import (
    DocumentRefused,
    InvalidRequest,
    InvalidXml,
    MustUnderstand,
    PortalFault,
    VersionMismatch,
)
from gateway.sandbox.parsing import read_xml
from gateway.xmlsafe import Limits

#: Header namespaces a portal accepts mustUnderstand on: its own, WS-Security's and
#: WS-Addressing's (which ASMX services with WSE take).
_ADDRESSING: Final = (
    "http://www.w3.org/2005/08/addressing",
    "http://schemas.xmlsoap.org/ws/2004/08/addressing",
)
UNDERSTOOD: Final = frozenset((ns.OTS, ns.WSSE, ns.WSU, *_ADDRESSING))


@dataclass(frozen=True, slots=True)
class Soap:
    """One version of SOAP, as a portal speaks it."""

    version: str
    namespace: str
    media_type: str
    #: The fault code of a caller's mistake, and the HTTP status its fault is sent with.
    caller_code: str
    caller_status: int
    #: The Fault element, with ``{code}``, ``{reason}`` and ``{detail}`` to fill in.
    fault_template: str

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8"


SOAP11: Final = Soap(
    version="1.1",
    namespace=ns.SOAP11_ENV,
    media_type="text/xml",
    caller_code="Client",
    caller_status=500,
    fault_template=(
        "<soap:Fault><faultcode>{code}</faultcode><faultstring>{reason}</faultstring>"
        "<detail>{detail}</detail></soap:Fault>"
    ),
)
SOAP12: Final = Soap(
    version="1.2",
    namespace=ns.SOAP12_ENV,
    media_type="application/soap+xml",
    caller_code="Sender",
    caller_status=400,
    fault_template=(
        "<soap:Fault><soap:Code><soap:Value>{code}</soap:Value></soap:Code>"
        '<soap:Reason><soap:Text xml:lang="en">{reason}</soap:Text></soap:Reason>'
        "<soap:Detail>{detail}</soap:Detail></soap:Fault>"
    ),
)


def declared(content_type: str) -> Soap | None:
    """The SOAP version a request's content type declares, if it declares one."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == SOAP12.media_type:
        return SOAP12
    return SOAP11 if media in (SOAP11.media_type, "application/xml") else None


@dataclass(frozen=True, slots=True)
class Call:
    """A call's envelope, read: its SOAP, its header entries and its operation element."""

    soap: Soap
    headers: Sequence[etree._Element]
    operation: etree._Element


def read_call(data: bytes, limits: Limits) -> Call:
    """Read a call's envelope; :class:`PortalFault` says what is wrong with it."""
    try:
        root = read_xml(data, limits)
    except DocumentRefused as exc:
        raise InvalidXml(exc.message, code=exc.code) from None
    name = etree.QName(root)
    if name.localname != "Envelope":
        raise InvalidRequest("the request is not a SOAP envelope")
    soap = next((s for s in (SOAP11, SOAP12) if s.namespace == name.namespace), None)
    if soap is None:
        raise VersionMismatch(f"the envelope namespace {name.namespace!r} is not SOAP 1.1 or 1.2")
    header_tag, body_tag = f"{{{soap.namespace}}}Header", f"{{{soap.namespace}}}Body"
    parts = [child for child in root if isinstance(child.tag, str)]
    header = parts[0] if parts and parts[0].tag == header_tag else None
    for part in parts[1 if header is not None else 0 :]:
        if part.tag != body_tag:
            raise InvalidRequest(
                f"unexpected element {etree.QName(part).localname} in the envelope"
            )
    bodies = parts[1:] if header is not None else parts
    if len(bodies) != 1:
        raise InvalidRequest("the envelope must have exactly one Body")
    operations = [child for child in bodies[0] if isinstance(child.tag, str)]
    if len(operations) != 1:
        raise InvalidRequest("the Body must hold exactly one operation element")
    entries = [] if header is None else [e for e in header if isinstance(e.tag, str)]
    for entry in entries:
        flagged = entry.get(f"{{{soap.namespace}}}mustUnderstand") in ("1", "true")
        if flagged and etree.QName(entry).namespace not in UNDERSTOOD:
            raise MustUnderstand(
                f"the header {etree.QName(entry).localname} is marked mustUnderstand "
                "but the gateway does not process it"
            )
    return Call(soap, entries, operations[0])


def envelope(soap: Soap, body: bytes) -> bytes:
    """A serialized body element (UTF-8) in its envelope."""
    start = f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{soap.namespace}">'
    return start.encode() + b"<soap:Body>" + body + b"</soap:Body></soap:Envelope>"


def fault(soap: Soap, refusal: PortalFault, call_id: str) -> bytes:
    """The envelope of a fault: ``[ExceptionType]:[Message]``, and the code and the call's
    id in the detail."""
    detail = (
        f'<gw:GatewayFault xmlns:gw="{ns.FAULT}"><gw:code>{escape(refusal.code)}</gw:code>'
        f"<gw:requestId>{escape(call_id)}</gw:requestId></gw:GatewayFault>"
    )
    code = f"soap:{refusal.soap_code or soap.caller_code}"
    element = soap.fault_template.format(
        code=code, reason=escape(refusal.fault_string), detail=detail
    )
    return envelope(soap, element.encode())

"""Supplier portals: the ``EProcurementService`` of the FMS eProcurement web service
standard, which FMS (now the gateway) calls as a SOAP client.

Each portal lives at ``/portals/{name}/EProcurementService.asmx`` and behaves as the ASMX
services suppliers run: document/literal wrapped in namespace :data:`OTS`, SOAP 1.1
(``text/xml``, SOAPAction required) and 1.2 (``application/soap+xml``, ``action``
optional), the ``AuthHeader`` on every call, and ``GET …?wsdl`` with the portal's own
address. Faults are in the caller's SOAP version and read ``[ExceptionType]:[Message]``:
``AuthenticationException``, ``DocumentNotExistException`` or ``InvalidXmlException``
(written by :mod:`gateway.sandbox.portal.soap`, the sandbox's own).

It is strict where the real services are (element namespaces, the SOAPAction), so a
client that only works against a lenient server is found out here.
"""

from __future__ import annotations

import copy
import hmac
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.helpers import parse_mimetype
from lxml import etree

from gateway import ns
from gateway.sandbox import ebis
from gateway.sandbox.appkeys import PORTAL_WSDL, SANDBOX_STATE
from gateway.sandbox.errors import (
    AuthenticationFailed,
    DocumentNotExist,
    DocumentRefused,
    InvalidRequest,
    InvalidXml,
    PortalFault,
    UnknownOperation,
    VersionMismatch,
)
from gateway.sandbox.parsing import read_xml_text
from gateway.sandbox.portal import soap
from gateway.sandbox.portal.portals import IndexEntry, PortalAccount, Portals, portal_path
from gateway.sandbox.stats import PORTAL_METHODS

#: The namespace of the standard's web service (FMS will call nothing else).
OTS: Final = ns.OTS
NAME_PATTERN: Final = "[a-z0-9-]{1,40}"
WSDL_FILE: Final = Path("eproc") / "EProcurementService.wsdl"

_DATE_TIME: Final = re.compile(
    r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}


def load_wsdl(schemas_dir: Path) -> etree._ElementTree:
    """The standard's WSDL, parsed once at start-up; each portal answers a copy."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.parse(str(schemas_dir / WSDL_FILE), parser)


@dataclass(frozen=True, slots=True)
class PortalCall:
    """One authenticated call: the portals, the portal's account, and the operation's
    element."""

    portals: Portals
    account: PortalAccount
    element: etree._Element

    @property
    def name(self) -> str:
        return self.account.name

    def parameter(self, name: str) -> str | None:
        child = self.element.find(f"{{{OTS}}}{name}")
        return None if child is None else (child.text or "")


# -- the methods ---------------------------------------------------------------------------


def _doclist(entries: Sequence[IndexEntry]) -> str:
    """The FetchIndex XML, declared UTF-16 as .NET's string writers declare it."""
    root = etree.Element("doclist")
    for entry in entries:
        attributes = {"uuid": entry.uuid, "type": entry.doc_type, "date": entry.created_at}
        etree.SubElement(root, "document", attributes)
    body = etree.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-16"?>' + body


def _doc_id(call: PortalCall) -> str:
    doc_id = call.parameter("DocID")
    if not doc_id:
        raise DocumentNotExist("no DocID was given")
    return doc_id


async def change_password(call: PortalCall) -> str | bool:
    return await call.portals.change_password(call.name)


async def fetch_index(call: PortalCall) -> str | bool:
    return _doclist(await call.portals.index(call.name))


async def fetch_index_from_date(call: PortalCall) -> str | bool:
    text = (call.parameter("BeginDate") or "").strip()
    if not _DATE_TIME.fullmatch(text):
        raise InvalidRequest(f"BeginDate must be an xs:dateTime; {text!r} is not")
    try:
        begin = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"BeginDate must be an xs:dateTime; {text!r} is not") from None
    return _doclist(await call.portals.index(call.name, after=begin))


async def update_document_status(call: PortalCall) -> str | bool:
    doc_id = _doc_id(call)
    processed = _BOOLEANS.get((call.parameter("Processed") or "").strip())
    if processed is None:
        raise InvalidRequest("Processed must be an xs:boolean")
    if not await call.portals.set_processed(call.name, doc_id, processed):
        raise DocumentNotExist(f"there is no document {doc_id}")
    return True


async def fetch_doc(call: PortalCall) -> str | bool:
    doc_id = _doc_id(call)
    text = await call.portals.document(call.name, doc_id)
    if text is None:
        raise DocumentNotExist(f"there is no document {doc_id}")
    return text


def _kind(number: str) -> str:
    """How an order names a supplier with this number: a GLN has 13 digits, a DUNS 9."""
    return "GLN" if len(number) == 13 else "DUNS"


async def send_order(call: PortalCall) -> str | bool:
    child = call.element.find(f"{{{OTS}}}Document")
    if child is None or not (child.text or "").strip():
        raise InvalidXml("no order document was sent")
    if len(child):
        raise InvalidXml("the Document parameter is a string holding the order's XML")
    text = child.text or ""
    try:
        root = read_xml_text(text.strip(), ebis.LIMITS)
    except DocumentRefused as exc:
        raise InvalidXml(exc.message) from None
    if etree.QName(root).namespace is not None:
        # In the namespace of its official schema (BASDA's): read by local names.
        for element in root.iter():
            if isinstance(element.tag, str):
                element.tag = etree.QName(element).localname
    if root.tag != "Order":
        raise InvalidXml(f"the document is not an eBIS-XML Order but {root.tag!r}")
    order_type = root.find("OrderHead/OrderType")
    code = None if order_type is None else order_type.get("Code")
    if code != "PUO":
        raise InvalidXml(f"an authorised order has OrderType Code PUO, not {code!r}")
    # Each supplier as FMS names it: by GLN (13 digits) or by DUNS.
    named = {
        duns
        for duns in call.account.suppliers
        if (root.findtext(f"Supplier/SupplierReferences/{_kind(duns)}") or "").strip() == duns
    }
    if not named:
        kind = "DUNS" if root.find("Supplier/SupplierReferences/DUNS") is not None else "GLN"
        supplier = (root.findtext(f"Supplier/SupplierReferences/{kind}") or "").strip()
        raise InvalidXml(
            f"the order is for supplier {kind} {supplier or '(none)'}, not this portal's "
            f"{' or '.join(call.account.suppliers)}"
        )
    number = root.findtext("OrderReferences/BuyersOrderNumber")
    await call.portals.receive_order(call.name, text, number.strip() if number else None)
    return True


async def reset_all(call: PortalCall) -> str | bool:
    await call.portals.reset(call.name)
    return True


Method = Callable[[PortalCall], Awaitable[str | bool]]

METHODS: Final[Mapping[str, Method]] = {
    "ChangePassword": change_password,
    "FetchIndex": fetch_index,
    "FetchIndexFromDate": fetch_index_from_date,
    "UpdateDocumentStatus": update_document_status,
    "FetchDoc": fetch_doc,
    "SendOrder": send_order,
    "ResetAll": reset_all,
}
assert tuple(METHODS) == PORTAL_METHODS


# -- the SOAP plumbing ----------------------------------------------------------------------


def _operation(body: etree._Element) -> str:
    qname = etree.QName(body)
    if qname.namespace != OTS or qname.localname not in METHODS:
        raise UnknownOperation(
            f"the service has no operation {{{qname.namespace or ''}}}{qname.localname}"
        )
    return qname.localname


def _check_action(request: web.Request, version: soap.Soap, operation: str) -> None:
    """SOAP 1.1 dispatches on the SOAPAction header; SOAP 1.2's action is optional."""
    expected = f"{OTS}/{operation}"
    if version is soap.SOAP11:
        sent = request.headers.get("SOAPAction")
        if sent is None:
            raise UnknownOperation("the SOAPAction header is required")
    else:
        sent = parse_mimetype(request.headers.get("Content-Type", "")).parameters.get("action")
        if sent is None:
            return
    if sent.strip().strip('"') != expected:
        raise UnknownOperation(f"the server did not recognise the SOAPAction {sent!r}")


def _authenticate(account: PortalAccount, headers: Sequence[etree._Element]) -> None:
    if account.refuse_auth:
        raise AuthenticationFailed("the portal refuses every login (its refuse_auth switch)")
    auth = next((h for h in headers if h.tag == f"{{{OTS}}}AuthHeader"), None)
    if auth is None:
        raise AuthenticationFailed("the AuthHeader SOAP header is required")
    username = auth.findtext(f"{{{OTS}}}Username") or ""
    password = auth.findtext(f"{{{OTS}}}Password") or ""
    good_user = hmac.compare_digest(username.encode(), account.username.encode())
    good_password = hmac.compare_digest(password.encode(), account.password.encode())
    if not (good_user and good_password):
        raise AuthenticationFailed("the username or password is not valid")


def _result(operation: str, value: str | bool) -> bytes:
    # ASMX writes its answers in the default namespace.
    nsmap: dict[Any, str] = {None: OTS}
    response = etree.Element(f"{{{OTS}}}{operation}Response", nsmap=nsmap)
    result = etree.SubElement(response, f"{{{OTS}}}{operation}Result")
    result.text = ("true" if value else "false") if isinstance(value, bool) else value
    return etree.tostring(response, encoding="utf-8")


def _soap_response(version: soap.Soap, body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": version.content_type})


async def _account(request: web.Request) -> PortalAccount:
    name = request.match_info["name"]
    account = await request.app[SANDBOX_STATE].portals.account(name)
    if account is None:
        raise web.HTTPNotFound(text=f"there is no portal {name}")
    return account


async def service(request: web.Request) -> web.Response:
    """``POST /portals/{name}/EProcurementService.asmx``: one SOAP call."""
    account = await _account(request)
    declared = soap.declared(request.headers.get("Content-Type", ""))
    if declared is None:
        raise web.HTTPUnsupportedMediaType(
            text="a SOAP call is text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)"
        )
    state = request.app[SANDBOX_STATE]
    try:
        call = soap.read_call(await request.read(), ebis.LIMITS)
        if call.soap is not declared:
            raise VersionMismatch(
                f"a SOAP {call.soap.version} envelope was sent as {request.content_type}"
            )
        operation = _operation(call.operation)
        _check_action(request, declared, operation)
        state.stats.portal(account.name).calls[operation] += 1
        _authenticate(account, call.headers)
        value = await METHODS[operation](PortalCall(state.portals, account, call.operation))
    except PortalFault as exc:
        body = soap.fault(declared, exc, uuid.uuid4().hex)
        return _soap_response(declared, body, declared.caller_status)
    return _soap_response(declared, soap.envelope(declared, _result(operation, value)))


async def describe(request: web.Request) -> web.Response:
    """``GET …/EProcurementService.asmx?wsdl``: the WSDL at this portal's address (without
    ``?wsdl``, a short page naming the operations, as ASMX shows)."""
    await _account(request)
    address = f"{request.scheme}://{request.host}{request.path}"
    if "wsdl" not in {key.lower() for key in request.query}:
        items = "".join(f"<li>{name}</li>" for name in METHODS)
        page = (
            "<html><head><title>EProcurementService</title></head><body>"
            f"<h1>EProcurementService</h1><p>{escape(address)}</p><ul>{items}</ul>"
            f'<p><a href="{escape(address)}?wsdl">Service description</a></p></body></html>'
        )
        return web.Response(text=page, content_type="text/html")
    tree = copy.deepcopy(request.app[PORTAL_WSDL])
    for tag in (f"{{{ns.WSDL_SOAP11}}}address", f"{{{ns.WSDL_SOAP12}}}address"):
        for element in tree.iter(tag):
            element.set("location", address)
    body = etree.tostring(tree, xml_declaration=True, encoding="utf-8")
    return web.Response(body=body, content_type="text/xml", charset="utf-8")


def add_routes(app: web.Application, schemas_dir: Path) -> None:
    app[PORTAL_WSDL] = load_wsdl(schemas_dir)
    path = portal_path(f"{{name:{NAME_PATTERN}}}")
    app.router.add_post(path, service)
    app.router.add_get(path, describe, allow_head=False)

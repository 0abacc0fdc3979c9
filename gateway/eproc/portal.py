"""The client of suppliers' eProcurement portals: zeep, carried by the gateway's aiohttp session.

The portal standard's WSDL (schemas/eproc/EProcurementService.wsdl) is loaded once, at
start-up, from the file; each portal is a service bound to its own address. Every call
carries the AuthHeader. Answers are screened by the gateway's hardened parser before zeep
reads them, and every failure leaves here as a :class:`~gateway.errors.PortalError` of its
own type: the standard's three exceptions, and what befalls any HTTP call (no connection, no
answer in time, a connection lost, an answer that is not what the standard describes).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
from lxml import etree
from requests import Response
from zeep import AsyncClient, Settings
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault
from zeep.proxy import AsyncServiceProxy
from zeep.transports import Transport
from zeep.wsdl.utils import etree_to_string

from gateway import ns
from gateway.errors import (
    PortalAuthenticationFailed,
    PortalConnectionLost,
    PortalDocumentMissing,
    PortalFault,
    PortalGarbage,
    PortalRejectedXml,
    PortalTimeout,
    PortalUnreachable,
    XmlRejected,
)
from gateway.xmlsafe import Limits, SchemaRegistry, as_utf8_document, parse, parse_text

BINDING: Final = f"{{{ns.OTS}}}EProcurementServiceSoap"
INDEX_SCHEMA: Final = "eproc/FetchIndex.xsd"
#: What an index may list, and the longest id it may give one.
INDEX_TYPES: Final = ("order", "invoice", "creditnote", "quote")
#: The attributes of an index entry the gateway reads. Any other (FetchIndexFromDate gives
#: "the name, type and create date"; the standard's schema "may not be the latest version")
#: is ignored.
INDEX_ATTRIBUTES: Final = ("uuid", "type", "date")
MAX_DOCUMENT_ID: Final = 100
#: How the ledger knows an entry whose id is too long to keep (or missing).
DIGEST_PREFIX: Final = "sha256:"
_DATE_TIME: Final = re.compile(
    r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)

_EXCEPTIONS: Final = {
    "AuthenticationException": PortalAuthenticationFailed,
    "DocumentNotExistException": PortalDocumentMissing,
    "InvalidXmlException": PortalRejectedXml,
}


class AiohttpTransport(Transport):
    """zeep's transport over the gateway's own aiohttp session (one HTTP stack per process).

    Only operations travel through it; the WSDL is a local file, read once by zeep."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float, limits: Limits) -> None:
        super().__init__()
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._limits = limits

    async def post_xml(
        self, address: str, envelope: etree._Element, headers: dict[str, str]
    ) -> Response:
        message = etree_to_string(envelope)
        try:
            operation = headers.get("SOAPAction", "").strip('"').rsplit("/", 1)[-1] or "-"
            async with self._session.post(
                address,
                data=message,
                headers=headers,
                timeout=self._timeout,
                middlewares=(),
                trace_request_ctx={"upstream": "portal", "operation": operation},
            ) as answer:
                body = await answer.read()
                status = answer.status
                content_type = answer.headers.get("Content-Type", "text/xml")
        except TimeoutError:
            raise PortalTimeout("the portal did not answer in time") from None
        except aiohttp.ClientConnectorError as exc:
            raise PortalUnreachable(
                f"the portal could not be reached: {type(exc).__name__}"
            ) from None
        except aiohttp.ClientError as exc:
            raise PortalConnectionLost(
                f"the connection to the portal failed: {type(exc).__name__}"
            ) from None
        try:
            parse(body, self._limits)
        except XmlRejected as exc:
            raise PortalGarbage(
                f"the portal answered HTTP {status} with something that is not SOAP: {exc.message}"
            ) from None
        response = Response()
        response._content = body
        response.status_code = status
        response.headers["Content-Type"] = content_type
        return response


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One ``document`` of a portal's index."""

    document_id: str
    doc_type: str
    created: datetime | None
    #: Why the entry breaks the standard, or None. Such an entry is quarantined on its own;
    #: the rest of the index is collected.
    problem: str | None = None
    #: The entry as the portal listed it (what an operator is shown for a bad one).
    listed: bytes = b""

    @property
    def ledger_id(self) -> str:
        """The id the document ledger knows it by: its own, or (too long to keep, or none)
        a digest of it."""
        if self.document_id and len(self.document_id) <= MAX_DOCUMENT_ID:
            return self.document_id
        return DIGEST_PREFIX + hashlib.sha256(self.document_id.encode()).hexdigest()


def _entry(item: etree._Element) -> IndexEntry:
    """An index entry, with what is wrong with it by the standard: "The document id should
    be no longer than 100 characters long and must not contain any spaces", its type one of
    order, invoice, creditnote and quote, its date an xs:dateTime."""
    document_id, doc_type = item.get("uuid", ""), item.get("type", "")
    listed = etree.tostring(item, encoding="utf-8", with_tail=False)
    text = item.get("date", "").strip()
    created = None
    if _DATE_TIME.fullmatch(text):
        with contextlib.suppress(ValueError):  # a 31st of February
            created = datetime.fromisoformat(text)
    shown = document_id[:60] + ("…" if len(document_id) > 60 else "")
    if item.tag != "document":
        problem = f"the index lists a <{str(item.tag)[:40]}>, not a document"
    elif not document_id:
        problem = "an index entry has no id"
    elif len(document_id) > MAX_DOCUMENT_ID:
        problem = (
            f"the id {shown!r} has {len(document_id)} characters; the standard allows "
            f"{MAX_DOCUMENT_ID}"
        )
    elif any(character.isspace() for character in document_id):
        problem = f"the id {shown!r} holds spaces; the standard allows none"
    elif doc_type not in INDEX_TYPES:
        problem = f"the type {doc_type[:40]!r} of {shown!r} is none of {', '.join(INDEX_TYPES)}"
    elif created is None:
        problem = f"the date {text[:40]!r} of {shown!r} is not an xs:dateTime"
    else:
        problem = None
    return IndexEntry(document_id, doc_type, created, problem, listed)


def _known(item: etree._Element) -> etree._Element:
    """A copy of an index entry with only the attributes the gateway reads."""
    known = etree.Element(str(item.tag))
    for key in INDEX_ATTRIBUTES:
        value = item.get(key)
        if value is not None:
            known.set(key, value)
    known.text = item.text
    known.extend(copy.deepcopy(child) for child in item)
    return known


@dataclass(slots=True)
class Portal:
    """One supplier portal, as the client calls it."""

    name: str
    url: str
    username: str
    password: str = field(repr=False)


class PortalClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        wsdl: Path,
        *,
        timeout: float,
        limits: Limits,
        schemas: SchemaRegistry,
    ) -> None:
        self._schemas = schemas
        settings = Settings(
            strict=True,
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
            xml_huge_tree=False,
        )
        self._client = AsyncClient(
            str(wsdl), transport=AiohttpTransport(session, timeout, limits), settings=settings
        )
        self._binding = self._client.wsdl.bindings[BINDING]
        self._limits = limits
        self._services: dict[str, AsyncServiceProxy] = {}

    def _service(self, url: str) -> AsyncServiceProxy:
        service = self._services.get(url)
        if service is None:
            service = AsyncServiceProxy(self._client, self._binding, address=url)
            self._services[url] = service
        return service

    async def _call(self, portal: Portal, operation: str, **arguments: Any) -> Any:
        header = {"AuthHeader": {"Username": portal.username, "Password": portal.password}}
        method = getattr(self._service(portal.url), operation)
        try:
            return await method(**arguments, _soapheaders=header)
        except Fault as fault:
            message = str(fault.message or "")
            kind, _, text = message.partition(":")
            error = _EXCEPTIONS.get(kind.strip(), PortalFault)
            raise error(f"{operation}: {text.strip() or message}") from None
        except ZeepError as exc:
            raise PortalGarbage(
                f"{operation}: the portal's answer is not what the standard describes "
                f"({type(exc).__name__})"
            ) from None

    def _index(self, xml: str | None) -> list[IndexEntry]:
        """The index's entries, each with its own problem if it has one. Only an index that
        is not a doclist at all fails the call; attributes the gateway does not read, on the
        list or an entry, are ignored."""
        if not xml:
            return []
        try:
            root = parse_text(xml, self._limits)
        except XmlRejected as exc:
            raise PortalGarbage(f"the index is not XML: {exc.message}") from None
        if root.tag != "doclist":
            raise PortalGarbage(f"the index is not a doclist but a <{str(root.tag)[:40]}>")
        items = [item for item in root if isinstance(item.tag, str)]
        entries = [_entry(item) for item in items]
        # The list itself, without its entries (or any attribute): text between the entries
        # makes it no doclist.
        shell = etree.Element("doclist")
        shell.text = "".join([root.text or "", *(node.tail or "" for node in root)])
        issues = self._schemas.issues(INDEX_SCHEMA, shell)
        if issues:
            raise PortalGarbage(f"the index is not a doclist: {issues[0].message}")
        # Then the entries the checks above found usable, by the attributes the gateway
        # reads: together first, and only if they fail, each on its own, so that one the
        # schema refuses is set aside alone.
        usable = [number for number, entry in enumerate(entries) if entry.problem is None]
        shell.text = None
        shell.extend(_known(items[number]) for number in usable)
        if self._schemas.issues(INDEX_SCHEMA, shell):
            for number in usable:
                issues = self._schemas.issues(INDEX_SCHEMA, _known(items[number]))
                if issues:
                    problem = f"the entry is not what the index describes: {issues[0].message}"
                    entries[number] = replace(entries[number], problem=problem[:300])
        return entries

    async def fetch_index(self, portal: Portal) -> list[IndexEntry]:
        return self._index(await self._call(portal, "FetchIndex"))

    async def fetch_index_from_date(self, portal: Portal, since: datetime) -> list[IndexEntry]:
        return self._index(await self._call(portal, "FetchIndexFromDate", BeginDate=since))

    async def fetch_doc(self, portal: Portal, document_id: str) -> bytes:
        """The document, as UTF-8 bytes: the string the portal returns may declare the
        encoding of the string writer that made it (UTF-16, from .NET), which no longer
        applies once it is text."""
        return as_utf8_document(await self._call(portal, "FetchDoc", DocID=document_id) or "")

    async def update_document_status(
        self, portal: Portal, document_id: str, processed: bool
    ) -> None:
        if (
            await self._call(portal, "UpdateDocumentStatus", DocID=document_id, Processed=processed)
            is not True
        ):
            raise PortalGarbage("UpdateDocumentStatus did not answer true")

    async def send_order(self, portal: Portal, document: str) -> None:
        if await self._call(portal, "SendOrder", Document=document) is not True:
            raise PortalGarbage("SendOrder did not answer true")

    async def change_password(self, portal: Portal) -> str:
        password = await self._call(portal, "ChangePassword")
        if not isinstance(password, str) or not password or len(password) > 256:
            raise PortalGarbage("ChangePassword returned no usable password")
        return password


async def load_client(
    session: aiohttp.ClientSession,
    wsdl: Path,
    *,
    call_seconds: float,
    limits: Limits,
    schemas: SchemaRegistry,
) -> PortalClient:
    """Build the client off the event loop: zeep reads and compiles the WSDL synchronously."""
    return await asyncio.to_thread(
        PortalClient, session, wsdl, timeout=call_seconds, limits=limits, schemas=schemas
    )

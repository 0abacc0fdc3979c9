"""The hostile corpus's shared parts: valid requests of both services to hide payloads in, raw
posts, the fault a caller must get, and what the sandbox (FNG) saw.

Every hostile request is built around a request that would otherwise succeed (a valid
journal with a fresh submission id, a valid budget with a fresh serial number, credentials
that work), so a guard that let the payload through would let the request reach FNG, and
the "nothing reached FNG" check would see it.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import itertools
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any, Final
from xml.sax.saxutils import escape

import aiohttp
from lxml import etree

from gateway import ns
from gateway.sandbox import DemoSeed
from tests.conftest import Gateway, Sandbox
from tests.support import (
    Auth,
    auth_header,
    budget_operation,
    budget_xml,
    envelope,
    operation,
    sample_journal,
    strip_declaration,
)

VERSIONS: Final = ("1.1", "1.2")
SERVICES: Final = ("ejournal", "budget")

_serials = itertools.count(700_000 + uuid.uuid4().int % 100_000)


def fresh_journal() -> str:
    """Seed 001's sample journal, without its declaration, under a submission id never used."""
    return strip_declaration(sample_journal(f"hostile-{uuid.uuid4().hex[:12]}"))


def fresh_budget(demo: DemoSeed) -> str:
    """A budget the demo school would import, under a serial number never used."""
    ledger, fund, cfr = demo.fund_allocations[0]
    return budget_xml(
        next(_serials),
        demo.open_year,
        [(ledger, fund, cfr, "12000.00")],
        [(ledger, demo.cost_centres[0], "3000.00")],
    )


@dataclass(frozen=True)
class Target:
    """One service of the gateway called in one SOAP version."""

    service: str
    version: str
    gateway: Gateway
    demo: DemoSeed

    @property
    def url(self) -> str:
        return f"{self.gateway.url}/soap/{self.service}"

    @property
    def namespace(self) -> str:
        return ns.EJOURNAL if self.service == "ejournal" else ns.BUDGET

    @property
    def auth(self) -> Auth:
        return self.gateway.auth

    @property
    def operation(self) -> str:
        return "PostJournals" if self.service == "ejournal" else "ImportBudget"

    def document(self) -> str:
        """The service's valid document (no declaration), fresh each time."""
        return fresh_journal() if self.service == "ejournal" else fresh_budget(self.demo)

    def call(self, xml_data: str) -> str:
        """The service's document operation with ``xml_data`` as the content of xmlData."""
        if self.service == "ejournal":
            return operation("PostJournals", xmlData=xml_data)
        return budget_operation("ImportBudget", xmlData=xml_data)

    def valid_body(self) -> str:
        """The operation carrying a valid document as XML, out of the service's namespace."""
        document = self.document()
        root = "ControlAccounts" if self.service == "ejournal" else "Message"
        return self.call(document.replace(f"<{root}>", f'<{root} xmlns="">', 1))

    def with_text(self, document: str) -> str:
        """The operation carrying ``document`` as escaped text."""
        return self.call(escape(document))

    def envelope(self, *, extra_header: str = "", body: str | None = None) -> str:
        """A request that would succeed, with ``extra_header`` beside the AuthHeader (an
        element without mustUnderstand, which the gateway would ignore)."""
        header = auth_header(self.auth, self.namespace) + extra_header
        return envelope(self.valid_body() if body is None else body, header, self.version)


def with_doctype(document: str, doctype: str) -> str:
    """``doctype`` placed after the XML declaration (or first when there is none)."""
    if document.startswith("<?xml"):
        declaration, rest = document.split("?>", 1)
        return f"{declaration}?>{doctype}{rest}"
    return doctype + document


def utf7_behind_a_bom(document: str, markup: str) -> bytes:
    """``document`` (whose ``@@`` stands for ``markup``) in UTF-7 behind a UTF-8 byte order
    mark, with ``markup`` written all in base64: not one of its bytes is ``<`` or ``=``."""
    head, tail = document.split("?>", 1)[1].split("@@")
    hidden = b"+" + base64.b64encode(markup.encode("utf-16-be")).rstrip(b"=") + b"-"
    return (
        codecs.BOM_UTF8
        + b'<?xml version="1.0" encoding="UTF-7"?>'
        + head.encode("utf-7")
        + hidden
        + tail.encode("utf-7")
    )


def content_type(version: str, action: str | None = None) -> str:
    if version == "1.1":
        return "text/xml; charset=utf-8"
    return "application/soap+xml; charset=utf-8" + (f'; action="{action}"' if action else "")


@dataclass
class Answer:
    status: int
    content_type: str
    raw: bytes

    def root(self) -> etree._Element:
        return etree.fromstring(self.raw)

    def result(self) -> etree._Element:
        """The document inside the operation's result (not a fault)."""
        body = self.root()[0]
        assert etree.QName(body).localname == "Body", self.raw
        response = body[0]
        assert etree.QName(response).localname != "Fault", self.raw
        return response[0][0]


async def post(
    http: aiohttp.ClientSession,
    url: str,
    data: bytes | AsyncIterable[bytes],
    version: str,
    *,
    action: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Answer:
    """Post ``data`` as a SOAP request; a gateway that does not answer in ``timeout`` seconds
    fails the test instead of hanging it."""
    sent = {"Content-Type": content_type(version, action), **(headers or {})}
    if version == "1.1" and action is not None:
        sent["SOAPAction"] = f'"{action}"'
    async with http.post(
        url, data=data, headers=sent, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as response:
        return Answer(
            response.status, response.headers.get("Content-Type", ""), await response.read()
        )


_FAULT_CODES: Final = {"1.1": "soap:Client", "1.2": "soap:Sender"}


def assert_fault(answer: Answer, version: str, code: str, soap_code: str | None = None) -> None:
    """A SOAP fault in ``version``: its namespace, HTTP status and media type, the fault code
    (Client or Sender unless ``soap_code`` says otherwise) and ``code`` in its detail."""
    env = ns.SOAP11_ENV if version == "1.1" else ns.SOAP12_ENV
    assert b"Traceback" not in answer.raw, answer.raw
    if version == "1.1":
        assert (answer.status, answer.content_type.split(";")[0]) == (500, "text/xml"), answer
    else:
        assert (answer.status, answer.content_type.split(";")[0]) == (
            400,
            "application/soap+xml",
        ), answer
    root = answer.root()
    assert root.tag == f"{{{env}}}Envelope", answer.raw
    fault = root.find(f"{{{env}}}Body/{{{env}}}Fault")
    assert fault is not None, answer.raw
    if version == "1.1":
        given = fault.findtext("faultcode")
    else:
        given = fault.findtext(f"{{{env}}}Code/{{{env}}}Value")
    assert given == (soap_code or _FAULT_CODES[version]), answer.raw
    assert fault.findtext(f".//{{{ns.FAULT}}}code") == code, answer.raw


@dataclass
class Seen:
    """What FNG (the sandbox) has seen: its counters and what was posted to it."""

    stats: dict[str, Any]
    journals: list[dict[str, Any]]
    budgets: list[dict[str, Any]]


async def seen_by_fng(sandbox: Sandbox) -> Seen:
    async with aiohttp.ClientSession() as session:

        async def get(path: str) -> Any:
            async with session.get(f"{sandbox.url}/_sandbox/{path}") as response:
                assert response.status == 200, await response.text()
                return await response.json()

        return Seen(await get("stats"), await get("journals"), await get("budgets"))


@dataclass
class Tripwire:
    """A listener that counts every connection made to it: a URL that must never be fetched."""

    server: asyncio.Server | None = None
    connections: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                self.connections.append(await asyncio.wait_for(reader.read(4096), 2))
            except (TimeoutError, ConnectionError):
                self.connections.append(b"")
            writer.close()

        self.server = await asyncio.start_server(connected, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

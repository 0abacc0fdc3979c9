"""A legacy service offered three ways: SOAP 1.1, SOAP 1.2 and plain XML over HTTP.

A :class:`SoapService` is a list of :class:`Operation`\\ s (document/literal wrapped: the
body element names the operation), a WSDL template, and an ``authenticate`` function
that turns :class:`Credentials` into the caller the handlers receive. It reads the body
within its limits, parses it once with :mod:`gateway.xmlsafe`, checks the envelope and
the SOAPAction, authenticates, dispatches, and wraps the handler's answer. Errors are
raised, never answered here: the error middleware writes them as faults in the caller's
SOAP version (which this module records on the request as soon as it knows it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Generic, TypeVar
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web
from lxml import etree

from gateway.errors import (
    BodyTimeout,
    GatewayError,
    MalformedRequest,
    PayloadTooLarge,
    UnknownOperation,
)
from gateway.soap.envelope import SoapVersion, envelope, read_message
from gateway.soap.security import Credentials, from_http_basic, from_soap_headers
from gateway.xmlsafe import Limits, parse, utf8_document

CallerT = TypeVar("CallerT")

#: The SOAP version of the request being handled, once known (read by the error middleware).
SOAP_VERSION: Final = web.RequestKey("soap_version", SoapVersion)
#: The operation a request named, once known (for the metrics).
OPERATION: Final = web.RequestKey("operation", str)
#: Set on requests to the plain XML binding, whose errors are RFC 7807 problem documents.
PLAIN_XML: Final = web.RequestKey("plain_xml", bool)

_HOST: Final = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


@dataclass(frozen=True, slots=True)
class Call(Generic[CallerT]):
    """One authenticated call, as a handler sees it."""

    caller: CallerT
    operation: str
    element: etree._Element  # the operation's wrapper element
    limits: Limits

    def _child(self, name: str) -> etree._Element | None:
        for child in self.element:
            if isinstance(child.tag, str) and etree.QName(child).localname == name:
                return child
        return None

    def text(self, name: str) -> str | None:
        child = self._child(name)
        return None if child is None else (child.text or "")

    def document(self, name: str) -> etree._Element | None:
        """An XML document parameter: sent as XML inside the element, or escaped as text."""
        element, source = self.sourced_document(name)
        return element if source is None else parse(source, self.limits)

    def sourced_document(self, name: str) -> tuple[etree._Element | None, bytes | None]:
        """A document parameter as it was sent: the element, when it came as XML inside the
        parameter (or in place of it); or, when it came escaped as text (as FMS clients send
        it), its UTF-8 bytes, screened but not parsed, so that the handler may stream them
        and send them on as they are. The envelope lets go of that text, for a big journal
        most of its size; so a parameter is taken once."""
        child = self._child(name)
        if child is None:
            # PHP's SoapClient, given SoapVar($xml, XSD_ANYXML) as the whole parameter, sends
            # the document straight inside the operation's element, without the parameter's.
            for item in self.element:
                if isinstance(item.tag, str):
                    return item, None
            return None, None
        for item in child:
            if isinstance(item.tag, str):
                return item, None
        text = (child.text or "").strip()
        if not text.startswith("<"):
            return None, None
        child.text = None
        return None, utf8_document(text, self.limits)


Handler = Callable[[Call[Any]], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    handler: Handler
    #: The parameter that carries a document; the plain binding accepts it bare.
    document_parameter: str | None = None


def response_element(
    namespace: str, operation: str, parts: Sequence[tuple[str, bytes | str | bool]]
) -> bytes:
    """``<tns:{operation}Response>`` with one child per part: raw XML, text or a boolean."""
    out = [f'<tns:{operation}Response xmlns:tns="{namespace}">'.encode()]
    for name, value in parts:
        if isinstance(value, bool):
            content = b"true" if value else b"false"
        elif isinstance(value, str):
            content = escape(value).encode()
        else:
            content = value
        out.append(b"<tns:" + name.encode() + b">" + content + b"</tns:" + name.encode() + b">")
    out.append(f"</tns:{operation}Response>".encode())
    return b"".join(out)


async def read_body(request: web.Request, limits: Limits) -> bytes:
    """The request body, refused as soon as it passes the byte limit or takes too long."""
    if request.content_length is not None and request.content_length > limits.max_bytes:
        raise PayloadTooLarge(f"the request is larger than {limits.max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_timeout):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise PayloadTooLarge(f"the request is larger than {limits.max_bytes} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout("the request body did not arrive in time") from None
    return b"".join(chunks)


def client_facing_url(
    request: web.Request, trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str:
    """The URL the client used, through trusted proxies' X-Forwarded-* headers only."""
    scheme, host, prefix = request.scheme, request.host, ""
    peer = request.remote
    if peer and trusted_proxies:
        try:
            trusted = any(ipaddress.ip_address(peer) in net for net in trusted_proxies)
        except ValueError:
            trusted = False
        if trusted:

            def first(name: str) -> str:
                return request.headers.get(name, "").split(",")[0].strip()

            scheme = first("X-Forwarded-Proto") or scheme
            host = first("X-Forwarded-Host") or host
            prefix = first("X-Forwarded-Prefix").rstrip("/")
    if scheme not in ("http", "https") or not _HOST.match(host):
        # A Host header that is not a host name: name the socket the request arrived on.
        scheme = request.scheme
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if isinstance(sockname, tuple) and len(sockname) >= 2:
            address = str(sockname[0])
            host = f"[{address}]:{sockname[1]}" if ":" in address else f"{address}:{sockname[1]}"
        else:
            host = "localhost"
    if prefix and not re.match(r"^/[A-Za-z0-9._~/-]*$", prefix):
        prefix = ""
    return f"{scheme}://{host}{prefix}{request.path}"


class SoapService(Generic[CallerT]):
    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        wsdl_template: Path,
        operations: Sequence[Operation],
        authenticate: Callable[[Credentials], Awaitable[CallerT]],
        limits: Limits,
        trusted_proxies: Sequence[str] = (),
        observe: Callable[[str, str, str, float], None] | None = None,
    ) -> None:
        self._observe = observe
        self.name = name
        self.namespace = namespace
        self._operations = {operation.name: operation for operation in operations}
        self._authenticate = authenticate
        self._limits = limits
        self._template = wsdl_template.read_text(encoding="utf-8")
        self._rendered: dict[str, bytes] = {}
        self._proxies = [ipaddress.ip_network(item, strict=False) for item in trusted_proxies]
        self._understood = frozenset({namespace})

    async def wsdl(self, request: web.Request) -> web.Response:
        if "wsdl" not in {key.lower() for key in request.query}:
            raise web.HTTPNotFound(text="ask for ?wsdl\n")
        address = client_facing_url(request, self._proxies)
        body = self._rendered.get(address)
        if body is None:
            body = self._template.replace("{{address}}", quoteattr(address)[1:-1]).encode()
            if len(self._rendered) < 64:
                self._rendered[address] = body
        return web.Response(body=body, content_type="text/xml", charset="utf-8")

    async def soap(self, request: web.Request) -> web.Response:
        return await self._observed(request, self._soap)

    async def plain(self, request: web.Request) -> web.Response:
        return await self._observed(request, self._plain)

    async def _observed(
        self, request: web.Request, handle: Callable[[web.Request], Awaitable[web.Response]]
    ) -> web.Response:
        """Time the call and count its outcome: ok, or the code of the fault it raised."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await handle(request)
        except GatewayError as exc:
            outcome = exc.code
            raise
        except Exception:
            outcome = "INTERNAL_ERROR"
            raise
        finally:
            if self._observe is not None:
                operation = request.get(OPERATION, "-")
                self._observe(self.name, operation, outcome, time.perf_counter() - started)

    async def _soap(self, request: web.Request) -> web.Response:
        version = SoapVersion.from_content_type(request.content_type) or SoapVersion.V11
        request[SOAP_VERSION] = version
        data = await read_body(request, self._limits)
        if not data.strip():
            raise MalformedRequest("the request has no body")
        message = read_message(parse(data, self._limits), self._understood)
        del data  # the tree holds what is needed; a big body need not stay in memory twice
        request[SOAP_VERSION] = message.version
        body = message.body
        operation = self._bare_document_operation(request, message.version, body)
        if operation is None:
            operation = self._operation_for(body)
        else:
            wrapper = etree.Element(f"{{{self.namespace}}}{operation.name}")
            wrapper.append(body)
            body = wrapper
        request[OPERATION] = operation.name
        self._check_action(request, message.version, operation.name)
        credentials = replace(
            from_soap_headers(message.headers, self.namespace), remote=request.remote
        )
        caller = await self._authenticate(credentials)
        answer = await operation.handler(Call(caller, operation.name, body, self._limits))
        return web.Response(
            body=envelope(message.version, answer),
            headers={"Content-Type": message.version.content_type},
        )

    async def _plain(self, request: web.Request) -> web.Response:
        request[PLAIN_XML] = True
        operation = self._operations.get(request.match_info["operation"])
        if operation is None:
            raise UnknownOperation(
                f"{self.name} has no operation {request.match_info['operation']!r}"
            )
        request[OPERATION] = operation.name
        credentials = replace(
            from_http_basic(
                request.headers.get("Authorization"), request.headers.get("X-School-Key")
            ),
            remote=request.remote,
        )
        data = await read_body(request, self._limits)
        element = self._plain_element(operation, data, request)
        caller = await self._authenticate(credentials)
        answer = await operation.handler(Call(caller, operation.name, element, self._limits))
        return web.Response(body=answer, content_type="application/xml", charset="utf-8")

    def _plain_element(
        self, operation: Operation, data: bytes, request: web.Request
    ) -> etree._Element:
        """The wrapper element; built from the query, or around a bare document."""
        if not data.strip():
            wrapper = etree.Element(f"{{{self.namespace}}}{operation.name}")
            for key, value in request.query.items():
                etree.SubElement(wrapper, f"{{{self.namespace}}}{key}").text = value
            return wrapper
        root = parse(data, self._limits)
        if etree.QName(root).localname == operation.name:
            return root
        if operation.document_parameter is None:
            raise MalformedRequest(f"the body must be a {operation.name} element")
        wrapper = etree.Element(f"{{{self.namespace}}}{operation.name}")
        etree.SubElement(wrapper, f"{{{self.namespace}}}{operation.document_parameter}").append(
            root
        )
        return wrapper

    def _bare_document_operation(
        self, request: web.Request, version: SoapVersion, body: etree._Element
    ) -> Operation | None:
        """The operation whose document is the whole body, without the operation's element:
        PHP's SoapClient sends that when SoapVar($xml, XSD_ANYXML) is the call's only argument.
        Only a document of no namespace, and only when the SOAPAction (or SOAP 1.2's
        ``action``) names an operation that takes a document."""
        qname = etree.QName(body)
        if qname.namespace is not None or qname.localname in self._operations:
            return None
        actions = [request.headers.get("SOAPAction")]
        if version is SoapVersion.V12:
            actions.append(_content_type_action(request.headers.get("Content-Type", "")))
        for action in actions:
            name = re.split(r"[/#:]", (action or "").strip().strip('"').strip())[-1]
            operation = self._operations.get(name)
            if operation is not None and operation.document_parameter is not None:
                return operation
        return None

    def _operation_for(self, body: etree._Element) -> Operation:
        qname = etree.QName(body)
        operation = self._operations.get(qname.localname)
        if operation is None or qname.namespace not in (self.namespace, None):
            raise UnknownOperation(
                f"{self.name} has no operation {{{qname.namespace or ''}}}{qname.localname}"
            )
        return operation

    def _check_action(self, request: web.Request, version: SoapVersion, operation: str) -> None:
        """A SOAPAction (or SOAP 1.2 ``action``) may be absent or empty; if given, it must name
        the operation in the body. SOAP 1.2 callers that also send SOAPAction are tolerated."""
        actions = [request.headers.get("SOAPAction")]
        if version is SoapVersion.V12:
            actions.append(_content_type_action(request.headers.get("Content-Type", "")))
        for action in actions:
            if action is None:
                continue
            action = action.strip().strip('"').strip()
            if not action:
                continue
            if action in (
                operation,
                f"{self.namespace}/{operation}",
                f"{self.namespace}#{operation}",
            ):
                continue
            if re.split(r"[/#:]", action)[-1] == operation:
                continue
            raise MalformedRequest(
                f"the SOAPAction {action!r} does not match the operation {operation} in the body",
                code="ACTION_MISMATCH",
            )


def _content_type_action(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.strip().lower() == "action":
            return value
    return None


def service_routes(name: str, key: web.AppKey[SoapService[Any]]) -> list[web.RouteDef]:
    """Routes of a service built when the application starts (it lives under ``key``):
    ``GET /soap/{name}?wsdl``, ``POST /soap/{name}`` and ``POST /xml/{name}/{operation}``."""

    async def wsdl(request: web.Request) -> web.Response:
        return await request.app[key].wsdl(request)

    async def soap(request: web.Request) -> web.Response:
        return await request.app[key].soap(request)

    async def plain(request: web.Request) -> web.Response:
        return await request.app[key].plain(request)

    return [
        web.get(f"/soap/{name}", wsdl),
        web.post(f"/soap/{name}", soap),
        web.post(f"/xml/{name}/{{operation}}", plain),
    ]

"""A small HTTP relay the .NET tests put between the library and the gateway.

It plays what stands in a real network: a reverse proxy (an ingress) in front of the
gateway, a TLS terminator, or the machine's forward proxy (``http_proxy``). It handles one
request per connection (it asks the gateway to close, so the client opens a new connection
for the next request), records every request, and can be told what to do with the next
ones:

``pass``         forward the request and send the answer back
``swallow``      forward the request, read the gateway's whole answer, then close the client's
                 connection without a word: the call was handled, its answer is lost
``bad_gateway``  answer ``502 Bad Gateway`` with an HTML page without forwarding anything, as
                 an ingress does when no gateway is behind it
``not_found``    answer ``404 Not Found`` with an HTML page without forwarding anything, as a
                 misrouted ingress does
``hang``         forward nothing and answer nothing; hold the connection until the client
                 gives up (or a minute passes)
``truncate``     forward the request, then send the gateway's answer with its Content-Length
                 but only half its body, and close
``garble``       forward the request, then answer ``200 OK`` (text/xml) with the first half of
                 the gateway's body and a Content-Length that matches it: not a whole message
``empty``        forward the request, then answer ``200 OK`` with an empty body
``bad_gzip``     forward the request, then answer ``200 OK`` with ``Content-Encoding: gzip``
                 and a body that is not gzip
``web_page``     answer ``200 OK`` with an HTML page without forwarding anything, as a web
                 server at a wrong address does
``fault:CODE``   answer the gateway's SOAP fault (``soap:Server``) with code CODE without
                 forwarding anything
``fault_after:CODE``
                 forward the request (the gateway acts on it), then answer that fault instead
                 of the gateway's answer

With ``hold`` every request is held that many seconds before it is forwarded, and
``max_in_flight`` records how many requests the relay held at once. With TLS, ``handshakes``
gives the server context of each new connection in turn (then ``tls``): a context the client
cannot agree with makes that handshake fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

_PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nConnection: close\r\n"
    + f"Content-Length: {len(_PAGE)}\r\n\r\n".encode()
    + _PAGE
)

_NOT_FOUND_PAGE = b"<html><body><h1>404 Not Found</h1></body></html>"
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nConnection: close\r\n"
    + f"Content-Length: {len(_NOT_FOUND_PAGE)}\r\n\r\n".encode()
    + _NOT_FOUND_PAGE
)


_WEB_PAGE = b"<html><body><h1>Welcome</h1></body></html>"
WEB_PAGE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
    + f"Content-Length: {len(_WEB_PAGE)}\r\n\r\n".encode()
    + _WEB_PAGE
)


def soap_fault(code: str) -> bytes:
    """The gateway's SOAP 1.1 fault for a server-side error with ``code``, as an HTTP answer."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        "<soap:Fault><faultcode>soap:Server</faultcode>"
        f"<faultstring>GatewayException:an injected {code}</faultstring><detail>"
        '<gw:GatewayFault xmlns:gw="urn:fng-gateway:fault">'
        f"<gw:code>{code}</gw:code><gw:requestId>relay</gw:requestId></gw:GatewayFault>"
        "</detail></soap:Fault></soap:Body></soap:Envelope>"
    ).encode()
    return _answer(b"500 Internal Server Error", body, b"text/xml; charset=utf-8")


def _answer(status: bytes, body: bytes, content_type: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 " + status, b"Content-Type: " + content_type, b"Connection: close"]
    head += list(extra)
    head.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _split(answer: bytes) -> tuple[bytes, bytes]:
    """An HTTP answer's head (without Content-Length and Transfer-Encoding) and its whole
    body, de-chunked."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    chunked = any(
        line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower()
        for line in lines
    )
    kept = [
        line
        for line in lines
        if not line.lower().startswith((b"content-length:", b"transfer-encoding:"))
    ]
    if chunked:
        data, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            data, rest = data + rest[:size], rest[size + 2 :]
        body = data
    return b"\r\n".join(kept), body


#: Headers about the hop between client and relay, which are not forwarded.
_HOP = frozenset({"connection", "proxy-connection", "keep-alive", "expect", "te", "upgrade"})


@dataclass(frozen=True)
class Seen:
    """A request the relay received."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class Relay:
    """An HTTP relay on ``host``: to ``upstream`` (``http://host:port``), or, without one, a
    forward proxy that sends each request where its absolute URL says."""

    def __init__(
        self,
        upstream: str | None = None,
        *,
        actions: tuple[str, ...] = (),
        tls: ssl.SSLContext | None = None,
        handshakes: tuple[ssl.SSLContext, ...] = (),
        hold: float = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.upstream = upstream
        self.actions = list(actions)
        self.handshakes = list(handshakes)
        self.hold = hold
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[Seen] = []
        #: Why TLS handshakes failed (OpenSSL's reason, such as UNSUPPORTED_PROTOCOL).
        self.tls_failures: list[str] = []
        self._tls = tls
        self._host = host
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self._host}:{self.port}"

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, self._host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(60):
                if self._tls is not None:
                    context = self.handshakes.pop(0) if self.handshakes else self._tls
                    try:
                        await writer.start_tls(context)
                    except ssl.SSLError as exc:
                        self.tls_failures.append(str(exc.reason))
                        return
                    except (OSError, EOFError) as exc:  # the client gave up the handshake
                        self.tls_failures.append(type(exc).__name__)
                        return
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                action = self.actions.pop(0) if self.actions else "pass"
                answer = await self._answer(action, request, reader)
                if answer:
                    writer.write(answer)
                    await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def _answer(self, action: str, request: Seen, reader: asyncio.StreamReader) -> bytes:
        """What to send back for ``request`` (nothing: close without a word)."""
        kind, _, code = action.partition(":")
        if kind == "bad_gateway":
            return BAD_GATEWAY
        if kind == "not_found":
            return NOT_FOUND
        if kind == "web_page":
            return WEB_PAGE
        if kind == "fault":
            return soap_fault(code)
        if kind == "hang":
            await reader.read()  # until the client closes the connection
            return b""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            answer = await self._forward(request)
        finally:
            self.in_flight -= 1
        head, body = _split(answer)
        xml = b"text/xml; charset=utf-8"
        if kind == "swallow":
            return b""
        if kind == "truncate":
            return (
                head + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2]
            )
        if kind == "garble":
            return _answer(b"200 OK", body[: len(body) // 2], xml)
        if kind == "empty":
            return _answer(b"200 OK", b"", xml)
        if kind == "bad_gzip":
            return _answer(
                b"200 OK", b"\x1f\x8b\x08\x00" + b"not gzip" * 32, xml, b"Content-Encoding: gzip"
            )
        if kind == "fault_after":
            return soap_fault(code)
        assert kind == "pass", action
        return answer

    async def _forward(self, request: Seen) -> bytes:
        """Send the request on (``Connection: close``) and return the whole answer."""
        if self.upstream is not None:
            where = urlsplit(self.upstream)
            path = request.target
        else:
            where = urlsplit(request.target)
            path = where.path + (f"?{where.query}" if where.query else "")
        assert where.hostname is not None and where.port is not None
        reader, writer = await asyncio.open_connection(where.hostname, where.port)
        try:
            head = [f"{request.method} {path} HTTP/1.1"]
            head += [f"{name}: {value}" for name, value in request.headers.items()]
            head.append("Connection: close")
            writer.write("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + request.body)
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> Seen | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            if name.strip().lower() not in _HOP:
                headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, target, headers, body)


@dataclass(frozen=True)
class Certificate:
    certificate: Path
    key: Path
    sha1: str  # upper-case hexadecimal, as .NET's X509Certificate.GetCertHashString() gives it

    def server_context(self) -> ssl.SSLContext:
        """A server context that refuses anything older than TLS 1.2, as current gateways'
        ingresses do."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certificate, self.key)
        return context


def self_signed(directory: Path, host: str = "127.0.0.1") -> Certificate:
    """A self-signed certificate for ``host`` (an IP address), valid for a day."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fng-gateway test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / "relay.crt", directory / "relay.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return Certificate(
        certificate_path, key_path, certificate.fingerprint(hashes.SHA1()).hex().upper()
    )

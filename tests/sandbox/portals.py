"""Calling the sandbox's supplier portals: zeep (in a thread, as it is synchronous) as the
gateway does, and raw SOAP for what zeep cannot be made to send."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import requests
import zeep
from lxml import etree

from gateway.xmlsafe import shipped_schemas_dir

OTS = "http://www.dcsf.gov.uk/open/webservices/ots"
SOAP11 = f"{{{OTS}}}EProcurementServiceSoap"
SOAP12 = f"{{{OTS}}}EProcurementServiceSoap12"
WSDL_PATH = shipped_schemas_dir() / "eproc" / "EProcurementService.wsdl"


def zeep_client(wsdl: str = str(WSDL_PATH)) -> zeep.Client:
    """A zeep client that never goes through a proxy of the machine's environment."""
    session = requests.Session()
    session.trust_env = False
    return zeep.Client(wsdl, transport=zeep.Transport(session=session, operation_timeout=10))


@dataclass
class Portal:
    """One portal's service, called through zeep with an AuthHeader."""

    client: zeep.Client
    address: str
    username: str
    password: str
    binding: str = SOAP11

    def auth_header(self, username: str | None = None, password: str | None = None) -> Any:
        header = self.client.get_element(f"{{{OTS}}}AuthHeader")
        return header(
            Username=self.username if username is None else username,
            Password=self.password if password is None else password,
        )

    async def call(
        self,
        method: str,
        *args: Any,
        username: str | None = None,
        password: str | None = None,
        authenticate: bool = True,
        binding: str | None = None,
    ) -> Any:
        service = self.client.create_service(binding or self.binding, self.address)
        headers = [self.auth_header(username, password)] if authenticate else []
        operation = getattr(service, method)
        return await asyncio.to_thread(operation, *args, _soapheaders=headers)


def read_index(text: str) -> etree._Element:
    """A FetchIndex string as an element (the declaration, UTF-16 as .NET writes it, is
    dropped: the string is already text)."""
    assert text.startswith("<?xml")
    return etree.fromstring(text[text.index("?>") + 2 :].encode())


def index_ids(text: str) -> list[str]:
    return [item.get("uuid", "") for item in read_index(text).iterfind("document")]


def soap12_envelope(
    operation: str, parameters: str = "", *, username: str | None, password: str | None
) -> bytes:
    """A SOAP 1.2 request written by hand (AuthHeader left out when username is None)."""
    header = ""
    if username is not None:
        header = (
            f'<soap:Header><AuthHeader xmlns="{OTS}"><Username>{escape(username)}</Username>'
            f"<Password>{escape(password or '')}</Password></AuthHeader></soap:Header>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">'
        f'{header}<soap:Body><{operation} xmlns="{OTS}">{parameters}</{operation}>'
        "</soap:Body></soap:Envelope>"
    ).encode()


def soap11_envelope(operation: str, parameters: str = "", *, username: str, password: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Header><AuthHeader xmlns="{OTS}"><Username>{escape(username)}</Username>'
        f"<Password>{escape(password)}</Password></AuthHeader></soap:Header>"
        f'<soap:Body><{operation} xmlns="{OTS}">{parameters}</{operation}></soap:Body>'
        "</soap:Envelope>"
    ).encode()

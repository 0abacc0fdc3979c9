"""Who is calling: credentials from a SOAP AuthHeader, WS-Security, or HTTP Basic."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from gateway import ns
from gateway.errors import AuthenticationFailed


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    #: The school database's partner key GUID, as sent (the AuthHeader's ``Database``, the
    #: plain binding's ``X-School-Key``): the one name it has inside the gateway.
    partner_key: str
    #: The client's address, for throttling failed logins.
    remote: str | None = None


def _child_text(parent: etree._Element, localname: str) -> str | None:
    for child in parent:
        if isinstance(child.tag, str) and etree.QName(child).localname == localname:
            return (child.text or "").strip() if localname != "Password" else (child.text or "")
    return None


def from_soap_headers(headers: Sequence[etree._Element], service_namespace: str) -> Credentials:
    """An ``AuthHeader`` (Username, Password, Database), or a WS-Security UsernameToken
    with the Database in an ``AuthHeader`` or a header element of its own."""
    username = password = partner_key = None
    for header in headers:
        qname = etree.QName(header)
        if qname.localname == "AuthHeader" and qname.namespace in (service_namespace, None):
            username = _child_text(header, "Username") or username
            password = _child_text(header, "Password") or password
            partner_key = _child_text(header, "Database") or partner_key
        elif qname.localname == "Database" and qname.namespace in (service_namespace, None):
            partner_key = (header.text or "").strip()
        elif qname.namespace == ns.WSSE and qname.localname == "Security":
            token = header.find(f"{{{ns.WSSE}}}UsernameToken")
            if token is None:
                continue
            name = token.find(f"{{{ns.WSSE}}}Username")
            secret = token.find(f"{{{ns.WSSE}}}Password")
            if (
                secret is not None
                and secret.get("Type", ns.WSSE_PASSWORD_TEXT) != ns.WSSE_PASSWORD_TEXT
            ):
                raise AuthenticationFailed(
                    "only PasswordText UsernameTokens are accepted (send it over TLS)"
                )
            username = (name.text or "").strip() if name is not None else username
            password = (secret.text or "") if secret is not None else password
    if not username or password is None:
        raise AuthenticationFailed(
            "no credentials: send an AuthHeader or a WS-Security UsernameToken"
        )
    if not partner_key:
        raise AuthenticationFailed("no database key: send the Database element of the AuthHeader")
    return Credentials(username=username, password=password, partner_key=partner_key)


def from_http_basic(authorization: str | None, partner_key: str | None) -> Credentials:
    """HTTP Basic credentials, and the partner key from the ``X-School-Key`` header."""
    if not authorization or not authorization[:6].lower() == "basic ":
        raise AuthenticationFailed("no credentials: send HTTP Basic authentication")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationFailed("the HTTP Basic credentials are malformed") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise AuthenticationFailed("the HTTP Basic credentials are malformed")
    if not partner_key:
        raise AuthenticationFailed("no database key: send the X-School-Key header")
    return Credentials(username=username, password=password, partner_key=partner_key.strip())

"""Client authentication at SIMS ID's token endpoint, by authlib.

``client_secret_basic`` is done here rather than by authlib's own encoder, because
RFC 6749 §2.3.1 asks for the client id and secret to be form-urlencoded before they are
joined and base64-encoded, and authlib joins them as they are: a secret with ``:``, ``%``
or a non-ASCII character would otherwise reach SIMS ID garbled.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote_plus

from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from gateway.tenancy.model import AuthMethod, VendorCredentials


def encode_client_secret_basic(
    client: ClientAuth, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    user = quote_plus(client.client_id, safe="")
    password = quote_plus(client.client_secret or "", safe="")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers["Authorization"] = f"Basic {token}"
    return uri, headers, body


def client_auth(vendor: VendorCredentials) -> ClientAuth:
    secret = vendor.credential.get_secret_value()
    method: Any
    if vendor.auth_method is AuthMethod.CLIENT_SECRET_BASIC:
        method = encode_client_secret_basic
    elif vendor.auth_method is AuthMethod.CLIENT_SECRET_POST:
        method = "client_secret_post"
    else:
        method = PrivateKeyJWT(token_endpoint=vendor.token_url)
    return ClientAuth(vendor.client_id, secret, auth_method=method)

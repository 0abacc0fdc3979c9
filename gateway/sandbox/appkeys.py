"""Typed keys of the sandbox application, and the SIMS ID settings it can change live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web
from lxml import etree

from gateway.sandbox.faults import FaultBoard
from gateway.sandbox.state import SandboxState
from gateway.xmlsafe import SchemaRegistry


@dataclass(slots=True)
class SimsIdSettings:
    """How SIMS ID behaves: the lifetime of new tokens, and a fixed issuer if one is set.

    Without a fixed issuer, the issuer is the scheme and host the request was sent to, so
    the sandbox works on any port; SIMS ID and FNG must then be called at the same host.
    """

    token_lifetime: int
    issuer: str | None = None

    def issuer_for(self, request: web.Request) -> str:
        if self.issuer is not None:
            return self.issuer
        return f"{request.scheme}://{request.host}"


SANDBOX_STATE: Final = web.AppKey("sandbox_state", SandboxState)
FAULTS: Final = web.AppKey("sandbox_faults", FaultBoard)
SIMSID: Final = web.AppKey("sandbox_simsid", SimsIdSettings)
SCHEMAS: Final = web.AppKey("sandbox_schemas", SchemaRegistry)
#: The eProcurement standard's WSDL, parsed once; each supplier portal answers a copy.
PORTAL_WSDL: Final = web.AppKey("sandbox_portal_wsdl", etree._ElementTree)

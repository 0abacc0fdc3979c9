"""Typed keys of the sandbox application."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from lxml import etree

from gateway.sandbox.simsid.settings import SimsIdSettings
from gateway.sandbox.state import SandboxState
from gateway.sandbox.switches import FaultBoard
from gateway.xmlsafe import SchemaRegistry

SANDBOX_STATE: Final = web.AppKey("sandbox_state", SandboxState)
FAULTS: Final = web.AppKey("sandbox_faults", FaultBoard)
SIMSID: Final = web.AppKey("sandbox_simsid", SimsIdSettings)
SCHEMAS: Final = web.AppKey("sandbox_schemas", SchemaRegistry)
#: The eProcurement standard's WSDL, parsed once; each supplier portal answers a copy.
PORTAL_WSDL: Final = web.AppKey("sandbox_portal_wsdl", etree._ElementTree)

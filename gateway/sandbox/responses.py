"""The sandbox's HTTP answers in general: XML documents and RFC 9457 problems."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Final

from aiohttp import web
from lxml import etree

XML_CONTENT_TYPE: Final = "application/xml"
PROBLEM_CONTENT_TYPE: Final = "application/problem+json"


def xml_response(
    root: etree._Element, *, status: int = 200, encoding: str = "utf-8"
) -> web.Response:
    """An XML document in ``encoding``, with a declaration saying so (characters the
    encoding lacks are written as character references)."""
    if encoding == "utf-8":
        body = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    else:
        # Written by hand, in double quotes as FMS wrote it.
        declaration = f'<?xml version="1.0" encoding="{encoding}"?>\n'.encode("ascii")
        serialized = etree.tostring(root, xml_declaration=False, encoding=encoding)
        assert isinstance(serialized, bytes)  # only encoding="unicode" gives text
        body = declaration + serialized
    return web.Response(body=body, status=status, content_type=XML_CONTENT_TYPE, charset=encoding)


def problem_text(status: int, detail: str, *, title: str | None = None) -> str:
    """The JSON of an RFC 9457 problem document."""
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return json.dumps(body)


def problem(status: int, detail: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    """An RFC 9457 problem response."""
    return web.Response(
        status=status,
        text=problem_text(status, detail),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )

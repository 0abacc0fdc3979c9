"""Reading the XML callers send, with the gateway's hardened parser (:mod:`gateway.xmlsafe`).

The parser is shared on purpose: it is what keeps hostile XML out. Its refusals are
translated here, where they enter, into the sandbox's own :class:`DocumentRefused`, so
nothing else in the sandbox handles the gateway's exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lxml import etree

from gateway.errors import PayloadTooLarge, XmlRejected
from gateway.sandbox.errors import DocumentRefused, DocumentTooLarge
from gateway.xmlsafe import Limits, parse, parse_text


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except PayloadTooLarge as exc:
        raise DocumentTooLarge(exc.message) from None
    except XmlRejected as exc:
        raise DocumentRefused(exc.message) from None


def read_xml(data: bytes, limits: Limits) -> etree._Element:
    """The root of an untrusted document; :class:`DocumentRefused` if it is not read."""
    with _refusals():
        root = parse(data, limits)
    return root


def read_xml_text(text: str, limits: Limits) -> etree._Element:
    """The root of a document that arrived as a string (XML escaped inside a field)."""
    with _refusals():
        root = parse_text(text, limits)
    return root

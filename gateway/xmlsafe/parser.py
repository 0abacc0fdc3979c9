"""Hardened XML parsing.

Every document from outside goes through :func:`parse`. It refuses, before libxml2
builds anything, what could hurt: bodies over the byte limit, any DTD (and so any entity
declaration), encodings other than UTF-8, UTF-16 and the Latin ones, and more markup than
the element and attribute limits allow (counted conservatively on the raw bytes, so a
flood is refused before it costs memory). libxml2 then parses without entity expansion,
DTD loading or network access, and the exact depth and element counts are checked on the
result.

libxml2 parses in its "huge" mode: its own caps (10 MB a text node, depth 256) would refuse
a large journal sent escaped in one SOAP field well inside the byte limit, which already
bounds every node; the depth limit is ours, checked on the tree.
"""

from __future__ import annotations

import codecs
import copy
import functools
import re
from dataclasses import dataclass
from typing import Any, Final

from lxml import etree

from gateway.errors import PayloadTooLarge, XmlRejected

_DECLARATION: Final = re.compile(rb"^\s*<\?xml[^>]*\?>")
_DECLARED_ENCODING: Final = re.compile(
    rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']"""
)
_ASCII_COMPATIBLE: Final = frozenset(
    {
        "utf-8",
        "utf8",
        "us-ascii",
        "ascii",
        "iso-8859-1",
        "latin1",
        "latin-1",
        "windows-1252",
        "cp1252",
        "iso-8859-15",
    }
)
_STARTS_WITH_MARKUP: Final = re.compile(rb"[ \t\r\n]*<")
_UTF16: Final = frozenset({"utf-16", "utf16", "utf-16le", "utf-16be", "ucs-2"})


@dataclass(frozen=True, slots=True)
class Limits:
    """What one document may contain. Built from :class:`gateway.config.XmlLimits`."""

    max_bytes: int
    max_depth: int
    max_elements: int
    max_attributes: int
    body_timeout: float = 60.0
    #: Documents larger than this are streamed where the reader can (journals).
    stream_above: int = 1024 * 1024

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= 256:
            raise ValueError("max_depth must be between 1 and 256")


#: How every untrusted document is parsed: no DTD, no entities, no network, the byte limit
#: for libxml2's own (see above), no processing instructions, no blank text between elements.
PARSER_OPTIONS: Final[dict[str, Any]] = {
    "resolve_entities": False,
    "load_dtd": False,
    "dtd_validation": False,
    "no_network": True,
    "huge_tree": True,
    "remove_pis": True,
    "remove_blank_text": True,
    "collect_ids": False,
}


def _parser() -> etree.XMLParser:
    return etree.XMLParser(**PARSER_OPTIONS)


# One parser per thread is what lxml recommends; the gateway parses on the event loop.
_PARSER: Final = _parser()


def _to_parsable(data: bytes) -> bytes:
    """Return ``data`` in an encoding whose markup bytes are ASCII, or refuse it."""
    utf16: str | None = None
    if data.startswith(codecs.BOM_UTF8):
        # Only the mark goes: the declaration is checked below like any other. libxml2 follows
        # it, so a UTF-7 (or Shift_JIS, …) document behind a UTF-8 mark would hide its markup
        # from the byte scans and have its whole tree built before the limits are checked.
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        utf16 = "utf-16"
    elif data.startswith(b"<\x00"):
        utf16 = "utf-16-le"
    elif data.startswith(b"\x00<"):
        utf16 = "utf-16-be"
    if utf16 is not None:
        try:
            text = data.decode(utf16)
        except UnicodeDecodeError as exc:
            raise XmlRejected(f"the document is not valid UTF-16: {exc.reason}") from None
        encoded = text.encode("utf-8")
        declared = _DECLARED_ENCODING.match(encoded)
        if declared and declared.group(1).decode().lower() not in _UTF16:
            raise XmlRejected("the document's bytes are UTF-16 but it declares another encoding")
        return _DECLARATION.sub(b"", encoded, count=1)
    declared = _DECLARED_ENCODING.match(data)
    if declared:
        name = declared.group(1).decode().lower()
        if name in _UTF16:
            raise XmlRejected("the document declares UTF-16 but its bytes are not UTF-16")
        if name not in _ASCII_COMPATIBLE:
            raise XmlRejected(f"the encoding {name!r} is not accepted")
    if not _STARTS_WITH_MARKUP.match(data):
        # UTF-32, EBCDIC and the like, which libxml2 would detect by themselves: refused for the
        # same reason as above.
        raise XmlRejected(
            "the document is not well-formed XML: it does not start with markup in an accepted"
            " encoding"
        )
    return data


def screen(data: bytes, limits: Limits) -> bytes:
    """The checks made on a document's bytes before libxml2 sees them: its size, an encoding
    whose markup is ASCII, no DTD or entity declaration, and upper bounds on its elements and
    attributes. Returns the bytes to parse."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"the document is larger than {limits.max_bytes} bytes")
    data = _to_parsable(data)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XmlRejected("document type declarations and entities are not allowed")
    if data.count(b"<") > 2 * limits.max_elements + 16:
        raise XmlRejected(f"the document has more than {limits.max_elements} elements")
    if data.count(b"=") > limits.max_attributes:
        raise XmlRejected(f"the document has more than {limits.max_attributes} attributes")
    return data


def parse(data: bytes, limits: Limits) -> etree._Element:
    """Parse one untrusted document and return its root element."""
    data = screen(data, limits)
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"the document is not well-formed XML: {exc.msg}") from None
    if root is None:
        raise XmlRejected("the document is empty")
    docinfo: etree.DocInfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # type: ignore[attr-defined]
        raise XmlRejected("document type declarations and entities are not allowed")
    check_shape(root, limits)
    return root


_COUNT_ELEMENTS: Final = etree.XPath("count(//*)")


@functools.cache
def _deeper_than(depth: int) -> etree.XPath:
    return etree.XPath("boolean(/*" + "/*" * depth + ")")


def check_shape(root: etree._Element, limits: Limits) -> None:
    """Exact depth and element checks on a parsed tree (cheap: both run inside libxml2, and
    their expressions are compiled once)."""
    if _deeper_than(limits.max_depth)(root):
        raise XmlRejected(f"the document is nested deeper than {limits.max_depth} levels")
    if float(_COUNT_ELEMENTS(root)) > limits.max_elements:  # type: ignore[arg-type]
        raise XmlRejected(f"the document has more than {limits.max_elements} elements")


def unqualified(element: etree._Element, namespace: str | None = None) -> etree._Element:
    """``element`` with its elements of ``namespace`` (of every namespace when None) renamed,
    in place, to their local names, and the declarations no longer used dropped."""
    for item in element.iter():
        tag = item.tag
        if (
            isinstance(tag, str)
            and tag[0] == "{"
            and (namespace is None or tag[1 : tag.index("}")] == namespace)
        ):
            item.tag = tag[tag.index("}") + 1 :]
    etree.cleanup_namespaces(element)
    return element


def qualified(element: etree._Element, namespace: str) -> etree._Element:
    """A copy of ``element`` with every element of no namespace put in ``namespace``,
    declared as the default namespace at the root."""
    default: dict[Any, str] = {None: namespace}  # lxml's stubs want no None prefix
    root = etree.Element(f"{{{namespace}}}{etree.QName(element).localname}", nsmap=default)
    root.attrib.update(element.attrib)
    root.text = element.text
    for child in element:
        root.append(copy.deepcopy(child))
    for item in root.iterdescendants():
        tag = item.tag
        if isinstance(tag, str) and tag[0] != "{":
            item.tag = f"{{{namespace}}}{tag}"
    return root


def as_utf8_document(text: str) -> bytes:
    """A document received as a string, as UTF-8 bytes with a declaration that says so."""
    body = _DECLARATION.sub(b"", text.encode("utf-8"), count=1).lstrip()
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def parse_text(text: str, limits: Limits) -> etree._Element:
    """Parse a document that arrived as a string (XML sent escaped inside a SOAP field)."""
    return parse(utf8_document(text, limits), limits)


def utf8_document(text: str, limits: Limits) -> bytes:
    """A document that arrived as a string, as UTF-8 bytes without its declaration (UTF-8 is
    what XML assumes without one), screened as :func:`parse` screens bytes but not parsed.
    They can be parsed, streamed, or sent on as they are."""
    data = text.encode("utf-8")
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"the document is larger than {limits.max_bytes} bytes")
    if _DECLARATION.match(data):  # a copy only when there is a declaration to drop
        data = _DECLARATION.sub(b"", data, count=1)
    return screen(data, limits)

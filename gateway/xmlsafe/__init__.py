"""Hardened XML: bounded, DTD-free parsing and schemas compiled once."""

from gateway.xmlsafe.parser import (
    PARSER_OPTIONS,
    Limits,
    as_utf8_document,
    parse,
    parse_text,
    qualified,
    screen,
    unqualified,
    utf8_document,
)
from gateway.xmlsafe.schemas import SchemaIssue, SchemaRegistry, shipped_schemas_dir

__all__ = [
    "PARSER_OPTIONS",
    "Limits",
    "SchemaIssue",
    "SchemaRegistry",
    "as_utf8_document",
    "parse",
    "parse_text",
    "qualified",
    "screen",
    "shipped_schemas_dir",
    "unqualified",
    "utf8_document",
]

"""Hardened XML: bounded, DTD-free parsing and schemas compiled once."""

from gateway.xmlsafe.parser import (
    Limits,
    as_utf8_document,
    parse,
    parse_text,
    parse_text_source,
)
from gateway.xmlsafe.schemas import SchemaIssue, SchemaRegistry, shipped_schemas_dir

__all__ = [
    "Limits",
    "SchemaIssue",
    "SchemaRegistry",
    "as_utf8_document",
    "parse",
    "parse_text",
    "parse_text_source",
    "shipped_schemas_dir",
]

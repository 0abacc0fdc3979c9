"""FNG's XML answers, parsed with the same guards as any outside document and checked
against their schemas before anything uses them."""

from __future__ import annotations

from lxml import etree

from gateway.errors import UpstreamError, XmlRejected
from gateway.fng.client import FngResponse
from gateway.xmlsafe import Limits, SchemaRegistry, parse


def answer_document(
    response: FngResponse, schemas: SchemaRegistry, schema: str, limits: Limits, what: str
) -> etree._Element:
    """The document FNG answered ``what`` with, or :class:`UpstreamError`."""
    try:
        root = parse(response.body, limits)
    except XmlRejected as exc:
        raise UpstreamError(f"FNG answered {what} with a broken document: {exc.message}") from None
    issues = schemas.issues(schema, root)
    if issues:
        raise UpstreamError(f"FNG answered {what} with an unexpected document: {issues[0]}")
    return root

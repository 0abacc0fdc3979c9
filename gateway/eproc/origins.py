"""The content order an authorised order was made from, as the gateway collected it.

FNG names it on the authorised order (``source`` and ``documentId``: the portal and the
document id the gateway delivered it under); the gateway's document ledger still holds it
as the portal sent it, so the order's edits can be checked against what FMS allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from lxml import etree

from gateway.eproc.verdicts import ebis_document
from gateway.errors import XmlRejected
from gateway.store import Store
from gateway.store.tables import eproc_documents, portals
from gateway.xmlsafe import Limits, parse


@dataclass(frozen=True, slots=True)
class Origin:
    """The content order FNG says an authorised order was made from."""

    source: str
    document_id: str

    def __str__(self) -> str:
        return f"document {self.document_id} of portal {self.source}"


def origin_of(item: etree._Element) -> Origin | None:
    """The origin an ``AuthorisedOrder`` of FNG's answer names, if it names one."""
    source, document_id = item.get("source"), item.get("documentId")
    if not source or not document_id:
        return None
    return Origin(source, document_id)


async def content_order(
    store: Store, limits: Limits, database_id: int, origin: Origin
) -> etree._Element | None:
    """The content order as the portal sent it, or None when the gateway never collected
    it (or it is not a readable order)."""
    async with store.read() as conn:
        content = await conn.scalar(
            sa.select(eproc_documents.c.content)
            .select_from(eproc_documents.join(portals, eproc_documents.c.portal_id == portals.c.id))
            .where(
                portals.c.database_id == database_id,
                portals.c.name == origin.source,
                eproc_documents.c.document_id == origin.document_id,
                eproc_documents.c.doc_type == "order",
            )
        )
    if content is None:
        return None
    try:
        root = ebis_document(parse(bytes(content), limits))
    except XmlRejected:
        return None
    return root if root.tag == "Order" else None


async def portal_names(store: Store, database_id: int) -> frozenset[str]:
    """The names of a school database's portals."""
    async with store.read() as conn:
        names = await conn.scalars(
            sa.select(portals.c.name).where(portals.c.database_id == database_id)
        )
        return frozenset(names)

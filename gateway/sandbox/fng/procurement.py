"""FNG's eProcurement side of the database: delivered documents and authorised orders.

Each function runs inside a transaction its caller holds, so that a check and the write
it allows happen atomically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy as sa
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import tables as t
from gateway.sandbox.tables import now_iso

#: What FNG accepts from the gateway.
DELIVERED_TYPES: Final = ("order", "invoice", "creditnote")

Delivery = Literal["created", "existing", "conflict"]


@dataclass(frozen=True, slots=True)
class AuthorisedOrder:
    """An order authorised in FNG: its id, supplier, when, and the eBIS-XML ``Order``."""

    order_id: str
    supplier_duns: str
    authorised_at: str
    order_xml: str


async def deliver(
    conn: AsyncConnection,
    database_id: int,
    source: str,
    document_id: str,
    doc_type: str,
    body: bytes,
) -> Delivery:
    """Store a document once per (database, source, id). A redelivery is ``existing`` only
    if identical (same type, same bytes); anything else under that key is a ``conflict``."""
    d = t.eproc_documents
    digest = hashlib.sha256(body).hexdigest()
    found = (
        await conn.execute(
            sa.select(d.c.doc_type, d.c.body_sha256)
            .where(d.c.database_id == database_id)
            .where(d.c.source == source)
            .where(d.c.document_id == document_id)
        )
    ).first()
    if found is not None:
        same = found.doc_type == doc_type and found.body_sha256 == digest
        return "existing" if same else "conflict"
    await conn.execute(
        sa.insert(d).values(
            database_id=database_id,
            source=source,
            document_id=document_id,
            doc_type=doc_type,
            body=body,
            body_sha256=digest,
            received_at=now_iso(),
        )
    )
    return "created"


async def add_authorised_order(
    conn: AsyncConnection, database_id: int, order_id: str, supplier_duns: str, order_xml: str
) -> None:
    ao = t.authorised_orders
    clash = await conn.scalar(
        sa.select(ao.c.id).where(ao.c.database_id == database_id).where(ao.c.order_id == order_id)
    )
    if clash is not None:
        raise ValueError(f"database {database_id} already has an authorised order {order_id}")
    await conn.execute(
        sa.insert(ao).values(
            database_id=database_id,
            order_id=order_id,
            supplier_duns=supplier_duns,
            order_xml=order_xml,
            authorised_at=now_iso(),
            sent_at=None,
        )
    )


async def order_count(conn: AsyncConnection, database_id: int) -> int:
    ao = t.authorised_orders
    found = await conn.scalar(
        sa.select(sa.func.count()).select_from(ao).where(ao.c.database_id == database_id)
    )
    return int(found or 0)


async def pending_orders(conn: AsyncConnection, database_id: int) -> list[AuthorisedOrder]:
    """The database's authorised orders not yet sent, oldest first."""
    ao = t.authorised_orders
    rows = (
        await conn.execute(
            sa.select(ao)
            .where(ao.c.database_id == database_id)
            .where(ao.c.sent_at.is_(None))
            .order_by(ao.c.id)
        )
    ).all()
    return [
        AuthorisedOrder(row.order_id, row.supplier_duns, row.authorised_at, row.order_xml)
        for row in rows
    ]


async def mark_sent(conn: AsyncConnection, database_id: int, order_id: str) -> bool | None:
    """Mark an order sent: True if it was pending, False if already sent, None if unknown."""
    ao = t.authorised_orders
    sent_at = await conn.scalar(
        sa.select(sa.func.coalesce(ao.c.sent_at, ""))
        .where(ao.c.database_id == database_id)
        .where(ao.c.order_id == order_id)
    )
    if sent_at is None:
        return None
    if sent_at:
        return False
    await conn.execute(
        sa.update(ao)
        .where(ao.c.database_id == database_id)
        .where(ao.c.order_id == order_id)
        .values(sent_at=now_iso())
    )
    return True


def _decode(body: bytes) -> str:
    """A delivered body as text (it was well-formed when stored, in one of XML's encodings)."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        return str(etree.tostring(etree.fromstring(body, parser), encoding="unicode"))


async def delivered_documents(
    conn: AsyncConnection, database_id: int | None
) -> list[dict[str, Any]]:
    d = t.eproc_documents
    query = sa.select(d).order_by(d.c.id)
    if database_id is not None:
        query = query.where(d.c.database_id == database_id)
    rows = (await conn.execute(query)).all()
    return [
        {
            "database_id": row.database_id,
            "source": row.source,
            "document_id": row.document_id,
            "type": row.doc_type,
            "body": _decode(row.body),
            "received_at": row.received_at,
        }
        for row in rows
    ]


async def all_authorised_orders(
    conn: AsyncConnection, database_id: int | None
) -> list[dict[str, Any]]:
    ao = t.authorised_orders
    query = sa.select(ao).order_by(ao.c.id)
    if database_id is not None:
        query = query.where(ao.c.database_id == database_id)
    rows = (await conn.execute(query)).all()
    return [
        {
            "database_id": row.database_id,
            "id": row.order_id,
            "supplier_duns": row.supplier_duns,
            "authorised_at": row.authorised_at,
            "state": "pending" if row.sent_at is None else "sent",
            "sent_at": row.sent_at,
            "order_xml": row.order_xml,
        }
        for row in rows
    ]

"""eProcurement in FNG (``state.procurement``): the documents the gateway delivered from
supplier portals, and the orders authorised in FNG for the gateway to send to suppliers.

The functions below the class run inside a transaction their caller holds, so that a
check and the write it allows happen atomically.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, Literal

import sqlalchemy as sa
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import ebis
from gateway.sandbox import tables as t
from gateway.sandbox.errors import DocumentRefused
from gateway.sandbox.fng.databases import new_guid, require_database
from gateway.sandbox.parsing import read_xml_text
from gateway.sandbox.stats import SandboxStats
from gateway.sandbox.store import SandboxStore

#: What FNG accepts from the gateway.
DELIVERED_TYPES: Final = ("order", "invoice", "creditnote")
ORDER_ID: Final = re.compile(r"[A-Za-z0-9._~-]{1,100}")

Delivery = Literal["created", "existing", "conflict"]

#: What a generated authorised order holds when none is given.
_GENERATED_LINES: Final = (
    ebis.OrderLine(1, "P-100", "Exercise books, A4, pack of 10", "3", Decimal("2.50")),
    ebis.OrderLine(2, "P-220", "Whiteboard markers, assorted, box of 12", "2", Decimal("6.75")),
)
#: FMS's commodity class for a line without one, and the demo's "<LedgerCode>-<Fund>".
_NO_COMMODITY_CLASS: Final = "00 00 00 00"
_LEDGER_FUND: Final = "1001-01"
GLN_LENGTH: Final = 13
#: A content order's (source, document id) parts, as a portal's index names documents.
_DOCUMENT_KEY: Final = re.compile(r"\S{1,100}")


def _by_gln(number: str | None) -> bool:
    """Whether FMS names the party by its GLN (13 digits) rather than its DUNS."""
    return number is not None and len(number) == GLN_LENGTH


def generated_order(
    *, number: str, supplier_duns: str, buyer_duns: str | None, order_date: date
) -> str:
    """An authorised order (PUO) as FMS exports one, for a supplier: each party by its DUNS
    or its GLN, and each line with its commodity class, ledger code and fund, and delivery
    date (the ASAP term's: the day it was raised)."""
    lines = [
        replace(
            line,
            commodity_class=_NO_COMMODITY_CLASS,
            narrative=_LEDGER_FUND,
            preferred_date=order_date,
        )
        for line in _GENERATED_LINES
    ]
    root = ebis.order(
        number=number,
        order_date=order_date,
        supplier_duns=None if _by_gln(supplier_duns) else supplier_duns,
        supplier_gln=supplier_duns if _by_gln(supplier_duns) else None,
        buyer_duns=None if _by_gln(buyer_duns) else buyer_duns,
        buyer_gln=buyer_duns if _by_gln(buyer_duns) else None,
        lines=lines,
        order_type="PUO",
        user=None,
        originating_software=("SIMS", "FMS6", "FNG sandbox"),
    )
    return ebis.to_text(root)


@dataclass(frozen=True, slots=True)
class AuthorisedOrder:
    """An order authorised in FNG: its id, supplier, when, and the eBIS-XML ``Order``."""

    order_id: str
    supplier_duns: str
    authorised_at: str
    order_xml: str
    #: (source, document id) of the content order it was made from, if it was.
    origin: tuple[str, str] | None = None


class Procurement:
    """FNG's delivered documents and authorised orders."""

    def __init__(self, store: SandboxStore, stats: SandboxStats) -> None:
        self._store = store
        self._stats = stats

    async def deliver(
        self, database_id: int, source: str, document_id: str, doc_type: str, body: bytes
    ) -> Delivery:
        """Store a delivered document once; ``existing`` for an identical redelivery,
        ``conflict`` for other content under the same (source, document id)."""
        async with self._store.write() as conn:
            outcome = await _deliver(conn, database_id, source, document_id, doc_type, body)
        if outcome == "created":
            self._stats.documents_received += 1
        return outcome

    async def pending_orders(self, database_id: int) -> list[AuthorisedOrder]:
        async with self._store.read() as conn:
            return await _pending_orders(conn, database_id)

    async def mark_order_sent(self, database_id: int, order_id: str) -> bool | None:
        """True if the order was pending and is now sent, False if it was sent already,
        None if the database has no such order."""
        async with self._store.write() as conn:
            changed = await _mark_sent(conn, database_id, order_id)
        if changed:
            self._stats.orders_sent += 1
        return changed

    async def reopen_authorised_order(self, database_id: int, order_id: str) -> None:
        """Make a sent order pending again, as when the school prints it again: the gateway
        is to send it once more (as a copy). LookupError if there is no such order."""
        async with self._store.write() as conn:
            if not await _reopen_order(conn, database_id, order_id):
                raise LookupError(f"database {database_id} has no authorised order {order_id}")

    async def add_authorised_order(
        self,
        database_id: int,
        *,
        supplier_duns: str,
        order_xml: str | None = None,
        order_id: str | None = None,
        buyer_duns: str | None = None,
        content_order: tuple[str, str] | None = None,
    ) -> str:
        """Authorise an order in FNG, pending dispatch to the supplier; return its id.

        Without ``order_xml``, an authorised order (type PUO) is generated for the
        supplier, its buyer ``buyer_duns`` (a DUNS, or a GLN of 13 digits; left out when
        None). ``order_id`` defaults to a new GUID. ``content_order`` is the (source,
        document id) of the delivered content order it was made from, if it was.
        """
        ebis.require_duns(supplier_duns, "supplier_duns")
        if content_order is not None and not all(
            _DOCUMENT_KEY.fullmatch(part) for part in content_order
        ):
            raise ValueError(
                "content_order is a source and a document id, each 1 to 100 characters"
            )
        if buyer_duns is not None:
            ebis.require_duns(buyer_duns, "buyer_duns")
        order_id = order_id if order_id is not None else new_guid()
        if not ORDER_ID.fullmatch(order_id):
            raise ValueError("an order id has 1 to 100 letters, digits, '.', '_', '~' or '-'")
        if order_xml is not None:
            try:
                root = read_xml_text(order_xml, ebis.LIMITS)
            except DocumentRefused as exc:
                raise ValueError(f"order_xml: {exc.message}") from None
            if root.tag != "Order":
                raise ValueError("order_xml must be an eBIS-XML Order document")
        async with self._store.write() as conn:
            await require_database(conn, database_id)
            if order_xml is None:
                count = await _order_count(conn, database_id)
                order_xml = generated_order(
                    number=f"PO-{count + 1:05d}",
                    supplier_duns=supplier_duns,
                    buyer_duns=buyer_duns,
                    order_date=datetime.now(UTC).date(),
                )
            await _add_authorised_order(
                conn, database_id, order_id, supplier_duns, order_xml, content_order
            )
        return order_id

    async def documents(self, database_id: int | None = None) -> list[dict[str, Any]]:
        """Documents delivered to FNG (of one database, or all), oldest first."""
        async with self._store.read() as conn:
            return await _delivered_documents(conn, database_id)

    async def authorised_orders(self, database_id: int | None = None) -> list[dict[str, Any]]:
        """Authorised orders (of one database, or all), each ``pending`` or ``sent``."""
        async with self._store.read() as conn:
            return await _all_authorised_orders(conn, database_id)


# -- inside a transaction the caller holds -------------------------------------------------


async def _deliver(
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
            received_at=t.now_iso(),
        )
    )
    return "created"


async def _add_authorised_order(
    conn: AsyncConnection,
    database_id: int,
    order_id: str,
    supplier_duns: str,
    order_xml: str,
    origin: tuple[str, str] | None = None,
) -> None:
    ao = t.authorised_orders
    clash = await conn.scalar(
        sa.select(ao.c.id).where(ao.c.database_id == database_id).where(ao.c.order_id == order_id)
    )
    if clash is not None:
        raise ValueError(f"database {database_id} already has an authorised order {order_id}")
    added = await conn.execute(
        sa.insert(ao).values(
            database_id=database_id,
            order_id=order_id,
            supplier_duns=supplier_duns,
            order_xml=order_xml,
            authorised_at=t.now_iso(),
            sent_at=None,
        )
    )
    if origin is not None:
        (key,) = added.inserted_primary_key or (None,)
        source, document_id = origin
        await conn.execute(
            sa.insert(t.authorised_order_origins).values(
                authorised_order_id=key, source=source, document_id=document_id
            )
        )


async def _order_count(conn: AsyncConnection, database_id: int) -> int:
    ao = t.authorised_orders
    found = await conn.scalar(
        sa.select(sa.func.count()).select_from(ao).where(ao.c.database_id == database_id)
    )
    return int(found or 0)


async def _pending_orders(conn: AsyncConnection, database_id: int) -> list[AuthorisedOrder]:
    """The database's authorised orders not yet sent, oldest first."""
    ao, origins = t.authorised_orders, t.authorised_order_origins
    rows = (
        await conn.execute(
            sa.select(ao, origins.c.source, origins.c.document_id)
            .select_from(ao.outerjoin(origins, origins.c.authorised_order_id == ao.c.id))
            .where(ao.c.database_id == database_id)
            .where(ao.c.sent_at.is_(None))
            .order_by(ao.c.id)
        )
    ).all()
    return [
        AuthorisedOrder(
            row.order_id,
            row.supplier_duns,
            row.authorised_at,
            row.order_xml,
            None if row.source is None else (row.source, row.document_id),
        )
        for row in rows
    ]


async def _reopen_order(conn: AsyncConnection, database_id: int, order_id: str) -> bool:
    """Make a sent order pending again (the school printed it again); False if unknown."""
    ao = t.authorised_orders
    result = await conn.execute(
        sa.update(ao)
        .where(ao.c.database_id == database_id)
        .where(ao.c.order_id == order_id)
        .values(sent_at=None)
    )
    return bool(result.rowcount)


async def _mark_sent(conn: AsyncConnection, database_id: int, order_id: str) -> bool | None:
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
        .values(sent_at=t.now_iso())
    )
    return True


def _decode(body: bytes) -> str:
    """A delivered body as text (it was well-formed when stored, in one of XML's encodings)."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        return str(etree.tostring(etree.fromstring(body, parser), encoding="unicode"))


async def _delivered_documents(
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


async def _all_authorised_orders(
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

"""eProcurement's side of the database: FNG's delivered documents and authorised orders,
and the supplier portals with their queued documents and received orders.

Each function runs inside a transaction its caller holds, so that a check and the write
it allows happen atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import sqlalchemy as sa
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import tables as t
from gateway.sandbox.ledger import now_iso

#: What FNG accepts from the gateway, and what a portal's index may list.
DELIVERED_TYPES: Final = ("order", "invoice", "creditnote")
PORTAL_TYPES: Final = ("order", "invoice", "creditnote", "quote")

#: The methods of a supplier portal's EProcurementService, each counted per portal.
PORTAL_METHODS: Final = (
    "ChangePassword",
    "FetchIndex",
    "FetchIndexFromDate",
    "UpdateDocumentStatus",
    "FetchDoc",
    "SendOrder",
    "ResetAll",
)

Delivery = Literal["created", "existing", "conflict"]


def portal_path(name: str) -> str:
    """The path of a portal's service (its WSDL is this plus ``?wsdl``)."""
    return f"/portals/{name}/EProcurementService.asmx"


@dataclass(slots=True)
class PortalCounters:
    """What one supplier portal saw: calls per method (refused ones too), successful
    ``UpdateDocumentStatus(id, true)`` calls, and orders stored by ``SendOrder``."""

    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PORTAL_METHODS, 0))
    documents_acknowledged: int = 0
    orders_received: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "documents_acknowledged": self.documents_acknowledged,
            "orders_received": self.orders_received,
        }


def iso_utc(moment: datetime) -> str:
    """A moment as the sandbox stores it: UTC, to the millisecond (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


# -- FNG -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorisedOrder:
    """An order authorised in FNG: its id, supplier, when, and the eBIS-XML ``Order``."""

    order_id: str
    supplier_duns: str
    authorised_at: str
    order_xml: str
    #: (source, document id) of the content order it was made from, if it was.
    origin: tuple[str, str] | None = None


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
            authorised_at=now_iso(),
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


async def order_count(conn: AsyncConnection, database_id: int) -> int:
    ao = t.authorised_orders
    found = await conn.scalar(
        sa.select(sa.func.count()).select_from(ao).where(ao.c.database_id == database_id)
    )
    return int(found or 0)


async def pending_orders(conn: AsyncConnection, database_id: int) -> list[AuthorisedOrder]:
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


# -- supplier portals ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortalAccount:
    """What a portal checks a call against."""

    name: str
    username: str
    password: str
    supplier_duns: str
    refuse_auth: bool


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document to queue on a portal; ``uuid`` defaults to a new GUID, ``created`` to
    now (naive means UTC)."""

    doc_type: str
    xml: str
    uuid: str | None = None
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One ``document`` of a FetchIndex ``doclist``."""

    uuid: str
    doc_type: str
    created_at: str


async def add_portal(
    conn: AsyncConnection, name: str, username: str, password: str, supplier_duns: str
) -> None:
    p = t.portals
    if await conn.scalar(sa.select(p.c.name).where(p.c.name == name)) is not None:
        raise ValueError(f"there is already a portal {name}")
    await conn.execute(
        sa.insert(p).values(
            name=name,
            username=username,
            password=password,
            supplier_duns=supplier_duns,
            refuse_auth=False,
        )
    )


async def portal_account(conn: AsyncConnection, name: str) -> PortalAccount | None:
    p = t.portals
    row = (await conn.execute(sa.select(p).where(p.c.name == name))).first()
    if row is None:
        return None
    return PortalAccount(row.name, row.username, row.password, row.supplier_duns, row.refuse_auth)


async def require_portal(conn: AsyncConnection, name: str) -> None:
    if await portal_account(conn, name) is None:
        raise LookupError(f"no portal {name}")


async def add_documents(
    conn: AsyncConnection, name: str, rows: Sequence[tuple[str, str, str, str]]
) -> None:
    """Queue documents given as (uuid, type, xml, created_at); ids are unique per portal."""
    await require_portal(conn, name)
    pd = t.portal_documents
    uuids = [row[0] for row in rows]
    clash = await conn.scalar(
        sa.select(pd.c.uuid).where(pd.c.portal == name).where(pd.c.uuid.in_(uuids)).limit(1)
    )
    if clash is None and len(set(uuids)) != len(uuids):
        clash = next(uuid for uuid in uuids if uuids.count(uuid) > 1)
    if clash is not None:
        raise ValueError(f"portal {name} already has a document {clash}")
    if rows:
        await conn.execute(
            sa.insert(pd),
            [
                {
                    "portal": name,
                    "uuid": uuid,
                    "doc_type": doc_type,
                    "xml": xml,
                    "created_at": created_at,
                    "processed": False,
                }
                for uuid, doc_type, xml, created_at in rows
            ],
        )


async def index(conn: AsyncConnection, name: str, *, after: str | None) -> list[IndexEntry]:
    """Unprocessed documents (``after`` None), or every one created after ``after``."""
    pd = t.portal_documents
    query = (
        sa.select(pd.c.uuid, pd.c.doc_type, pd.c.created_at)
        .where(pd.c.portal == name)
        .order_by(pd.c.created_at, pd.c.id)
    )
    if after is None:
        query = query.where(pd.c.processed == sa.false())
    else:
        query = query.where(pd.c.created_at > after)
    rows = (await conn.execute(query)).all()
    return [IndexEntry(row.uuid, row.doc_type, row.created_at) for row in rows]


async def document(conn: AsyncConnection, name: str, uuid: str) -> str | None:
    pd = t.portal_documents
    found = await conn.scalar(
        sa.select(pd.c.xml).where(pd.c.portal == name).where(pd.c.uuid == uuid)
    )
    return None if found is None else str(found)


async def set_processed(conn: AsyncConnection, name: str, uuid: str, processed: bool) -> bool:
    """Set a document's processed flag; False if the portal has no such document."""
    pd = t.portal_documents
    result = await conn.execute(
        sa.update(pd)
        .where(pd.c.portal == name)
        .where(pd.c.uuid == uuid)
        .values(processed=processed)
    )
    return bool(result.rowcount)


async def reset_all(conn: AsyncConnection, name: str) -> int:
    pd = t.portal_documents
    result = await conn.execute(sa.update(pd).where(pd.c.portal == name).values(processed=False))
    return int(result.rowcount)


async def set_password(conn: AsyncConnection, name: str, password: str) -> None:
    p = t.portals
    result = await conn.execute(sa.update(p).where(p.c.name == name).values(password=password))
    if result.rowcount != 1:
        raise LookupError(f"no portal {name}")


async def set_refuse_auth(conn: AsyncConnection, name: str, refuse: bool) -> None:
    p = t.portals
    result = await conn.execute(sa.update(p).where(p.c.name == name).values(refuse_auth=refuse))
    if result.rowcount != 1:
        raise LookupError(f"no portal {name}")


async def receive_order(
    conn: AsyncConnection, name: str, xml: str, buyers_order_number: str | None
) -> None:
    await conn.execute(
        sa.insert(t.portal_orders).values(
            portal=name,
            received_at=now_iso(),
            buyers_order_number=buyers_order_number,
            xml=xml,
        )
    )


async def portal_names(conn: AsyncConnection) -> Sequence[str]:
    return (await conn.scalars(sa.select(t.portals.c.name).order_by(t.portals.c.name))).all()


async def portal_view(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    """A portal's account, switches, documents and received orders (counters are the
    caller's: they live in memory)."""
    account = await portal_account(conn, name)
    if account is None:
        return None
    pd, po = t.portal_documents, t.portal_orders
    documents = (
        await conn.execute(
            sa.select(pd).where(pd.c.portal == name).order_by(pd.c.created_at, pd.c.id)
        )
    ).all()
    orders = (await conn.execute(sa.select(po).where(po.c.portal == name).order_by(po.c.id))).all()
    return {
        "name": account.name,
        "path": portal_path(account.name),
        "username": account.username,
        "password": account.password,
        "supplier_duns": account.supplier_duns,
        "switches": {"refuse_auth": account.refuse_auth},
        "documents": [
            {
                "uuid": row.uuid,
                "type": row.doc_type,
                "created": row.created_at,
                "processed": row.processed,
                "xml": row.xml,
            }
            for row in documents
        ],
        "orders": [
            {
                "received_at": row.received_at,
                "buyers_order_number": row.buyers_order_number,
                "xml": row.xml,
            }
            for row in orders
        ],
    }

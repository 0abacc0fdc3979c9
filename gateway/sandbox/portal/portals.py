"""The supplier portals' side of the database: accounts, queued documents, received orders.

Each function runs inside a transaction its caller holds, so that a check and the write
it allows happen atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import tables as t
from gateway.sandbox.tables import now_iso

#: What a portal's index may list.
PORTAL_TYPES: Final = ("order", "invoice", "creditnote", "quote")


def portal_path(name: str) -> str:
    """The path of a portal's service (its WSDL is this plus ``?wsdl``)."""
    return f"/portals/{name}/EProcurementService.asmx"


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

"""Supplier portals (``state.portals``): each portal's one account, its switches, the
documents it queues for collection and the orders it received.

The functions below the class run inside a transaction their caller holds, so that a
check and the write it allows happen atomically.
"""

from __future__ import annotations

import re
import secrets
import uuid as uuid_module
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import ebis
from gateway.sandbox import tables as t
from gateway.sandbox.stats import PortalCounters, SandboxStats
from gateway.sandbox.store import SandboxStore

#: What a portal's index may list.
PORTAL_TYPES: Final = ("order", "invoice", "creditnote", "quote")
PORTAL_NAME: Final = re.compile(r"[a-z0-9-]{1,40}")
DOCUMENT_UUID: Final = re.compile(r"\S{1,100}")
USERNAME_LENGTH: Final = 50
PASSWORD_LENGTH: Final = 256


def portal_path(name: str) -> str:
    """The path of a portal's service (its WSDL is this plus ``?wsdl``)."""
    return f"/portals/{name}/EProcurementService.asmx"


def new_portal_password() -> str:
    """A portal password that only survives XML escaping done right (``&`` and ``<``)."""
    return f"sbx-{secrets.token_urlsafe(18)}&<{secrets.token_hex(3)}"


def _require_xml_text(value: str, what: str) -> None:
    """Refuse text that XML cannot carry (control characters, lone surrogates)."""
    try:
        etree.Element("x").text = value
    except ValueError:
        raise ValueError(f"{what} holds characters XML cannot carry") from None


@dataclass(frozen=True, slots=True)
class PortalAccount:
    """What a portal checks a call against."""

    name: str
    username: str
    password: str
    #: Every supplier the portal serves; the first is its own.
    suppliers: tuple[str, ...]
    refuse_auth: bool

    @property
    def supplier_duns(self) -> str:
        return self.suppliers[0]


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document to queue on a portal; ``uuid`` defaults to a new GUID, ``created`` to
    now (naive means UTC). With ``standard`` False its index entry may break the standard
    (an id over 100 characters or with spaces, a type it does not name), for clients' tests."""

    doc_type: str
    xml: str
    uuid: str | None = None
    created: datetime | None = None
    standard: bool = True


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One ``document`` of a FetchIndex ``doclist``."""

    uuid: str
    doc_type: str
    created_at: str


class Portals:
    """The supplier portals the sandbox runs, by name."""

    def __init__(self, store: SandboxStore, stats: SandboxStats) -> None:
        self._store = store
        self._stats = stats

    async def add(
        self, name: str, *, username: str, password: str, supplier_duns: str | Sequence[str]
    ) -> None:
        """Open a supplier portal at ``/portals/{name}/EProcurementService.asmx`` with the
        one account a school holds there, for one supplier or (a price-comparison portal)
        several, by DUNS."""
        suppliers = [supplier_duns] if isinstance(supplier_duns, str) else list(supplier_duns)
        if not PORTAL_NAME.fullmatch(name):
            raise ValueError("a portal name has 1 to 40 of a-z, 0-9 and '-'")
        if not 1 <= len(username) <= USERNAME_LENGTH:
            raise ValueError(f"a portal username has 1 to {USERNAME_LENGTH} characters")
        if not 1 <= len(password) <= PASSWORD_LENGTH:
            raise ValueError(f"a portal password has 1 to {PASSWORD_LENGTH} characters")
        _require_xml_text(username, "the username")
        _require_xml_text(password, "the password")
        if not suppliers:
            raise ValueError("a portal serves at least one supplier")
        for duns in suppliers:
            ebis.require_duns(duns, "supplier_duns")
        async with self._store.write() as conn:
            await _add_portal(conn, name, username, password, suppliers)

    async def add_document(
        self,
        name: str,
        *,
        doc_type: str,
        xml: str,
        uuid: str | None = None,
        created: datetime | None = None,
    ) -> str:
        """Queue a document for collection; return its id. ``xml`` is kept as given, so a
        document that is not well-formed can be queued too. ``created`` (default now;
        naive means UTC) is its date in the index."""
        (added,) = await self.add_documents(
            name, [NewDocument(doc_type, xml, uuid=uuid, created=created)]
        )
        return added

    async def add_documents(self, name: str, documents: Iterable[NewDocument]) -> list[str]:
        """Queue several documents at once (all of them, or none); return their ids."""
        rows = []
        for document in documents:
            standard = document.standard
            if standard and document.doc_type not in PORTAL_TYPES:
                raise ValueError(f"a document type is one of {', '.join(PORTAL_TYPES)}")
            uuid = document.uuid if document.uuid is not None else str(uuid_module.uuid4())
            if standard and not DOCUMENT_UUID.fullmatch(uuid):
                raise ValueError("a document id has 1 to 100 characters and no spaces")
            _require_xml_text(uuid, "the document id")
            _require_xml_text(document.xml, "the document")
            created_at = t.iso_utc(document.created or datetime.now(UTC))
            rows.append((uuid, document.doc_type, document.xml, created_at))
        async with self._store.write() as conn:
            await _add_documents(conn, name, rows)
        return [row[0] for row in rows]

    async def describe(self, name: str) -> dict[str, Any]:
        """A portal: account, current password, switches, documents with their processed
        flags, received orders, and counters. LookupError if there is none."""
        async with self._store.read() as conn:
            view = await _portal_view(conn, name)
        if view is None:
            raise LookupError(f"no portal {name}")
        view["counters"] = self._stats.portals.get(name, PortalCounters()).as_dict()
        return view

    async def names(self) -> list[str]:
        async with self._store.read() as conn:
            return list(await _portal_names(conn))

    async def account(self, name: str) -> PortalAccount | None:
        async with self._store.read() as conn:
            return await _portal_account(conn, name)

    async def index(self, name: str, *, after: datetime | None = None) -> list[IndexEntry]:
        """Unprocessed documents; or, given ``after``, all created after it."""
        since = None if after is None else t.iso_utc(after)
        async with self._store.read() as conn:
            return await _index(conn, name, after=since)

    async def document(self, name: str, uuid: str) -> str | None:
        async with self._store.read() as conn:
            return await _document(conn, name, uuid)

    async def set_processed(self, name: str, uuid: str, processed: bool) -> bool:
        """Mark a document processed or not; False if the portal has no such document."""
        async with self._store.write() as conn:
            found = await _set_processed(conn, name, uuid, processed)
        if found and processed:
            self._stats.portal(name).documents_acknowledged += 1
        return found

    async def reset(self, name: str) -> int:
        """Mark every document of the portal unprocessed (its ResetAll)."""
        async with self._store.write() as conn:
            return await _reset_all(conn, name)

    async def change_password(self, name: str) -> str:
        """Give the portal's account a new random password, the only one accepted after."""
        password = new_portal_password()
        async with self._store.write() as conn:
            await _set_password(conn, name, password)
        return password

    async def receive_order(self, name: str, xml: str, buyers_order_number: str | None) -> None:
        async with self._store.write() as conn:
            await _receive_order(conn, name, xml, buyers_order_number)
        self._stats.portal(name).orders_received += 1

    async def set_switches(self, name: str, *, refuse_auth: bool) -> None:
        """``refuse_auth``: every call answers AuthenticationException, whatever it sends."""
        async with self._store.write() as conn:
            await _set_refuse_auth(conn, name, refuse_auth)


# -- inside a transaction the caller holds -------------------------------------------------


async def _add_portal(
    conn: AsyncConnection, name: str, username: str, password: str, suppliers: Sequence[str]
) -> None:
    p = t.portals
    if await conn.scalar(sa.select(p.c.name).where(p.c.name == name)) is not None:
        raise ValueError(f"there is already a portal {name}")
    await conn.execute(
        sa.insert(p).values(
            name=name,
            username=username,
            password=password,
            supplier_duns=" ".join(suppliers),
            refuse_auth=False,
        )
    )


async def _portal_account(conn: AsyncConnection, name: str) -> PortalAccount | None:
    p = t.portals
    row = (await conn.execute(sa.select(p).where(p.c.name == name))).first()
    if row is None:
        return None
    suppliers = tuple(row.supplier_duns.split())
    return PortalAccount(row.name, row.username, row.password, suppliers, row.refuse_auth)


async def _require_portal(conn: AsyncConnection, name: str) -> None:
    if await _portal_account(conn, name) is None:
        raise LookupError(f"no portal {name}")


async def _add_documents(
    conn: AsyncConnection, name: str, rows: Sequence[tuple[str, str, str, str]]
) -> None:
    """Queue documents given as (uuid, type, xml, created_at); ids are unique per portal."""
    await _require_portal(conn, name)
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


async def _index(conn: AsyncConnection, name: str, *, after: str | None) -> list[IndexEntry]:
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


async def _document(conn: AsyncConnection, name: str, uuid: str) -> str | None:
    pd = t.portal_documents
    found = await conn.scalar(
        sa.select(pd.c.xml).where(pd.c.portal == name).where(pd.c.uuid == uuid)
    )
    return None if found is None else str(found)


async def _set_processed(conn: AsyncConnection, name: str, uuid: str, processed: bool) -> bool:
    """Set a document's processed flag; False if the portal has no such document."""
    pd = t.portal_documents
    result = await conn.execute(
        sa.update(pd)
        .where(pd.c.portal == name)
        .where(pd.c.uuid == uuid)
        .values(processed=processed)
    )
    return bool(result.rowcount)


async def _reset_all(conn: AsyncConnection, name: str) -> int:
    pd = t.portal_documents
    result = await conn.execute(sa.update(pd).where(pd.c.portal == name).values(processed=False))
    return int(result.rowcount)


async def _set_password(conn: AsyncConnection, name: str, password: str) -> None:
    p = t.portals
    result = await conn.execute(sa.update(p).where(p.c.name == name).values(password=password))
    if result.rowcount != 1:
        raise LookupError(f"no portal {name}")


async def _set_refuse_auth(conn: AsyncConnection, name: str, refuse: bool) -> None:
    p = t.portals
    result = await conn.execute(sa.update(p).where(p.c.name == name).values(refuse_auth=refuse))
    if result.rowcount != 1:
        raise LookupError(f"no portal {name}")


async def _receive_order(
    conn: AsyncConnection, name: str, xml: str, buyers_order_number: str | None
) -> None:
    await conn.execute(
        sa.insert(t.portal_orders).values(
            portal=name,
            received_at=t.now_iso(),
            buyers_order_number=buyers_order_number,
            xml=xml,
        )
    )


async def _portal_names(conn: AsyncConnection) -> Sequence[str]:
    return (await conn.scalars(sa.select(t.portals.c.name).order_by(t.portals.c.name))).all()


async def _portal_view(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    """A portal's account, switches, documents and received orders (counters are the
    caller's: they live in memory)."""
    account = await _portal_account(conn, name)
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
        "suppliers": list(account.suppliers),
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

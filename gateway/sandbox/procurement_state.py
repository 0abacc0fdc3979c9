"""The eProcurement half of the sandbox's state: FNG's delivered documents and authorised
orders, and the supplier portals (accounts, queued documents, received orders, switches).

:class:`ProcurementState` is mixed into :class:`gateway.sandbox.state.SandboxState`, which
provides the transactions and the counters.
"""

from __future__ import annotations

import re
import secrets
import uuid as uuid_module
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import XmlRejected
from gateway.sandbox import ebis, procurement
from gateway.sandbox.planning import require_database
from gateway.sandbox.procurement import (
    AuthorisedOrder,
    Delivery,
    IndexEntry,
    NewDocument,
    PortalAccount,
    PortalCounters,
)
from gateway.xmlsafe import Limits, parse_text

if TYPE_CHECKING:
    from gateway.sandbox.state import SandboxStats

PORTAL_NAME: Final = re.compile(r"[a-z0-9-]{1,40}")
DUNS: Final = re.compile(r"[0-9]{9}|[0-9]{13}")
DOCUMENT_UUID: Final = re.compile(r"\S{1,100}")
ORDER_ID: Final = re.compile(r"[A-Za-z0-9._~-]{1,100}")
USERNAME_LENGTH: Final = 50
PASSWORD_LENGTH: Final = 256

#: Documents handed to the sandbox by its own API: generous, but still bounded.
DOCUMENT_LIMITS: Final = Limits(
    max_bytes=16 * 1024 * 1024, max_depth=64, max_elements=1_000_000, max_attributes=4_000_000
)

#: What a generated authorised order holds when none is given.
_GENERATED_LINES: Final = (
    ebis.OrderLine(1, "P-100", "Exercise books, A4, pack of 10", "3", Decimal("2.50")),
    ebis.OrderLine(2, "P-220", "Whiteboard markers, assorted, box of 12", "2", Decimal("6.75")),
)
#: FMS's commodity class for a line without one, and the demo's "<LedgerCode>-<Fund>".
_NO_COMMODITY_CLASS: Final = "00 00 00 00"
_LEDGER_FUND: Final = "1001-01"
GLN_LENGTH: Final = 13


def new_portal_password() -> str:
    """A portal password that only survives XML escaping done right (``&`` and ``<``)."""
    return f"sbx-{secrets.token_urlsafe(18)}&<{secrets.token_hex(3)}"


def new_document_id() -> str:
    """A GUID-like document id: 36 characters, no spaces."""
    return str(uuid_module.uuid4())


def _require_xml_text(value: str, what: str) -> None:
    """Refuse text that XML cannot carry (control characters, lone surrogates)."""
    try:
        etree.Element("x").text = value
    except ValueError:
        raise ValueError(f"{what} holds characters XML cannot carry") from None


def _require_duns(value: str, what: str) -> None:
    if not DUNS.fullmatch(value):
        raise ValueError(f"{what} is a DUNS number of 9 digits (or a GLN of 13)")


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


class ProcurementState:
    """eProcurement reads and writes; see :class:`gateway.sandbox.state.SandboxState`."""

    stats: SandboxStats

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    def _write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    # -- FNG -------------------------------------------------------------------------------

    async def deliver_document(
        self, database_id: int, source: str, document_id: str, doc_type: str, body: bytes
    ) -> Delivery:
        """Store a delivered document once; ``existing`` for an identical redelivery,
        ``conflict`` for other content under the same (source, document id)."""
        async with self._write() as conn:
            outcome = await procurement.deliver(
                conn, database_id, source, document_id, doc_type, body
            )
        if outcome == "created":
            self.stats.documents_received += 1
        return outcome

    async def pending_orders(self, database_id: int) -> list[AuthorisedOrder]:
        async with self._read() as conn:
            return await procurement.pending_orders(conn, database_id)

    async def mark_order_sent(self, database_id: int, order_id: str) -> bool | None:
        """True if the order was pending and is now sent, False if it was sent already,
        None if the database has no such order."""
        async with self._write() as conn:
            changed = await procurement.mark_sent(conn, database_id, order_id)
        if changed:
            self.stats.orders_sent += 1
        return changed

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
        _require_duns(supplier_duns, "supplier_duns")
        if content_order is not None and not all(
            DOCUMENT_UUID.fullmatch(part) for part in content_order
        ):
            raise ValueError(
                "content_order is a source and a document id, each 1 to 100 characters"
            )
        if buyer_duns is not None:
            _require_duns(buyer_duns, "buyer_duns")
        order_id = order_id if order_id is not None else new_document_id()
        if not ORDER_ID.fullmatch(order_id):
            raise ValueError("an order id has 1 to 100 letters, digits, '.', '_', '~' or '-'")
        if order_xml is not None:
            try:
                root = parse_text(order_xml, DOCUMENT_LIMITS)
            except XmlRejected as exc:
                raise ValueError(f"order_xml: {exc.message}") from None
            if root.tag != "Order":
                raise ValueError("order_xml must be an eBIS-XML Order document")
        async with self._write() as conn:
            await require_database(conn, database_id)
            if order_xml is None:
                count = await procurement.order_count(conn, database_id)
                order_xml = generated_order(
                    number=f"PO-{count + 1:05d}",
                    supplier_duns=supplier_duns,
                    buyer_duns=buyer_duns,
                    order_date=datetime.now(UTC).date(),
                )
            await procurement.add_authorised_order(
                conn, database_id, order_id, supplier_duns, order_xml, content_order
            )
        return order_id

    async def documents(self, database_id: int | None = None) -> list[dict[str, Any]]:
        """Documents delivered to FNG (of one database, or all), oldest first."""
        async with self._read() as conn:
            return await procurement.delivered_documents(conn, database_id)

    async def authorised_orders(self, database_id: int | None = None) -> list[dict[str, Any]]:
        """Authorised orders (of one database, or all), each ``pending`` or ``sent``."""
        async with self._read() as conn:
            return await procurement.all_authorised_orders(conn, database_id)

    # -- supplier portals --------------------------------------------------------------------

    async def add_portal(
        self, name: str, *, username: str, password: str, supplier_duns: str
    ) -> None:
        """Open a supplier portal at ``/portals/{name}/EProcurementService.asmx`` with the
        one account a school holds there."""
        if not PORTAL_NAME.fullmatch(name):
            raise ValueError("a portal name has 1 to 40 of a-z, 0-9 and '-'")
        if not 1 <= len(username) <= USERNAME_LENGTH:
            raise ValueError(f"a portal username has 1 to {USERNAME_LENGTH} characters")
        if not 1 <= len(password) <= PASSWORD_LENGTH:
            raise ValueError(f"a portal password has 1 to {PASSWORD_LENGTH} characters")
        _require_xml_text(username, "the username")
        _require_xml_text(password, "the password")
        _require_duns(supplier_duns, "supplier_duns")
        async with self._write() as conn:
            await procurement.add_portal(conn, name, username, password, supplier_duns)

    async def add_portal_document(
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
        (added,) = await self.add_portal_documents(
            name, [NewDocument(doc_type, xml, uuid=uuid, created=created)]
        )
        return added

    async def add_portal_documents(self, name: str, documents: Iterable[NewDocument]) -> list[str]:
        """Queue several documents at once (all of them, or none); return their ids."""
        rows = []
        for document in documents:
            if document.doc_type not in procurement.PORTAL_TYPES:
                raise ValueError(f"a document type is one of {', '.join(procurement.PORTAL_TYPES)}")
            uuid = document.uuid if document.uuid is not None else new_document_id()
            if not DOCUMENT_UUID.fullmatch(uuid):
                raise ValueError("a document id has 1 to 100 characters and no spaces")
            _require_xml_text(uuid, "the document id")
            _require_xml_text(document.xml, "the document")
            created_at = procurement.iso_utc(document.created or datetime.now(UTC))
            rows.append((uuid, document.doc_type, document.xml, created_at))
        async with self._write() as conn:
            await procurement.add_documents(conn, name, rows)
        return [row[0] for row in rows]

    async def portal(self, name: str) -> dict[str, Any]:
        """A portal: account, current password, switches, documents with their processed
        flags, received orders, and counters. LookupError if there is none."""
        async with self._read() as conn:
            view = await procurement.portal_view(conn, name)
        if view is None:
            raise LookupError(f"no portal {name}")
        view["counters"] = self.stats.portals.get(name, PortalCounters()).as_dict()
        return view

    async def portal_names(self) -> list[str]:
        async with self._read() as conn:
            return list(await procurement.portal_names(conn))

    async def portal_account(self, name: str) -> PortalAccount | None:
        async with self._read() as conn:
            return await procurement.portal_account(conn, name)

    async def portal_index(self, name: str, *, after: datetime | None = None) -> list[IndexEntry]:
        """Unprocessed documents; or, given ``after``, all created after it."""
        since = None if after is None else procurement.iso_utc(after)
        async with self._read() as conn:
            return await procurement.index(conn, name, after=since)

    async def portal_document(self, name: str, uuid: str) -> str | None:
        async with self._read() as conn:
            return await procurement.document(conn, name, uuid)

    async def set_portal_document_processed(self, name: str, uuid: str, processed: bool) -> bool:
        """Mark a document processed or not; False if the portal has no such document."""
        async with self._write() as conn:
            found = await procurement.set_processed(conn, name, uuid, processed)
        if found and processed:
            self.stats.portal(name).documents_acknowledged += 1
        return found

    async def reset_portal(self, name: str) -> int:
        """Mark every document of the portal unprocessed (its ResetAll)."""
        async with self._write() as conn:
            return await procurement.reset_all(conn, name)

    async def change_portal_password(self, name: str) -> str:
        """Give the portal's account a new random password, the only one accepted after."""
        password = new_portal_password()
        async with self._write() as conn:
            await procurement.set_password(conn, name, password)
        return password

    async def receive_portal_order(
        self, name: str, xml: str, buyers_order_number: str | None
    ) -> None:
        async with self._write() as conn:
            await procurement.receive_order(conn, name, xml, buyers_order_number)
        self.stats.portal(name).orders_received += 1

    async def set_portal_switches(self, name: str, *, refuse_auth: bool) -> None:
        """``refuse_auth``: every call answers AuthenticationException, whatever it sends."""
        async with self._write() as conn:
            await procurement.set_refuse_auth(conn, name, refuse_auth)

"""What operators do with eProcurement work the gateway set aside: list it, read it, retry it,
release it. The CLI and the admin API both call these; the running gateway does the rest at
the portal's next poll. Every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gateway.eproc.documents import INDEX_ENTRY, DocState
from gateway.eproc.orders import OrderState
from gateway.eproc.portal import DIGEST_PREFIX
from gateway.errors import NotFound, RegistryError
from gateway.store import Store
from gateway.store.tables import eproc_documents, eproc_orders, portals
from gateway.tenancy.identifiers import LIMIT, check
from gateway.tenancy.records import audit


@dataclass(frozen=True, slots=True)
class Held:
    """A quarantined document or order."""

    kind: str  # document | order
    id: int
    portal: str
    reference: str  # the portal's document id, or FNG's order id
    doc_type: str
    rule: str | None
    reason: str | None
    since: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "portal": self.portal,
            "reference": self.reference,
            "type": self.doc_type,
            "rule": self.rule,
            "reason": self.reason,
            "since": self.since.isoformat(),
        }


class EprocAdmin:
    def __init__(self, store: Store, actor: str) -> None:
        self._store = store
        self.actor = actor

    async def quarantined(self) -> list[Held]:
        async with self._store.read() as conn:
            documents = await conn.execute(
                sa.select(eproc_documents, portals.c.name.label("portal"))
                .join(portals, eproc_documents.c.portal_id == portals.c.id)
                .where(eproc_documents.c.state == DocState.QUARANTINED.value)
                .order_by(eproc_documents.c.id)
            )
            held = [
                Held(
                    "document",
                    row.id,
                    row.portal,
                    row.document_id,
                    row.doc_type,
                    row.rule,
                    row.reason,
                    row.updated_at,
                )
                for row in documents
            ]
            orders = await conn.execute(
                sa.select(eproc_orders, portals.c.name.label("portal"))
                .join(portals, eproc_orders.c.portal_id == portals.c.id, isouter=True)
                .where(eproc_orders.c.state == OrderState.QUARANTINED.value)
                .order_by(eproc_orders.c.id)
            )
            held += [
                Held(
                    "order",
                    row.id,
                    row.portal or "-",
                    row.order_id,
                    "authorised order",
                    row.rule,
                    row.reason,
                    row.updated_at,
                )
                for row in orders
            ]
        return held

    async def document(self, document_id: int) -> tuple[Held, bytes]:
        """A quarantined document with its content, as the portal sent it."""
        for item in await self.quarantined():
            if item.kind == "document" and item.id == document_id:
                async with self._store.read() as conn:
                    content = await conn.scalar(
                        sa.select(eproc_documents.c.content).where(
                            eproc_documents.c.id == document_id
                        )
                    )
                return item, bytes(content or b"")
        raise NotFound(f"no quarantined document {document_id}")

    async def order(self, order_id: int) -> tuple[Held, bytes]:
        """A quarantined order with its content, as FNG gave it."""
        for item in await self.quarantined():
            if item.kind == "order" and item.id == order_id:
                async with self._store.read() as conn:
                    content = await conn.scalar(
                        sa.select(eproc_orders.c.content).where(eproc_orders.c.id == order_id)
                    )
                return item, bytes(content or b"")
        raise NotFound(f"no quarantined order {order_id}")

    async def _move_document(self, document_id: int, state: DocState, action: str) -> None:
        now = datetime.now(UTC)
        async with self._store.write() as conn:
            moved = await conn.execute(
                eproc_documents.update()
                .where(
                    eproc_documents.c.id == document_id,
                    eproc_documents.c.state == DocState.QUARANTINED.value,
                )
                .values(
                    state=state.value,
                    attempts=0,
                    next_attempt_at=now,
                    updated_at=now,
                    **({"rule": None, "reason": None} if state is DocState.FETCHED else {}),
                )
            )
            if moved.rowcount != 1:
                raise NotFound(f"no quarantined document {document_id}")
            await audit(conn, self.actor, action, f"eproc_document:{document_id}")

    async def _held_entry(self, document_id: int) -> tuple[str, str] | None:
        """(rule, the ledger's id) of a quarantined document."""
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    sa.select(eproc_documents.c.rule, eproc_documents.c.document_id).where(
                        eproc_documents.c.id == document_id,
                        eproc_documents.c.state == DocState.QUARANTINED.value,
                    )
                )
            ).one_or_none()
        return None if row is None else (row.rule, row.document_id)

    async def retry_document(self, document_id: int) -> None:
        """Check it again at the portal's next poll (after its rule or the school's set-up
        was put right); it is delivered if it passes. A bad index entry is forgotten, and
        the portal's index read afresh."""
        held = await self._held_entry(document_id)
        if held is None or held[0] != INDEX_ENTRY:
            await self._move_document(document_id, DocState.FETCHED, "eproc.document.retry")
            return
        async with self._store.write() as conn:
            gone = await conn.execute(
                eproc_documents.delete().where(
                    eproc_documents.c.id == document_id,
                    eproc_documents.c.state == DocState.QUARANTINED.value,
                )
            )
            if gone.rowcount != 1:
                raise NotFound(f"no quarantined document {document_id}")
            await audit(conn, self.actor, "eproc.document.retry", f"eproc_document:{document_id}")

    async def release_document(self, document_id: int) -> None:
        """Give it up: acknowledge it to the portal at the next poll without delivering it."""
        held = await self._held_entry(document_id)
        if held is not None and held[1].startswith(DIGEST_PREFIX):
            raise RegistryError(
                f"document {document_id} has no id the portal could be told of (none, or "
                "over 100 characters): ask the supplier to withdraw it"
            )
        await self._move_document(document_id, DocState.RELEASING, "eproc.document.release")

    async def retry_order(self, order_id: int) -> None:
        """Send it again at the next poll (the supplier confirmed it never arrived): read
        afresh from FNG if it never went, else queued, to go as a copy."""
        async with self._store.write() as conn:
            sends = await conn.scalar(
                sa.select(eproc_orders.c.sends).where(
                    eproc_orders.c.id == order_id,
                    eproc_orders.c.state == OrderState.QUARANTINED.value,
                )
            )
            if sends is None:
                raise NotFound(f"no quarantined order {order_id}")
            held = sa.and_(
                eproc_orders.c.id == order_id,
                eproc_orders.c.state == OrderState.QUARANTINED.value,
            )
            if sends == 0:
                await conn.execute(eproc_orders.delete().where(held))
            else:
                await conn.execute(
                    eproc_orders.update()
                    .where(held)
                    .values(state=OrderState.QUEUED.value, updated_at=datetime.now(UTC))
                )
            await audit(conn, self.actor, "eproc.order.retry", f"eproc_order:{order_id}")

    async def resend_order(self, order_id: int) -> None:
        """Send an order again through its portal at its next orders round, as a copy (the
        supplier asked for it again), whatever became of it before."""
        async with self._store.write() as conn:
            row = (
                await conn.execute(
                    sa.select(eproc_orders.c.state, eproc_orders.c.portal_id).where(
                        eproc_orders.c.id == order_id
                    )
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"no order {order_id}")
            if row.state in (OrderState.SENDING, OrderState.QUEUED):
                raise RegistryError(f"order {order_id} is already on its way")
            if row.portal_id is None:
                raise RegistryError(f"the portal order {order_id} went through is gone")
            await conn.execute(
                eproc_orders.update()
                .where(eproc_orders.c.id == order_id, eproc_orders.c.state == row.state)
                .values(state=OrderState.QUEUED.value, updated_at=datetime.now(UTC))
            )
            await audit(conn, self.actor, "eproc.order.resend", f"eproc_order:{order_id}")

    async def orders(self, limit: int = 100) -> list[dict[str, Any]]:
        """Orders the gateway holds, newest first: where each went, its state, its sends."""
        check(LIMIT, limit)
        async with self._store.read() as conn:
            rows = await conn.execute(
                sa.select(
                    eproc_orders.c.id,
                    eproc_orders.c.database_id,
                    portals.c.name.label("portal"),
                    eproc_orders.c.order_id,
                    eproc_orders.c.state,
                    eproc_orders.c.sends,
                    eproc_orders.c.rule,
                    eproc_orders.c.updated_at,
                )
                .join(portals, eproc_orders.c.portal_id == portals.c.id, isouter=True)
                .order_by(eproc_orders.c.id.desc())
                .limit(limit)
            )
            return [
                {
                    "id": row.id,
                    "database_id": row.database_id,
                    "portal": row.portal or "-",
                    "reference": row.order_id,
                    "state": row.state,
                    "sends": row.sends,
                    "rule": row.rule,
                    "since": row.updated_at.isoformat(),
                }
                for row in rows
            ]

    async def release_order(self, order_id: int) -> None:
        """Count it as sent (the supplier confirmed it arrived): FNG is told at the next poll."""
        async with self._store.write() as conn:
            moved = await conn.execute(
                eproc_orders.update()
                .where(
                    eproc_orders.c.id == order_id,
                    eproc_orders.c.state == OrderState.QUARANTINED.value,
                )
                .values(state=OrderState.DELIVERED.value, updated_at=datetime.now(UTC))
            )
            if moved.rowcount != 1:
                raise NotFound(f"no quarantined order {order_id}")
            await audit(conn, self.actor, "eproc.order.release", f"eproc_order:{order_id}")

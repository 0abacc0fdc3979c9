"""Orders out: orders authorised in FNG, sent to their supplier's portal with SendOrder.

Each order is recorded in the order ledger (``eproc_orders``) before it is sent:

    sending ─ SendOrder ─┬─ true ─▶ delivered ─ FNG marks it sent ─▶ sent
                         ├─ InvalidXmlException, or an answer that may have reached the
                         │  portal but never came back ─▶ quarantined (for an operator)
                         └─ no connection at all ─▶ forgotten, sent at the next round

An order whose SendOrder may have reached the portal without an answer is quarantined for an
operator rather than sent again, since a supplier may act on an order twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from lxml import etree

from gateway.eproc.job import FNG_SCHEMA, PortalJob, Step, insert_once, now, set_aside
from gateway.eproc.portal import Portal
from gateway.eproc.rules import Problem, check_authorised_order
from gateway.errors import (
    GatewayError,
    PortalError,
    PortalRejectedXml,
    PortalUnreachable,
    UpstreamError,
)
from gateway.fng.documents import answer_document
from gateway.store.tables import eproc_orders
from gateway.tenancy.model import DatabaseTarget

log = logging.getLogger(__name__)


class OrderState(StrEnum):
    SENDING = "sending"
    DELIVERED = "delivered"
    SENT = "sent"
    QUARANTINED = "quarantined"
    RELEASED = "released"


class Orders(Step):
    """Sends a portal's suppliers' authorised orders and tells FNG they are sent."""

    async def send(self, job: PortalJob, portal: Portal, target: DatabaseTarget) -> None:
        """Every order FNG holds for the portal's supplier. FNG failing is logged and left for
        the next round; the portal failing raises :class:`~gateway.errors.PortalError`."""
        try:
            document = await self._authorised(target)
        except GatewayError as exc:
            log.warning(
                "authorised orders could not be read from FNG",
                extra={"portal": job.label, "error": exc.message},
            )
            return
        for item in document.iterfind("AuthorisedOrder"):
            if (item.get("supplierDuns") or "").strip() != job.supplier_duns:
                continue
            order = next((child for child in item if isinstance(child.tag, str)), None)
            if order is not None:
                await self._one(job, portal, target, item.get("id", ""), order)

    async def _authorised(self, target: DatabaseTarget) -> etree._Element:
        response = await self._fng.authorised_orders(target)
        if response.status != 200:
            raise UpstreamError(
                f"FNG answered AuthorisedOrders with HTTP {response.status}",
                status=response.status,
            )
        return answer_document(
            response, self._schemas, FNG_SCHEMA, self._limits, "AuthorisedOrders"
        )

    async def _one(
        self,
        job: PortalJob,
        portal: Portal,
        target: DatabaseTarget,
        order_id: str,
        order: etree._Element,
    ) -> None:
        existing = await self._existing(job.database_id, order_id)
        if existing is not None:
            await self._resume(job, target, existing, order_id)
            return
        content = etree.tostring(order, encoding="utf-8")
        row_id = await self._claim(job, order_id, content)
        if row_id is None:
            return  # another replica is sending it
        problems = check_authorised_order(order, job.expect.school_duns, self._schemas)
        if problems:
            await self._quarantine(job, row_id, order_id, *problems)
            return
        if await self._transmit(job, portal, row_id, order_id, content):
            await self._mark_sent(job, target, row_id, order_id)

    async def _resume(
        self, job: PortalJob, target: DatabaseTarget, existing: Any, order_id: str
    ) -> None:
        """An order FNG still lists that the ledger already holds."""
        state = OrderState(existing.state)
        if state in (OrderState.DELIVERED, OrderState.SENT):
            await self._mark_sent(job, target, existing.id, order_id)
        elif state is OrderState.SENDING and now() - existing.updated_at > timedelta(
            seconds=self._settings.poll_timeout_seconds
        ):
            await self._quarantine(
                job,
                existing.id,
                order_id,
                Problem(
                    "outcome_unknown",
                    "SendOrder may have reached the portal but no "
                    "answer was recorded; confirm with the supplier, then release it",
                ),
            )

    async def _transmit(
        self, job: PortalJob, portal: Portal, row_id: int, order_id: str, content: bytes
    ) -> bool:
        """SendOrder; True once the portal took the order."""
        try:
            await self._client.send_order(portal, content.decode("utf-8"))
        except PortalRejectedXml as exc:
            await self._quarantine(job, row_id, order_id, Problem("portal_rejected", exc.message))
            return False
        except PortalUnreachable:
            await self._forget(row_id)  # nothing was sent: try again next round
            raise
        except PortalError as exc:
            await self._quarantine(
                job,
                row_id,
                order_id,
                Problem(
                    "outcome_unknown",
                    f"SendOrder got no answer ({exc.message}); confirm "
                    "with the supplier, then release it",
                ),
            )
            raise
        await self._set_state(row_id, OrderState.DELIVERED)
        self._metrics.orders.labels("delivered").inc()
        return True

    async def _mark_sent(
        self, job: PortalJob, target: DatabaseTarget, row_id: int, order_id: str
    ) -> None:
        try:
            response = await self._fng.mark_order_sent(target, order_id)
        except GatewayError as exc:
            log.warning(
                "an order sent to its supplier could not be marked sent in FNG yet",
                extra={"portal": job.label, "order_id": order_id, "error": exc.message},
            )
            return
        if response.status not in (200, 204):
            log.warning(
                "FNG refused to mark an order sent",
                extra={"portal": job.label, "order_id": order_id, "status": response.status},
            )
            return
        await self._set_state(row_id, OrderState.SENT)
        self._metrics.orders.labels("sent").inc()
        log.info("authorised order sent", extra={"portal": job.label, "order_id": order_id})

    async def _quarantine(
        self, job: PortalJob, row_id: int, order_id: str, *problems: Problem
    ) -> None:
        reason = await set_aside(self._store, eproc_orders, row_id, list(problems))
        self._metrics.orders.labels("quarantined").inc()
        log.warning(
            "authorised order quarantined",
            extra={"portal": job.label, "order_id": order_id, "reason": reason},
        )

    # -- the ledger --------------------------------------------------------------------------

    async def _existing(self, database_id: int, order_id: str) -> Any:
        async with self._store.read() as conn:
            return (
                await conn.execute(
                    sa.select(
                        eproc_orders.c.id, eproc_orders.c.state, eproc_orders.c.updated_at
                    ).where(
                        eproc_orders.c.database_id == database_id,
                        eproc_orders.c.order_id == order_id,
                    )
                )
            ).one_or_none()

    async def _claim(self, job: PortalJob, order_id: str, content: bytes) -> int | None:
        """Record the order as being sent; None when another replica holds it."""
        moment = now()
        return await insert_once(
            self._store,
            eproc_orders.insert().values(
                database_id=job.database_id,
                order_id=order_id,
                portal_id=job.portal_id,
                state=OrderState.SENDING.value,
                content=content,
                created_at=moment,
                updated_at=moment,
            ),
        )

    async def _set_state(self, row_id: int, state: OrderState) -> None:
        async with self._store.write() as conn:
            await conn.execute(
                eproc_orders.update()
                .where(eproc_orders.c.id == row_id)
                .values(state=state.value, updated_at=now())
            )

    async def _forget(self, row_id: int) -> None:
        async with self._store.write() as conn:
            await conn.execute(eproc_orders.delete().where(eproc_orders.c.id == row_id))

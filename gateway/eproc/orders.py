"""Orders out: orders authorised in FNG, sent to their supplier's portal with SendOrder.

FMS sent an authorised order "immediately" it was printed, each file's
``OrderHead/Function/Code`` "original" for the first and "copy" for all others. The gateway
asks FNG every ``eproc.orders_seconds`` for each portal's suppliers' orders, whatever the
portal's index is doing, and records each order in the order ledger (``eproc_orders``)
before it is sent:

    sending ─ SendOrder ─┬─ true ─▶ delivered ─ FNG marks it sent ─▶ sent
                         ├─ InvalidXmlException, or a call that may have reached the portal
                         │  but got no answer ─▶ quarantined (for an operator)
                         └─ no connection, or any other SOAP fault (the portal answered and
                            did not take it) ─▶ sent at the next round

An order is sent again, as a "copy", when FNG lists it once more after marking it sent (the
school printed it again) and when an operator asks (``queued``); never suppressed. An order
whose SendOrder may have reached the portal without an answer is quarantined for an
operator rather than sent again on a guess, since a supplier may act on an order twice.
``sends`` counts the calls that may have reached the portal.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from lxml import etree

from gateway.eproc.exports import check_authorised_order, official_form
from gateway.eproc.job import PortalJob, Step, insert_once, now, set_aside, supplier_of
from gateway.eproc.origins import Origin, content_order, origin_of, portal_names
from gateway.eproc.portal import Portal
from gateway.eproc.rules import Problem, Verdict
from gateway.eproc.verdicts import code_list, ebis_document
from gateway.errors import (
    GatewayError,
    PortalError,
    PortalFault,
    PortalRejectedXml,
    PortalUnreachable,
)
from gateway.fng import FngDeclined
from gateway.store.tables import eproc_orders
from gateway.tenancy.model import DatabaseTarget
from gateway.xmlsafe import parse

log = logging.getLogger(__name__)


class OrderState(StrEnum):
    SENDING = "sending"
    DELIVERED = "delivered"
    SENT = "sent"
    QUARANTINED = "quarantined"
    RELEASED = "released"
    #: To be sent (again) at the portal's next orders round.
    QUEUED = "queued"


def stamped(order: etree._Element, sends: int) -> etree._Element:
    """The order as its next file: ``Function`` Code "original" for the first, "copy" for
    every later one (Codelist UKGov-DocStatus, Preserve true, as FMS exported it)."""
    order = copy.deepcopy(order)
    head = order.find("OrderHead")
    if head is not None:
        function = head.find("Function")
        if function is None:
            function = etree.Element("Function")
            anchor = head.find("OrderType")
            if anchor is not None:
                anchor.addnext(function)
            else:
                head.append(function)
        function.set("Code", "original" if sends == 0 else "copy")
        if code_list(function) is None:  # however FNG spelt it, never a second one
            function.set("Codelist", "UKGov-DocStatus")
        if function.get("Preserve") is None:
            function.set("Preserve", "true")
    return order


def _sent_by(job: PortalJob, item: etree._Element, school_portals: frozenset[str]) -> bool:
    """Whether the order FNG lists as ``item`` goes through this portal. "The Authorised
    Order is returned to the supplier using the same Web Service that sent the original
    Content Order to FMS": the portal FNG names as its origin, while the school has it;
    any other order through the portal serving its supplier."""
    origin = origin_of(item)
    if origin is not None and origin.source in school_portals:
        return origin.source == job.name
    return (item.get("supplierDuns") or "").strip() in job.supplier_duns


class Orders(Step):
    """Sends a portal's suppliers' authorised orders and tells FNG they are sent."""

    async def send(self, job: PortalJob, portal: Portal, target: DatabaseTarget) -> None:
        """The orders queued for the portal, then every order FNG holds for one of its
        suppliers. FNG failing is logged and left for the next round; the portal failing
        raises :class:`~gateway.errors.PortalError`."""
        listed_at = now()
        for row in await self._queued(job.portal_id):
            if await self._take(row.id, OrderState.QUEUED):
                held = parse(bytes(row.content), self._limits)
                await self._dispatch(
                    job, portal, target, row.id, row.order_id, held, row.sends, None
                )
        try:
            document = await self._fng.authorised_orders(target)
        except GatewayError as exc:
            log.warning(
                "authorised orders could not be read from FNG",
                extra={"portal": job.label, "error": exc.message},
            )
            return
        school_portals = await portal_names(self._store, job.database_id)
        for item in document.iterfind("AuthorisedOrder"):
            if not _sent_by(job, item, school_portals):
                continue
            order = next((child for child in item if isinstance(child.tag, str)), None)
            if order is not None:
                await self._one(job, portal, target, item, order, listed_at)

    async def _one(
        self,
        job: PortalJob,
        portal: Portal,
        target: DatabaseTarget,
        item: etree._Element,
        order: etree._Element,
        listed_at: datetime,
    ) -> None:
        """An order FNG lists as waiting to be sent (``item``: FNG's entry for it)."""
        order_id, origin = item.get("id", ""), origin_of(item)
        order = ebis_document(order)
        existing = await self._existing(job.database_id, order_id)
        if existing is None:
            row_id = await self._claim(job, order_id, etree.tostring(order, encoding="utf-8"))
            if row_id is not None:  # else another replica is sending it
                await self._dispatch(job, portal, target, row_id, order_id, order, 0, origin)
            return
        state = OrderState(existing.state)
        if state is OrderState.SENT and existing.updated_at < listed_at:
            # FNG had marked it sent, and lists it again: the school printed it again.
            if await self._take(existing.id, OrderState.SENT, order):
                await self._dispatch(
                    job, portal, target, existing.id, order_id, order, existing.sends, origin
                )
        elif state in (OrderState.DELIVERED, OrderState.SENT):
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

    async def _dispatch(
        self,
        job: PortalJob,
        portal: Portal,
        target: DatabaseTarget,
        row_id: int,
        order_id: str,
        order: etree._Element,
        sends: int,
        origin: Origin | None,
    ) -> None:
        """Check and send an order the ledger holds as ``sending``; tell FNG once it went.
        ``origin``: the content order FNG says it was made from (None for a re-send the
        ledger queued, whose first send was checked against it)."""
        order = stamped(order, sends)
        verdict = await self._check(job, order, origin)
        content = etree.tostring(official_form(order, self._schemas), encoding="utf-8")
        if verdict.problems:
            await self._quarantine(job, row_id, order_id, *verdict.problems)
            return
        if await self._transmit(job, portal, row_id, order_id, content, sends):
            self._let_through(job, "out", order_id, verdict.warnings)
            await self._mark_sent(job, target, row_id, order_id)

    async def _check(self, job: PortalJob, order: etree._Element, origin: Origin | None) -> Verdict:
        """FMS's export rules, against the content order the order was made from."""
        original = None
        if origin is not None:
            original = await content_order(self._store, self._limits, job.database_id, origin)
            if original is None:
                problem = Problem(
                    "content_order",
                    f"FNG made it from content order {origin}, which the gateway never "
                    "collected, so its edits cannot be checked",
                )
                return Verdict((problem,))
        return check_authorised_order(
            order,
            supplier_of(job, order),
            self._schemas,
            checksum_policy=self._checksum_policy(job),
            content_order=original,
        )

    async def _transmit(
        self, job: PortalJob, portal: Portal, row_id: int, order_id: str, content: bytes, sends: int
    ) -> bool:
        """SendOrder; True once the portal took the order."""
        try:
            await self._client.send_order(portal, content.decode("utf-8"))
        except PortalRejectedXml as exc:
            await self._quarantine(job, row_id, order_id, Problem("portal_rejected", exc.message))
            return False
        except (PortalUnreachable, PortalFault):
            # The portal does not have it: nothing reached it, or it answered with a fault
            # ("If the call was not successful then a soap exception should be thrown"), as
            # for a login it refuses. Not a send: a first send is left to FNG's next listing
            # (and goes as "original" then), a later one queued.
            if sends == 0:
                await self._forget(row_id)
            else:
                await self._set_state(row_id, OrderState.QUEUED)
            raise
        except PortalError as exc:
            await self._count_send(row_id)
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
        await self._count_send(row_id)
        await self._set_state(row_id, OrderState.DELIVERED)
        self._metrics.orders.labels("delivered").inc()
        return True

    async def _mark_sent(
        self, job: PortalJob, target: DatabaseTarget, row_id: int, order_id: str
    ) -> None:
        try:
            await self._fng.mark_order_sent(target, order_id)
        except FngDeclined as exc:
            log.warning(
                "FNG refused to mark an order sent",
                extra={"portal": job.label, "order_id": order_id, "status": exc.status},
            )
            return
        except GatewayError as exc:
            log.warning(
                "an order sent to its supplier could not be marked sent in FNG yet",
                extra={"portal": job.label, "order_id": order_id, "error": exc.message},
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
                        eproc_orders.c.id,
                        eproc_orders.c.state,
                        eproc_orders.c.sends,
                        eproc_orders.c.updated_at,
                    ).where(
                        eproc_orders.c.database_id == database_id,
                        eproc_orders.c.order_id == order_id,
                    )
                )
            ).one_or_none()

    async def _queued(self, portal_id: int) -> list[Any]:
        async with self._store.read() as conn:
            return list(
                await conn.execute(
                    sa.select(
                        eproc_orders.c.id,
                        eproc_orders.c.order_id,
                        eproc_orders.c.content,
                        eproc_orders.c.sends,
                    )
                    .where(
                        eproc_orders.c.portal_id == portal_id,
                        eproc_orders.c.state == OrderState.QUEUED.value,
                    )
                    .order_by(eproc_orders.c.id)
                )
            )

    async def _take(
        self, row_id: int, state: OrderState, order: etree._Element | None = None
    ) -> bool:
        """Move an order from ``state`` to ``sending`` (with FNG's newest content, if given);
        False when another replica took it first."""
        values: dict[str, Any] = {"state": OrderState.SENDING.value, "updated_at": now()}
        if order is not None:
            values["content"] = etree.tostring(order, encoding="utf-8")
        async with self._store.write() as conn:
            taken = await conn.execute(
                eproc_orders.update()
                .where(eproc_orders.c.id == row_id, eproc_orders.c.state == state.value)
                .values(**values)
            )
        return taken.rowcount == 1

    async def _count_send(self, row_id: int) -> None:
        async with self._store.write() as conn:
            await conn.execute(
                eproc_orders.update()
                .where(eproc_orders.c.id == row_id)
                .values(sends=eproc_orders.c.sends + 1)
            )

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

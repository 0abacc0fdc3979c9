"""eProcurement's part of the operators' HTTP API: the work the gateway set aside.

The admin API mounts these beside its own (``gateway.app`` hands them to
``gateway.admin.api.create_admin_app``); each handler calls :class:`EprocAdmin`, the same
service the command line calls.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gateway.admin.context import Context
from gateway.admin.models import Done, Limit, ParametersModel, ResponseModel, UrlId
from gateway.admin.routing import RouteTable
from gateway.eproc.admin import EprocAdmin

routes = RouteTable(tags={"eproc": "eProcurement work set aside for operators."})
route = routes.route


class DocumentRef(ParametersModel):
    document_id: UrlId


class OrderRef(ParametersModel):
    order_id: UrlId


class OrdersQuery(ParametersModel):
    limit: Limit = Field(100, description="At most this many, newest first.")


class Held(ResponseModel):
    kind: str = Field(description="document or order.")
    id: int
    portal: str
    reference: str = Field(description="The portal's document id, or FNG's order id.")
    type: str
    rule: str | None
    reason: str | None
    since: datetime


class HeldDocument(Held):
    content: str = Field(description="The document as the portal sent it (UTF-8).")


class SentOrder(ResponseModel):
    id: int = Field(description="The order's id here (for resend).")
    database_id: int
    portal: str
    reference: str = Field(description="FNG's id for the order.")
    state: str = Field(
        description="sending, delivered, sent, quarantined or queued (to be sent again)."
    )
    sends: int = Field(
        description="SendOrder calls that may have reached the portal: the first file went "
        "as original, every later one as copy."
    )
    rule: str | None
    since: datetime


def _eproc(ctx: Context) -> EprocAdmin:
    return EprocAdmin(ctx.store, ctx.actor)


@route("GET", "/eproc/quarantine", tag="eproc")
async def list_quarantine(ctx: Context) -> list[Held]:
    """Quarantined documents and orders, with the rule each broke."""
    return [Held.model_validate(item.as_dict()) for item in await _eproc(ctx).quarantined()]


@route("GET", "/eproc/documents/{document_id}", tag="eproc")
async def show_document(ctx: Context, path: DocumentRef) -> HeldDocument:
    """A quarantined document and its content, as the portal sent it."""
    item, content = await _eproc(ctx).document(path.document_id)
    return HeldDocument.model_validate(
        {**item.as_dict(), "content": content.decode("utf-8", "replace")}
    )


@route("POST", "/eproc/documents/{document_id}/retry", tag="eproc")
async def retry_document(ctx: Context, path: DocumentRef) -> Done:
    """Check a quarantined document again at the portal's next poll."""
    await _eproc(ctx).retry_document(path.document_id)
    return Done(subject=f"eproc_document:{path.document_id}", done="eproc.document.retry")


@route("POST", "/eproc/documents/{document_id}/release", tag="eproc")
async def release_document(ctx: Context, path: DocumentRef) -> Done:
    """Acknowledge a quarantined document to its portal without delivering it."""
    await _eproc(ctx).release_document(path.document_id)
    return Done(subject=f"eproc_document:{path.document_id}", done="eproc.document.release")


@route("POST", "/eproc/orders/{order_id}/retry", tag="eproc")
async def retry_order(ctx: Context, path: OrderRef) -> Done:
    """Send a quarantined order again at the next poll (it never arrived)."""
    await _eproc(ctx).retry_order(path.order_id)
    return Done(subject=f"eproc_order:{path.order_id}", done="eproc.order.retry")


@route("GET", "/eproc/orders", tag="eproc")
async def list_orders(ctx: Context, query: OrdersQuery) -> list[SentOrder]:
    """Authorised orders sent or being sent to portals, newest first, with their sends."""
    return [SentOrder.model_validate(row) for row in await _eproc(ctx).orders(query.limit)]


@route(
    "POST",
    "/eproc/orders/{order_id}/resend",
    tag="eproc",
    errors={409: "The order is already on its way, or its portal is gone."},
)
async def resend_order(ctx: Context, path: OrderRef) -> Done:
    """Send an order again at its portal's next orders round, as a copy."""
    await _eproc(ctx).resend_order(path.order_id)
    return Done(subject=f"eproc_order:{path.order_id}", done="eproc.order.resend")


@route("POST", "/eproc/orders/{order_id}/release", tag="eproc")
async def release_order(ctx: Context, path: OrderRef) -> Done:
    """Count a quarantined order as sent (the supplier has it); FNG is told."""
    await _eproc(ctx).release_order(path.order_id)
    return Done(subject=f"eproc_order:{path.order_id}", done="eproc.order.release")

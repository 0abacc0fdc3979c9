"""FNG's eProcurement calls, as the sandbox emulates them (``schemas/fng/openapi.yaml``).

The gateway delivers what it collected from supplier portals (content orders, invoices,
credit notes) and fetches the orders authorised in FNG, marking each sent once its
supplier's portal took it. Calls are checked as every FNG call is (token, scope, keys).
FMS's import rules are the gateway's to apply: FNG here stores any well-formed ``Order``
or ``Invoice``, once per (database, source, document id).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from lxml import etree

from gateway.sandbox import responses
from gateway.sandbox.appkeys import SANDBOX_STATE
from gateway.sandbox.fng.access import LIMITS, authorize, refusal, xml_document
from gateway.sandbox.fng.procurement import DELIVERED_TYPES
from gateway.sandbox.parsing import read_xml_text

#: The longest source and document id FNG keeps.
ID_LENGTH: Final = 100

#: The root element each delivered type must have.
ROOTS: Final = {"order": "Order", "invoice": "Invoice", "creditnote": "Invoice"}


def _query(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if not value.strip():
        raise refusal(web.HTTPBadRequest, f"the {name} query parameter is required")
    if len(value) > ID_LENGTH:
        raise refusal(web.HTTPBadRequest, f"{name} has at most {ID_LENGTH} characters")
    return value


async def post_document(request: web.Request) -> web.Response:
    """``POST /api/EProcurement/Documents?source=…&documentId=…&type=…`` with the document."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["PostDocument"] += 1
    database_id, _ = await authorize(request, "PostDocument")
    source = _query(request, "source")
    document_id = _query(request, "documentId")
    doc_type = request.query.get("type", "")
    if doc_type not in DELIVERED_TYPES:
        raise refusal(web.HTTPBadRequest, f"type must be one of {', '.join(DELIVERED_TYPES)}")
    body, root = await xml_document(request)
    expected = ROOTS[doc_type]
    if root.tag != expected:
        raise refusal(
            web.HTTPBadRequest,
            f"a document of type {doc_type} is an eBIS-XML {expected}, not {root.tag!r}",
        )
    outcome = await state.procurement.deliver(database_id, source, document_id, doc_type, body)
    if outcome == "conflict":
        raise refusal(
            web.HTTPConflict,
            f"other content was delivered before as {document_id!r} from {source!r}",
        )
    receipt = etree.Element("DocumentReceipt", source=source, documentId=document_id)
    receipt.set("status", outcome)
    return responses.xml_response(receipt, status=201 if outcome == "created" else 200)


async def get_authorised_orders(request: web.Request) -> web.Response:
    """``GET /api/EProcurement/AuthorisedOrders``: the orders still to be sent."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["AuthorisedOrders"] += 1
    database_id, _ = await authorize(request, "AuthorisedOrders")
    root = etree.Element("AuthorisedOrders")
    for order in await state.procurement.pending_orders(database_id):
        element = etree.SubElement(
            root,
            "AuthorisedOrder",
            id=order.order_id,
            supplierDuns=order.supplier_duns,
            authorised=order.authorised_at,
        )
        if order.origin is not None:  # the content order it was made from
            element.set("source", order.origin[0])
            element.set("documentId", order.origin[1])
        element.append(read_xml_text(order.order_xml, LIMITS))
    return responses.xml_response(root)


async def mark_order_sent(request: web.Request) -> web.Response:
    """``POST /api/EProcurement/AuthorisedOrders/{id}/Sent``: 204, also when already sent."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["MarkOrderSent"] += 1
    database_id, _ = await authorize(request, "MarkOrderSent")
    order_id = request.match_info["id"]
    if await state.procurement.mark_order_sent(database_id, order_id) is None:
        raise refusal(web.HTTPNotFound, "the database has no authorised order with this id")
    return web.Response(status=204)


def add_routes(app: web.Application, prefix: str = "/fng") -> None:
    base = f"{prefix}/api/EProcurement"
    app.router.add_post(f"{base}/Documents", post_document)
    app.router.add_get(f"{base}/AuthorisedOrders", get_authorised_orders, allow_head=False)
    app.router.add_post(f"{base}/AuthorisedOrders/{{id}}/Sent", mark_order_sent)

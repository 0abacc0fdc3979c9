"""The FNG REST client: the only module that knows FNG's paths and headers.

One pooled :class:`aiohttp.ClientSession` serves every school. The bearer token, both
of the database's keys, the scope and the request id are added by one client middleware,
which on a 401 refreshes the token once and sends the call once more. aiohttp's errors
are translated here, at the edge, into gateway errors; for writes the translation says
whether the call may have reached FNG (:class:`OutcomeUnknown`) or certainly did not.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import quote

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from lxml import etree
from pydantic import SecretStr

from gateway.config import FngSettings
from gateway.errors import (
    GatewayError,
    OutcomeUnknown,
    UpstreamError,
    UpstreamRefused,
    UpstreamTimeout,
)
from gateway.fng.documents import (
    BANKS_SCHEMA,
    BUDGET_RESULT_SCHEMA,
    CHART_SCHEMA,
    EPROC_SCHEMA,
    RESULTS_SCHEMA,
    YEARS_SCHEMA,
    FngDeclined,
    answer_document,
)
from gateway.observability import context
from gateway.simsid.tokens import TokenProvider
from gateway.tenancy.model import DatabaseTarget
from gateway.xmlsafe import Limits, SchemaRegistry

log = logging.getLogger(__name__)

XML: Final = "application/xml"


@dataclass(frozen=True, slots=True)
class FngResponse:
    """What FNG answered, before it is read."""

    status: int
    body: bytes


class KeyChanges(Protocol):
    """Where the FNG client learns of keys being rotated (the registry, in the gateway)."""

    async def fresh(self, database_id: int) -> DatabaseTarget | None:
        """The database's keys as they are now, current and next."""

    async def accepted(self, target: DatabaseTarget, *, fng_next: bool, partner_next: bool) -> None:
        """FNG accepted the next key(s): make them current."""


class _FngAuth:
    """Client middleware for one call: token, keys, scope and request id.

    On a 401 the token is refreshed once and the call sent again. On a 403 the database's
    keys are read afresh and each other pair (current and next, FNG's key and ours) is tried
    in turn: a key rotated in FNG's set-up screen, or by another replica, is followed at
    once, and a next key FNG accepts becomes current. FNG refused these calls, so sending
    them again cannot post anything twice.
    """

    __slots__ = ("_headers", "_keys", "_target", "_tokens")

    def __init__(
        self,
        tokens: TokenProvider,
        target: DatabaseTarget,
        settings: FngSettings,
        keys: KeyChanges | None,
    ):
        self._tokens = tokens
        self._target = target
        self._headers = settings.headers
        self._keys = keys

    def _use_keys(self, request: ClientRequest, fng_key: SecretStr, partner_key: SecretStr) -> None:
        request.headers[self._headers.psk] = fng_key.get_secret_value()
        request.headers[self._headers.client_id] = partner_key.get_secret_value()

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        names = self._headers
        self._use_keys(request, self._target.fng_key, self._target.partner_key)
        request.headers[names.scope] = "fngapi"
        request.headers[names.request_id] = context.request_id.get()
        token = await self._tokens.get(self._target.vendor)
        request.headers["Authorization"] = f"Bearer {token.value.get_secret_value()}"
        response = await handler(request)
        if response.status == 401:
            response.release()
            await self._tokens.invalidate(self._target.vendor, token)
            token = await self._tokens.get(self._target.vendor)
            request.headers["Authorization"] = f"Bearer {token.value.get_secret_value()}"
            response = await handler(request)
        if response.status != 403 or self._keys is None:
            return response
        fresh = await self._keys.fresh(self._target.database_id)
        if fresh is None:
            return response
        tried = {(self._target.fng_key, self._target.partner_key)}
        for fng_key, partner_key, fng_next, partner_next in fresh.key_pairs():
            if (fng_key, partner_key) in tried:
                continue
            tried.add((fng_key, partner_key))
            response.release()
            self._use_keys(request, fng_key, partner_key)
            response = await handler(request)
            if response.status != 403:
                if fng_next or partner_next:
                    await self._promote(fresh, fng_next=fng_next, partner_next=partner_next)
                return response
        return response

    async def _promote(self, target: DatabaseTarget, *, fng_next: bool, partner_next: bool) -> None:
        """Make the next key(s) FNG just accepted current. FNG has answered the call by now,
        so a store that fails here must not turn its answer into a fault (the caller might
        send a call again that FNG carried out): the keys stay as they were, and a later
        call promotes them."""
        assert self._keys is not None
        try:
            await self._keys.accepted(target, fng_next=fng_next, partner_next=partner_next)
        except GatewayError as exc:
            log.warning(
                "FNG accepted a database's next key, which could not be made current yet",
                extra={"database_id": target.database_id, "error": exc.message},
            )


class FngClient:
    """FNG's calls, each answering with the document FNG sent once it has passed its
    schema, or raising: :class:`FngDeclined` for a status that says FNG did not do it,
    :class:`FngAnswerUnusable` for an answer that is not its document,
    :class:`OutcomeUnknown` for a write whose answer never came back, and the other
    :class:`UpstreamError` types for FNG unreachable, failing or refusing the keys."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenProvider,
        settings: FngSettings,
        schemas: SchemaRegistry,
        limits: Limits,
        keys: KeyChanges | None = None,
    ) -> None:
        self._session = session
        self._tokens = tokens
        self._settings = settings
        self._schemas = schemas
        self._limits = limits
        self._keys = keys
        # The connect limit is the socket's alone: a call queued for one of the pool's
        # connections under load has not failed to reach FNG, and `total` still bounds it.
        self._timeout = aiohttp.ClientTimeout(
            total=settings.timeout_seconds, sock_connect=settings.connect_timeout_seconds
        )

    async def get_banks(
        self, target: DatabaseTarget, system_identifier: str
    ) -> etree._Element | None:
        """The payment system's Banks, or None when FNG has no such payment system."""
        response = await self._read(
            target,
            self._settings.paths.get_banks,
            {"systemIdentifier": system_identifier},
            operation="GetBanks",
        )
        if response.status == 404:
            return None
        return self._document(response, "GetBanks", BANKS_SCHEMA)

    async def post_journals(self, target: DatabaseTarget, document: bytes) -> etree._Element:
        """FNG's JournalResult."""
        response = await self._write(
            target, self._settings.paths.post_journals, document, operation="PostJournals"
        )
        return self._document(response, "PostJournals", RESULTS_SCHEMA)

    async def post_audit_message(self, target: DatabaseTarget, document: bytes) -> etree._Element:
        """FNG's AuditResult."""
        response = await self._write(
            target, self._settings.paths.post_audit_message, document, operation="PostAuditMessage"
        )
        return self._document(response, "PostAuditMessage", RESULTS_SCHEMA)

    async def export_gl_account(self, target: DatabaseTarget, date: str) -> etree._Element | None:
        """The chart of accounts of the financial year containing ``date`` (dd/MM/yyyy), or
        None when no financial year of the school contains it."""
        response = await self._read(
            target,
            self._settings.paths.export_gl_account,
            {"date": date},
            operation="ExportGlAccount",
        )
        if response.status == 404:
            return None
        return self._document(response, "ExportGlAccount", CHART_SCHEMA)

    async def export_financial_years(self, target: DatabaseTarget) -> etree._Element:
        response = await self._read(
            target,
            self._settings.paths.export_financial_years,
            {},
            operation="ExportFinancialYears",
        )
        return self._document(response, "ExportFinancialYears", YEARS_SCHEMA)

    async def import_budget(self, target: DatabaseTarget, document: bytes) -> etree._Element:
        """FNG's BudgetResult."""
        response = await self._write(
            target, self._settings.paths.import_budget, document, operation="ImportBudget"
        )
        return self._document(response, "ImportBudget", BUDGET_RESULT_SCHEMA)

    async def post_document(
        self, target: DatabaseTarget, *, source: str, document_id: str, doc_type: str, body: bytes
    ) -> etree._Element:
        """Deliver a portal's document; FNG keeps one per (source, document id) and answers
        with its receipt."""
        params = {"source": source, "documentId": document_id, "type": doc_type}
        response = await self._write(
            target, self._settings.paths.post_document, body, params, operation="PostDocument"
        )
        return self._document(response, "PostDocument", EPROC_SCHEMA, ok=(200, 201))

    async def authorised_orders(self, target: DatabaseTarget) -> etree._Element:
        response = await self._read(
            target, self._settings.paths.authorised_orders, {}, operation="AuthorisedOrders"
        )
        return self._document(response, "AuthorisedOrders", EPROC_SCHEMA)

    async def mark_order_sent(self, target: DatabaseTarget, order_id: str) -> None:
        path = self._settings.paths.mark_order_sent.format(id=quote(order_id, safe=""))
        response = await self._write(target, path, b"", operation="MarkOrderSent")
        if response.status not in (200, 204):
            raise FngDeclined("MarkOrderSent", response.status, response.body)

    def _document(
        self, response: FngResponse, operation: str, schema: str, *, ok: tuple[int, ...] = (200,)
    ) -> etree._Element:
        if response.status not in ok:
            raise FngDeclined(operation, response.status, response.body)
        return answer_document(response.body, self._schemas, schema, self._limits, operation)

    async def _read(
        self, target: DatabaseTarget, path: str, params: dict[str, str], *, operation: str
    ) -> FngResponse:
        attempts = self._settings.read_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._send("GET", target, path, params=params, operation=operation)
            except (UpstreamTimeout, UpstreamError) as exc:
                if last or isinstance(exc, UpstreamRefused):
                    raise
            else:
                if response.status < 500 or last:
                    return self._checked(response)
            await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def _write(
        self,
        target: DatabaseTarget,
        path: str,
        document: bytes,
        params: dict[str, str] | None = None,
        *,
        operation: str,
    ) -> FngResponse:
        try:
            response = await self._send(
                "POST", target, path, data=document, params=params, operation=operation
            )
        except UpstreamTimeout:
            raise OutcomeUnknown("FNG did not answer in time; the outcome is not known") from None
        except _NotSent as exc:
            raise UpstreamError(f"{exc.message}; nothing was sent") from None
        except UpstreamRefused:
            raise
        except UpstreamError as exc:
            raise OutcomeUnknown(f"{exc.message}; the outcome is not known") from None
        if response.status >= 500:
            raise OutcomeUnknown(
                f"FNG answered HTTP {response.status}; the outcome is not known",
                status=response.status,
            )
        return self._checked(response)

    def _checked(self, response: FngResponse) -> FngResponse:
        if response.status == 401:
            raise UpstreamRefused("FNG refused the access token", status=401)
        if response.status == 403:
            raise UpstreamRefused("FNG refused the database keys", status=403)
        if response.status >= 500:
            raise UpstreamError(f"FNG answered HTTP {response.status}", status=response.status)
        return response

    async def _send(
        self,
        method: str,
        target: DatabaseTarget,
        path: str,
        *,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        operation: str = "-",
    ) -> FngResponse:
        headers = {"Accept": XML}
        if data is not None:
            headers["Content-Type"] = f"{XML}; charset=utf-8"
        try:
            async with self._session.request(
                method,
                self._settings.base_url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=self._timeout,
                middlewares=(_FngAuth(self._tokens, target, self._settings, self._keys),),
                trace_request_ctx={"upstream": "fng", "operation": operation},
            ) as response:
                body = await response.read()
                return FngResponse(response.status, body)
        except aiohttp.ClientConnectorError as exc:
            raise _NotSent(f"FNG could not be reached: {type(exc).__name__}") from None
        except TimeoutError:
            raise UpstreamTimeout("FNG did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the connection to FNG failed: {type(exc).__name__}") from None


class _NotSent(UpstreamError):
    """The connection was never made, so FNG cannot have received the call."""

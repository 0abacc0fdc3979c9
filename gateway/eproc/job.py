"""A portal leased for a poll, as the pipeline's steps see it, and what they share."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlalchemy as sa
from lxml import etree
from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError

from gateway.config import EprocSettings
from gateway.eproc.portal import PortalClient
from gateway.eproc.rules import Expectations, Problem
from gateway.fng import FngClient
from gateway.observability.metrics import Metrics
from gateway.store import Store
from gateway.tenancy.model import ChecksumPolicy
from gateway.xmlsafe import Limits, SchemaRegistry

log = logging.getLogger("gateway.eproc.pipeline")

#: The schema of FNG's eProcurement answers (receipts, the authorised orders).


@dataclass(frozen=True, slots=True)
class PortalJob:
    """A portal due for a poll, with what the poll needs to know about its school."""

    portal_id: int
    database_id: int
    name: str
    url: str
    username: str
    password: SecretStr
    #: The suppliers the portal serves, by DUNS number.
    supplier_duns: frozenset[str]
    password_days: int | None
    password_changed_at: datetime
    last_success_at: datetime | None
    #: The school's language, currency and DUNS; the supplier is each document's own.
    expect: Expectations
    #: A plain http address is used only with this (the sandbox, tests).
    allow_http: bool = False
    #: Content orders must carry BuyersCodeForSupplier and SuppliersCodeForBuyer.
    require_handshake_codes: bool = True
    #: enforce | warn | off for a content order's checksum; None: the gateway's setting.
    checksum_policy: ChecksumPolicy | None = None
    #: Whether the index is due (its clock backs off after failures) ...
    documents_due: bool = True
    #: ... and whether FNG's authorised orders are (every ``eproc.orders_seconds``).
    orders_due: bool = True
    #: Why the portal cannot be polled at all (its stored password does not decrypt with
    #: the master keys), or None: the poll fails with it, and only this portal's does.
    unusable: str | None = None

    @property
    def label(self) -> str:
        return f"{self.database_id}:{self.name}"


@dataclass(frozen=True, slots=True)
class Services:
    """What the documents and the orders steps work with."""

    store: Store
    fng: FngClient
    client: PortalClient
    schemas: SchemaRegistry
    limits: Limits
    metrics: Metrics
    settings: EprocSettings


class Step:
    """A step of the pipeline (documents in, orders out), with the services it works with."""

    def __init__(self, services: Services) -> None:
        self._store = services.store
        self._fng = services.fng
        self._client = services.client
        self._schemas = services.schemas
        self._limits = services.limits
        self._metrics = services.metrics
        self._settings = services.settings

    def _checksum_policy(self, job: PortalJob) -> ChecksumPolicy:
        """The portal's own checksum policy, else the gateway's."""
        return job.checksum_policy or ChecksumPolicy(self._settings.checksum_policy)

    def _require_handshake_codes(self, job: PortalJob) -> bool:
        """Whether the portal's content orders need FMS's handshake codes: unless the portal
        or the gateway waives them."""
        return job.require_handshake_codes and self._settings.require_handshake_codes

    def _let_through(
        self, job: PortalJob, direction: str, reference: str, warnings: tuple[Problem, ...]
    ) -> None:
        """Log and count what a warn policy let through (``in``: a content order collected;
        ``out``: an authorised order sent)."""
        for warning in warnings:
            self._metrics.checksum_mismatches.labels(job.label, direction).inc()
            log.warning(
                "an order went through with a checksum FMS would refuse (checksum policy warn)",
                extra={
                    "portal": job.label,
                    "direction": direction,
                    "reference": reference,
                    "reason": str(warning),
                },
            )


def supplier_of(job: PortalJob, root: etree._Element) -> Expectations:
    """An order or invoice matched to its supplier: what the school expects of it, with the
    supplier it names (by DUNS, or by GLN) when the portal serves that supplier. A document
    naming none of the portal's suppliers is held to all of them (their numbers joined by
    "or"), which it fails."""
    for kind in ("DUNS", "GLN"):
        named = (root.findtext(f"Supplier/SupplierReferences/{kind}") or "").strip()
        if named in job.supplier_duns:
            return replace(job.expect, supplier_duns=named)
    return job.expect


def now() -> datetime:
    return datetime.now(UTC)


async def insert_once(store: Store, statement: sa.Insert) -> int | None:
    """Insert a ledger's row; its id, or None when another replica inserted it first."""
    try:
        async with store.write() as conn:
            result = await conn.execute(statement)
    except IntegrityError:
        return None
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def set_aside(store: Store, table: sa.Table, row_id: int, problems: list[Problem]) -> str:
    """Quarantine a row of a ledger (documents or orders) for its first problem's rule; the
    reason, every problem's, is returned for the log."""
    reason = "; ".join(str(problem) for problem in problems)
    async with store.write() as conn:
        await conn.execute(
            table.update()
            .where(table.c.id == row_id)
            .values(state="quarantined", rule=problems[0].rule, reason=reason, updated_at=now())
        )
    return reason

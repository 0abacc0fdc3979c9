"""One poll of one supplier portal: the password kept fresh, documents in, authorised orders out.

Each job has its own module: :mod:`~gateway.eproc.passwords`, :mod:`~gateway.eproc.documents`
and :mod:`~gateway.eproc.orders`. The pipeline only conducts them.
"""

from __future__ import annotations

from gateway.config import EprocSettings
from gateway.eproc.documents import Documents
from gateway.eproc.job import PortalJob, Services
from gateway.eproc.orders import Orders
from gateway.eproc.passwords import Passwords
from gateway.eproc.portal import PortalClient
from gateway.errors import NoActiveKey, PortalError, PortalInsecure
from gateway.fng import FngClient
from gateway.observability.metrics import Metrics
from gateway.store import Store
from gateway.tenancy.callers import CallerResolver
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import portal_url_problem
from gateway.xmlsafe import Limits, SchemaRegistry


class Pipeline:
    def __init__(
        self,
        *,
        store: Store,
        box: SecretBox,
        callers: CallerResolver,
        fng: FngClient,
        client: PortalClient,
        schemas: SchemaRegistry,
        limits: Limits,
        metrics: Metrics,
        settings: EprocSettings,
    ) -> None:
        self._callers = callers
        self.passwords = Passwords(store=store, box=box, client=client, metrics=metrics)
        services = Services(store, fng, client, schemas, limits, metrics, settings)
        self.documents = Documents(services)
        self.orders = Orders(services)

    async def poll(self, job: PortalJob) -> None:
        """Everything due for one portal: orders first, as FMS sent them "immediately they
        are Printed", and whatever becomes of them, the index. Raises
        :class:`~gateway.errors.PortalError` when the portal fails."""
        target = await self._callers.database_target(job.database_id)
        if target is None:
            raise NoActiveKey(f"database {job.database_id} has no active key")
        insecure = portal_url_problem(job.url, job.allow_http)
        if insecure is not None:
            raise PortalInsecure(insecure)
        portal = self.passwords.portal(job)
        await self.passwords.keep(job, portal)
        failed: PortalError | None = None
        if job.orders_due:
            try:
                await self.orders.send(job, portal, target)
            except PortalError as exc:
                failed = exc  # the index is read all the same
        if job.documents_due:
            await self.documents.collect(job, portal, target)
        if failed is not None:
            raise failed

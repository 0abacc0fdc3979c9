"""Portal passwords: changed with ChangePassword when due, and stored before anything else.

Once a portal has issued a new password it accepts no other, so the new one is kept in this
process until the store has taken it, and used meanwhile.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from gateway.eproc.job import PortalJob, now
from gateway.eproc.portal import Portal, PortalClient
from gateway.errors import GatewayError
from gateway.observability.metrics import Metrics
from gateway.store import Store
from gateway.store.tables import portals
from gateway.tenancy.identifiers import PASSWORD_DAYS
from gateway.tenancy.secrets import SecretBox

log = logging.getLogger(__name__)

#: The standard: "Passwords should have a minimum life of 60 days".
PASSWORD_MINIMUM_DAYS: Final = 60
#: The longest life the registry gives a password; a longer one stored before the registry
#: refused it is taken as this (a timedelta of it would overflow, every poll).
PASSWORD_MAXIMUM_DAYS: Final = int(PASSWORD_DAYS.high)


class Passwords:
    def __init__(
        self, *, store: Store, box: SecretBox, client: PortalClient, metrics: Metrics
    ) -> None:
        self._store = store
        self._box = box
        self._client = client
        self._metrics = metrics
        #: Passwords a portal has issued that could not yet be stored.
        self._unsaved: dict[int, str] = {}

    def portal(self, job: PortalJob) -> Portal:
        """The portal as the client calls it, with the newest password it issued."""
        password = self._unsaved.get(job.portal_id) or job.password.get_secret_value()
        return Portal(job.name, job.url, job.username, password)

    async def keep(self, job: PortalJob, portal: Portal) -> None:
        """Store a password still held in memory; change the password if it is due."""
        await self._store_unsaved(job)
        await self._change_if_due(job, portal)

    async def _change_if_due(self, job: PortalJob, portal: Portal) -> None:
        if job.password_days is None or job.portal_id in self._unsaved:
            return
        days = min(max(job.password_days, PASSWORD_MINIMUM_DAYS), PASSWORD_MAXIMUM_DAYS)
        if now() - job.password_changed_at < timedelta(days=days):
            return
        password = await self._client.change_password(portal)
        # From here the portal accepts only the new password: keep it before anything else.
        self._unsaved[job.portal_id] = password
        portal.password = password
        await self._store_unsaved(job)

    async def _store_unsaved(self, job: PortalJob) -> None:
        password = self._unsaved.get(job.portal_id)
        if password is None:
            return
        try:
            async with self._store.write() as conn:
                await conn.execute(
                    portals.update()
                    .where(portals.c.id == job.portal_id)
                    .values(password_enc=self._box.encrypt(password), password_changed_at=now())
                )
        except GatewayError as exc:
            self._metrics.password_store_failures.inc()
            log.critical(
                "a portal changed its password and the new one could not be stored; it is held "
                "in this process only until the store answers again",
                extra={"portal": job.label, "error": exc.message},
            )
            return
        del self._unsaved[job.portal_id]
        log.info("portal password changed and stored", extra={"portal": job.label})

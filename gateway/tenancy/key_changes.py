"""What the FNG client learns of rotated keys, answered from the registry and the rotation."""

from __future__ import annotations

from datetime import timedelta

from gateway.tenancy.callers import CallerResolver
from gateway.tenancy.model import DatabaseTarget
from gateway.tenancy.rotation import KeyRotation


class RegistryKeys:
    """The FNG client's ``KeyChanges``: a database's keys read afresh, and FNG's acceptance of
    the next ones made current (then the caller resolver's cached resolutions are dropped)."""

    def __init__(self, callers: CallerResolver, rotation: KeyRotation, *, grace: timedelta) -> None:
        self._callers = callers
        self._rotation = rotation
        self._grace = grace

    async def fresh(self, database_id: int) -> DatabaseTarget | None:
        return await self._callers.database_target(database_id)

    async def accepted(self, target: DatabaseTarget, *, fng_next: bool, partner_next: bool) -> None:
        await self._rotation.promote_accepted(
            target.database_id, fng_key=fng_next, partner_key=partner_next, grace=self._grace
        )
        self._callers.forget()

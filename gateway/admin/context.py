"""What an admin API handler works with, whichever package contributed its route."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import KeySettings
from gateway.store import Store
from gateway.tenancy.rotation import KeyRotation
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin


@dataclass(frozen=True, slots=True)
class Context:
    """The store, the master keys and the operator (``admin:NAME``, the audit log's actor)."""

    store: Store
    box: SecretBox
    actor: str
    keys: KeySettings

    @property
    def tenancy(self) -> TenancyAdmin:
        return TenancyAdmin(self.store, self.box, actor=self.actor)

    @property
    def rotation(self) -> KeyRotation:
        return KeyRotation(self.store, self.box, self.actor)

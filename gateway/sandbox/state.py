"""Everything the sandbox remembers, as parts composed over one store.

Each part stands for one thing the sandbox emulates and keeps its rows in the shared
:class:`~gateway.sandbox.store.SandboxStore` (SQLite); the counters live in memory::

    state.store        the database: transactions, small settings
    state.stats        the counters tests read (calls, tokens, posted journals, …)
    state.simsid       SIMS ID: the signing key, clients, issued tokens
    state.databases    FNG's databases and their two keys
    state.journals     payment systems, ledgers, posted journals, audit messages
    state.planning     financial years, charts of accounts, cost centres
    state.budgets      imported budgets
    state.procurement  FNG's delivered documents and authorised orders
    state.portals      supplier portals: accounts, queued documents, received orders
"""

from __future__ import annotations

from joserfc.jwk import RSAKey

from gateway.sandbox.fng.budgets import Budgets
from gateway.sandbox.fng.databases import Databases
from gateway.sandbox.fng.journals import Journals
from gateway.sandbox.fng.planning import Planning
from gateway.sandbox.fng.procurement import Procurement
from gateway.sandbox.portal.portals import Portals
from gateway.sandbox.simsid.issuer import SimsId
from gateway.sandbox.stats import SandboxStats
from gateway.sandbox.store import SandboxStore


class SandboxState:
    """The sandbox's SIMS ID, FNG and supplier portal state. Open with :meth:`open`, then
    :meth:`close`."""

    def __init__(self, store: SandboxStore, simsid: SimsId) -> None:
        self.store = store
        self.stats = SandboxStats()
        self.simsid = simsid
        self.databases = Databases(store)
        self.journals = Journals(store, self.stats)
        self.planning = Planning(store)
        self.budgets = Budgets(store, self.stats)
        self.procurement = Procurement(store, self.stats)
        self.portals = Portals(store, self.stats)

    @classmethod
    async def open(cls, url: str, *, signing_key: RSAKey | None = None) -> SandboxState:
        """Open (and create, if new) the state at an ``sqlite+aiosqlite`` URL.

        A new state generates its RSA signing key, or keeps ``signing_key`` if one is given
        (a fixed key for a deployment, or one key shared by many short-lived test states).
        A state that has a key keeps it, so tokens outlive a restart.
        """
        store = await SandboxStore.open(url)
        try:
            simsid = await SimsId.open(store, signing_key)
        except BaseException:
            await store.close()
            raise
        return cls(store, simsid)

    async def close(self) -> None:
        await self.store.close()

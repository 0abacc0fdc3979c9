"""The shipped stand-in for SIMS ID, FNG and supplier portals.

A SIMS ID that issues real RS256 tokens by the client credentials grant, and an FNG that
checks them and both database keys on every call, enforces FMS 6's journal rules,
exports charts of accounts and financial years and imports budgets by FMS 6's checks,
and takes eProcurement documents and hands out authorised orders, against state kept in
SQLite. Beside them, any number of supplier portals speaking the FMS eProcurement web
service standard (SOAP), which the gateway polls as FMS did. Fault switches and counters
let tests prove the gateway's behaviour end to end. It is also the quick start, and the
sandbox integrators lack.

    state = await SandboxState.open("sqlite+aiosqlite:///sandbox.db")
    demo = await seed_demo(state)
    app = create_sandbox_app(state)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.sandbox.app import create_sandbox_app
    from gateway.sandbox.appkeys import SANDBOX_STATE
    from gateway.sandbox.demo import DemoSeed, seed_demo
    from gateway.sandbox.state import SandboxState
    from gateway.sandbox.stats import SandboxStats

__all__ = [
    "SANDBOX_STATE",
    "DemoSeed",
    "SandboxState",
    "SandboxStats",
    "create_sandbox_app",
    "seed_demo",
]

#: The module each name above lives in. A name is imported when it is first asked for, so
#: that importing one module of the sandbox runs that module's imports and no others.
_HOMES = {
    "SANDBOX_STATE": "gateway.sandbox.appkeys",
    "DemoSeed": "gateway.sandbox.demo",
    "SandboxState": "gateway.sandbox.state",
    "SandboxStats": "gateway.sandbox.stats",
    "create_sandbox_app": "gateway.sandbox.app",
    "seed_demo": "gateway.sandbox.demo",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)

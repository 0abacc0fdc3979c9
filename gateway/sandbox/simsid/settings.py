"""The SIMS ID settings the sandbox can change live."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(slots=True)
class SimsIdSettings:
    """How SIMS ID behaves: the lifetime of new tokens, and a fixed issuer if one is set.

    Without a fixed issuer, the issuer is the scheme and host the request was sent to, so
    the sandbox works on any port; SIMS ID and FNG must then be called at the same host.
    """

    token_lifetime: int
    issuer: str | None = None

    def issuer_for(self, request: web.Request) -> str:
        if self.issuer is not None:
            return self.issuer
        return f"{request.scheme}://{request.host}"

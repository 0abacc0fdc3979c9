"""SIMS ID tokens: client authentication, cache, single flight."""

from gateway.simsid.tokens import Token, TokenProvider

__all__ = ["Token", "TokenProvider"]

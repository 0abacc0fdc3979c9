"""SIMS ID's cryptography: access tokens, client assertions and client secrets.

Pure functions over keys and claims; what needs remembering (issued tokens, presented
assertion ids, secret hashes) is kept by :class:`gateway.sandbox.simsid.issuer.SimsId`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey, import_key

from gateway.sandbox.errors import TokenError

#: The one scope SIMS ID grants for FNG, and the audience of the tokens it issues.
FNG_SCOPE: Final = "fngapi"
FNG_AUDIENCE: Final = "fngapi"

ACCESS_TOKEN_ALGORITHM: Final = "RS256"

#: Algorithms accepted for client assertions, by the type of the client's registered key.
ASSERTION_ALGORITHMS: Final[Mapping[str, tuple[str, ...]]] = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA", "Ed25519", "Ed448"),
}

PublicKey = RSAKey | ECKey | OKPKey


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What FNG needs from a verified access token."""

    jti: str
    client_id: str
    scopes: frozenset[str]


def generate_signing_key() -> RSAKey:
    return RSAKey.generate_key(
        2048, parameters={"use": "sig", "alg": ACCESS_TOKEN_ALGORITHM}, auto_kid=True
    )


def public_key_set(key: RSAKey) -> dict[str, Any]:
    """The JWKS document: the signing key's public half."""
    return {"keys": [key.as_dict(private=False)]}


def mint_access_token(
    key: RSAKey, *, issuer: str, client_id: str, jti: str, issued_at: int, lifetime: int
) -> str:
    header = {"alg": ACCESS_TOKEN_ALGORITHM, "kid": key.kid, "typ": "at+jwt"}
    claims = {
        "iss": issuer,
        "aud": FNG_AUDIENCE,
        "client_id": client_id,
        "scope": FNG_SCOPE,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime,
        "jti": jti,
    }
    return jwt.encode(header, claims, key, algorithms=[ACCESS_TOKEN_ALGORITHM])


def verify_access_token(token: str, key: RSAKey, *, issuer: str, now: int) -> AccessClaims:
    """Check signature, issuer, audience and times; raise :class:`TokenError` if any fails."""
    try:
        decoded = jwt.decode(token, KeySet([key]), algorithms=[ACCESS_TOKEN_ALGORITHM])
    except (JoseError, ValueError, TypeError):
        raise TokenError("the token is not a JWT signed by this SIMS ID") from None
    registry = jwt.JWTClaimsRegistry(
        now=now,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": FNG_AUDIENCE},
        exp={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except JoseError as exc:
        raise TokenError(f"the token is not valid here: {exc.description}") from None
    claims = decoded.claims
    scope = claims.get("scope", "")
    scopes = scope.split() if isinstance(scope, str) else scope
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise TokenError("the token's scope claim is malformed")
    client_id = claims["client_id"]
    if not isinstance(client_id, str):
        raise TokenError("the token's client_id claim is malformed")
    return AccessClaims(jti=claims["jti"], client_id=client_id, scopes=frozenset(scopes))


def import_public_jwk(data: Mapping[str, Any]) -> PublicKey:
    """Import a client's JWK, keeping only its public half."""
    try:
        key = import_key(dict(data))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a usable public JWK: {exc}") from None
    if not isinstance(key, RSAKey | ECKey | OKPKey):
        raise ValueError("a client's key must be an RSA, EC or OKP key")
    return import_public(key.as_dict(private=False))


def import_public(data: Mapping[str, Any]) -> PublicKey:
    key = import_key(dict(data))
    assert isinstance(key, RSAKey | ECKey | OKPKey)
    return key


def assertion_issuer(assertion: str) -> str:
    """The ``iss`` of a client assertion, read before it is verified (to find its key)."""
    try:
        compact = jws.extract_compact(assertion.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise TokenError("the client assertion is not a JWT") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise TokenError("the client assertion has no issuer")
    return issuer


def verify_client_assertion(
    assertion: str, key: PublicKey, *, client_id: str, audience: str, now: int
) -> tuple[str, int]:
    """Verify an RFC 7523 client assertion; return its ``jti`` and ``exp``."""
    try:
        decoded = jwt.decode(assertion, key, algorithms=ASSERTION_ALGORITHMS[key.key_type])
    except (JoseError, ValueError, TypeError):
        raise TokenError("the client assertion's signature does not verify") from None
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=30,
        iss={"essential": True, "value": client_id},
        sub={"essential": True, "value": client_id},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except JoseError as exc:
        raise TokenError(f"the client assertion is not acceptable: {exc.description}") from None
    exp = decoded.claims["exp"]
    return decoded.claims["jti"], int(exp)


_SECRET_SCHEME: Final = "sha256"


def hash_secret(secret: str) -> str:
    """A salted SHA-256 of a client secret, as SIMS ID (IdentityServer) keeps them."""
    salt = secrets.token_hex(16)
    digest = hashlib.sha256(bytes.fromhex(salt) + secret.encode("utf-8")).hexdigest()
    return f"{_SECRET_SCHEME}${salt}${digest}"


def secret_matches(secret: str, stored: str) -> bool:
    scheme, _, rest = stored.partition("$")
    salt, _, digest = rest.partition("$")
    if scheme != _SECRET_SCHEME or not salt or not digest:
        return False
    candidate = hashlib.sha256(bytes.fromhex(salt) + secret.encode("utf-8")).hexdigest()
    return hmac.compare_digest(candidate, digest)

"""Password hashes (scrypt, from the standard library) and their verification."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from functools import cache
from typing import Final

_N: Final = 2**14
_R: Final = 8
_P: Final = 1
_DKLEN: Final = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=2**26,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@cache
def dummy_hash() -> str:
    """Verified against when the username is unknown, so both cases cost the same."""
    return hash_password(secrets.token_urlsafe(16))


async def verify_password_async(password: str, encoded: str) -> bool:
    """:func:`verify_password` off the event loop (scrypt takes tens of milliseconds)."""
    return await asyncio.to_thread(verify_password, password, encoded)


def generate_password() -> str:
    return secrets.token_urlsafe(18)

"""Partner keys: GUIDs that name a school's FNG database."""

from __future__ import annotations

import hashlib
import uuid


def normalise_key(value: str) -> str | None:
    """The canonical form of a GUID (lower case, hyphenated), or None if it is not one."""
    text = value.strip()
    if not 32 <= len(text) <= 38:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def key_digest(normalised: str) -> str:
    return hashlib.sha256(normalised.encode()).hexdigest()


def new_key() -> str:
    return str(uuid.uuid4())

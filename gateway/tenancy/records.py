"""The registry's rows and audit entries, made in one place.

The operators' functions (``gateway.tenancy.service``, ``gateway.tenancy.rotation``) write
them one at a time, the bulk import (``gateway.tenancy.bulk``) many in one statement; both
build them here, so a school, a database or a partner key is stored the same way whichever
wrote it. Secrets are encrypted here, before they reach a statement.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import audit_log
from gateway.tenancy.keys import key_digest
from gateway.tenancy.model import KeyState
from gateway.tenancy.secrets import SecretBox


def audit_entry(
    actor: str, action: str, subject: str, *, at: datetime | None = None, **detail: Any
) -> dict[str, Any]:
    """An audit log row: who did what to which subject, and its detail (never a secret)."""
    return {
        "at": at or datetime.now(UTC),
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": json.dumps(detail, sort_keys=True),
    }


async def audit(
    conn: AsyncConnection, actor: str, action: str, subject: str, **detail: Any
) -> None:
    """Write one audit entry, in the transaction of the change it records."""
    await conn.execute(audit_log.insert().values(audit_entry(actor, action, subject, **detail)))


def school_row(
    *,
    name: str,
    la_number: str,
    establishment_number: str,
    duns: str | None,
    language: str,
    currency: str,
    at: datetime,
) -> dict[str, Any]:
    return {
        "name": name,
        "la_number": la_number,
        "establishment_number": establishment_number,
        "duns": duns,
        "language": language,
        "currency": currency,
        "created_at": at,
    }


def database_row(
    box: SecretBox, *, school_id: int, vendor_id: int, name: str, fng_key: str, at: datetime
) -> dict[str, Any]:
    """A school's FNG database, with FNG's key for it encrypted."""
    return {
        "school_id": school_id,
        "vendor_id": vendor_id,
        "name": name,
        "fng_key_enc": box.encrypt(fng_key),
        "created_at": at,
    }


def partner_key_row(
    box: SecretBox, database_id: int, key: str, state: KeyState, *, at: datetime
) -> dict[str, Any]:
    """A partner key: its digest (what inbound calls are looked up by) and itself encrypted."""
    return {
        "database_id": database_id,
        "digest": key_digest(key),
        "key_enc": box.encrypt(key),
        "state": state.value,
        "created_at": at,
    }

"""Move every stored secret to the newest master key (``fng-gateway secrets reencrypt``)."""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from gateway.store import Store
from gateway.store.tables import databases, partner_keys, portals, vendors
from gateway.tenancy.records import audit
from gateway.tenancy.secrets import SecretBox

#: Every encrypted column, by table.
ENCRYPTED: Final = (
    (vendors, ("credential_enc",)),
    (databases, ("fng_key_enc", "fng_key_next_enc")),
    (partner_keys, ("key_enc",)),
    (portals, ("password_enc",)),
)


async def reencrypt(store: Store, box: SecretBox, actor: str) -> int:
    """Re-encrypt every secret under the newest key, in one transaction; how many."""
    count = 0
    async with store.write() as conn:
        for table, columns in ENCRYPTED:
            rows = (await conn.execute(sa.select(table.c.id, *(table.c[c] for c in columns)))).all()
            for row in rows:
                values = {
                    column: box.rotate(getattr(row, column))
                    for column in columns
                    if getattr(row, column) is not None
                }
                if values:
                    await conn.execute(table.update().where(table.c.id == row.id).values(**values))
                    count += len(values)
        await audit(conn, actor, "secrets.reencrypt", "secrets", secrets=count)
    return count

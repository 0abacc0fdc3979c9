"""Move every stored secret to the newest master key (``fng-gateway secrets reencrypt``)."""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from gateway.errors import ConfigurationError
from gateway.store import Store
from gateway.store.tables import databases, partner_keys, portals, vendors
from gateway.tenancy.records import audit
from gateway.tenancy.secrets import SecretBox

#: Every encrypted column, by table, and what a row of it is called.
ENCRYPTED: Final = (
    (vendors, ("credential_enc",), "vendor"),
    (databases, ("fng_key_enc", "fng_key_next_enc"), "school database"),
    (partner_keys, ("key_enc",), "partner key"),
    (portals, ("password_enc",), "portal"),
)
#: Secrets named in a refusal, at most.
_NAMED: Final = 5


async def reencrypt(store: Store, box: SecretBox, actor: str) -> int:
    """Re-encrypt every secret under the newest key, in one transaction; how many. If any
    cannot be decrypted, none is re-encrypted, and the refusal names them."""
    count = 0
    undecryptable: list[str] = []
    async with store.write() as conn:
        for table, columns, kind in ENCRYPTED:
            rows = (await conn.execute(sa.select(table.c.id, *(table.c[c] for c in columns)))).all()
            for row in rows:
                values = {}
                for column in columns:
                    if getattr(row, column) is None:
                        continue
                    try:
                        values[column] = box.rotate(getattr(row, column))
                    except ConfigurationError:
                        undecryptable.append(f"{kind} {row.id}")
                if values and not undecryptable:
                    await conn.execute(table.update().where(table.c.id == row.id).values(**values))
                    count += len(values)
        if undecryptable:
            named = ", ".join(undecryptable[:_NAMED])
            more = len(undecryptable) - _NAMED
            raise ConfigurationError(
                f"{len(undecryptable)} stored secret(s) cannot be decrypted with the configured "
                f"master keys ({named}{f' and {more} more' if more > 0 else ''}): add the master "
                "key they were stored under (after the newest) and run this again, or set those "
                "secrets again; nothing was re-encrypted"
            )
        await audit(conn, actor, "secrets.reencrypt", "secrets", secrets=count)
    return count

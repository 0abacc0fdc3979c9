"""Master keys in a mounted file, rotated the way Kubernetes does it, while the gateway runs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from gateway.app import BOX, STORE
from gateway.errors import ConfigurationError
from gateway.store.tables import portals, vendors
from gateway.tenancy.reencrypt import reencrypt
from gateway.tenancy.secrets import SecretBox
from tests.conftest import Sandbox, gateway_settings, start_gateway
from tests.support import operation, soap_call


def mount(directory: Path, keys: list[bytes], generation: int) -> None:
    """What the kubelet does: write a new timestamped directory, swap the ..data symlink."""
    data = directory / f"..{generation}"
    data.mkdir()
    (data / "master-keys").write_bytes(b"\n".join(keys) + b"\n")
    link = directory / "..data_tmp"
    link.symlink_to(data.name)
    os.replace(link, directory / "..data")
    if not (directory / "master-keys").exists():
        (directory / "master-keys").symlink_to("..data/master-keys")


async def test_new_key_file_is_followed_and_secrets_move_to_it(
    tmp_path: Path, sandbox: Sandbox, aiohttp_server: Any, http: aiohttp.ClientSession
) -> None:
    mounted = tmp_path / "secret"
    mounted.mkdir()
    old, new = Fernet.generate_key(), Fernet.generate_key()
    mount(mounted, [old], 1)
    settings = gateway_settings(
        tmp_path, sandbox, master_keys_file=mounted / "master-keys", master_keys_reload_seconds=0.2
    )
    box = SecretBox.from_sources(None, settings.master_keys_file)
    gateway = await start_gateway(aiohttp_server, settings, box, sandbox)
    body = operation("GetBanks", systemIdentifier="TPPCS")
    assert not (await soap_call(http, gateway.soap_url, body, gateway.auth)).is_fault

    mount(mounted, [new, old], 2)  # the new key first: it encrypts from now on
    await asyncio.sleep(0.6)
    count = await reencrypt(gateway.app[STORE], gateway.app[BOX], "test")
    assert count == 4  # the vendor's secret, the FNG key, the partner key, the portal's password
    mount(mounted, [new], 3)  # and the old key is gone
    await asyncio.sleep(0.6)
    async with gateway.app[STORE].read() as conn:
        stored = await conn.scalar(sa.select(vendors.c.credential_enc))
    assert SecretBox([new]).decrypt(stored).get_secret_value() == sandbox.demo.client_secret
    await asyncio.sleep(gateway.settings.auth.registry_cache_seconds)  # cached callers lapse
    assert not (await soap_call(http, gateway.soap_url, body, gateway.auth)).is_fault


async def test_reencrypt_names_what_it_cannot_decrypt_and_changes_nothing(
    tmp_path: Path, sandbox: Sandbox, aiohttp_server: Any
) -> None:
    """A secret stored under a master key the gateway does not hold: re-encrypting says which
    one and what to do, and leaves every secret as it was."""
    box = SecretBox([Fernet.generate_key()])
    gateway = await start_gateway(aiohttp_server, gateway_settings(tmp_path, sandbox), box, sandbox)
    store = gateway.app[STORE]
    async with store.write() as conn:
        portal_id = await conn.scalar(sa.select(portals.c.id))
        await conn.execute(
            portals.update().values(password_enc=SecretBox([Fernet.generate_key()]).encrypt("p"))
        )
    async with store.read() as conn:
        before = (await conn.execute(sa.select(vendors.c.credential_enc))).scalars().all()
    with pytest.raises(ConfigurationError, match=rf"\(portal {portal_id}\): add the master key"):
        await reencrypt(store, gateway.app[BOX], "test")
    async with store.read() as conn:
        after = (await conn.execute(sa.select(vendors.c.credential_enc))).scalars().all()
    assert after == before

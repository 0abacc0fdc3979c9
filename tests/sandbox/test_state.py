"""The state's Python API refuses set-ups FNG and SIMS ID would not hold."""

from __future__ import annotations

import uuid

import pytest

from gateway.sandbox import SandboxState


async def _database(state: SandboxState, **overrides: str) -> int:
    await state.add_client("vendor", secret="s")
    values = {
        "school_name": "A School",
        "la_number": "123",
        "establishment_number": "0042",
        "client_id": "vendor",
        "fng_key": str(uuid.uuid4()),
        "partner_key": str(uuid.uuid4()),
        **overrides,
    }
    return await state.add_database("Public funds", **values)


class TestSetUp:
    async def test_only_sqlite(self) -> None:
        """The sandbox keeps its state in SQLite and says so for any other URL."""
        with pytest.raises(ValueError, match="SQLite"):
            await SandboxState.open("postgresql+asyncpg://localhost/sandbox")

    async def test_client_needs_a_credential(self, state: SandboxState) -> None:
        """A client with neither secret nor public key is refused."""
        with pytest.raises(ValueError):
            await state.add_client("nothing")

    async def test_client_key_must_be_a_jwk(self, state: SandboxState) -> None:
        """A public key that is not a usable JWK is refused."""
        with pytest.raises(ValueError):
            await state.add_client("bad-key", public_jwk={"kty": "RSA", "n": "x"})

    async def test_keys_must_be_guids(self, state: SandboxState) -> None:
        """Database keys are GUIDs."""
        with pytest.raises(ValueError):
            await _database(state, fng_key="not-a-guid")

    async def test_school_numbers(self, state: SandboxState) -> None:
        """An LA number has three digits and an establishment number four."""
        with pytest.raises(ValueError):
            await _database(state, la_number="12")

    async def test_mapping_kinds(self, state: SandboxState) -> None:
        """Mappings are of the kinds FMS knows."""
        database_id = await _database(state)
        with pytest.raises(ValueError, match="colour"):
            await state.add_payment_system(database_id, "PS", "PS", {"colour": {"a": "b"}})

    async def test_partner_key_of_unknown_database(self, state: SandboxState) -> None:
        """Rotating the key of a database that does not exist is a LookupError."""
        with pytest.raises(LookupError):
            await state.set_partner_key(404, str(uuid.uuid4()))

"""The state's Python API refuses set-ups FNG and SIMS ID would not hold."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from gateway.sandbox import SandboxState


async def _database(state: SandboxState, **overrides: str) -> int:
    await state.simsid.add_client("vendor", secret="s")
    values = {
        "school_name": "A School",
        "la_number": "123",
        "establishment_number": "0042",
        "client_id": "vendor",
        "fng_key": str(uuid.uuid4()),
        "partner_key": str(uuid.uuid4()),
        **overrides,
    }
    return await state.databases.add("Public funds", **values)


class TestSetUp:
    async def test_the_state_is_kept_in_sqlite_only(self) -> None:
        """The sandbox keeps its state in SQLite and says so for any other URL."""
        with pytest.raises(ValueError, match="SQLite"):
            await SandboxState.open("postgresql+asyncpg://localhost/sandbox")

    async def test_client_needs_a_credential(self, state: SandboxState) -> None:
        """A client with neither secret nor public key is refused."""
        with pytest.raises(ValueError):
            await state.simsid.add_client("nothing")

    async def test_client_key_must_be_a_jwk(self, state: SandboxState) -> None:
        """A public key that is not a usable JWK is refused."""
        with pytest.raises(ValueError):
            await state.simsid.add_client("bad-key", public_jwk={"kty": "RSA", "n": "x"})

    async def test_keys_must_be_guids(self, state: SandboxState) -> None:
        """Database keys are GUIDs."""
        with pytest.raises(ValueError):
            await _database(state, fng_key="not-a-guid")

    async def test_school_numbers_have_three_and_four_digits(self, state: SandboxState) -> None:
        """An LA number has three digits and an establishment number four."""
        with pytest.raises(ValueError):
            await _database(state, la_number="12")

    async def test_mappings_are_of_the_kinds_fms_knows(self, state: SandboxState) -> None:
        """Mappings are of the kinds FMS knows."""
        database_id = await _database(state)
        with pytest.raises(ValueError, match="colour"):
            await state.journals.add_payment_system(database_id, "PS", "PS", {"colour": {"a": "b"}})

    async def test_partner_key_of_unknown_database(self, state: SandboxState) -> None:
        """Rotating the key of a database that does not exist is a LookupError."""
        with pytest.raises(LookupError):
            await state.databases.set_partner_key(404, str(uuid.uuid4()))


class TestBudgetPlanningSetUp:
    async def test_a_year_description_has_one_to_nine_characters(self, state: SandboxState) -> None:
        """A year description has one to nine characters."""
        database_id = await _database(state)
        with pytest.raises(ValueError, match="1 to 9"):
            await state.planning.add_financial_year(
                database_id, "2026/20270", date(2026, 4, 1), closed=False
            )

    async def test_year_starts_on_the_first(self, state: SandboxState) -> None:
        """Periods are calendar months, so a year starts on the first of one."""
        database_id = await _database(state)
        with pytest.raises(ValueError, match="first of a month"):
            await state.planning.add_financial_year(
                database_id, "2026/27", date(2026, 4, 6), closed=False
            )

    async def test_years_neither_repeat_nor_overlap(self, state: SandboxState) -> None:
        """A second year with the same description, or overlapping another, is refused."""
        database_id = await _database(state)
        await state.planning.add_financial_year(
            database_id, "2026/27", date(2026, 4, 1), closed=False
        )
        with pytest.raises(ValueError, match="2026/27"):
            await state.planning.add_financial_year(
                database_id, "2026/27", date(2030, 4, 1), closed=True
            )
        with pytest.raises(ValueError, match="overlaps"):
            await state.planning.add_financial_year(
                database_id, "Other", date(2027, 3, 1), closed=True
            )
        await state.planning.add_financial_year(
            database_id, "2027/28", date(2027, 4, 1), closed=False
        )

    async def test_a_year_of_an_unknown_database_is_a_lookup_error(
        self, state: SandboxState
    ) -> None:
        """A year for a database that does not exist is a LookupError."""
        with pytest.raises(LookupError):
            await state.planning.add_financial_year(404, "2026/27", date(2026, 4, 1), closed=False)

    async def test_ledger_codes_need_a_known_year_and_type(self, state: SandboxState) -> None:
        """Ledger codes need a known year and type, and appear once per chart."""
        database_id = await _database(state)
        await state.planning.add_financial_year(
            database_id, "2026/27", date(2026, 4, 1), closed=False
        )
        with pytest.raises(LookupError):
            await state.planning.add_ledger_code(
                database_id, "2030/31", "EX", "5004", "x", {"01": "E01"}
            )
        with pytest.raises(ValueError, match="ledger type"):
            await state.planning.add_ledger_code(
                database_id, "2026/27", "XX", "5004", "x", {"01": "E01"}
            )
        with pytest.raises(ValueError, match="fund code"):
            await state.planning.add_ledger_code(
                database_id, "2026/27", "EX", "5004", "x", {"": "E01"}
            )
        await state.planning.add_ledger_code(
            database_id, "2026/27", "EX", "5004", "x", {"01": "E01"}
        )
        with pytest.raises(ValueError, match="5004"):
            await state.planning.add_ledger_code(database_id, "2026/27", "EX", "5004", "y", {})

    async def test_cost_centres(self, state: SandboxState) -> None:
        """A cost centre exists once per database, and only in a database that exists."""
        database_id = await _database(state)
        await state.planning.add_cost_centre(database_id, "ADM", "Administration")
        with pytest.raises(ValueError, match="ADM"):
            await state.planning.add_cost_centre(database_id, "ADM", "Again")
        with pytest.raises(LookupError):
            await state.planning.add_cost_centre(404, "ENG", "English")

"""The demo: a school database whose payment system fits FMS's published sample journal.

It is what the quick start runs against. Its keys and client secret are generated once,
kept in the sandbox's state, and returned unchanged every time after.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Final

from gateway.sandbox.state import SandboxState, new_guid, new_secret

_SETTING: Final = "demo"

DEMO_CLIENT_ID: Final = "fng-gateway-demo"
DEMO_DATABASE: Final = "Public funds"
DEMO_SCHOOL: Final = "Demo Primary School"
DEMO_LA_NUMBER: Final = "123"
DEMO_ESTABLISHMENT_NUMBER: Final = "4567"
DEMO_SYSTEM_IDENTIFIER: Final = "TPPCS"
DEMO_PAYMENT_SYSTEM: Final = "Demo payments"

#: Payment system code → FMS code, by kind.
DEMO_MAPPINGS: Final[dict[str, dict[str, str]]] = {
    "bank": {"BK1": "BANK01", "BK2": "BANK02", "BK3": "BANK03"},
    "product": {
        "WATBTL1": "I1040",
        "LUNCH": "I1010",
        "TRIP": "I1020",
        "CLUB": "I1030",
        "UNIFORM": "I1050",
    },
    "vat": {"VAT20": "S", "VAT0": "Z"},
    "charge": {"CHARGE30": "E4010"},
    "charge_vat": {"CHARGEVAT0": "Z"},
    "surcharge": {"SURCHARGE": "I1090"},
    "surcharge_vat": {"SURCHARGEVAT0": "Z"},
}


@dataclass(frozen=True, slots=True)
class DemoSeed:
    """Everything needed to use the demo: SIMS ID credentials, keys, and mapped codes."""

    client_id: str
    client_secret: str
    fng_key: str
    partner_key: str
    database_id: int
    payment_system_id: int
    database_name: str = DEMO_DATABASE
    school_name: str = DEMO_SCHOOL
    la_number: str = DEMO_LA_NUMBER
    establishment_number: str = DEMO_ESTABLISHMENT_NUMBER
    system_identifier: str = DEMO_SYSTEM_IDENTIFIER
    payment_system_name: str = DEMO_PAYMENT_SYSTEM
    banks: tuple[str, ...] = tuple(DEMO_MAPPINGS["bank"])
    products: tuple[str, ...] = tuple(DEMO_MAPPINGS["product"])
    vat_codes: tuple[str, ...] = tuple(DEMO_MAPPINGS["vat"])
    charge_codes: tuple[str, ...] = tuple(DEMO_MAPPINGS["charge"])
    charge_vat_codes: tuple[str, ...] = tuple(DEMO_MAPPINGS["charge_vat"])
    surcharge_codes: tuple[str, ...] = tuple(DEMO_MAPPINGS["surcharge"])
    surcharge_vat_codes: tuple[str, ...] = tuple(DEMO_MAPPINGS["surcharge_vat"])


_STORED: Final = (
    "client_id",
    "client_secret",
    "fng_key",
    "partner_key",
    "database_id",
    "payment_system_id",
)


async def seed_demo(state: SandboxState) -> DemoSeed:
    """Create the demo if the state has none; return it either way."""
    stored = await state.get_setting(_SETTING)
    if stored is not None:
        data = json.loads(stored)
        return DemoSeed(**{name: data[name] for name in _STORED})
    secret = new_secret()
    fng_key, partner_key = new_guid(), new_guid()
    await state.add_client(DEMO_CLIENT_ID, secret=secret)
    database_id = await state.add_database(
        DEMO_DATABASE,
        school_name=DEMO_SCHOOL,
        la_number=DEMO_LA_NUMBER,
        establishment_number=DEMO_ESTABLISHMENT_NUMBER,
        client_id=DEMO_CLIENT_ID,
        fng_key=fng_key,
        partner_key=partner_key,
    )
    payment_system_id = await state.add_payment_system(
        database_id, DEMO_SYSTEM_IDENTIFIER, DEMO_PAYMENT_SYSTEM, DEMO_MAPPINGS
    )
    seed = DemoSeed(
        client_id=DEMO_CLIENT_ID,
        client_secret=secret,
        fng_key=fng_key,
        partner_key=partner_key,
        database_id=database_id,
        payment_system_id=payment_system_id,
    )
    await state.put_setting(_SETTING, json.dumps({name: asdict(seed)[name] for name in _STORED}))
    return seed

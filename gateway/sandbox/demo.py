"""The demo: a school database whose payment system fits FMS's published sample journal,
whose budget planning set-up a budget tool can work with, and a supplier portal holding
a document for each of FMS's eProcurement import rules (:mod:`.portal.demo`).

It is what the quick start runs against. Its keys and client secret are generated once,
kept in the sandbox's state, and returned unchanged every time after. Its two financial
years are those around the day it is first seeded: UK school years run April to March;
the current one is open from the current month's period, the previous one is closed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Final

from gateway.sandbox.fng.budget_rules import Fund, LedgerCode, period_of
from gateway.sandbox.fng.databases import new_guid
from gateway.sandbox.portal.demo import (
    DEMO_PORTAL,
    DEMO_PORTAL_DOCUMENTS,
    DEMO_PORTAL_PATH,
    DEMO_PORTAL_USERNAME,
    DEMO_SCHOOL_DUNS,
    DEMO_SUPPLIER_DUNS,
    seed_procurement,
)
from gateway.sandbox.simsid.issuer import new_secret
from gateway.sandbox.state import SandboxState

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
class DemoLedgerCode:
    """A ledger code of the demo's chart of accounts (the same in both years)."""

    ledger_type: str
    code: str
    description: str
    #: Fund code → CFR code.
    funds: Mapping[str, str]
    group: str
    short_code: str
    normal_vat: str
    services: bool = False


DEMO_CHART: Final = (
    DemoLedgerCode("EX", "5004", "Teaching staff", {"01": "E01"}, "Employees", "TEACH", "Z"),
    DemoLedgerCode("EX", "5100", "Supply staff", {"01": "E02"}, "Employees", "SUPPLY", "Z"),
    DemoLedgerCode(
        "EX",
        "5300",
        "Learning resources",
        {"01": "E19", "02": "E19"},
        "Supplies and services",
        "LEARNRES",
        "S",
    ),
    DemoLedgerCode("EX", "5500", "Energy", {"01": "E16"}, "Premises", "ENERGY", "S"),
    DemoLedgerCode(
        "ES",
        "5610",
        "Curriculum consultancy",
        {"01": "E27"},
        "Bought-in services",
        "CONSULT",
        "S",
        services=True,
    ),
    DemoLedgerCode(
        "ES",
        "5620",
        "Payroll and HR services",
        {"01": "E28"},
        "Bought-in services",
        "PAYHR",
        "S",
        services=True,
    ),
    DemoLedgerCode(
        "IN", "1000", "Funds delegated by the LA", {"01": "I01"}, "Income", "DELEG", "Z"
    ),
    DemoLedgerCode("IN", "1100", "Pupil premium", {"01": "I05"}, "Income", "PUPPREM", "Z"),
    DemoLedgerCode("IN", "1400", "Catering income", {"02": "I08"}, "Income", "CATERING", "S"),
)

#: Cost centre code → description.
DEMO_COST_CENTRES: Final[dict[str, str]] = {
    "ADM": "Administration",
    "ENG": "English",
    "MAT": "Mathematics",
    "SEN": "Special educational needs",
}


def financial_year_start(day: date) -> date:
    """The 1 April that begins the UK financial year holding ``day``."""
    return date(day.year if day.month >= 4 else day.year - 1, 4, 1)


def year_description(start: date) -> str:
    """``2026/27`` for the year beginning in April 2026."""
    return f"{start.year}/{(start.year + 1) % 100:02d}"


@dataclass(frozen=True, slots=True)
class DemoSeed:
    """Everything needed to use the demo: SIMS ID credentials, keys, mapped codes, the
    budget planning set-up (years, chart of accounts, cost centres), and eProcurement
    (the school's DUNS, the supplier portal and its documents, an authorised order)."""

    client_id: str
    client_secret: str
    fng_key: str
    partner_key: str
    database_id: int
    payment_system_id: int
    #: Year descriptions, the current (open) year first.
    financial_years: tuple[str, ...]
    open_year: str
    closed_year: str
    #: The demo portal's password now (ChangePassword changes it).
    portal_password: str
    #: FNG's id of the order authorised for the demo supplier.
    authorised_order_id: str
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
    ledger_codes: tuple[str, ...] = tuple(entry.code for entry in DEMO_CHART)
    funds: tuple[str, ...] = tuple(sorted({fund for entry in DEMO_CHART for fund in entry.funds}))
    cost_centres: tuple[str, ...] = tuple(DEMO_COST_CENTRES)
    #: Every valid (ledger code, fund code, CFR code) of the chart, to build budgets with.
    fund_allocations: tuple[tuple[str, str, str], ...] = tuple(
        (entry.code, fund, cfr) for entry in DEMO_CHART for fund, cfr in entry.funds.items()
    )
    school_duns: str = DEMO_SCHOOL_DUNS
    supplier_duns: str = DEMO_SUPPLIER_DUNS
    portal_name: str = DEMO_PORTAL
    #: The path of the portal's service on the sandbox (``?wsdl`` gives its WSDL).
    portal_path: str = DEMO_PORTAL_PATH
    portal_username: str = DEMO_PORTAL_USERNAME
    #: (uuid, type, expected): ``valid``, ``quote``, or the import rule it breaks.
    portal_documents: tuple[tuple[str, str, str], ...] = DEMO_PORTAL_DOCUMENTS


_STORED: Final = (
    "client_id",
    "client_secret",
    "fng_key",
    "partner_key",
    "database_id",
    "payment_system_id",
    "financial_years",
    "open_year",
    "closed_year",
    "authorised_order_id",
)
_BUDGET_PLANNING: Final = ("financial_years", "open_year", "closed_year")
_PROCUREMENT: Final = ("authorised_order_id",)


async def seed_demo(state: SandboxState, *, today: date | None = None) -> DemoSeed:
    """Create the demo if the state has none; return it either way.

    ``today`` (by default the local date) places the financial years. A demo seeded
    before the sandbox knew budget planning gains its years, chart and cost centres; one
    seeded before it knew eProcurement gains its portal and authorised order.
    """
    today = today or date.today()
    stored = await state.store.get_setting(_SETTING)
    if stored is not None:
        data: dict[str, Any] = json.loads(stored)
        changed = False
        if not all(name in data for name in _BUDGET_PLANNING):
            data.update(await seed_budget_planning(state, data["database_id"], today))
            changed = True
        if not all(name in data for name in _PROCUREMENT):
            data.update(await seed_procurement(state, data["database_id"]))
            changed = True
        if changed:
            await state.store.put_setting(_SETTING, json.dumps(data))
        data["financial_years"] = tuple(data["financial_years"])
        return DemoSeed(
            **{name: data[name] for name in _STORED},
            portal_password=(await state.portals.describe(DEMO_PORTAL))["password"],
        )
    secret = new_secret()
    fng_key, partner_key = new_guid(), new_guid()
    await state.simsid.add_client(DEMO_CLIENT_ID, secret=secret)
    database_id = await state.databases.add(
        DEMO_DATABASE,
        school_name=DEMO_SCHOOL,
        la_number=DEMO_LA_NUMBER,
        establishment_number=DEMO_ESTABLISHMENT_NUMBER,
        client_id=DEMO_CLIENT_ID,
        fng_key=fng_key,
        partner_key=partner_key,
    )
    payment_system_id = await state.journals.add_payment_system(
        database_id, DEMO_SYSTEM_IDENTIFIER, DEMO_PAYMENT_SYSTEM, DEMO_MAPPINGS
    )
    planning = await seed_budget_planning(state, database_id, today)
    password = f"demo-{new_guid()}"
    procurement = await seed_procurement(state, database_id, password=password)
    seed = DemoSeed(
        client_id=DEMO_CLIENT_ID,
        client_secret=secret,
        fng_key=fng_key,
        partner_key=partner_key,
        database_id=database_id,
        payment_system_id=payment_system_id,
        financial_years=tuple(planning["financial_years"]),
        open_year=planning["open_year"],
        closed_year=planning["closed_year"],
        portal_password=password,
        authorised_order_id=procurement["authorised_order_id"],
    )
    stored_values = asdict(seed)
    await state.store.put_setting(
        _SETTING, json.dumps({name: stored_values[name] for name in _STORED})
    )
    return seed


async def seed_budget_planning(
    state: SandboxState, database_id: int, today: date
) -> dict[str, Any]:
    """Two financial years around ``today``, the chart in both, and the cost centres."""
    current = financial_year_start(today)
    previous = date(current.year - 1, 4, 1)
    open_year, closed_year = year_description(current), year_description(previous)
    await state.planning.add_financial_year(database_id, closed_year, previous, closed=True)
    await state.planning.add_financial_year(
        database_id,
        open_year,
        current,
        closed=False,
        lowest_open_period=period_of(current, today),
    )
    chart = [
        LedgerCode(
            ledger_type=entry.ledger_type,
            code=entry.code,
            description=entry.description,
            group=entry.group,
            short_code=entry.short_code,
            normal_profile="Twelfths",
            normal_vat=entry.normal_vat,
            services=entry.services,
            funds=tuple(Fund(fund, cfr) for fund, cfr in entry.funds.items()),
        )
        for entry in DEMO_CHART
    ]
    for year in (closed_year, open_year):
        await state.planning.add_chart(database_id, year, chart)
    await state.planning.add_cost_centres(database_id, DEMO_COST_CENTRES)
    return {
        "financial_years": [open_year, closed_year],
        "open_year": open_year,
        "closed_year": closed_year,
    }

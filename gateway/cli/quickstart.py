"""Register a sandbox's demo school in the gateway, as an operator would.

Used by ``fng-gateway sandbox`` and by the tests: a vendor for the sandbox's SIMS ID, the
demo school and its database with the sandbox's keys, and an integration account allowed
to post journals for the demo payment system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.sandbox import DemoSeed
from gateway.tenancy.model import AuthMethod, Interface
from gateway.tenancy.service import TenancyAdmin

DEMO_USERNAME = "demo-payments"


@dataclass(frozen=True, slots=True)
class Registered:
    vendor_id: int
    school_id: int
    database_id: int
    portal_id: int
    poll_seconds: int
    sandbox_url: str
    account_id: int
    username: str
    password: str = field(repr=False)
    database_key: str = field(repr=False)

    def info(self, demo: DemoSeed) -> dict[str, Any]:
        """The part of ``--info-file`` that describes the demo."""
        return {
            "account": {"username": self.username, "password": self.password},
            "schools": [
                {
                    "name": demo.school_name,
                    "la_number": demo.la_number,
                    "establishment_number": demo.establishment_number,
                    "database": demo.database_name,
                    "database_key": self.database_key,
                }
            ],
            "payment_system": _payment_system(demo),
            "eproc": {
                "portal": demo.portal_name,
                "portal_url": f"{self.sandbox_url}{demo.portal_path}",
                "supplier_duns": demo.supplier_duns,
                "school_duns": demo.school_duns,
                "poll_seconds": self.poll_seconds,
                "documents": [
                    {"id": document_id, "type": doc_type, "expected": expected}
                    for document_id, doc_type, expected in demo.portal_documents
                ],
                "authorised_order": demo.authorised_order_id,
            },
            "budget": {
                "financial_years": list(demo.financial_years),
                "open_year": demo.open_year,
                "closed_year": demo.closed_year,
                "fund_allocations": [
                    {"ledger_code": ledger, "fund_code": fund, "cfr_code": cfr}
                    for ledger, fund, cfr in demo.fund_allocations
                ],
                "cost_centres": list(demo.cost_centres),
            },
        }


def _payment_system(demo: DemoSeed) -> dict[str, Any]:
    return {
        "system_identifier": demo.system_identifier,
        "banks": list(demo.banks),
        "products": list(demo.products),
        "vat_codes": list(demo.vat_codes),
        "charge_codes": list(demo.charge_codes),
        "charge_vat_codes": list(demo.charge_vat_codes),
    }


def upstreams_info(demo: DemoSeed, sandbox_url: str) -> dict[str, Any]:
    """What an operator registers in a gateway of their own to use a sandbox run alone
    (``fng-gateway sandbox --upstreams-only``): the vendor's SIMS ID client, FNG's address,
    the demo school and its database's keys, the payment system, the supplier portal."""
    return {
        "sandbox_url": sandbox_url,
        "simsid": {
            "token_url": f"{sandbox_url}/connect/token",
            "client_id": demo.client_id,
            "client_secret": demo.client_secret,
            "auth_method": AuthMethod.CLIENT_SECRET_BASIC.value,
        },
        "fng": {"base_url": f"{sandbox_url}/fng"},
        "school": {
            "name": demo.school_name,
            "la_number": demo.la_number,
            "establishment_number": demo.establishment_number,
            "duns": demo.school_duns,
        },
        "database": {
            "name": demo.database_name,
            "fng_key": demo.fng_key,
            "partner_key": demo.partner_key,
        },
        "payment_system": _payment_system(demo),
        "portal": {
            "name": demo.portal_name,
            "url": f"{sandbox_url}{demo.portal_path}",
            "username": demo.portal_username,
            "password": demo.portal_password,
            "supplier_duns": demo.supplier_duns,
        },
    }


async def register_demo(
    service: TenancyAdmin,
    demo: DemoSeed,
    sandbox_url: str,
    *,
    username: str = DEMO_USERNAME,
    poll_seconds: int = 10,
) -> Registered:
    vendor_id = await service.add_vendor(
        "Sandbox vendor",
        token_url=f"{sandbox_url}/connect/token",
        client_id=demo.client_id,
        credential=demo.client_secret,
        auth_method=AuthMethod.CLIENT_SECRET_BASIC,
    )
    school_id = await service.add_school(
        demo.school_name,
        la_number=demo.la_number,
        establishment_number=demo.establishment_number,
        duns=demo.school_duns,
    )
    database = await service.add_database(
        school_id,
        vendor_id=vendor_id,
        name=demo.database_name,
        fng_key=demo.fng_key,
        partner_key=demo.partner_key,
    )
    portal_id = await service.add_portal(
        database.database_id,
        name=demo.portal_name,
        url=f"{sandbox_url}{demo.portal_path}",
        username=demo.portal_username,
        password=demo.portal_password,
        supplier_duns=[demo.supplier_duns],
        poll_seconds=poll_seconds,
        allow_http=True,  # the sandbox's portal: plain http on this machine
    )
    account = await service.add_account(username)
    await service.grant(
        account.account_id,
        database.database_id,
        [Interface.EJOURNAL, Interface.BUDGET],
        [demo.system_identifier],
    )
    return Registered(
        vendor_id=vendor_id,
        school_id=school_id,
        database_id=database.database_id,
        portal_id=portal_id,
        poll_seconds=poll_seconds,
        sandbox_url=sandbox_url,
        account_id=account.account_id,
        username=username,
        password=account.password,
        database_key=database.partner_key,
    )

"""Helpers the tests share: journals built like seed 001's sample, and raw SOAP calls."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import aiohttp
import sqlalchemy as sa
from cryptography.fernet import Fernet
from lxml import etree

from gateway import ns
from gateway.store import Store
from gateway.store.tables import databases, schools, vendors

_counter = itertools.count(1)

#: The installed command, as an operator runs it.
COMMAND = str(Path(sys.executable).with_name("fng-gateway"))


def info_written(
    path: Path, process: subprocess.Popen[Any], log: Path | None = None, seconds: float = 60
) -> dict[str, Any]:
    """The JSON that a starting ``fng-gateway sandbox`` writes to its ``--info-file``, once it
    is there; what the process printed (``log``, or its pipes) if it exits first."""

    def printed() -> str:
        return log.read_text(errors="replace") if log is not None else str(process.communicate())

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"fng-gateway sandbox exited:\n{printed()}")
        if path.exists() and path.stat().st_size:
            info: dict[str, Any] = json.loads(path.read_text())
            return info
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"fng-gateway sandbox did not start in time:\n{printed()}")


def get_json(url: str) -> Any:
    """A JSON document fetched with the standard library (from a thread, in async tests)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def cli_environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a command run by a test: a SQLite store of its own, a new master key,
    ``settings`` (``FNG_GATEWAY_*`` variables), and none of the caller's gateway settings."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("FNG_GATEWAY_")}
    return {
        **base,
        "FNG_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "FNG_GATEWAY_MASTER_KEYS": Fernet.generate_key().decode(),
        **settings,
    }


def next_submission_id() -> str:
    return f"{next(_counter):04d}"


@dataclass
class Txn:
    id: str
    gross: str = "9.000000"
    product: str = "WATBTL1"
    vat: str = "1.500000"
    vat_reference: str = "VAT20"
    charges: str = "0.30"
    charges_reference: str = "CHARGE30"
    charges_vat: str = "0.00"
    charges_vat_reference: str = "CHARGEVAT0"
    date: str = "2015-04-30T13:59:32.8791584+01:00"


@dataclass
class BankEntry:
    reference: str
    control_total: str = "0"
    orders: list[Txn] | None = None
    settlements: list[Txn] | None = None
    order_reversals: list[Txn] | None = None
    settlement_reversals: list[Txn] | None = None
    #: Row versions GetBanks reported for each section, before this journal.
    base: dict[str, int] = field(default_factory=dict)
    #: Override a section's lastRowVersion as sent.
    row_versions: dict[str, str] = field(default_factory=dict)


def _order(txn: Txn) -> str:
    return (
        f"<Txn id={quoteattr(txn.id)} productReference={quoteattr(txn.product)} "
        f'description="Description" date="{txn.date}" grossAmount="{txn.gross}" '
        f'vat="{txn.vat}" vatReference={quoteattr(txn.vat_reference)} />'
    )


def _settlement(txn: Txn) -> str:
    return (
        f'<Txn id={quoteattr(txn.id)} description="Description" date="{txn.date}" '
        f'grossAmount="{txn.gross}" grossCharges="{txn.charges}" '
        f'chargesReference={quoteattr(txn.charges_reference)} chargesVat="{txn.charges_vat}" '
        f"chargesVatReference={quoteattr(txn.charges_vat_reference)} />"
    )


def journal_xml(
    banks: list[BankEntry],
    *,
    submission_id: str | None = None,
    system: str = "TPPCS",
    line_count: int | None = None,
    declaration: bool = True,
    response_time: str = "2015-04-30T13:59:49",
) -> str:
    """A ControlAccounts document in the form of seed 001's sample."""
    parts = []
    lines = 0
    for bank in banks:
        inner = []
        for name, txns, render in (
            ("Orders", bank.orders, _order),
            ("Settlements", bank.settlements, _settlement),
            ("OrderReversals", bank.order_reversals, _order),
            ("SettlementReversals", bank.settlement_reversals, _settlement),
        ):
            if txns is None:
                continue
            lines += len(txns)
            version = bank.row_versions.get(name, str(bank.base.get(name, 0) + len(txns)))
            inner.append(
                f'<{name} lastRowVersion="{version}">\n'
                + "\n".join(render(txn) for txn in txns)
                + f"\n</{name}>"
            )
        parts.append(
            f'<Bank reference={quoteattr(bank.reference)} controlTotal="{bank.control_total}">\n'
            + "\n".join(inner)
            + "</Bank>"
        )
    head = '<?xml version="1.0" encoding="utf-8"?>\n' if declaration else ""
    return (
        head + "<ControlAccounts>\n"
        f'<Header requestedBy="admin@example.org" responseDateTime="{response_time}" '
        f'systemIdentifier={quoteattr(system)} description="" '
        f'submissionID={quoteattr(submission_id or next_submission_id())} source="Test Harness" '
        'sourceVersion="1.0.0.1" '
        f'transactionLineCount="{lines if line_count is None else line_count}" />\n'
        "<Banks>\n" + "\n".join(parts) + "\n</Banks>\n</ControlAccounts>"
    )


def sample_journal(submission_id: str | None = None, **kwargs: Any) -> str:
    """Seed 001's sample: one order and one settlement of 9.00 on BK1, BK2 and BK3 empty."""
    return journal_xml(
        [
            BankEntry("BK1", orders=[Txn("1")], settlements=[Txn("1")]),
            BankEntry("BK2"),
            BankEntry("BK3"),
        ],
        submission_id=submission_id,
        **kwargs,
    )


def big_journal(lines: int, submission_id: str | None = None, base: int = 0) -> str:
    """Orders and settlements that cancel out, so the control total stays 0."""
    half = lines // 2
    return journal_xml(
        [
            BankEntry(
                "BK1",
                orders=[Txn(str(i)) for i in range(1, half + 1)],
                settlements=[Txn(str(i)) for i in range(1, half + 1)],
                base={"Orders": base, "Settlements": base},
            )
        ],
        submission_id=submission_id,
    )


def strip_declaration(document: str) -> str:
    return document.split("?>", 1)[1] if document.startswith("<?xml") else document


@dataclass(frozen=True)
class Auth:
    username: str
    password: str
    database: str


def auth_header(auth: Auth, namespace: str = ns.EJOURNAL) -> str:
    return (
        f'<AuthHeader xmlns="{namespace}"><Username>{escape(auth.username)}</Username>'
        f"<Password>{escape(auth.password)}</Password>"
        f"<Database>{escape(auth.database)}</Database></AuthHeader>"
    )


def envelope(body: str, header: str = "", version: str = "1.1") -> str:
    env = ns.SOAP11_ENV if version == "1.1" else ns.SOAP12_ENV
    head = f"<soap:Header>{header}</soap:Header>" if header else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{env}">'
        f"{head}<soap:Body>{body}</soap:Body></soap:Envelope>"
    )


def operation(name: str, **params: str) -> str:
    inner = "".join(f"<{key}>{value}</{key}>" for key, value in params.items())
    return f'<{name} xmlns="{ns.EJOURNAL}">{inner}</{name}>'


def post_journals_body(journal: str) -> str:
    """The journal inside xmlData, out of the service's default namespace as SOAP stacks
    write it."""
    document = strip_declaration(journal).replace(
        "<ControlAccounts>", '<ControlAccounts xmlns="">', 1
    )
    return operation("PostJournals", xmlData=document)


@dataclass
class SoapAnswer:
    status: int
    root: etree._Element
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def _body(self) -> etree._Element:
        body = self.root.find(f"{{{ns.SOAP11_ENV}}}Body")
        if body is None:
            body = self.root.find(f"{{{ns.SOAP12_ENV}}}Body")
        assert body is not None, self.raw
        return body[0]

    @property
    def is_fault(self) -> bool:
        return etree.QName(self._body()).localname == "Fault"

    @property
    def fault_string(self) -> str:
        fault = self._body()
        text = fault.findtext("faultstring")
        if text is None:
            text = fault.findtext(f"{{{ns.SOAP12_ENV}}}Reason/{{{ns.SOAP12_ENV}}}Text")
        assert text is not None, self.raw
        return text

    @property
    def fault_code(self) -> str:
        code = self._body().findtext(f".//{{{ns.FAULT}}}code")
        assert code is not None, self.raw
        return code

    def result(self) -> etree._Element:
        """The document inside the operation's first result element."""
        response = self._body()
        assert not self.is_fault, self.raw
        return response[0][0]

    def part(self, name: str) -> str | None:
        return self._body().findtext(f"{{{ns.EJOURNAL}}}{name}")


async def soap_call(
    session: aiohttp.ClientSession,
    url: str,
    body: str,
    auth: Auth | None = None,
    *,
    version: str = "1.1",
    action: str | None = None,
    headers: dict[str, str] | None = None,
    namespace: str = ns.EJOURNAL,
) -> SoapAnswer:
    data = envelope(body, auth_header(auth, namespace) if auth else "", version).encode()
    sent = dict(headers or {})
    if version == "1.1":
        sent.setdefault("Content-Type", "text/xml; charset=utf-8")
        if action is not None:
            sent["SOAPAction"] = f'"{action}"'
    else:
        content_type = "application/soap+xml; charset=utf-8"
        if action is not None:
            content_type += f'; action="{action}"'
        sent.setdefault("Content-Type", content_type)
    async with session.post(url, data=data, headers=sent) as response:
        raw = await response.read()
        return SoapAnswer(response.status, etree.fromstring(raw), raw, dict(response.headers))


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def errors_of(result: etree._Element) -> list[dict[str, str]]:
    return [
        dict(error.attrib, message=error.text or "") for error in result.iterfind("Errors/Error")
    ]


def as_decimal(value: str) -> Decimal:
    return Decimal(value)


def budget_xml(
    serial: int,
    year: str,
    funds: list[tuple[str, str, str, str]] = (),  # type: ignore[assignment]
    cost_centres: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    *,
    la_number: str = "123",
    school_number: str = "4567",
    created: str = "2026-03-01T09:00:00",
) -> str:
    """A budget import ``Message``: fund allocations (ledger code, fund, CFR code, amount) and
    cost-centre allocations (ledger code, cost centre, amount)."""
    fund_part = "".join(
        f"<FundAllocation><LedgerCode>{ledger}</LedgerCode><FundCode>{fund}</FundCode>"
        f"<CFRCode>{cfr}</CFRCode><Amount>{amount}</Amount></FundAllocation>"
        for ledger, fund, cfr, amount in funds
    )
    centre_part = "".join(
        f"<CostCentreAllocation><LedgerCode>{ledger}</LedgerCode><CostCentre>{centre}</CostCentre>"
        f"<Amount>{amount}</Amount></CostCentreAllocation>"
        for ledger, centre, amount in cost_centres
    )
    return (
        "<Message><Header>"
        f"<LANo>{la_number}</LANo><SchoolNo>{school_number}</SchoolNo>"
        f"<DateCreated>{created}</DateCreated><SerialNumber>{serial}</SerialNumber>"
        f"</Header><Budget><FinancialYear>{year}</FinancialYear>"
        + (f"<FundAllocations>{fund_part}</FundAllocations>" if fund_part else "")
        + (f"<CostCentreAllocations>{centre_part}</CostCentreAllocations>" if centre_part else "")
        + "</Budget></Message>"
    )


def budget_operation(name: str, **params: str) -> str:
    inner = "".join(f"<{key}>{value}</{key}>" for key, value in params.items())
    return f'<{name} xmlns="{ns.BUDGET}">{inner}</{name}>'


async def seed_one_database(store: Store) -> None:
    """Vendor 1, school 1 and its database 1: what a ledger entry needs to refer to."""
    now = sa.func.now()
    async with store.write() as conn:
        await conn.execute(
            vendors.insert().values(
                id=1,
                name="v",
                token_url="http://x",
                client_id="c",
                auth_method="client_secret_basic",
                credential_enc="-",
                created_at=now,
            )
        )
        await conn.execute(
            schools.insert().values(
                id=1, name="s", la_number="123", establishment_number="4567", created_at=now
            )
        )
        await conn.execute(
            databases.insert().values(
                id=1, school_id=1, vendor_id=1, name="d", fng_key_enc="-", created_at=now
            )
        )

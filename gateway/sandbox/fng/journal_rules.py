"""FMS 6's journal rules, as the sandbox's FNG enforces them.

A ``ControlAccounts`` document that has passed its schema is read into a :class:`Journal`;
:func:`check` then compares it with what the payment system has posted so far (a
:class:`LedgerView`) and returns every broken rule, not only the first. Nothing here
touches the database: :class:`gateway.sandbox.fng.journals.Journals` reads the view and
posts the journal in the same transaction.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from lxml import etree

#: The sections of a bank, in the order errors are reported.
SECTIONS: Final = ("Orders", "Settlements", "OrderReversals", "SettlementReversals")

#: What a section's gross amounts do to the bank's net.
NET_SIGN: Final[Mapping[str, int]] = {
    "Orders": 1,
    "OrderReversals": -1,
    "Settlements": -1,
    "SettlementReversals": 1,
}

#: The kinds of code a payment system maps in FMS ("Maintain code mapping").
MAPPING_KINDS: Final = (
    "bank",
    "product",
    "vat",
    "charge",
    "charge_vat",
    "surcharge",
    "surcharge_vat",
)

_KIND_WORDS: Final[Mapping[str, str]] = {
    "bank": "bank code",
    "product": "product code",
    "vat": "VAT code",
    "charge": "charges code",
    "charge_vat": "charges VAT code",
    "surcharge": "surcharge code",
    "surcharge_vat": "surcharge VAT code",
}

_LISTED_CODES: Final = 10

#: Enough precision for any sum of 20-digit amounts the sandbox will ever hold.
_CONTEXT: Final = decimal.Context(prec=60)


def plain_amount(value: Decimal) -> str:
    """An amount as a plain decimal with at least two places: ``0.00``, ``9.50``, ``1.234567``."""
    if not value.is_finite():
        return str(value)
    value = value.normalize(_CONTEXT)
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(Decimal("0.01"), context=_CONTEXT)
    return f"{value:f}"


def add(a: Decimal, b: Decimal) -> Decimal:
    return _CONTEXT.add(a, b)


@dataclass(frozen=True, slots=True)
class Txn:
    """One order, settlement or reversal."""

    id: str
    gross_amount: Decimal
    #: The product code of an order, the charges code of a settlement.
    code: str
    #: The VAT code of an order, the charges VAT code of a settlement.
    vat_code: str
    attributes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    last_row_version: str
    txns: tuple[Txn, ...]

    @property
    def is_orders(self) -> bool:
        return self.name in ("Orders", "OrderReversals")

    @property
    def gross_total(self) -> Decimal:
        total = Decimal(0)
        for txn in self.txns:
            total = add(total, txn.gross_amount)
        return total


@dataclass(frozen=True, slots=True)
class Bank:
    reference: str
    control_total: Decimal
    sections: tuple[Section, ...]

    def net_change(self) -> Decimal:
        change = Decimal(0)
        for section in self.sections:
            if NET_SIGN[section.name] > 0:
                change = add(change, section.gross_total)
            else:
                change = _CONTEXT.subtract(change, section.gross_total)
        return change


@dataclass(frozen=True, slots=True)
class Journal:
    system_identifier: str
    submission_id: str
    transaction_line_count: int
    requested_by: str
    source: str
    banks: tuple[Bank, ...]

    @property
    def lines(self) -> int:
        return sum(len(s.txns) for b in self.banks for s in b.sections)


def header_attributes(root: etree._Element) -> tuple[str | None, str | None]:
    """The system identifier and submission id of a document, if it has them (any shape)."""
    header = root.find("Header")
    if header is None:
        return None, None
    return header.get("systemIdentifier"), header.get("submissionID")


def read_journal(root: etree._Element) -> Journal:
    """Read a ``ControlAccounts`` document that has been validated against its schema."""
    header = root.find("Header")
    assert header is not None
    banks = []
    for bank_el in root.iterfind("Banks/Bank"):
        sections = []
        for name in SECTIONS:
            section_el = bank_el.find(name)
            if section_el is None:
                continue
            txns = tuple(_read_txn(txn_el, name) for txn_el in section_el.iterfind("Txn"))
            sections.append(Section(name, section_el.get("lastRowVersion", ""), txns))
        banks.append(
            Bank(
                reference=bank_el.get("reference", ""),
                control_total=Decimal(bank_el.get("controlTotal", "0").strip()),
                sections=tuple(sections),
            )
        )
    return Journal(
        system_identifier=header.get("systemIdentifier", ""),
        submission_id=header.get("submissionID", ""),
        transaction_line_count=int(header.get("transactionLineCount", "0").strip()),
        requested_by=header.get("requestedBy", ""),
        source=header.get("source", ""),
        banks=tuple(banks),
    )


def _read_txn(element: etree._Element, section: str) -> Txn:
    attributes = {str(k): str(v) for k, v in element.attrib.items()}
    orders = section in ("Orders", "OrderReversals")
    return Txn(
        id=attributes.get("id", ""),
        gross_amount=Decimal(attributes.get("grossAmount", "0").strip()),
        code=attributes.get("productReference" if orders else "chargesReference", ""),
        vat_code=attributes.get("vatReference" if orders else "chargesVatReference", ""),
        attributes=attributes,
    )


@dataclass(frozen=True, slots=True)
class BankLedger:
    """What has been posted to one bank: row versions by section, and the net."""

    row_versions: Mapping[str, int] = field(default_factory=dict)
    net: Decimal = Decimal(0)

    def row_version(self, section: str) -> int:
        return self.row_versions.get(section, 0)


@dataclass(frozen=True, slots=True)
class LedgerView:
    """A payment system as a journal sees it: its mappings and its banks' ledgers."""

    system_identifier: str
    mappings: Mapping[str, frozenset[str]]
    ledgers: Mapping[str, BankLedger]
    already_posted: bool

    def mapped(self, kind: str, code: str) -> bool:
        return code in self.mappings.get(kind, frozenset())


@dataclass(frozen=True, slots=True)
class RuleError:
    """One broken rule, as a JournalResult ``Error`` reports it."""

    code: str
    message: str
    bank: str | None = None
    section: str | None = None
    transaction_id: str | None = None
    expected: str | None = None
    sent: str | None = None


def check(journal: Journal, view: LedgerView | None) -> list[RuleError]:
    """Every rule the journal breaks; ``view`` is None when the payment system is unknown."""
    errors: list[RuleError] = []
    sid = journal.system_identifier
    if view is None:
        errors.append(
            RuleError(
                "UNKNOWN_SYSTEM",
                f"No payment system with the identifier {sid!r} is set up in this database.",
                section="Header",
                expected="a payment system identifier set up in this database",
                sent=sid,
            )
        )
    elif view.already_posted:
        errors.append(
            RuleError(
                "DUPLICATE_SUBMISSION",
                f"Submission {journal.submission_id!r} has already been posted for {sid}.",
                section="Header",
                sent=journal.submission_id,
            )
        )
    if journal.transaction_line_count != journal.lines:
        errors.append(
            RuleError(
                "LINE_COUNT",
                f"transactionLineCount is {journal.transaction_line_count} but the document "
                f"holds {journal.lines} transactions.",
                section="Header",
                expected=str(journal.lines),
                sent=str(journal.transaction_line_count),
            )
        )
    seen: set[str] = set()
    for bank in journal.banks:
        if bank.reference in seen:
            errors.append(
                RuleError(
                    "DUPLICATE_BANK",
                    f"Bank {bank.reference} appears more than once in the document.",
                    bank=bank.reference,
                    expected="each bank at most once",
                    sent=bank.reference,
                )
            )
            continue
        seen.add(bank.reference)
        if view is not None:
            errors.extend(_check_bank(bank, view))
    return errors


def _check_bank(bank: Bank, view: LedgerView) -> list[RuleError]:
    errors: list[RuleError] = []
    ref = bank.reference
    mapped = view.mapped("bank", ref)
    if not mapped:
        errors.append(_unmapped(view, "UNMAPPED_BANK", "bank", ref, bank=ref))
    ledger = view.ledgers.get(ref, BankLedger())
    if mapped and bank.control_total.compare(ledger.net) != 0:
        expected, sent = plain_amount(ledger.net), plain_amount(bank.control_total)
        errors.append(
            RuleError(
                "CONTROL_TOTAL",
                f"Bank {ref}: the control total must be the bank's net before this journal, "
                f"{expected}; {sent} was sent.",
                bank=ref,
                expected=expected,
                sent=sent,
            )
        )
    for section in bank.sections:
        if mapped:
            error = _check_row_version(ref, section, ledger.row_version(section.name))
            if error is not None:
                errors.append(error)
        for txn in section.txns:
            errors.extend(_check_txn(view, ref, section, txn))
    return errors


def _check_row_version(bank: str, section: Section, current: int) -> RuleError | None:
    expected = current + len(section.txns)
    sent = section.last_row_version
    text = sent.strip()
    if text == "" and expected == 0:
        return None
    if text.isascii() and text.isdigit() and int(text) == expected:
        return None
    return RuleError(
        "ROW_VERSION",
        f"Bank {bank}, {section.name}: lastRowVersion must be {expected} (the last row "
        f"version, {current}, plus {len(section.txns)} transactions); {sent!r} was sent.",
        bank=bank,
        section=section.name,
        expected=str(expected),
        sent=sent,
    )


def _check_txn(view: LedgerView, bank: str, section: Section, txn: Txn) -> list[RuleError]:
    where = {"bank": bank, "section": section.name, "transaction_id": txn.id}
    errors = []
    if section.is_orders:
        checks = [("UNMAPPED_PRODUCT", "product", txn.code), ("UNMAPPED_VAT", "vat", txn.vat_code)]
        for code, kind, amount_name, ref_name in (
            ("UNMAPPED_SURCHARGE", "surcharge", "grossSurcharge", "surchargeReference"),
            ("UNMAPPED_SURCHARGE_VAT", "surcharge_vat", "surchargeVat", "surchargeVatReference"),
        ):
            reference = txn.attributes.get(ref_name)
            if reference or _non_zero(txn.attributes.get(amount_name)):
                checks.append((code, kind, reference or ""))
    else:
        checks = [
            ("UNMAPPED_CHARGE", "charge", txn.code),
            ("UNMAPPED_CHARGE_VAT", "charge_vat", txn.vat_code),
        ]
    for code, kind, value in checks:
        if not view.mapped(kind, value):
            errors.append(_unmapped(view, code, kind, value, **where))
    return errors


def _non_zero(amount: str | None) -> bool:
    return amount is not None and Decimal(amount.strip()) != 0


def _unmapped(view: LedgerView, code: str, kind: str, value: str, **where: str) -> RuleError:
    words = _KIND_WORDS[kind]
    known = sorted(view.mappings.get(kind, frozenset()))
    expected = f"a {words} mapped for {view.system_identifier}"
    if known and len(known) <= _LISTED_CODES:
        expected += f" ({', '.join(known)})"
    if "section" in where:
        subject = (
            f"Bank {where['bank']}, {where['section']}, transaction {where['transaction_id']}: "
            f"the {words}"
        )
    else:
        subject = words[0].upper() + words[1:]
    return RuleError(
        code,
        f"{subject} {value!r} is not mapped for payment system {view.system_identifier}.",
        bank=where.get("bank"),
        section=where.get("section"),
        transaction_id=where.get("transaction_id"),
        expected=expected,
        sent=value,
    )

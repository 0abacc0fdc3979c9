"""A ControlAccounts journal: what the gateway reads from it and checks without FNG."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from gateway.ejournal.results import JournalError
from gateway.store.tables import SUBMISSION_ID_LENGTH
from gateway.xmlsafe import SchemaRegistry

SCHEMA: Final = "ejournal/ControlAccounts.xsd"

SECTIONS: Final = ("Orders", "Settlements", "OrderReversals", "SettlementReversals")

#: The GetBanks attribute that reports each section's row version.
ROW_VERSION_ATTRIBUTES: Final = {
    "Orders": "lastOrderRowVersion",
    "Settlements": "lastSettlementRowVersion",
    "OrderReversals": "lastOrderReversalRowVersion",
    "SettlementReversals": "lastSettlementReversalRowVersion",
}


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    last_row_version: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BankPart:
    reference: str
    sections: tuple[Section, ...]


@dataclass(frozen=True, slots=True)
class Journal:
    element: etree._Element
    system_identifier: str
    submission_id: str
    declared_lines: int
    banks: tuple[BankPart, ...] = field(repr=False)

    @property
    def lines(self) -> int:
        return sum(len(section.ids) for bank in self.banks for section in bank.sections)

    def payload_hash(self) -> str:
        """What makes two submissions the same: the payment system, the submission id, the
        line count and every bank's content, in canonical form. The header's volatile
        attributes (time, user, source) are left out, so a client that rebuilds its document
        to retry still matches."""
        digest = hashlib.sha256()
        for part in (self.system_identifier, self.submission_id, str(self.declared_lines)):
            digest.update(part.encode())
            digest.update(b"\0")
        banks = self.element.find("Banks")
        assert banks is not None
        digest.update(etree.tostring(banks, method="c14n", exclusive=True, with_comments=False))
        return digest.hexdigest()

    def expectations(self) -> str:
        """Each bank's row versions once this journal has landed (sections with lines only)."""
        landed: dict[str, dict[str, int]] = {}
        for bank in self.banks:
            for section in bank.sections:
                if section.ids:
                    landed.setdefault(bank.reference, {})[section.name] = int(
                        section.last_row_version
                    )
        return json.dumps(landed, sort_keys=True)


def strip_namespaces(element: etree._Element) -> etree._Element:
    """The journal without namespaces, for clients whose serializer let the SOAP body's
    default namespace leak onto a journal that has none. Renames in place."""
    for item in element.iter():
        tag = item.tag
        if isinstance(tag, str) and tag[0] == "{":
            item.tag = tag[tag.index("}") + 1 :]
    etree.cleanup_namespaces(element)
    return element


def read_journal(
    element: etree._Element, schemas: SchemaRegistry
) -> tuple[Journal | None, list[JournalError]]:
    """Validate and read a journal. Either a journal and no errors, or errors."""
    if etree.QName(element).namespace is not None:
        element = strip_namespaces(element)
    if element.tag != "ControlAccounts":
        return None, [
            JournalError("SCHEMA", f"expected a ControlAccounts document, not {element.tag}")
        ]
    issues = schemas.issues(SCHEMA, element)
    if issues:
        return None, [JournalError("SCHEMA", str(issue)) for issue in issues]
    for empty in element.iter("Bank", *SECTIONS):
        if not len(empty):
            empty.text = None  # element-only content: whatever text is left is indentation
    header = element.find("Header")
    assert header is not None
    banks: list[BankPart] = []
    for bank in element.iterfind("Banks/Bank"):
        sections = []
        for name in SECTIONS:
            section = bank.find(name)
            if section is not None:
                ids = tuple([txn.get("id", "") for txn in section.iterfind("Txn")])
                sections.append(Section(name, section.get("lastRowVersion", ""), ids))
        banks.append(BankPart(bank.get("reference", ""), tuple(sections)))
    journal = Journal(
        element=element,
        system_identifier=header.get("systemIdentifier", ""),
        submission_id=header.get("submissionID", ""),
        declared_lines=int(header.get("transactionLineCount", "0")),
        banks=tuple(banks),
    )
    errors = local_errors(journal)
    return (None, errors) if errors else (journal, [])


def local_errors(journal: Journal) -> list[JournalError]:
    """What can be known wrong without FNG's state."""
    errors: list[JournalError] = []
    if not journal.system_identifier.strip():
        errors.append(
            JournalError(
                "SYSTEM_IDENTIFIER", "the header has no systemIdentifier", section="Header"
            )
        )
    if not journal.submission_id.strip():
        errors.append(
            JournalError("SUBMISSION_ID", "the header has no submissionID", section="Header")
        )
    elif len(journal.submission_id) > SUBMISSION_ID_LENGTH:
        errors.append(
            JournalError(
                "SUBMISSION_ID",
                f"the submissionID is longer than {SUBMISSION_ID_LENGTH} characters",
                section="Header",
                expected=f"at most {SUBMISSION_ID_LENGTH} characters",
                sent=f"{len(journal.submission_id)} characters",
            )
        )
    if journal.declared_lines != journal.lines:
        errors.append(
            JournalError(
                "LINE_COUNT",
                f"transactionLineCount is {journal.declared_lines} but the document holds "
                f"{journal.lines} transactions",
                section="Header",
                expected=str(journal.lines),
                sent=str(journal.declared_lines),
            )
        )
    seen_banks: set[str] = set()
    for bank in journal.banks:
        if bank.reference in seen_banks:
            errors.append(
                JournalError(
                    "DUPLICATE_BANK",
                    f"bank {bank.reference} appears more than once",
                    bank=bank.reference,
                )
            )
        seen_banks.add(bank.reference)
        for section in bank.sections:
            errors.extend(_section_errors(bank.reference, section))
    return errors


def _section_errors(bank: str, section: Section) -> list[JournalError]:
    errors: list[JournalError] = []
    seen: set[str] = set()
    for txn_id in section.ids:
        if txn_id in seen:
            errors.append(
                JournalError(
                    "DUPLICATE_ID",
                    f"transaction id {txn_id} appears more than once in "
                    f"{section.name} of bank {bank}",
                    bank=bank,
                    section=section.name,
                    transaction_id=txn_id,
                )
            )
        seen.add(txn_id)
    version = section.last_row_version.strip()
    count = len(section.ids)
    if not version and not count:
        return errors
    # isascii: str.isdigit() also takes digits int() refuses ("²") and other scripts' digits.
    if not (version.isascii() and version.isdigit()) or len(version) > 18:
        errors.append(
            JournalError(
                "ROW_VERSION",
                f"lastRowVersion of {section.name} in bank {bank} is not a row "
                "version (a whole number)",
                bank=bank,
                section=section.name,
                expected="a whole number",
                sent=section.last_row_version,
            )
        )
    elif int(version) < count:
        errors.append(
            JournalError(
                "ROW_VERSION",
                f"lastRowVersion of {section.name} in bank {bank} is {version}, "
                f"less than the {count} transactions the section holds",
                bank=bank,
                section=section.name,
                expected=f"at least {count}",
                sent=version,
            )
        )
    return errors

"""A ControlAccounts journal: what the gateway reads from it and checks without FNG."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any, Final

from lxml import etree

from gateway.ejournal.results import JournalProblem
from gateway.store.tables import SUBMISSION_ID_LENGTH
from gateway.xmlsafe import PARSER_OPTIONS, Limits, SchemaRegistry, parse, unqualified

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
    #: The journal's tree when it was read whole; None when it was streamed.
    element: etree._Element | None
    system_identifier: str
    submission_id: str
    declared_lines: int
    banks: tuple[BankPart, ...] = field(repr=False)
    content_hash: str = field(repr=False, default="")
    #: Whether reading it changed the document: its namespace stripped, so that the bytes it
    #: came as are not what FNG must get.
    rewritten: bool = False

    @property
    def lines(self) -> int:
        return sum(len(section.ids) for bank in self.banks for section in bank.sections)

    def payload_hash(self) -> str:
        """What makes two submissions the same: the payment system, the submission id, the
        line count and every bank's content, in canonical form (exclusive C14N of Banks). The
        header's volatile attributes (time, user, source) are left out, so a client that
        rebuilds its document to retry still matches. Streamed or read whole, a journal has
        the same hash."""
        return self.content_hash

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
    return unqualified(element)


@dataclass(frozen=True, slots=True)
class Reading:
    """What a document sent as a journal turned out to be: a ``journal`` the gateway can read
    (None when it breaks the schema), every problem found without FNG, and the header's
    identifiers, which results carry even for a document that could not be read."""

    journal: Journal | None
    errors: list[JournalProblem]
    system_identifier: str | None = None
    submission_id: str | None = None

    @property
    def accepted(self) -> Journal | None:
        """The journal, when nothing is wrong with it."""
        return None if self.errors else self.journal


def _checked(journal: Journal) -> Reading:
    return Reading(journal, local_errors(journal), journal.system_identifier, journal.submission_id)


def read_journal(element: etree._Element, schemas: SchemaRegistry) -> Reading:
    """Validate and read a journal, and check it by the rules that need no FNG state."""
    rewritten = etree.QName(element).namespace is not None
    if rewritten:
        element = strip_namespaces(element)
    if element.tag != "ControlAccounts":
        expected = f"expected a ControlAccounts document, not {element.tag}"
        return Reading(None, [JournalProblem("SCHEMA", expected)])
    issues = schemas.issues(SCHEMA, element)
    if issues:
        header = element.find("Header")
        return Reading(
            None,
            [JournalProblem("SCHEMA", str(issue)) for issue in issues],
            None if header is None else header.get("systemIdentifier"),
            None if header is None else header.get("submissionID"),
        )
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
    system_identifier = header.get("systemIdentifier", "")
    submission_id = header.get("submissionID", "")
    declared_lines = int(header.get("transactionLineCount", "0"))
    digest = _hash_start(system_identifier, submission_id, declared_lines)
    banks_element = element.find("Banks")
    assert banks_element is not None
    digest.update(_c14n(banks_element))
    return _checked(
        Journal(
            element=element,
            system_identifier=system_identifier,
            submission_id=submission_id,
            declared_lines=declared_lines,
            banks=tuple(banks),
            content_hash=digest.hexdigest(),
            rewritten=rewritten,
        )
    )


def read_journal_source(data: bytes, schemas: SchemaRegistry, limits: Limits) -> Reading:
    """Read a journal from the bytes it was sent as (screened, see ``xmlsafe.screen``).

    One larger than ``limits.stream_above`` is streamed: validated while it is parsed, its
    transactions hashed and let go as they are read, so a journal of 50,000 lines never
    stands as a tree (about 11 times its size) in memory. A smaller one, or one streaming
    cannot take (a broken document, one that breaks the schema, a namespace to strip), is
    read whole, which lists every issue as :func:`read_journal` does."""
    journal = (
        stream_journal(data, schemas.schema(SCHEMA)) if len(data) > limits.stream_above else None
    )
    if journal is None:
        return read_journal(parse(data, limits), schemas)
    return _checked(journal)


def _hash_start(system_identifier: str, submission_id: str, declared_lines: int) -> Any:
    digest = hashlib.sha256()
    for part in (system_identifier, submission_id, str(declared_lines)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest


def _c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _c14n_text(text: str) -> bytes:
    """Character data escaped as C14N escapes it."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("\r", "&#xD;").encode()


def _start_tag(element: etree._Element) -> bytes:
    """The element's start tag in canonical form (attributes sorted and escaped as C14N
    does), from a childless copy of it."""
    attributes: dict[str, str] = {str(k): str(v) for k, v in element.items()}
    rendered = _c14n(etree.Element(element.tag, attributes))
    return rendered[: -len(f"</{element.tag}>")]


#: Transactions hashed at once: one canonicalization for many, a few hundred kB of tree.
_RUN: Final = 512


def _c14n_run(transactions: list[etree._Element]) -> bytes:
    """The canonical form of consecutive transactions, each as it would be inside its section
    (no namespaces, no text between them). They are moved out of the tree, which lets them go
    once hashed."""
    holder = etree.Element("run")
    holder.extend(transactions)
    return _c14n(holder)[len(b"<run>") : -len(b"</run>")]


def _let_go(element: etree._Element) -> None:
    """Drop an element already read, and the siblings before it."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


#: The elements a streamed journal's hash takes as start and end tags around their content.
_CONTAINERS: Final = frozenset({"Banks", "Bank", *SECTIONS})


def stream_journal(data: bytes, schema: etree.XMLSchema) -> Journal | None:
    """A valid, namespace-free journal read as it is parsed and validated, or None.

    Its hash is the one :func:`read_journal` computes: the canonical form of Banks is built
    piece by piece (each container's start tag, runs of transactions, the end tags), which
    with blank text removed and no namespaces is the same bytes."""
    digest: Any = None
    closed = False  # whether the root's end tag was read: the document is whole
    header: dict[str, str] = {}
    declared = 0
    banks: list[BankPart] = []
    sections: list[Section] = []
    ids: list[str] = []
    pending: list[etree._Element] = []  # transactions read, not yet hashed
    try:
        events = etree.iterparse(
            io.BytesIO(data), events=("start", "end"), schema=schema, **PARSER_OPTIONS
        )
        for event, element in events:
            tag = element.tag
            if event == "start":
                if tag in _CONTAINERS:
                    if digest is None:
                        return None  # not after a header: not a journal
                    digest.update(_start_tag(element))
                    if tag == "Bank":
                        sections = []
                    elif tag in SECTIONS:
                        ids = []
                continue
            if tag == "Txn":
                if digest is None:
                    return None
                ids.append(element.get("id", ""))
                if len(pending) >= _RUN:
                    digest.update(_c14n_run(pending))  # all but this one, which is current
                    pending = []
                pending.append(element)
            elif tag in SECTIONS:
                if pending:
                    digest.update(_c14n_run(pending))
                    pending = []
                sections.append(Section(tag, element.get("lastRowVersion", ""), tuple(ids)))
                digest.update(f"</{tag}>".encode())
                _let_go(element)
            elif tag == "Bank":
                # Sections in SECTIONS order, as read_journal lists them.
                ordered = sorted(sections, key=lambda section: SECTIONS.index(section.name))
                banks.append(BankPart(element.get("reference", ""), tuple(ordered)))
                digest.update(b"</Bank>")
                _let_go(element)
            elif tag == "Banks":
                if not banks and element.text:
                    # Blank text in a Banks with no bank is kept by the parser, and so is
                    # in its canonical form (a schema-valid Banks has no other text).
                    digest.update(_c14n_text(element.text))
                digest.update(b"</Banks>")
            elif tag == "ControlAccounts" and element.getparent() is None:
                closed = True
            elif tag == "Header":
                header = {str(k): str(v) for k, v in element.items()}
                declared = int(header.get("transactionLineCount", "0"))
                digest = _hash_start(
                    header.get("systemIdentifier", ""), header.get("submissionID", ""), declared
                )
    except (etree.XMLSyntaxError, ValueError):
        return None
    # lxml's iterparse can end without an error on a document cut short (seen with a schema
    # and resolve_entities=False), so what ended it is checked here: the root's end tag.
    if not closed or digest is None:
        return None
    return Journal(
        element=None,
        system_identifier=header.get("systemIdentifier", ""),
        submission_id=header.get("submissionID", ""),
        declared_lines=declared,
        banks=tuple(banks),
        content_hash=digest.hexdigest(),
    )


def local_errors(journal: Journal) -> list[JournalProblem]:
    """What can be known wrong without FNG's state."""
    errors: list[JournalProblem] = []
    if not journal.system_identifier.strip():
        errors.append(
            JournalProblem(
                "SYSTEM_IDENTIFIER", "the header has no systemIdentifier", section="Header"
            )
        )
    if not journal.submission_id.strip():
        errors.append(
            JournalProblem("SUBMISSION_ID", "the header has no submissionID", section="Header")
        )
    elif len(journal.submission_id) > SUBMISSION_ID_LENGTH:
        errors.append(
            JournalProblem(
                "SUBMISSION_ID",
                f"the submissionID is longer than {SUBMISSION_ID_LENGTH} characters",
                section="Header",
                expected=f"at most {SUBMISSION_ID_LENGTH} characters",
                sent=f"{len(journal.submission_id)} characters",
            )
        )
    if journal.declared_lines != journal.lines:
        errors.append(
            JournalProblem(
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
                JournalProblem(
                    "DUPLICATE_BANK",
                    f"bank {bank.reference} appears more than once",
                    bank=bank.reference,
                )
            )
        seen_banks.add(bank.reference)
        for section in bank.sections:
            errors.extend(_section_errors(bank.reference, section))
    return errors


def _section_errors(bank: str, section: Section) -> list[JournalProblem]:
    errors: list[JournalProblem] = []
    seen: set[str] = set()
    for txn_id in section.ids:
        if txn_id in seen:
            errors.append(
                JournalProblem(
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
            JournalProblem(
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
            JournalProblem(
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

"""Property-based fuzzing of the journal and budget documents, through a live gateway.

Each example starts from a document the school would post (a fresh journal, a fresh budget),
mutates it (attributes and texts set to odd values, elements removed, duplicated, renamed or
added, bytes flipped, inserted or cut off), and posts it in xmlData as XML or as escaped text,
in SOAP 1.1 or 1.2. Whatever comes of it, the gateway answers either the operation's result
document or a SOAP fault with a code: never another answer, a traceback, an internal error or
a hang; and a document it refuses itself never reaches FNG.

The runs are derandomized (the same examples every time) and bounded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway import ns
from tests.hostile.conftest import Stack
from tests.hostile.corpus import SERVICES, VERSIONS, Answer, Seen, Target, post

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Examples per service; more for a longer hunt (the runs stay derandomized).
EXAMPLES: Final = int(os.environ.get("FNG_TEST_FUZZ_EXAMPLES", "80"))

#: Codes only the gateway's own checks give: a result holding one was refused before FNG.
LOCAL_CODES: Final = {
    "ejournal": {
        "SCHEMA",
        "SYSTEM_IDENTIFIER",
        "SUBMISSION_ID",
        "LINE_COUNT",
        "DUPLICATE_BANK",
        "DUPLICATE_ID",
        "SUBMISSION_CONFLICT",
    },
    "budget": {
        "SCHEMA",
        "WRONG_SCHOOL",
        "NO_ALLOCATIONS",
        "UNKNOWN_YEAR",
        "UNKNOWN_LEDGER_CODE",
        "UNKNOWN_FUND",
        "WRONG_CFR",
        "UNKNOWN_COST_CENTRE",
        "SUBMISSION_CONFLICT",
    },
}
RESULTS: Final = {"ejournal": "JournalResult", "budget": "BudgetImportResult"}

NAMES: Final = [
    # ControlAccounts
    "ControlAccounts", "Header", "Banks", "Bank", "Orders", "Settlements", "OrderReversals",
    "SettlementReversals", "Txn", "id", "reference", "controlTotal", "lastRowVersion",
    "transactionLineCount", "submissionID", "systemIdentifier", "responseDateTime", "date",
    "grossAmount", "vat", "vatReference", "productReference", "grossCharges", "chargesVat",
    "grossSurcharge", "description",
    # Message
    "Message", "LANo", "SchoolNo", "DateCreated", "SerialNumber", "Budget", "FinancialYear",
    "FundAllocations", "FundAllocation", "CostCentreAllocations", "CostCentreAllocation",
    "LedgerCode", "FundCode", "CFRCode", "CostCentre", "Amount", "Profile",
]  # fmt: skip

ODD_VALUES: Final = [
    "", " ", "0", "-0", "-1", "1.5", "-0.01", "0.001", "0.0000001", "99999999999999.999999",
    "100000000000000", "9" * 30, "9" * 5000, "1e5", "NaN", "INF", "+7", " 42 ", "0x1F",
    "²", "١٢", "\U0001d7d7",  # a superscript two, Arabic-Indic digits, a bold nine
    "true", "null", "2015-02-29T00:00:00", "1899-12-31T23:59:59",
    "2079-06-07T00:00:00", "9999-12-31T23:59:59", "-0001-01-01T00:00:00",
    "10000-01-01T00:00:00", "2024-01-01T24:00:00", "2024-13-01T00:00:00",
    "2024-01-01T00:00:00+14:00", "2024-01-01", "31/12/2024", "x" * 10_000, "<", "&", "]]>",
    "\u202e", "😀", "\ufeff", "TPPCS", "BK1", "BK1 ", "123", "4567",
]  # fmt: skip

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Co")), max_size=40
)
values = st.one_of(
    st.sampled_from(ODD_VALUES),
    _text,
    st.integers(-(10**25), 10**25).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=8).map(str),
)
names = st.one_of(
    st.sampled_from(NAMES), st.from_regex(r"[A-Za-z_][A-Za-z0-9._-]{0,10}", fullmatch=True)
)


@dataclass(frozen=True)
class Mutation:
    kind: str
    index: int
    name: str
    value: str


TREE_KINDS: Final = (
    "set-field",
    "set-attribute",
    "set-text",
    "remove",
    "duplicate",
    "insert",
    "drop-attribute",
    "rename",
)
BYTE_KINDS: Final = ("truncate", "flip", "insert-bytes")
mutations = st.builds(
    Mutation,
    kind=st.sampled_from(TREE_KINDS + BYTE_KINDS),
    index=st.integers(0, 10_000),
    name=names,
    value=values,
)


def mutate_tree(root: etree._Element, mutation: Mutation) -> None:
    elements = list(root.iter())
    element = elements[mutation.index % len(elements)]
    attributes = list(element.attrib)
    try:
        if mutation.kind == "set-field":
            # The named attribute or element wherever it is, if the document has it.
            holders = root.xpath("//@*[local-name()=$n]/.. | //*[local-name()=$n]", n=mutation.name)
            if holders:
                holder = holders[mutation.index % len(holders)]
                if mutation.name in holder.attrib:
                    holder.set(mutation.name, mutation.value)
                else:
                    holder.text = mutation.value
        elif mutation.kind == "set-attribute":
            name = (
                attributes[mutation.index % len(attributes)]
                if attributes and mutation.index % 3
                else mutation.name
            )
            element.set(name, mutation.value)
        elif mutation.kind == "set-text":
            element.text = mutation.value
        elif mutation.kind == "drop-attribute" and attributes:
            del element.attrib[attributes[mutation.index % len(attributes)]]
        elif mutation.kind == "rename":
            element.tag = mutation.name
        elif element is not root:
            parent = element.getparent()
            assert parent is not None
            if mutation.kind == "remove":
                parent.remove(element)
            elif mutation.kind == "duplicate":
                element.addnext(etree.fromstring(etree.tostring(element)))
            elif mutation.kind == "insert":
                added = etree.SubElement(element, mutation.name)
                added.text = mutation.value
    except ValueError:
        pass  # a value lxml will not put in a tree (the byte mutations reach the rest)


def mutate_bytes(data: bytes, mutation: Mutation) -> bytes:
    at = mutation.index % (len(data) + 1)
    if mutation.kind == "truncate":
        return data[:at]
    if mutation.kind == "flip" and data:
        at = min(at, len(data) - 1)
        return data[:at] + bytes([data[at] ^ (1 + mutation.index % 255)]) + data[at + 1 :]
    return data[:at] + mutation.value.encode()[:64] + data[at:]


def build(target: Target, changes: list[Mutation], inline: bool) -> bytes:
    root = etree.fromstring(target.document())
    for mutation in changes:
        if mutation.kind in TREE_KINDS:
            mutate_tree(root, mutation)
    data = etree.tostring(root, encoding="utf-8")
    if inline:  # out of the operation's namespace, as SOAP stacks write it
        tag = etree.QName(root).localname.encode()
        data = data.replace(b"<" + tag, b"<" + tag + b' xmlns=""', 1)
    for mutation in changes:
        if mutation.kind in BYTE_KINDS:
            data = mutate_bytes(data, mutation)
    if inline:
        head, tail = target.envelope(body=target.call("@@")).encode().split(b"@@")
        return head + data + tail
    return target.envelope(body=target.with_text(data.decode("utf-8", "replace"))).encode()


def check_answer(answer: Answer, target: Target) -> tuple[bool, set[str], etree._Element | None]:
    """The answer is the operation's result, or a SOAP fault with a code, in the caller's
    version. Returns whether it is a fault, the codes it gives, and the result document."""
    env = ns.SOAP11_ENV if target.version == "1.1" else ns.SOAP12_ENV
    media = "text/xml" if target.version == "1.1" else "application/soap+xml"
    assert b"Traceback" not in answer.raw, answer.raw
    assert answer.content_type.split(";")[0] == media, answer
    root = etree.fromstring(answer.raw)
    body = root.find(f"{{{env}}}Body")
    assert body is not None and len(body) == 1, answer.raw
    fault = body.find(f"{{{env}}}Fault")
    if fault is not None:
        code = fault.findtext(f".//{{{ns.FAULT}}}code")
        assert code, answer.raw
        assert code != "INTERNAL_ERROR", answer.raw
        assert answer.status in ((500,) if target.version == "1.1" else (400, 500)), answer
        return True, {code}, None
    assert answer.status == 200, answer
    result = body[0][0][0]
    assert result.tag == RESULTS[target.service], answer.raw
    assert result.get("isSuccess") in ("true", "false"), answer.raw
    return False, {error.get("code") or "" for error in result.iterfind("Errors/Error")}, result


async def reached(stack: Stack, target: Target, before: Seen) -> bool:
    after = await stack.seen()
    operation = target.operation
    return bool(after.stats["requests"][operation] != before.stats["requests"][operation])


@pytest.mark.parametrize("service", SERVICES)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    changes=st.lists(mutations, max_size=5),
    version=st.sampled_from(VERSIONS),
    inline=st.booleans(),
)
# What earlier runs found, kept as examples: digits int() refuses ("²") or that are not ASCII
# in a row version, a serial number over int()'s 4,300 digits, a submission id longer than the
# ledger's column (PostgreSQL refused it).
@example(changes=[Mutation("set-field", 0, "lastRowVersion", "²")], version="1.1", inline=True)
@example(changes=[Mutation("set-field", 1, "lastRowVersion", "١٢")], version="1.2", inline=False)
@example(changes=[Mutation("set-field", 0, "SerialNumber", "9" * 5000)], version="1.1", inline=True)
@example(changes=[Mutation("set-field", 0, "submissionID", "s" * 300)], version="1.2", inline=True)
async def test_a_fuzzed_document_refused_locally_never_reaches_fng(
    stack: Stack, service: str, changes: list[Mutation], version: str, inline: bool
) -> None:
    target = stack.target(service, version)
    data = build(target, changes, inline)
    before = await stack.seen()
    answer = await post(stack.http, target.url, data, version, timeout=30)
    is_fault, codes, result = check_answer(answer, target)
    went = await reached(stack, target, before)
    if is_fault and codes <= {
        "XML_REJECTED",
        "PAYLOAD_TOO_LARGE",
        "MALFORMED_REQUEST",
        "NOT_PERMITTED",
        "UNKNOWN_OPERATION",
    }:
        assert not went, (codes, data[:2000])
    if result is not None and result.get("isSuccess") == "false" and codes & LOCAL_CODES[service]:
        assert not went, (codes, data[:2000])

"""A journal sent as text is streamed: validated as it is parsed, each transaction hashed and
let go. Streamed or read whole, a journal must read the same (banks, sections, ids, row
versions, header) and hash the same, or a retry after an upgrade would not match the ledger's
entry of its first attempt; and whatever streaming cannot take is read whole, with every
issue listed as before."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ejournal.journal import SCHEMA, read_journal, read_journal_source, stream_journal
from gateway.xmlsafe import Limits, SchemaRegistry, parse, shipped_schemas_dir
from tests.support import BankEntry, Txn, big_journal, journal_xml

LIMITS = Limits(
    max_bytes=10**7, max_depth=64, max_elements=10**6, max_attributes=10**7, stream_above=0
)
SCHEMAS = SchemaRegistry(shipped_schemas_dir(), [SCHEMA])


def both(document: str) -> tuple[object, object]:
    data = document.encode()
    reading = read_journal(parse(data, LIMITS), SCHEMAS)
    whole, whole_errors = reading.accepted, reading.errors
    streamed = stream_journal(data, SCHEMAS.schema(SCHEMA))
    assert whole is not None, whole_errors
    assert streamed is not None
    return whole, streamed


def same(document: str) -> None:
    whole, streamed = both(document)
    assert whole.payload_hash() == streamed.payload_hash()  # type: ignore[attr-defined]
    for name in ("system_identifier", "submission_id", "declared_lines", "banks"):
        assert getattr(whole, name) == getattr(streamed, name), name
    assert streamed.element is None  # type: ignore[attr-defined]


SAMPLE = journal_xml(
    [
        BankEntry("BK1", orders=[Txn("1"), Txn("2"), Txn("3")], settlements=[Txn("1")]),
        BankEntry("BK2"),
    ],
    submission_id="7",
    declaration=False,
)

#: Formatting a serializer may produce, and text that must be escaped the canonical way.
VARIANTS = {
    "as written": SAMPLE,
    "indented with tabs and CRLF": SAMPLE.replace("\n", "\r\n\t\t"),
    "all on one line": SAMPLE.replace("\n", ""),
    "comments between transactions": SAMPLE.replace(" />\n<Txn", " /><!-- next -->\n<Txn"),
    "comment at a section's start": SAMPLE.replace('">\n<Txn', '"><!-- first -->\n<Txn', 1),
    "single-quoted attributes": SAMPLE.replace(
        'productReference="WATBTL1"', "productReference='W\"1'"
    ),
    "escaped attribute text": SAMPLE.replace(
        'description="Description"', 'description="a&amp;b &lt; &#9;&#10;&#13; &quot;q&quot;"', 1
    ),
    "a transaction with text": SAMPLE.replace(
        " />\n</Orders>", ">a &amp; b &lt; c&#13;</Txn>\n</Orders>", 1
    ),
    "no bank at all": (
        SAMPLE[: SAMPLE.index("<Banks>")].replace('Count="4"', 'Count="0"')
        + "<Banks>\n  </Banks>\n</ControlAccounts>"
    ),
    "empty element forms": SAMPLE.replace("<Banks>", "<Banks>\n", 1).replace(
        '<Bank reference="BK1" controlTotal="0">',
        '<Bank reference="BK1" controlTotal="0">'
        '<OrderReversals lastRowVersion="0">  </OrderReversals>',
        1,
    ),
}


def test_formatting_and_escapes_hash_the_same() -> None:
    for name, document in VARIANTS.items():
        assert name == "as written" or document != SAMPLE, name
        same(document)


def test_long_sections_hash_the_same() -> None:
    """Sections longer than a run of transactions hashed at once, and one exactly a run."""
    for lines in (2 * 1100, 2 * 512):
        same(big_journal(lines).split("?>", 1)[1])


def test_sections_in_any_order_read_in_one_order() -> None:
    """xs:all lets sections come in any order; both readings list them in one order."""
    swapped = journal_xml(
        [BankEntry("BK1", settlements=[Txn("s1")], orders=[Txn("o1")])], declaration=False
    )
    start, end = swapped.index("<Orders"), swapped.index("</Orders>") + len("</Orders>")
    orders = swapped[start:end]
    swapped = swapped[:start] + swapped[end:]
    swapped = swapped.replace("</Bank>", orders + "\n</Bank>", 1)
    assert swapped.index("<Settlements") < swapped.index("<Orders")
    same(swapped)


amounts = st.decimals(min_value=Decimal("0.01"), max_value=99999, places=2).map(str)
ids = st.text("abcXYZ0123-_&<>\"' ", min_size=1, max_size=12)
transactions = st.lists(st.builds(Txn, id=ids, gross=amounts), max_size=6, unique_by=lambda t: t.id)
banks = st.lists(
    st.builds(
        BankEntry,
        reference=st.text("ABKZ129 &", min_size=1, max_size=6),
        orders=st.none() | transactions,
        settlements=st.none() | transactions,
        order_reversals=st.none() | transactions,
        settlement_reversals=st.none() | transactions,
    ),
    max_size=3,
    unique_by=lambda bank: bank.reference,
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(banks=banks, submission=st.text("A-Z0-9&", min_size=1, max_size=10))
def test_any_journal_reads_and_hashes_the_same(banks: list[BankEntry], submission: str) -> None:
    same(journal_xml(banks, submission_id=submission, declaration=False))


def test_what_streaming_cannot_take_is_read_whole() -> None:
    """A journal that breaks the schema gets the same issues either way in; a namespace that
    leaked onto the journal is stripped as before; neither is streamed."""
    broken = SAMPLE.replace('transactionLineCount="4"', 'transactionLineCount="four"')
    assert stream_journal(broken.encode(), SCHEMAS.schema(SCHEMA)) is None
    whole = read_journal(parse(broken.encode(), LIMITS), SCHEMAS)
    assert read_journal_source(broken.encode(), SCHEMAS, LIMITS) == whole
    assert whole.journal is None and [e.code for e in whole.errors] == ["SCHEMA"]
    assert (whole.system_identifier, whole.submission_id) == ("TPPCS", "7")

    namespaced = SAMPLE.replace("<ControlAccounts>", '<ControlAccounts xmlns="urn:x">', 1)
    assert stream_journal(namespaced.encode(), SCHEMAS.schema(SCHEMA)) is None
    reading = read_journal_source(namespaced.encode(), SCHEMAS, LIMITS)
    journal = reading.accepted
    assert journal is not None and journal.element is not None, reading.errors
    assert journal.payload_hash() == both(SAMPLE)[1].payload_hash()  # type: ignore[attr-defined]


def test_a_document_cut_short_is_never_streamed() -> None:
    """Cut anywhere, the journal is not taken as a journal by the stream; read whole, it is
    refused as broken XML."""
    data = SAMPLE.encode()
    for end in range(len(data) - 40, len(data)):
        assert stream_journal(data[:end], SCHEMAS.schema(SCHEMA)) is None, data[:end][-30:]


def test_rule_breaking_journal_streamed_gets_its_errors() -> None:
    """Valid to the schema but against the rules: streamed, and refused with the rule."""
    document = journal_xml(
        [BankEntry("BK1", orders=[Txn("1"), Txn("1")])], declaration=False, line_count=2
    )
    assert stream_journal(document.encode(), SCHEMAS.schema(SCHEMA)) is not None
    reading = read_journal_source(document.encode(), SCHEMAS, LIMITS)
    assert reading.accepted is None and [e.code for e in reading.errors] == ["DUPLICATE_ID"]
    assert reading.journal is not None and reading.journal.element is None  # streamed
    assert reading.errors == read_journal(parse(document.encode(), LIMITS), SCHEMAS).errors


def test_journals_above_the_threshold_are_streamed() -> None:
    """Below ``stream_above`` a journal is read as a tree (faster), above it streamed."""
    data = SAMPLE.encode()
    for threshold, streamed in ((len(data), False), (len(data) - 1, True)):
        limits = Limits(
            max_bytes=10**7,
            max_depth=64,
            max_elements=10**6,
            max_attributes=10**7,
            stream_above=threshold,
        )
        reading = read_journal_source(data, SCHEMAS, limits)
        journal = reading.accepted
        assert journal is not None, reading.errors
        assert (journal.element is None) == streamed

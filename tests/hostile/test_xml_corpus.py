"""Hostile XML against both services in both SOAP versions: in the envelope itself, and in the
journal or budget that ``xmlData`` carries as escaped text (the gateway parses it as a second
document, with the same guards).

Each payload rides on a request that would otherwise succeed, and each must be answered with a
fault in the caller's SOAP version whose detail names the refusal, with nothing reaching FNG
and no URL in it fetched. The gateway here has small limits (``LIMITS``), so crossing them is
cheap; the same cases at full size, with the gateway's memory measured, are in test_memory.py.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pytest

from tests.hostile.conftest import LIMITS, Stack
from tests.hostile.corpus import (
    SERVICES,
    VERSIONS,
    Target,
    assert_fault,
    post,
    utf7_behind_a_bom,
    with_doctype,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

OVER_ELEMENTS: Final = LIMITS["max_elements"] + 5_000
OVER_ATTRIBUTES: Final = LIMITS["max_attributes"] + 5_000
OVER_BYTES: Final = LIMITS["max_bytes"] + 64 * 1024
SECRET: Final = "TOP-SECRET-6c1f"


def note(content: str = "", attributes: str = "") -> str:
    """An extra SOAP header element without mustUnderstand: ignored unless it is hostile."""
    return f'<n:Note xmlns:n="urn:hostile:note"{attributes}>{content}</n:Note>'


def laughs(root: str) -> str:
    """Billion laughs: ten levels of ten references, 10⁹ "lol"s from one reference to lol9."""
    entities = "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    return f'<!DOCTYPE {root} [<!ENTITY lol "lol">{entities}]>'


def quadratic(root: str) -> tuple[str, str]:
    """Quadratic blow-up: one 50 kB entity referenced 20,000 times (1 GB once expanded), no
    nesting for an expansion-depth guard to notice."""
    return f'<!DOCTYPE {root} [<!ENTITY a "{"x" * 50_000}">]>', "&a;" * 20_000


def deep(levels: int) -> str:
    return "<d>" * levels + "</d>" * levels


def many_elements(count: int) -> str:
    return "<e/>" * count


def many_attributes(count: int) -> str:
    return "".join(f' a{i}="{i}"' for i in range(count))


def many_namespaces(count: int) -> str:
    return "".join(f' xmlns:p{i}="urn:flood:{i}"' for i in range(count))


# ----------------------------------------------------------------------------------------------
# The envelope
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Target, Stack], bytes]
    code: str = "XML_REJECTED"


def _doctype(
    doctype: Callable[[Stack], str], content: str = ""
) -> Callable[[Target, Stack], bytes]:
    def build(target: Target, stack: Stack) -> bytes:
        return with_doctype(target.envelope(extra_header=note(content)), doctype(stack)).encode()

    return build


def _header(content: str = "", attributes: str = "") -> Callable[[Target, Stack], bytes]:
    def build(target: Target, _stack: Stack) -> bytes:
        return target.envelope(extra_header=note(content, attributes)).encode()

    return build


def _raw(text: bytes) -> Callable[[Target, Stack], bytes]:
    """Bytes that are not the UTF-8 they claim to be, inside the extra header."""

    def build(target: Target, _stack: Stack) -> bytes:
        head, tail = target.envelope(extra_header=note("@@")).encode().split(b"@@")
        return head + text + tail

    return build


def _encoded(
    encoding: str, declared: str | None, prefix: bytes = b""
) -> Callable[[Target, Stack], bytes]:
    """The request written in ``encoding`` and declaring ``declared`` (none when None)."""

    def build(target: Target, _stack: Stack) -> bytes:
        document = target.envelope().split("?>", 1)[1]
        if declared is not None:
            document = f'<?xml version="1.0" encoding="{declared}"?>{document}'
        return prefix + document.encode(encoding)

    return build


def _utf16_with_dtd(target: Target, stack: Stack) -> bytes:
    """A DTD the byte scan could only see once the UTF-16 is decoded."""
    document = with_doctype(target.envelope(extra_header=note("&lol9;")), laughs("soap:Envelope"))
    document = document.replace('encoding="utf-8"', 'encoding="utf-16"', 1)
    return codecs.BOM_UTF16_LE + document.encode("utf-16-le")


def _bom_then_dtd(target: Target, stack: Stack) -> bytes:
    document = with_doctype(target.envelope(extra_header=note("&lol9;")), laughs("soap:Envelope"))
    return codecs.BOM_UTF8 + document.encode()


def _lone_surrogate_utf16(target: Target, _stack: Stack) -> bytes:
    head, tail = target.envelope(extra_header=note("@@")).split("?>", 1)[1].split("@@")
    return codecs.BOM_UTF16_LE + head.encode("utf-16-le") + b"\x00\xd8" + tail.encode("utf-16-le")


def _truncated_utf16(target: Target, _stack: Stack) -> bytes:
    return codecs.BOM_UTF16_LE + target.envelope().split("?>", 1)[1].encode("utf-16-le")[:-1]


ENVELOPE_CASES: Final = [
    # Entities and DTDs.
    Case("billion-laughs", _doctype(lambda _s: laughs("soap:Envelope"), "&lol9;")),
    Case(
        "quadratic-blowup",
        _doctype(lambda _s: quadratic("soap:Envelope")[0], quadratic("soap:Envelope")[1]),
    ),
    Case(
        "external-entity-file",
        _doctype(
            lambda s: (
                f'<!DOCTYPE soap:Envelope [<!ENTITY x SYSTEM "file://{s.tmp / "secret.txt"}">]>'
            ),
            "&x;",
        ),
    ),
    Case(
        "external-entity-url",
        _doctype(
            lambda s: f'<!DOCTYPE soap:Envelope [<!ENTITY x SYSTEM "{s.tripwire.url}/x">]>', "&x;"
        ),
    ),
    Case(
        "external-parameter-entity",
        _doctype(
            lambda s: (
                f'<!DOCTYPE soap:Envelope [<!ENTITY % p SYSTEM "{s.tripwire.url}/p.dtd"> %p;]>'
            )
        ),
    ),
    Case(
        "external-dtd-system",
        _doctype(lambda s: f'<!DOCTYPE soap:Envelope SYSTEM "{s.tripwire.url}/evil.dtd">'),
    ),
    Case(
        "external-dtd-public",
        _doctype(
            lambda s: f'<!DOCTYPE soap:Envelope PUBLIC "-//EVIL//DTD X//EN" "{s.tripwire.url}/p">'
        ),
    ),
    Case("dtd-without-entities", _doctype(lambda _s: "<!DOCTYPE soap:Envelope>")),
    Case("dtd-in-utf16", _utf16_with_dtd),
    Case("dtd-after-a-byte-order-mark", _bom_then_dtd),
    # Depth, counts and lengths.
    Case("deeper-than-the-limit", _header(deep(LIMITS["max_depth"] + 1))),
    Case("deeper-than-libxml2-allows", _header(deep(300))),
    Case("hundred-thousand-levels", _header(deep(100_000))),
    Case("element-flood", _header(many_elements(OVER_ELEMENTS))),
    Case("attribute-count-one-element", _header(attributes=many_attributes(OVER_ATTRIBUTES))),
    Case(
        "attribute-count-many-elements",
        _header("".join(f"<e{many_attributes(5)}/>" for _ in range(OVER_ATTRIBUTES // 5))),
    ),
    Case(
        "attribute-longer-than-the-body-limit",
        _header(attributes=f' a="{"v" * OVER_BYTES}"'),
        "PAYLOAD_TOO_LARGE",
    ),
    Case("namespace-flood-one-element", _header(attributes=many_namespaces(OVER_ATTRIBUTES))),
    Case(
        "namespace-flood-many-elements",
        _header(
            "".join(
                f"<q:e{many_namespaces(6)} xmlns:q='urn:q{i}'/>"
                for i in range(OVER_ATTRIBUTES // 6)
            )
        ),
    ),
    Case("body-over-the-limit", _header("x" * OVER_BYTES), "PAYLOAD_TOO_LARGE"),
    # Bytes that are not what they claim.
    Case("invalid-utf8-byte", _raw(b"caf\xff")),
    Case("overlong-utf8", _raw(b"\xc0\xbc")),
    Case("utf8-encoded-surrogate", _raw(b"\xed\xa0\x80")),
    Case("truncated-utf8-sequence", _raw(b"\xe2\x82")),
    Case("latin1-byte-declared-utf8", _raw(b"caf\xe9")),
    Case("declares-utf16-is-utf8", _encoded("utf-8", "utf-16")),
    Case("utf16-with-bom-declares-utf8", _encoded("utf-16", "utf-8")),
    Case("utf16le-without-bom-declares-utf8", _encoded("utf-16-le", "utf-8")),
    Case("bom-utf8-declares-utf16", _encoded("utf-8", "utf-16", codecs.BOM_UTF8)),
    Case("ebcdic", _encoded("cp037", "IBM037")),
    Case("utf7", _encoded("utf-7", "UTF-7")),
    Case("utf32", _encoded("utf-32", "UTF-32")),
    Case("utf16-lone-surrogate", _lone_surrogate_utf16),
    Case("utf32-without-bom", _encoded("utf-32-be", None)),
    Case("ebcdic-without-declaration", _encoded("cp037", None)),
    Case(
        "utf7-element-flood-behind-a-bom",
        lambda t, _s: utf7_behind_a_bom(
            t.envelope(extra_header=note("@@")), many_elements(OVER_ELEMENTS)
        ),
    ),
    Case("utf16-odd-length", _truncated_utf16),
    Case("nul-character-reference", _header("&#0;")),
    Case("non-character-reference", _header("&#xFFFE;")),
    Case("raw-control-character", _raw(b"\x01")),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("case", ENVELOPE_CASES, ids=lambda case: case.name)
async def test_a_hostile_envelope_is_refused_and_leaks_nothing(
    stack: Stack, case: Case, service: str, version: str
) -> None:
    (stack.tmp / "secret.txt").write_text(SECRET)
    target = stack.target(service, version)
    before = await stack.seen()
    answer = await post(stack.http, target.url, case.build(target, stack), version)
    assert_fault(answer, version, case.code)
    assert SECRET.encode() not in answer.raw
    await stack.assert_nothing_reached(before)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("service", SERVICES)
async def test_body_over_the_limit_chunked(stack: Stack, service: str, version: str) -> None:
    """Without a Content-Length the gateway stops reading once the limit is passed."""
    target = stack.target(service, version)
    data = target.envelope(extra_header=note("x" * OVER_BYTES)).encode()

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(data), 16 * 1024):
            yield data[start : start + 16 * 1024]

    before = await stack.seen()
    assert_fault(
        await post(stack.http, target.url, chunks(), version), version, "PAYLOAD_TOO_LARGE"
    )
    await stack.assert_nothing_reached(before)


# ----------------------------------------------------------------------------------------------
# The document inside xmlData
# ----------------------------------------------------------------------------------------------


def slot(target: Target, text: str) -> str:
    """The service's valid document with ``text`` where any string goes: the journal header's
    description, a fund allocation's profile."""
    document = target.document()
    if target.service == "ejournal":
        return document.replace('description=""', f'description="{text}"', 1)
    return document.replace(
        "</Amount></FundAllocation>", f"</Amount><Profile>{text}</Profile></FundAllocation>", 1
    )


def root_of(target: Target) -> str:
    return "ControlAccounts" if target.service == "ejournal" else "Message"


def inside(target: Target, markup: str) -> str:
    """The service's valid document with ``markup`` inside it."""
    where = "<Banks>" if target.service == "ejournal" else "<Budget>"
    return target.document().replace(where, where + markup, 1)


def with_root_attributes(target: Target, attributes: str) -> str:
    root = root_of(target)
    return target.document().replace(f"<{root}>", f"<{root}{attributes}>", 1)


@dataclass(frozen=True)
class Inner:
    name: str
    build: Callable[[Target, Stack], str]
    code: str = "XML_REJECTED"


INNER_CASES: Final = [
    Inner("billion-laughs", lambda t, _s: laughs(root_of(t)) + slot(t, "&lol9;")),
    Inner(
        "quadratic-blowup",
        lambda t, _s: quadratic(root_of(t))[0] + slot(t, quadratic(root_of(t))[1]),
    ),
    Inner(
        "external-entity-file",
        lambda t, s: (
            f'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{s.tmp / "secret.txt"}">]>' + slot(t, "&x;")
        ),
    ),
    Inner(
        "external-entity-url",
        lambda t, s: f'<!DOCTYPE r [<!ENTITY x SYSTEM "{s.tripwire.url}/x">]>' + slot(t, "&x;"),
    ),
    Inner(
        "external-parameter-entity",
        lambda t, s: (
            f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{s.tripwire.url}/p.dtd"> %p;]>' + t.document()
        ),
    ),
    Inner(
        "external-dtd",
        lambda t, s: f'<!DOCTYPE {root_of(t)} SYSTEM "{s.tripwire.url}/evil.dtd">' + t.document(),
    ),
    Inner("unused-internal-dtd", lambda t, _s: '<!DOCTYPE r [<!ENTITY x "y">]>' + t.document()),
    Inner("deeper-than-the-limit", lambda t, _s: inside(t, deep(LIMITS["max_depth"] + 1))),
    Inner("deeper-than-libxml2-allows", lambda t, _s: inside(t, deep(300))),
    Inner("forty-five-thousand-levels", lambda t, _s: inside(t, deep(45_000))),
    Inner("element-flood", lambda t, _s: inside(t, many_elements(OVER_ELEMENTS))),
    Inner(
        "attribute-flood", lambda t, _s: with_root_attributes(t, many_attributes(OVER_ATTRIBUTES))
    ),
    Inner(
        "namespace-flood", lambda t, _s: with_root_attributes(t, many_namespaces(OVER_ATTRIBUTES))
    ),
    Inner("nul-character-reference", lambda t, _s: slot(t, "&#0;")),
    Inner(
        "second-declaration-claims-utf16",
        lambda t, _s: (
            '<?xml version="1.0" encoding="utf-8"?><?xml version="1.0" encoding="utf-16"?>'
            + t.document()
        ),
    ),
    Inner(
        "declares-ebcdic",
        lambda t, _s: (
            '<?xml version="1.0"?>\n<?xml version="1.0" encoding="IBM037"?>' + t.document()
        ),
    ),
    Inner("truncated", lambda t, _s: t.document()[:-20]),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("case", INNER_CASES, ids=lambda case: case.name)
async def test_hostile_document_in_xml_data(
    stack: Stack, case: Inner, service: str, version: str
) -> None:
    (stack.tmp / "secret.txt").write_text(SECRET)
    target = stack.target(service, version)
    data = target.envelope(body=target.with_text(case.build(target, stack))).encode()
    before = await stack.seen()
    answer = await post(stack.http, target.url, data, version)
    assert_fault(answer, version, case.code)
    assert SECRET.encode() not in answer.raw
    await stack.assert_nothing_reached(before)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("service", SERVICES)
async def test_document_that_grows_past_the_limit_once_decoded(
    stack: Stack, service: str, version: str
) -> None:
    """A Latin-1 request under the byte limit whose xmlData, as UTF-8, is over it: each é is
    one byte in the request and two in the document the gateway parses next."""
    target = stack.target(service, version)
    filler = "é" * (LIMITS["max_bytes"] * 3 // 5)
    document = target.envelope(body=target.with_text(slot(target, filler)))
    data = document.replace('encoding="utf-8"', 'encoding="iso-8859-1"', 1).encode("latin-1")
    assert len(data) < LIMITS["max_bytes"]
    before = await stack.seen()
    assert_fault(await post(stack.http, target.url, data, version), version, "PAYLOAD_TOO_LARGE")
    await stack.assert_nothing_reached(before)


# ----------------------------------------------------------------------------------------------
# XInclude: never processed, so a document that uses it is simply not a valid document
# ----------------------------------------------------------------------------------------------

XI: Final = "http://www.w3.org/2001/XInclude"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("where", ["as-xml-data", "inside-the-document", "escaped"])
@pytest.mark.parametrize("href", ["file", "url"])
async def test_xinclude_is_never_processed(
    stack: Stack, service: str, version: str, where: str, href: str
) -> None:
    """xmlData that is, or holds, an XInclude of a secret file (or of a URL) is answered as a
    document breaking the schema: the file is not read, the URL not fetched, FNG not called."""
    (stack.tmp / "secret.txt").write_text(SECRET)
    target = stack.target(service, version)
    location = f"file://{stack.tmp / 'secret.txt'}" if href == "file" else f"{stack.tripwire.url}/x"
    include = f'<xi:include xmlns:xi="{XI}" href="{location}" parse="text"/>'
    root = root_of(target)
    if where == "as-xml-data":
        body = target.call(include)
    elif where == "inside-the-document":
        document = target.document().replace(f"<{root}>", f'<{root} xmlns="">{include}', 1)
        body = target.call(document)
    else:
        body = target.with_text(target.document().replace(f"<{root}>", f"<{root}>{include}", 1))
    before = await stack.seen()
    answer = await post(stack.http, target.url, target.envelope(body=body).encode(), version)
    assert answer.status == 200, answer.raw
    result = answer.result()
    assert result.get("isSuccess") == "false", answer.raw
    assert {error.get("code") for error in result.iterfind("Errors/Error")} == {"SCHEMA"}
    assert SECRET.encode() not in answer.raw
    await stack.assert_nothing_reached(before)


# ----------------------------------------------------------------------------------------------
# The carriers: without the payload, the same requests do reach FNG
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("form", ["xml", "escaped", "benign-extra-header", "latin-1"])
async def test_the_carriers_reach_fng(stack: Stack, service: str, version: str, form: str) -> None:
    """What makes "nothing reached FNG" mean something: the requests the payloads ride on,
    sent without them, are posted to FNG."""
    target = stack.target(service, version)
    if form == "xml":
        data = target.envelope().encode()
    elif form == "escaped":
        data = target.envelope(body=target.with_text(target.document())).encode()
    elif form == "benign-extra-header":
        data = target.envelope(extra_header=note("benign", ' a="1"')).encode()
    else:
        document = target.envelope(body=target.with_text(slot(target, "é")))
        data = document.replace('encoding="utf-8"', 'encoding="iso-8859-1"', 1).encode("latin-1")
    before = await stack.seen()
    answer = await post(stack.http, target.url, data, version)
    assert answer.status == 200, answer.raw
    result = answer.result()
    assert result.tag == ("JournalResult" if service == "ejournal" else "BudgetImportResult")
    after = await stack.seen()
    requests = (
        after.stats["requests"][target.operation] - before.stats["requests"][target.operation]
    )
    assert requests == 1, answer.raw
    if service == "budget":
        assert result.get("isSuccess") == "true", answer.raw
        assert len(after.budgets) == len(before.budgets) + 1

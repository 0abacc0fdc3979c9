"""Values the schemas let through but the gateway's own reading once crashed on (the fuzzer's
finds): each is now refused as a document error, in the result, and nothing is written to FNG
(a journal's banks may be read, to list every problem in the one answer)."""

from __future__ import annotations

import re

import pytest

from tests.hostile.conftest import Stack
from tests.hostile.corpus import VERSIONS, post

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _journal_attribute(name: str, value: str) -> tuple[str, str, str]:
    return "ejournal", f'{name}="[^"]*"', f'{name}="{value}"'


CASES = {
    # str.isdigit() takes "²", which int() refuses: an internal error.
    "row-version-superscript-digit": (*_journal_attribute("lastRowVersion", "²"), "ROW_VERSION"),
    # int() reads other scripts' digits, so this one went to FNG as if it were 12.
    "row-version-arabic-indic-digits": (*_journal_attribute("lastRowVersion", "١٢"), "ROW_VERSION"),
    # Longer than the ledger's column: PostgreSQL refused the insert, an internal error.
    "submission-id-of-300-characters": (
        *_journal_attribute("submissionID", "s" * 300),
        "SUBMISSION_ID",
    ),
    # An xs:positiveInteger, but past the 4,300 digits int() converts: an internal error.
    "serial-number-of-5000-digits": (
        "budget",
        r"<SerialNumber>\d+</SerialNumber>",
        f"<SerialNumber>{'9' * 5000}</SerialNumber>",
        "SCHEMA",
    ),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", list(CASES))
async def test_refused_before_fng(stack: Stack, case: str, version: str) -> None:
    service, pattern, replacement, code = CASES[case]
    target = stack.target(service, version)
    body = re.sub(pattern, replacement, target.valid_body(), count=1)
    before = await stack.seen()
    answer = await post(stack.http, target.url, target.envelope(body=body).encode(), version)
    assert answer.status == 200, answer.raw
    result = answer.result()
    assert result.get("isSuccess") == "false", answer.raw
    assert code in {error.get("code") for error in result.iterfind("Errors/Error")}, answer.raw
    if service == "ejournal":
        await stack.assert_only_banks_read(before)
    else:
        await stack.assert_nothing_reached(before)

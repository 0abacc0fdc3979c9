"""Envelopes that are well-formed XML but not one usable SOAP request, and SOAPActions that
name another operation, in both SOAP versions and against both services.

Where the shape allows it, the request holds a valid operation (a journal or a budget the
school would have posted), so a gateway that overlooked the fault would reach FNG.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pytest

from gateway import ns
from tests.hostile.conftest import Stack
from tests.hostile.corpus import SERVICES, VERSIONS, Target, assert_fault, post
from tests.support import auth_header

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _env(target: Target) -> str:
    return ns.SOAP11_ENV if target.version == "1.1" else ns.SOAP12_ENV


def _other_env(target: Target) -> str:
    return ns.SOAP12_ENV if target.version == "1.1" else ns.SOAP11_ENV


def _shape(
    inner: Callable[[Target, str, str], str], namespace: Callable[[Target], str] = _env
) -> Callable[[Target], bytes]:
    """An envelope of the target's version (or another namespace) around ``inner``, which gets
    the target, the AuthHeader and a valid operation."""

    def build(target: Target) -> bytes:
        header = auth_header(target.auth, target.namespace)
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<soap:Envelope xmlns:soap="{namespace(target)}">'
            + inner(target, header, target.valid_body())
            + "</soap:Envelope>"
        ).encode()

    return build


@dataclass(frozen=True)
class Shape:
    name: str
    build: Callable[[Target], bytes]
    code: str
    soap_code: str | None = None


SHAPES: Final = [
    Shape(
        "no-body", _shape(lambda _t, h, _b: f"<soap:Header>{h}</soap:Header>"), "MALFORMED_REQUEST"
    ),
    Shape("empty-envelope", _shape(lambda _t, _h, _b: ""), "MALFORMED_REQUEST"),
    Shape(
        "empty-body",
        _shape(lambda _t, h, _b: f"<soap:Header>{h}</soap:Header><soap:Body/>"),
        "MALFORMED_REQUEST",
    ),
    Shape(
        "two-bodies",
        _shape(
            lambda t, h, b: (
                f"<soap:Header>{h}</soap:Header><soap:Body>{b}</soap:Body>"
                f"<soap:Body>{t.valid_body()}</soap:Body>"
            )
        ),
        "MALFORMED_REQUEST",
    ),
    Shape(
        "two-operations-in-the-body",
        _shape(
            lambda t, h, b: (
                f"<soap:Header>{h}</soap:Header><soap:Body>{b}{t.valid_body()}</soap:Body>"
            )
        ),
        "MALFORMED_REQUEST",
    ),
    Shape(
        "header-after-the-body",
        _shape(lambda _t, h, b: f"<soap:Body>{b}</soap:Body><soap:Header>{h}</soap:Header>"),
        "MALFORMED_REQUEST",
    ),
    Shape(
        "two-headers",
        _shape(
            lambda _t, h, b: (
                f"<soap:Header>{h}</soap:Header><soap:Header/><soap:Body>{b}</soap:Body>"
            )
        ),
        "MALFORMED_REQUEST",
    ),
    Shape(
        "foreign-element-in-the-envelope",
        _shape(
            lambda _t, h, b: (
                f'<soap:Header>{h}</soap:Header><x:Extra xmlns:x="urn:x"/>'
                f"<soap:Body>{b}</soap:Body>"
            )
        ),
        "MALFORMED_REQUEST",
    ),
    Shape(
        "body-of-the-other-soap-version",
        _shape(
            lambda t, h, b: (
                f'<soap:Header>{h}</soap:Header><o:Body xmlns:o="{_other_env(t)}">{b}</o:Body>'
            )
        ),
        "MALFORMED_REQUEST",
    ),
    Shape(
        "unknown-envelope-namespace",
        _shape(
            lambda _t, h, b: f"<soap:Header>{h}</soap:Header><soap:Body>{b}</soap:Body>",
            lambda _t: "urn:not-soap",
        ),
        "VERSION_MISMATCH",
        "soap:VersionMismatch",
    ),
    Shape(
        "must-understand-header-unknown",
        _shape(
            lambda t, h, b: (
                f'<soap:Header>{h}<x:Trace xmlns:x="urn:x" soap:mustUnderstand="1"/>'
                f"</soap:Header><soap:Body>{b}</soap:Body>"
            )
        ),
        "MUST_UNDERSTAND",
        "soap:MustUnderstand",
    ),
    Shape(
        "operation-of-the-other-service",
        _shape(
            lambda t, h, _b: (
                f"<soap:Header>{h}</soap:Header><soap:Body>"
                + (
                    f'<ImportBudget xmlns="{ns.BUDGET}"/>'
                    if t.service == "ejournal"
                    else f'<PostJournals xmlns="{ns.EJOURNAL}"/>'
                )
                + "</soap:Body>"
            )
        ),
        "UNKNOWN_OPERATION",
    ),
    Shape(
        "unknown-operation",
        _shape(
            lambda t, h, _b: (
                f"<soap:Header>{h}</soap:Header>"
                f'<soap:Body><DropTables xmlns="{t.namespace}"/></soap:Body>'
            )
        ),
        "UNKNOWN_OPERATION",
    ),
    Shape(
        "not-an-envelope",
        lambda t: t.valid_body().encode(),
        "MALFORMED_REQUEST",
    ),
    Shape("empty-request", lambda _t: b"", "MALFORMED_REQUEST"),
    Shape("only-white-space", lambda _t: b" \r\n\t ", "MALFORMED_REQUEST"),
    Shape("not-xml", lambda _t: b"PostJournals please", "XML_REJECTED"),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.name)
async def test_an_unusable_envelope_is_refused_before_fng(
    stack: Stack, shape: Shape, service: str, version: str
) -> None:
    target = stack.target(service, version)
    before = await stack.seen()
    answer = await post(stack.http, target.url, shape.build(target), version)
    assert_fault(answer, version, shape.code, shape.soap_code)
    await stack.assert_nothing_reached(before)


def _actions(target: Target) -> list[str]:
    """SOAPActions that name another operation than the body's."""
    same_service = "PostAuditMessage" if target.service == "ejournal" else "GetFinancialYears"
    other = ns.BUDGET if target.service == "ejournal" else ns.EJOURNAL
    other_operation = "ImportBudget" if target.service == "ejournal" else "PostJournals"
    return [
        f"{target.namespace}/{same_service}",
        same_service,
        f"{other}/{other_operation}",
        f"{target.namespace}/{target.operation}Extra",
    ]


@pytest.mark.parametrize(
    ("version", "carrier"),
    [("1.1", "soapaction"), ("1.2", "soapaction"), ("1.2", "content-type")],
)
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    "index", range(4), ids=["same-service", "bare-name", "other-service", "longer-name"]
)
async def test_wrong_soap_action(
    stack: Stack, service: str, version: str, index: int, carrier: str
) -> None:
    """An action naming another operation than the body is refused before anything runs, sent
    as a SOAPAction header (SOAP 1.1's, and a stray one on SOAP 1.2) or as SOAP 1.2's action
    parameter of the Content-Type."""
    target = stack.target(service, version)
    action = _actions(target)[index]
    headers = {"SOAPAction": f'"{action}"'} if carrier == "soapaction" else {}
    before = await stack.seen()
    answer = await post(
        stack.http,
        target.url,
        target.envelope().encode(),
        version,
        action=action if carrier == "content-type" else None,
        headers=headers,
    )
    assert_fault(answer, version, "ACTION_MISMATCH")
    await stack.assert_nothing_reached(before)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("service", SERVICES)
async def test_right_soap_action_reaches_fng(stack: Stack, service: str, version: str) -> None:
    """The same requests with the body's own action go through: the refusals above are about
    the action alone."""
    target = stack.target(service, version)
    action = f"{target.namespace}/{target.operation}"
    before = await stack.seen()
    answer = await post(stack.http, target.url, target.envelope().encode(), version, action=action)
    assert answer.status == 200, answer.raw
    after = await stack.seen()
    assert (
        after.stats["requests"][target.operation] == before.stats["requests"][target.operation] + 1
    )

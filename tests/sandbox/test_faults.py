"""Fault switches, so the gateway's reliability can be tested end to end."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from lxml import etree

from tests.sandbox.conftest import Sandbox, errors_of
from tests.sandbox.journals import FMS_SAMPLE_JOURNAL


def rule(**fields: Any) -> dict[str, Any]:
    return {"target": "fng", **fields}


async def _faults(sandbox: Sandbox, *rules: dict[str, Any]) -> list[dict[str, Any]]:
    body = await sandbox.control("PUT", "/faults", {"rules": list(rules)})
    return list(body["rules"])


class TestFaultKinds:
    async def test_a_latency_rule_delays_the_answer(self, sandbox: Sandbox) -> None:
        """A latency rule delays the answer, which then comes normally."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="latency", latency_ms=300))
        started = time.monotonic()
        response = await sandbox.get_banks(token)
        assert response.status == 200
        assert time.monotonic() - started >= 0.3

    async def test_an_error_rule_answers_its_status_without_processing(
        self, sandbox: Sandbox
    ) -> None:
        """An error rule answers its status without processing the request."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="error", status=503))
        response = await sandbox.post(FMS_SAMPLE_JOURNAL, token)
        assert response.status == 503
        assert response.content_type == "application/problem+json"
        assert await sandbox.control("GET", "/journals") == []
        assert (await sandbox.control("GET", "/stats"))["requests"]["PostJournals"] == 0

    async def test_drop_before(self, sandbox: Sandbox) -> None:
        """drop_before closes the connection unanswered, and nothing is posted."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="drop_before"))
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await sandbox.post(FMS_SAMPLE_JOURNAL, token)
        await sandbox.control("DELETE", "/faults")
        assert await sandbox.control("GET", "/journals") == []

    async def test_drop_after_commits_then_disconnects(self, sandbox: Sandbox) -> None:
        """drop_after posts the journal, then the client sees only a disconnect."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="drop_after", count=1))
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await sandbox.post(FMS_SAMPLE_JOURNAL, token)
        (journal,) = await sandbox.control("GET", "/journals")
        assert journal["submission_id"] == "0071"
        versions = await sandbox.row_versions(token)
        assert versions["BK1"]["lastOrderRowVersion"] == "1"
        retry = await sandbox.post_journal(FMS_SAMPLE_JOURNAL, token)
        assert errors_of(retry)[0]["code"] == "DUPLICATE_SUBMISSION"

    async def test_drop_on_get_banks(self, sandbox: Sandbox) -> None:
        """A dropped GetBanks reaches no handler; aiohttp's one retry of a GET is dropped too."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="drop_before", path="GetBanks"))
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await sandbox.get_banks(token)
        assert (await sandbox.control("GET", "/stats"))["requests"]["GetBanks"] == 0

    async def test_garbage_posts_then_answers_a_body_that_is_not_xml(
        self, sandbox: Sandbox
    ) -> None:
        """garbage posts the journal, then answers 200 with a body that is not XML."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="garbage"))
        response = await sandbox.post(FMS_SAMPLE_JOURNAL, token)
        assert response.status == 200
        with pytest.raises(etree.XMLSyntaxError):
            etree.fromstring(await response.read())
        assert len(await sandbox.control("GET", "/journals")) == 1

    async def test_a_simsid_rule_fails_the_token_endpoint_only(self, sandbox: Sandbox) -> None:
        """A simsid rule fails the token endpoint with an OAuth error and leaves FNG alone."""
        token = await sandbox.token()
        await _faults(sandbox, {"target": "simsid", "kind": "error", "status": 503})
        response = await sandbox.request_token(sandbox.demo.client_id, sandbox.demo.client_secret)
        assert response.status == 503
        assert (await response.json())["error"] == "temporarily_unavailable"
        assert (await sandbox.get_banks(token)).status == 200

    async def test_simsid_drop_after_issues_a_token(self, sandbox: Sandbox) -> None:
        """drop_after on SIMS ID issues a token the client never receives."""
        await _faults(sandbox, {"target": "simsid", "kind": "drop_after", "path": "/connect"})
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await sandbox.request_token(sandbox.demo.client_id, sandbox.demo.client_secret)
        assert (await sandbox.control("GET", "/stats"))["tokens_issued"] == 1


class TestFaultRules:
    async def test_count_then_disappear(self, sandbox: Sandbox) -> None:
        """A rule with count=2 fails the next two matching requests, then is gone."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="error", status=500, count=2))
        statuses = [(await sandbox.get_banks(token)).status for _ in range(3)]
        assert statuses == [500, 500, 200]
        assert (await sandbox.control("GET", "/faults"))["rules"] == []

    async def test_count_is_spent_visibly(self, sandbox: Sandbox) -> None:
        """GET /_sandbox/faults shows how much of a count is left."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="latency", latency_ms=0, count=3))
        await sandbox.get_banks(token)
        (left,) = (await sandbox.control("GET", "/faults"))["rules"]
        assert left["count"] == 2

    async def test_a_rule_with_a_path_touches_only_those_requests(self, sandbox: Sandbox) -> None:
        """A rule with a path touches only requests whose path contains it."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="error", status=502, path="PostJournals"))
        assert (await sandbox.get_banks(token)).status == 200
        assert (await sandbox.post(FMS_SAMPLE_JOURNAL, token)).status == 502

    async def test_probability_zero_never_fires(self, sandbox: Sandbox) -> None:
        """A rule with probability 0 never applies and keeps its count."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="error", probability=0.0, count=1))
        assert (await sandbox.get_banks(token)).status == 200
        assert len((await sandbox.control("GET", "/faults"))["rules"]) == 1

    async def test_control_api_is_never_faulted(self, sandbox: Sandbox) -> None:
        """Rules apply to SIMS ID and FNG only, never to the control API."""
        await _faults(sandbox, rule(kind="error"), {"target": "simsid", "kind": "error"})
        assert (await sandbox.control("GET", "/stats"))["requests"]["GetBanks"] == 0

    async def test_delete_clears(self, sandbox: Sandbox) -> None:
        """DELETE /_sandbox/faults removes every rule."""
        token = await sandbox.token()
        await _faults(sandbox, rule(kind="error"))
        await sandbox.control("DELETE", "/faults")
        assert (await sandbox.control("GET", "/faults"))["rules"] == []
        assert (await sandbox.get_banks(token)).status == 200

    @pytest.mark.parametrize(
        "bad",
        [
            {"target": "fng", "kind": "explode"},
            {"target": "gateway", "kind": "error"},
            {"target": "fng", "kind": "error", "status": 200},
            {"target": "fng", "kind": "error", "probability": 2},
            {"target": "fng", "kind": "error", "count": 0},
            {"target": "fng", "kind": "error", "colour": "red"},
        ],
    )
    async def test_invalid_rules_are_refused(self, sandbox: Sandbox, bad: dict[str, Any]) -> None:
        """A malformed rule is 400 and leaves the rules as they were."""
        response = await sandbox.client.put("/_sandbox/faults", json={"rules": [bad]})
        assert response.status == 400
        assert (await sandbox.control("GET", "/faults"))["rules"] == []

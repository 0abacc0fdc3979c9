"""/metrics after traffic of every kind: each family is there, with values that add up."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway import ns
from gateway.app import SCHEDULER
from tests.conftest import Gateway, Sandbox
from tests.support import (
    Auth,
    budget_operation,
    operation,
    post_journals_body,
    sample_journal,
    soap_call,
)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(
        number
        for given, number in found.get(name, [])
        if all(given.get(key) == wanted for key, wanted in labels.items())
    )


async def test_every_metric_family_is_served_after_traffic(
    gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    get_banks = operation("GetBanks", systemIdentifier="TPPCS")
    for _ in range(3):
        await soap_call(http, gateway.soap_url, get_banks, gateway.auth)
    wrong = Auth(gateway.auth.username, "wrong-password", gateway.auth.database)
    await soap_call(http, gateway.soap_url, get_banks, wrong)
    await soap_call(http, gateway.soap_url, post_journals_body(sample_journal("M1")), gateway.auth)
    await soap_call(
        http,
        f"{gateway.url}/soap/budget",
        budget_operation("GetFinancialYears"),
        gateway.auth,
        namespace=ns.BUDGET,
    )
    await gateway.app[SCHEDULER].run_once()
    async with http.get(f"{gateway.url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        found = samples(await response.text())

    calls = "fng_gateway_calls_total"
    assert value(found, calls, interface="ejournal", operation="GetBanks", outcome="ok") == 3
    assert (
        value(
            found,
            calls,
            interface="ejournal",
            operation="GetBanks",
            outcome="AUTHENTICATION_FAILED",
        )
        == 1
    )
    assert value(found, calls, interface="ejournal", operation="PostJournals", outcome="ok") == 1
    assert value(found, calls, interface="budget", operation="GetFinancialYears", outcome="ok") == 1
    assert (
        value(found, "fng_gateway_call_seconds_count", interface="ejournal", operation="GetBanks")
        == 4
    )
    assert value(found, "fng_gateway_call_seconds_sum", interface="ejournal") > 0

    upstream = "fng_gateway_upstream_responses_total"
    assert value(found, upstream, upstream="fng", operation="GetBanks", status="200") == 3
    assert value(found, upstream, upstream="fng", operation="PostJournals", status="200") == 1
    assert value(found, upstream, upstream="simsid", operation="token", status="200") == 1
    assert value(found, upstream, upstream="portal", operation="FetchIndex", status="200") == 1
    assert value(found, upstream, upstream="fng", operation="PostDocument") == 5
    assert value(found, "fng_gateway_upstream_seconds_count", upstream="fng") >= 10

    assert value(found, "fng_gateway_token_fetches_total", outcome="ok") == 1
    assert value(found, "fng_gateway_token_cache_total", result="miss") >= 1
    assert value(found, "fng_gateway_token_cache_total", result="hit") >= 3

    quarantined = sum(
        1 for _u, _t, outcome in sandbox.demo.portal_documents if outcome not in ("valid", "quote")
    )
    assert value(found, "fng_gateway_eproc_documents_total", outcome="acknowledged") == 5
    assert value(found, "fng_gateway_eproc_documents_total", outcome="quarantined") == quarantined
    assert value(found, "fng_gateway_eproc_orders_total", outcome="sent") == 1
    portal = f"{gateway.demo.database_id}:{sandbox.demo.portal_name}"
    assert value(found, "fng_gateway_eproc_portal_polls_total", portal=portal, outcome="ok") == 1
    assert (
        "fng_gateway_eproc_portal_errors_total" not in found
        or value(found, "fng_gateway_eproc_portal_errors_total", portal=portal) == 0
    )
    # The gauges are read from the store at each scrape.
    async with http.get(f"{gateway.url}/metrics") as response:
        found = samples(await response.text())
    assert value(found, "fng_gateway_eproc_quarantined") == quarantined
    assert value(found, "fng_gateway_eproc_queue_depth") == 0
    assert value(found, "fng_gateway_draining") == 0


async def test_a_sims_id_failure_is_counted_against_sims_id_not_fng(
    gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """SIMS ID refusing the token: one SIMS ID response (its status), and no FNG response, since
    the call never left for FNG."""
    await sandbox.faults({"target": "simsid", "kind": "error", "status": 503})
    answer = await soap_call(
        http, gateway.soap_url, operation("GetBanks", systemIdentifier="TPPCS"), gateway.auth
    )
    assert answer.fault_code == "TOKEN_UNAVAILABLE"
    async with http.get(f"{gateway.url}/metrics") as response:
        found = samples(await response.text())
    upstream = "fng_gateway_upstream_responses_total"
    assert value(found, upstream, upstream="simsid", operation="token", status="503") == 1
    assert value(found, upstream, upstream="fng") == 0
    assert (await sandbox.stats())["requests"]["GetBanks"] == 0

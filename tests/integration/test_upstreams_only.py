"""The README's "Running it", as an operator rehearses a real deployment: the sandbox alone
(``fng-gateway sandbox --upstreams-only``), a separate ``fng-gateway serve`` on PostgreSQL and
Redis, the demo school registered with the CLI from the sandbox's info file, a journal posted
through it by a SOAP client, and the demo portal's documents collected."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zeep
from lxml import etree

from gateway.tenancy.keys import key_digest
from tests.conftest import REDIS_URL, require_service
from tests.faults.processes import GatewayProcess, wait_until
from tests.support import COMMAND, cli_environment, get_json, info_written, sample_journal


@pytest.fixture
def upstreams(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``fng-gateway sandbox --upstreams-only`` running; its info file."""
    info_file, log = tmp_path / "upstreams.json", tmp_path / "upstreams.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                COMMAND,
                "sandbox",
                "--upstreams-only",
                "--sandbox-port",
                "0",
                "--info-file",
                str(info_file),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=cli_environment(tmp_path),
        )
    try:
        yield info_written(info_file, process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    printed = log.read_text()
    assert "Register the school in your gateway" in printed
    assert "Traceback" not in printed


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [COMMAND, *args, "--json"], capture_output=True, text=True, env=env, input=stdin, timeout=60
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def register(env: dict[str, str], info: dict[str, Any]) -> dict[str, str]:
    """The README's registration commands, with the info file's values; the account."""
    simsid, school, database, portal = (
        info[part] for part in ("simsid", "school", "database", "portal")
    )
    vendor = cli(
        env,
        "vendors",
        "add",
        "Sandbox SIMS ID",
        "--token-url",
        simsid["token_url"],
        "--client-id",
        simsid["client_id"],
        "--secret-stdin",
        stdin=simsid["client_secret"],
    )["vendor_id"]
    school_id = cli(
        env,
        "schools",
        "add",
        school["name"],
        "--la",
        school["la_number"],
        "--establishment",
        school["establishment_number"],
        "--duns",
        school["duns"],
    )["school_id"]
    keys = {**env, "FNG_KEY": database["fng_key"], "PARTNER_KEY": database["partner_key"]}
    database_id = cli(
        keys,
        "databases",
        "add",
        str(school_id),
        "--vendor",
        str(vendor),
        "--name",
        database["name"],
        "--fng-key-env",
        "FNG_KEY",
        "--partner-key-env",
        "PARTNER_KEY",
    )
    # The one FNG already has, stored and not printed back.
    assert (
        database_id["partner_key_fingerprint"] == key_digest(database["partner_key"].lower())[:12]
    )
    account = cli(env, "accounts", "add", "payments")
    cli(
        env,
        "accounts",
        "grant",
        "payments",
        "--database",
        str(database_id["database_id"]),
        "--interface",
        "ejournal",
        "--system",
        info["payment_system"]["system_identifier"],
    )
    cli(
        env,
        "portals",
        "add",
        str(database_id["database_id"]),
        "--name",
        "demo",
        "--url",
        portal["url"],
        "--username",
        portal["username"],
        "--supplier-duns",
        portal["supplier_duns"],
        "--allow-http",
        "--poll-seconds",
        "60",
        "--password-stdin",
        stdin=portal["password"],
    )
    return {"Username": "payments", "Password": account["password"]}


def post_journal(url: str, header: dict[str, str], system: str) -> tuple[str, str]:
    """GetBanks, then PostJournals with seed 001's sample: the banks' success and the post's."""
    client = zeep.Client(f"{url}/soap/ejournal?wsdl")
    api = client.bind("EJournalService", "EJournalSoap")
    banks = api.GetBanks(systemIdentifier=system, _soapheaders={"AuthHeader": header})
    journal = etree.fromstring(sample_journal("0071").encode())
    result = api.PostJournals(xmlData={"_value_1": journal}, _soapheaders={"AuthHeader": header})
    return str(banks.isSuccess), str(result.get("isSuccess"))


async def test_a_separate_serve_on_postgresql_and_redis_runs_against_the_sandbox(
    tmp_path: Path, upstreams: dict[str, Any], postgres_url: str
) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    env = cli_environment(
        tmp_path,
        FNG_GATEWAY_DATABASE_URL=postgres_url.replace("+asyncpg", ""),  # as an operator writes it
        FNG_GATEWAY_REDIS_URL=REDIS_URL,
        FNG_GATEWAY_FNG__BASE_URL=upstreams["fng"]["base_url"],
        FNG_GATEWAY_PORT="0",
        FNG_GATEWAY_LOG_FORMAT="text",
    )
    migrated = subprocess.run([COMMAND, "migrate"], capture_output=True, text=True, env=env)
    assert migrated.returncode == 0, migrated.stderr
    header = register(env, upstreams)
    header["Database"] = upstreams["database"]["partner_key"]

    gateway = GatewayProcess(env, tmp_path / "serve.log")
    gateway.start()
    try:
        url = await gateway.listening()
        system = upstreams["payment_system"]["system_identifier"]
        assert await asyncio.to_thread(post_journal, url, header, system) == ("True", "true")

        sandbox = upstreams["sandbox_url"]
        journals = await asyncio.to_thread(get_json, f"{sandbox}/_sandbox/journals")
        assert [journal["submission_id"] for journal in journals] == ["0071"]

        async def collected() -> bool:
            documents = await asyncio.to_thread(get_json, f"{sandbox}/_sandbox/eproc/documents")
            return bool(documents)

        await wait_until(collected, 30, "the demo portal's documents reach FNG")
    finally:
        assert gateway.stop() == 0, gateway.output()
    logged = gateway.output()
    assert "PostgreSQL database" in logged and "Traceback" not in logged
    assert header["Password"] not in logged
    assert upstreams["simsid"]["client_secret"] not in logged

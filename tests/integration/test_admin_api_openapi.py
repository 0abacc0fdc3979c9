"""The admin API's OpenAPI document, and schemathesis against it on a real
``fng-gateway serve``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from openapi_spec_validator import validate

from gateway.admin.tokens import AdminTokens
from gateway.app import admin_document
from gateway.store import create_store
from gateway.store.migrate import upgrade
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.integration.admin_api import BIN, GUID, Admin, quarantine


class TestOpenApi:
    def test_the_document_validates_as_openapi_3_1(self) -> None:
        """openapi-spec-validator accepts the document."""
        validate(admin_document())

    def test_every_operation_is_described_and_secured(self) -> None:
        """Every operation has a summary, a success and 401 response, and the bearer scheme
        applies to all but the document itself."""
        spec = admin_document()
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert spec["security"] == [{"bearer": []}]
        operations = [
            (path, method, operation)
            for path, methods in spec["paths"].items()
            for method, operation in methods.items()
        ]
        assert len(operations) >= 37
        for path, method, operation in operations:
            assert operation["summary"], (path, method)
            if path == "/openapi.json":
                assert operation["security"] == []
                continue
            assert "401" in operation["responses"], (path, method)
            assert any(status.startswith("2") for status in operation["responses"])

    def test_bounds_are_json_schema_keywords(self) -> None:
        """Every bound is said as JSON Schema says it (minimum, maximum), never in pydantic's
        own words, which clients and fuzzers would ignore: every id has both."""
        spec = admin_document()
        text = json.dumps(spec)
        assert not re.search(r'"(ge|le|gt|lt)":', text)
        for methods in spec["paths"].values():
            for operation in methods.values():
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path":
                        assert parameter["schema"]["minimum"] == 1
                        assert parameter["schema"]["maximum"] == 2**31 - 1

    def test_secrets_are_never_url_parameters(self) -> None:
        """No secret travels in a path or a query."""
        spec = admin_document()
        names = {
            parameter["name"]
            for methods in spec["paths"].values()
            for operation in methods.values()
            for parameter in operation.get("parameters", [])
        }
        secret = re.compile(r"(.*_)?(secret|password|key|token)")
        assert not {name for name in names if secret.fullmatch(name)}

    async def test_the_served_document_is_the_generated_one(self, admin: Admin) -> None:
        """What /admin/openapi.json serves is the document made from the route table."""
        assert await admin.get("/openapi.json", token=None) == admin_document()


# -- schemathesis against a real `fng-gateway serve` -------------------------------------------

#: Every check schemathesis has (each is on unless turned off here), with two exceptions.
SCHEMATHESIS_TOML = """
# Revoking tokens by name: the fuzzer finds its own token's name in GET /tokens and locks
# itself out (revoking is tested in test_admin_api_access.py).
[[operations]]
include-operation-id = "revoke_token"
enabled = false

# A CSV file's validity (its header, its rows, vendors that exist) is not something a JSON
# Schema of a string can say, so schema-valid strings are rightly refused (422).
[[operations]]
include-operation-id = "import_schools"
checks.positive_data_acceptance.enabled = false
"""


async def _seed(url: str, key: bytes) -> str:
    """A store with one of everything (ids 1), so the fuzzer's smallest ids reach real rows,
    and the fuzzer's token."""
    await upgrade(url)
    store = create_store(url)
    try:
        service = TenancyAdmin(store, SecretBox([key]), actor="test")
        vendor_id = await service.add_vendor(
            "Fuzz vendor", token_url="https://simsid.example/t", client_id="c", credential="s"
        )
        school_id = await service.add_school(
            "Fuzz school", la_number="100", establishment_number="1000"
        )
        database = await service.add_database(
            school_id, vendor_id=vendor_id, name="Public funds", fng_key=GUID
        )
        await service.add_account("fuzz")
        portal_id = await service.add_portal(
            database.database_id,
            name="fuzz",
            url="https://portal.example/ws",
            username="u",
            password="p",
            supplier_duns=["123456789"],
        )
        await quarantine(store, database.database_id, portal_id, count=3)
        return await AdminTokens(store, "test").create("fuzzer")
    finally:
        await store.close()


class ServedGateway:
    """``fng-gateway serve`` as a child process, its log kept for a failure's report."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.log: list[str] = []
        self.url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "fng-gateway"),
            "serve",
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._process = process
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while not self.url:
            line = await asyncio.wait_for(process.stderr.readline(), deadline - time.monotonic())
            if not line:
                raise AssertionError("the gateway stopped:\n" + "".join(self.log))
            self.log.append(line.decode(errors="replace"))
            found = re.search(r"listening on (http://\S+)", self.log[-1])
            if found:
                self.url = found.group(1)
        self._reader = asyncio.create_task(self._read(process.stderr))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.log.append(line.decode(errors="replace"))

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 30)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 5)


@pytest.mark.timeout(300)
async def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    """schemathesis (coverage, fuzzing and stateful phases, every check) against the live
    admin API with a live token finds no server error, and every response matches the
    document (status, content type, headers, body); data outside the schema is refused, data
    inside it accepted; a request without the token is refused.

    The gateway runs as ``fng-gateway serve`` and schemathesis as its own command, so
    neither shares this test's event loop; both stop by themselves (the fuzzer after its
    examples, bounded by the seed and ``--max-examples``)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    key = Fernet.generate_key()
    token = await _seed(url, key)
    env = {name: value for name, value in os.environ.items() if not name.startswith("FNG_GATEWAY")}
    env.update(
        {
            "FNG_GATEWAY_DATABASE_URL": url,
            "FNG_GATEWAY_MASTER_KEYS": key.decode(),
            "FNG_GATEWAY_PORT": "0",
            "FNG_GATEWAY_LOG_LEVEL": "WARNING",
            "FNG_GATEWAY_LOG_FORMAT": "text",
            "FNG_GATEWAY_ADMIN__ENABLED": "true",
            "FNG_GATEWAY_EPROC__ENABLED": "false",
            # Nothing here calls FNG; a closed port makes sure of it.
            "FNG_GATEWAY_FNG__BASE_URL": "http://127.0.0.1:9/fng",
        }
    )
    gateway = ServedGateway(env)
    await gateway.start()
    try:
        config = tmp_path / "schemathesis.toml"
        config.write_text(SCHEMATHESIS_TOML)
        command = [
            str(BIN / "schemathesis"),
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{gateway.url}/admin/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            os.environ.get("FNG_TEST_SCHEMATHESIS_EXAMPLES", "12"),
            # One worker: hypothesis describing lambdas from two threads at once trips a CPython
            # 3.11 bug ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
            "--seed",
            os.environ.get("FNG_TEST_SCHEMATHESIS_SEED", "20240901"),
            "--suppress-health-check",
            "all",
        ]
        fuzz = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**env, "NO_COLOR": "1"},
            cwd=tmp_path,
        )
        try:
            output, _ = await asyncio.wait_for(fuzz.communicate(), 240)
        except TimeoutError:
            fuzz.kill()
            await fuzz.wait()
            raise
    finally:
        await gateway.stop()
    report = output.decode(errors="replace")
    summary = re.search(r"(\d+) generated, (\d+) passed.*", report)
    print(report[-3000:])
    assert fuzz.returncode == 0, report + "\n--- the gateway's log ---\n" + "".join(gateway.log)
    assert summary is not None and summary.group(1) == summary.group(2), report
    # The outer middleware's catch-all logs this for any 500 (none may happen).
    assert "unexpected error" not in "".join(gateway.log), "".join(gateway.log)

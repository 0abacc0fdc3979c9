"""The operators' command line: registering a school end to end, and refusing mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

COMMAND = str(Path(sys.executable).with_name("fng-gateway"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("FNG_GATEWAY_")}
    key = subprocess.run(
        [COMMAND, "secrets", "new-key"], capture_output=True, text=True, check=True
    )
    return {
        **base,
        "FNG_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "FNG_GATEWAY_MASTER_KEYS": key.stdout.strip(),
    }


def run(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, env=env, input=stdin, timeout=60
    )


def ok(env: dict[str, str], *args: str, stdin: str | None = None) -> dict[str, Any]:
    result = run(env, *args, "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr
    value: dict[str, Any] = json.loads(result.stdout)
    return value


class TestRegistration:
    def test_a_school_from_vendor_to_grant(self, env: dict[str, str]) -> None:
        secret = "vendor secret: with % and +"
        vendor = ok(
            env,
            "vendors",
            "add",
            "Payments Ltd",
            "--token-url",
            "https://simsid.example/connect/token",
            "--client-id",
            "payments-ltd",
            "--secret-stdin",
            stdin=secret,
        )
        school = ok(env, "schools", "add", "Hill Primary", "--la", "123", "--establishment", "0456")
        database = ok(
            env,
            "databases",
            "add",
            str(school["school_id"]),
            "--vendor",
            str(vendor["vendor_id"]),
            "--name",
            "Public funds",
            "--fng-key-stdin",
            stdin="0f8fad5b-d9cb-469f-a165-70867728950e",
        )
        assert len(database["partner_key"]) == 36
        account = ok(env, "accounts", "add", "payments-ltd-hill")
        assert len(account["password"]) >= 20
        granted = ok(
            env,
            "accounts",
            "grant",
            "payments-ltd-hill",
            "--database",
            str(database["database_id"]),
            "--interface",
            "ejournal",
            "--system",
            "TPPCS",
        )
        assert granted == {"granted": True}
        store = Path(env["FNG_GATEWAY_DATABASE_URL"].split("///", 1)[1]).read_bytes()
        assert secret.encode() not in store  # encrypted at rest
        assert b"0f8fad5b-d9cb-469f-a165-70867728950e" not in store
        assert account["password"].encode() not in store

    def test_mistakes_are_refused_with_exit_code_1(self, env: dict[str, str]) -> None:
        bad_la = run(env, "schools", "add", "X", "--la", "12", "--establishment", "0456")
        assert bad_la.returncode == 1 and "LA number must be 3 digits" in bad_la.stderr
        ok(env, "schools", "add", "X", "--la", "123", "--establishment", "0456")
        twice = run(env, "schools", "add", "Y", "--la", "123", "--establishment", "0456")
        assert twice.returncode == 1 and "already exists" in twice.stderr
        no_account = run(
            env, "accounts", "grant", "ghost", "--database", "1", "--interface", "ejournal"
        )
        assert no_account.returncode == 1 and "no account named 'ghost'" in no_account.stderr

    def test_usage_errors_exit_2(self, env: dict[str, str]) -> None:
        assert run(env, "schools", "add").returncode == 2

    def test_no_master_key(self, env: dict[str, str]) -> None:
        without = {key: value for key, value in env.items() if key != "FNG_GATEWAY_MASTER_KEYS"}
        result = run(without, "schools", "add", "X", "--la", "123", "--establishment", "0456")
        assert result.returncode == 1 and "no master key is configured" in result.stderr

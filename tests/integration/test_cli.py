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
        assert granted == {"username": "payments-ltd-hill", "done": "grant"}
        store = Path(env["FNG_GATEWAY_DATABASE_URL"].split("///", 1)[1]).read_bytes()
        assert secret.encode() not in store  # encrypted at rest
        assert b"0f8fad5b-d9cb-469f-a165-70867728950e" not in store
        assert account["password"].encode() not in store

    def test_mistakes_are_refused_with_meaningful_exit_codes(self, env: dict[str, str]) -> None:
        """1: refused; 3: not found (2 is argparse's, for usage)."""
        bad_la = run(env, "schools", "add", "X", "--la", "12", "--establishment", "0456")
        assert bad_la.returncode == 1 and "LA number must be 3 digits" in bad_la.stderr
        ok(env, "schools", "add", "X", "--la", "123", "--establishment", "0456")
        twice = run(env, "schools", "add", "Y", "--la", "123", "--establishment", "0456")
        assert twice.returncode == 1 and "already exists" in twice.stderr
        no_account = run(
            env, "accounts", "grant", "ghost", "--database", "1", "--interface", "ejournal"
        )
        assert no_account.returncode == 3 and "no account named 'ghost'" in no_account.stderr

    def test_usage_errors_exit_2(self, env: dict[str, str]) -> None:
        assert run(env, "schools", "add").returncode == 2

    def test_no_master_key(self, env: dict[str, str]) -> None:
        without = {key: value for key, value in env.items() if key != "FNG_GATEWAY_MASTER_KEYS"}
        result = run(without, "schools", "add", "X", "--la", "123", "--establishment", "0456")
        assert result.returncode == 4 and "no master key is configured" in result.stderr

    def test_invalid_settings_are_named_without_their_values(self, env: dict[str, str]) -> None:
        url = "postgresql+asyncpg://gateway:pa55-word-never-shown@db/x"
        bad = {**env, "FNG_GATEWAY_DATABASE_URL": url, "FNG_GATEWAY_XML__MAX_BYTES": "pa55"}
        result = run(bad, "serve")
        assert result.returncode == 4
        assert "xml.max_bytes" in result.stderr
        assert "pa55" not in result.stderr

    def test_a_kubernetes_service_link_is_not_taken_for_a_port(self, env: dict[str, str]) -> None:
        result = run({**env, "FNG_GATEWAY_PORT": "tcp://10.0.0.1:8080"}, "serve")
        assert result.returncode == 4
        assert "port: " in result.stderr and "enableServiceLinks" in result.stderr


def registered(env: dict[str, str]) -> dict[str, Any]:
    vendor = ok(
        env,
        "vendors",
        "add",
        "V",
        "--token-url",
        "https://simsid.example/connect/token",
        "--client-id",
        "v",
        "--secret-stdin",
        stdin="vendor-secret-value",
    )
    school = ok(env, "schools", "add", "S", "--la", "123", "--establishment", "4567")
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
    return {**vendor, **school, **database}


class TestOperations:
    def test_keys_rotate_promote_and_list(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        rotated = ok(env, "keys", "rotate", database)
        assert len(rotated["next_key"]) == 36
        twice = run(env, "keys", "rotate", database)
        assert twice.returncode == 1 and "already has a next key" in twice.stderr
        promoted = ok(env, "keys", "promote", database, "--grace-seconds", "60")
        assert "old_key_refused_from" in promoted
        states = [key["state"] for key in ok(env, "keys", "list", database)]
        assert states == ["retiring", "active"]
        assert rotated["next_key"] not in run(env, "keys", "list", database).stdout

    def test_password_change_secrets_reencrypt_and_audit(self, env: dict[str, str]) -> None:
        registered(env)
        ok(env, "accounts", "add", "acct")
        changed = ok(env, "accounts", "password", "acct", "--overlap-seconds", "60")
        assert len(changed["password"]) >= 20
        new_key = run(env, "secrets", "new-key").stdout.strip()
        rotated_env = {
            **env,
            "FNG_GATEWAY_MASTER_KEYS": f"{new_key},{env['FNG_GATEWAY_MASTER_KEYS']}",
        }
        assert ok(rotated_env, "secrets", "reencrypt")["reencrypted"] == 3
        only_new = {**env, "FNG_GATEWAY_MASTER_KEYS": new_key}
        assert ok(only_new, "vendors", "list")[0]["client_id"] == "v"
        actions = [entry["action"] for entry in ok(only_new, "audit")]
        assert actions[:3] == ["secrets.reencrypt", "account.password", "account.add"]
        audit_text = run(only_new, "audit", "--limit", "1000").stdout
        assert "vendor-secret-value" not in audit_text and changed["password"] not in audit_text

    def test_admin_tokens(self, env: dict[str, str]) -> None:
        created = ok(env, "admin-tokens", "create", "alice")
        assert created["token"].startswith("fgwa_")
        listed = ok(env, "admin-tokens", "list")
        assert listed[0]["name"] == "alice" and created["token"] not in json.dumps(listed)
        ok(env, "admin-tokens", "revoke", "alice")
        assert ok(env, "admin-tokens", "list")[0]["revoked"] is True
        again = run(env, "admin-tokens", "revoke", "alice")
        assert again.returncode == 3

    def test_tables_for_people(self, env: dict[str, str]) -> None:
        registered(env)
        table = run(env, "schools", "list")
        header, row = table.stdout.splitlines()[:2]
        assert header.split()[:3] == ["id", "name", "la_number"]
        assert row.split()[:3] == ["1", "S", "123"]

"""The operators' command line: registering a school end to end, and refusing mistakes."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import parser
from gateway.tenancy.keys import key_digest
from tests.support import COMMAND, cli_environment


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(tmp_path)


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
        assert bad_la.returncode == 1 and "LA number (--la) must be 3 digits" in bad_la.stderr
        ok(env, "schools", "add", "X", "--la", "123", "--establishment", "0456")
        twice = run(env, "schools", "add", "Y", "--la", "123", "--establishment", "0456")
        assert twice.returncode == 1 and "already exists" in twice.stderr
        no_account = run(
            env, "accounts", "grant", "ghost", "--database", "1", "--interface", "ejournal"
        )
        assert no_account.returncode == 3 and "no account named 'ghost'" in no_account.stderr

    def test_usage_errors_exit_2(self, env: dict[str, str]) -> None:
        assert run(env, "schools", "add").returncode == 2

    def test_without_a_master_key_a_command_exits_4(self, env: dict[str, str]) -> None:
        without = {key: value for key, value in env.items() if key != "FNG_GATEWAY_MASTER_KEYS"}
        result = run(without, "schools", "add", "X", "--la", "123", "--establishment", "0456")
        assert result.returncode == 4 and "no master key is configured" in result.stderr

    def test_invalid_settings_are_named_without_their_values(self, env: dict[str, str]) -> None:
        url = "postgresql+asyncpg://gateway:pa55-word-never-shown@db/x"
        bad = {**env, "FNG_GATEWAY_DATABASE_URL": url, "FNG_GATEWAY_XML__MAX_BYTES": "pa55"}
        result = run(bad, "serve")
        assert result.returncode == 4
        assert "FNG_GATEWAY_XML__MAX_BYTES" in result.stderr
        assert "pa55" not in result.stderr

    def test_a_kubernetes_service_link_is_not_taken_for_a_port(self, env: dict[str, str]) -> None:
        result = run({**env, "FNG_GATEWAY_PORT": "tcp://10.0.0.1:8080"}, "serve")
        assert result.returncode == 4
        assert "FNG_GATEWAY_PORT: " in result.stderr and "enableServiceLinks" in result.stderr


def add_vendor(env: dict[str, str]) -> dict[str, Any]:
    return ok(
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


def registered(env: dict[str, str]) -> dict[str, Any]:
    vendor = add_vendor(env)
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

    def test_a_portal_with_its_own_settings(self, env: dict[str, str]) -> None:
        """Plain http is refused in one line (exit 1) unless allowed; a portal serves every
        --supplier-duns given; its handshake codes and checksum policy are kept; orders are
        listed, and a resend of one that does not exist is "no such" (exit 3)."""
        database = str(registered(env)["database_id"])
        portal = [
            "portals",
            "add",
            database,
            "--name",
            "compare",
            "--url",
            "http://127.0.0.1:9/EProcurementService.asmx",
            "--username",
            "hill",
            "--supplier-duns",
            "111111111",
            "--supplier-duns",
            "222222222",
            "--password-stdin",
        ]
        refused = run(env, *portal, stdin="pw")
        assert refused.returncode == 1
        assert refused.stderr.startswith("fng-gateway: the portal URL must be https")
        assert len(refused.stderr.strip().splitlines()) == 1
        settings = ["--allow-http", "--waive-handshake-codes", "--checksum-policy", "warn"]
        ok(env, *portal, *settings, stdin="pw")
        (listed,) = ok(env, "portals", "list")
        assert listed["supplier_duns"] == ["111111111", "222222222"]
        assert (
            listed["allow_http"],
            listed["require_handshake_codes"],
            listed["checksum_policy"],
        ) == (True, False, "warn")
        assert ok(env, "eproc", "orders") == []
        missing = run(env, "eproc", "resend-order", "99")
        assert (missing.returncode, missing.stderr.strip()) == (3, "fng-gateway: no order 99")

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

    def test_admin_tokens_are_created_listed_without_values_and_revoked(
        self, env: dict[str, str]
    ) -> None:
        created = ok(env, "admin-tokens", "create", "alice")
        assert created["token"].startswith("fgwa_")
        listed = ok(env, "admin-tokens", "list")
        assert listed[0]["name"] == "alice" and created["token"] not in json.dumps(listed)
        ok(env, "admin-tokens", "revoke", "alice")
        assert ok(env, "admin-tokens", "list")[0]["revoked"] is True
        again = run(env, "admin-tokens", "revoke", "alice")
        assert again.returncode == 3

    def test_lists_are_tables_for_people_by_default(self, env: dict[str, str]) -> None:
        registered(env)
        table = run(env, "schools", "list")
        header, row = table.stdout.splitlines()[:2]
        assert header.split()[:3] == ["id", "name", "la_number"]
        assert row.split()[:3] == ["1", "S", "123"]


class TestTruthfulCli:
    def test_unknown_references_are_not_found_not_conflicts(self, env: dict[str, str]) -> None:
        """A database for a school or vendor that does not exist, a grant of a database that
        does not exist: "no school 99" and exit 3, as the admin API answers 404."""
        ids = registered(env)
        fng_key = "0f8fad5b-d9cb-469f-a165-70867728950e"
        for args, expected in (
            (["99", "--vendor", str(ids["vendor_id"])], "there is no school 99"),
            ([str(ids["school_id"]), "--vendor", "98"], "there is no vendor 98"),
        ):
            result = run(
                env, "databases", "add", *args, "--name", "Other", "--fng-key-stdin", stdin=fng_key
            )
            assert (result.returncode, result.stderr.strip()) == (3, f"fng-gateway: {expected}")
        ok(env, "accounts", "add", "acct")
        for action in ("grant", "revoke"):
            result = run(
                env, "accounts", action, "acct", "--database", "99", "--interface", "ejournal"
            )
            assert (result.returncode, result.stderr.strip()) == (
                3,
                "fng-gateway: there is no database 99",
            )
        listed = run(env, "keys", "list", "99")
        assert (listed.returncode, listed.stderr.strip()) == (
            3,
            "fng-gateway: there is no database 99",
        )

    def test_a_database_takes_the_partner_key_fng_already_has(self, env: dict[str, str]) -> None:
        ids = registered(env)
        school, vendor = str(ids["school_id"]), str(ids["vendor_id"])
        fng_key, partner_key = (  # an FNG key of its own: one database's only
            "3d813cbb-47fb-32ba-91df-831e1593ac29",
            "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        )
        keys = {**env, "PARTNER": partner_key, "NOT_A_KEY": "not-a-guid"}
        common = ("databases", "add", school, "--vendor", vendor, "--fng-key-stdin")
        added = ok(keys, *common, "--name", "Given", "--partner-key-env", "PARTNER", stdin=fng_key)
        # A key the operator gave is never printed back: that it was stored, and its fingerprint.
        assert added["partner_key"] == "the key given, stored"
        assert partner_key not in str(added)
        assert added["partner_key_fingerprint"] == key_digest(partner_key.lower())[:12]
        for extra, message in (
            (
                ("--partner-key-env", "NOT_A_KEY"),
                "the partner key (--partner-key-stdin or --partner-key-env) must be a GUID, "
                "such as 0f8fad5b-d9cb-469f-a165-70867728950e",
            ),
            (
                ("--partner-key-stdin",),
                "only one key can come from stdin: give the other with --fng-key-env VAR "
                "or --partner-key-env VAR",
            ),
        ):
            result = run(keys, *common, "--name", "Other", *extra, stdin=fng_key)
            assert (result.returncode, result.stderr.strip()) == (1, f"fng-gateway: {message}")

    def test_a_grant_names_its_interface(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        ok(env, "accounts", "add", "acct")
        result = run(env, "accounts", "grant", "acct", "--database", database, "--system", "X")
        assert result.returncode == 2 and "--interface" in result.stderr
        assert ok(env, "accounts", "list")[0]["grants"] in ([], None)

    def test_the_audit_log_names_who_acted(self, env: dict[str, str]) -> None:
        """Without $USER or $LOGNAME (as under kubectl exec), the uid's name; --actor wins."""
        anonymous = {key: value for key, value in env.items() if key not in ("USER", "LOGNAME")}
        ok(anonymous, "accounts", "add", "first")
        ok(anonymous, "accounts", "add", "second", "--actor", "alice")
        actors = [entry["actor"] for entry in ok(env, "audit")]
        assert actors == ["cli:alice", f"cli:{pwd.getpwuid(os.getuid()).pw_name}"]
        assert "cli:?" not in actors

    def test_version_prints_the_installed_version(self, env: dict[str, str]) -> None:
        result = run(env, "--version")
        assert (result.returncode, result.stdout.strip()) == (
            0,
            f"fng-gateway {version('fng-gateway')}",
        )

    def test_serve_help_says_where_settings_come_from(self, env: dict[str, str]) -> None:
        text = " ".join(run(env, "serve", "--help").stdout.split())
        for words in (
            "FNG_GATEWAY_CONFIG_FILE",
            "environment variables",
            "FNG_GATEWAY_MASTER_KEYS",
        ):
            assert words in text, words

    def test_every_option_has_help_in_plain_words(self) -> None:
        """Every option and argument of every command says what it is, without markup."""

        def walk(node: argparse.ArgumentParser, path: str) -> list[str]:
            problems = []
            for text in (node.description, node.epilog):
                if text and "`" in text:
                    problems.append(f"{path}: markup in {text[:40]!r}")
            for action in node._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, child in action.choices.items():
                        problems += walk(child, f"{path} {name}")
                    continue
                if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                    continue
                name = action.option_strings[0] if action.option_strings else action.dest
                if not action.help:
                    problems.append(f"{path} {name}: no help")
                elif "`" in action.help:
                    problems.append(f"{path} {name}: markup in its help")
            return problems

        assert walk(parser(), "fng-gateway") == []

    def test_keyless_rows_of_an_import_are_told_once(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        add_vendor(env)
        rows = [
            f"S{i},123,000{i},,,,Public funds,V,0f8fad5b-d9cb-469f-a165-70867728950{i},"
            for i in range(5)
        ]
        csv_file = tmp_path / "schools.csv"
        csv_file.write_text(
            "name,la_number,establishment_number,duns,language,currency,database,vendor,"
            "fng_key,partner_key\n" + "\n".join(rows) + "\n"
        )
        result = run(env, "schools", "import", str(csv_file))
        assert result.returncode == 1
        assert result.stderr.count("partner_key is empty") == 1, result.stderr
        assert "lines 2-6: partner_key is empty" in result.stderr
        assert result.stderr.count("--keys-out") == 1

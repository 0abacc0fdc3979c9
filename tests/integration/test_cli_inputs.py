"""Every bad input to a registry command is refused in one line that names the option and the
rule, with the README's exit code (1 refused, 2 wrong usage, 3 not found, 4 a setting), never
a traceback and never silence; the admin API and the registry service refuse the same inputs
by the same rules (``gateway.tenancy.identifiers``). Each CLI test runs the real command."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.eproc.passwords import Passwords
from gateway.errors import RegistryError
from gateway.store import create_store
from gateway.tenancy.keys import key_digest
from tests.integration.admin_api import Admin, new_database, new_vendor, quarantine
from tests.integration.test_cli import ok, registered, run
from tests.support import cli_environment

REFUSED, USAGE, NOT_FOUND, UNAVAILABLE = 1, 2, 3, 4
FNG_KEY = "0f8fad5b-d9cb-469f-a165-70867728950e"
PARTNER_KEY = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
NEXT_KEY = "16fd2706-8baf-433b-82eb-8c7fada847da"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(tmp_path)


def failed(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The command exited with ``code``, printing no traceback and nothing on stdout; its error
    is the last line of stderr, one line (argparse prints its usage above it), holding
    ``words``. Returns that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.stdout == "", result.stdout
    lines = [line for line in result.stderr.splitlines() if "NOTE: creating" not in line]
    line = lines[-1]
    if code == USAGE:
        assert "error: argument " in line, result.stderr
    else:
        assert len(lines) == 1 and line.startswith("fng-gateway: "), result.stderr
    for word in words:
        assert word in line, (word, line)
    return line


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    return failed(result, REFUSED, *words)


def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def vendor(env: dict[str, str], *extra: str, name: str = "V", secret: str = "s3cret") -> Any:
    return run(
        env,
        "vendors",
        "add",
        name,
        "--token-url",
        "https://simsid.example/connect/token",
        "--client-id",
        "payments",
        *extra,
        "--secret-stdin",
        stdin=secret,
    )


def portal(env: dict[str, str], database: str, *extra: str, password: str = "pw") -> Any:
    options = {
        "--name": "acme",
        "--url": "https://portal.example/EProcurementService.asmx",
        "--username": "hill",
        "--supplier-duns": "987654321",
    }
    for option, value in zip(extra[::2], extra[1::2], strict=True):
        options[option] = value
    flat = [item for pair in options.items() for item in pair]
    return run(env, "portals", "add", database, *flat, "--password-stdin", stdin=password)


def actions(env: dict[str, str]) -> list[str]:
    return [entry["action"] for entry in ok(env, "audit", "--limit", "1000")]


def add_portal(env: dict[str, str], database: str) -> None:
    """The portal of ``portal``, which must be taken."""
    added = portal(env, database)
    assert added.returncode == 0, added.stderr


# -- 1. the admin API's rules, on the command line ---------------------------------------------


class TestNames:
    @pytest.mark.parametrize(
        ("name", "words"),
        [
            ("", "is empty"),
            ("   ", "is blank"),
            ("Hill\nPrimary", "holds a line break or a control character"),
            ("Hill\x1b[31mPrimary", "holds a line break or a control character"),
            ("Hill\u2028Primary", "holds a line break or a control character"),
            ("x" * 5000, "is 5000 characters long: give at most 200"),
            ("x" * 300, "is 300 characters long: give at most 200"),
        ],
    )
    def test_a_school_name_breaking_the_rule_is_refused(
        self, env: dict[str, str], name: str, words: str
    ) -> None:
        result = run(env, "schools", "add", name, "--la", "123", "--establishment", "0456")
        refused(result, "the school's name (NAME)", words)
        assert ok(env, "schools", "list") == []

    def test_a_name_the_import_refuses_is_refused_by_add_too(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        """300 characters: the import has always refused it; add now does as well."""
        vendor(env)
        long = "x" * 300
        csv_file = tmp_path / "schools.csv"
        csv_file.write_text(
            "name,la_number,establishment_number,duns,language,currency,database,vendor,"
            f"fng_key,partner_key\n{long},123,0456,,,,Public funds,V,{FNG_KEY},{PARTNER_KEY}\n"
        )
        imported = run(env, "schools", "import", str(csv_file))
        assert imported.returncode == REFUSED and "longer than 200" in imported.stderr
        added = run(env, "schools", "add", long, "--la", "123", "--establishment", "0456")
        refused(added, "the school's name (NAME)", "give at most 200")

    def test_unicode_names_are_welcome(self, env: dict[str, str]) -> None:
        ok(
            env,
            "schools",
            "add",
            "Ysgol Gymraeg Llundain, Ünïcode",
            "--la",
            "123",
            "--establishment",
            "0456",
        )
        (school,) = ok(env, "schools", "list")
        assert school["name"] == "Ysgol Gymraeg Llundain, Ünïcode"

    def test_an_empty_database_name_is_refused(self, env: dict[str, str]) -> None:
        ids = registered(env)
        result = run(
            env,
            "databases",
            "add",
            str(ids["school_id"]),
            "--vendor",
            str(ids["vendor_id"]),
            "--name",
            "",
            "--fng-key-stdin",
            stdin=NEXT_KEY,
        )
        refused(result, "the database's name (--name) is empty")

    @pytest.mark.parametrize("username", ["", "bad name with spaces", "Ünïcode", "x" * 101])
    def test_a_username_breaking_the_rule_is_refused(
        self, env: dict[str, str], username: str
    ) -> None:
        refused(
            run(env, "accounts", "add", username),
            "the account's user name (USERNAME)",
            "ASCII letters, digits and . _ @ + -",
        )
        assert ok(env, "accounts", "list") == []

    def test_a_short_password_is_refused_as_the_api_refuses_it(self, env: dict[str, str]) -> None:
        refused(
            run(env, "accounts", "add", "acct", "--password-stdin", stdin="short"),
            "the account's password (--password-stdin or --password-env)",
            "has 5 characters: give at least 12",
        )
        ok(env, "accounts", "add", "acct", "--password-stdin", stdin="a long given password")
        refused(
            run(env, "accounts", "password", "acct", "--password-stdin", stdin="short"),
            "give at least 12",
        )

    def test_a_payment_system_is_one_line(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        ok(env, "accounts", "add", "acct")
        grant = ("accounts", "grant", "acct", "--database", database, "--interface", "ejournal")
        refused(run(env, *grant, "--system", "TPPCS\nforged"), "(--system) holds a line break")


class TestVendors:
    @pytest.mark.parametrize(
        ("url", "words"),
        [
            ("notaurl", "is not an http or https URL"),
            ("ftp://x/y", "is not an http or https URL"),
            ("https:///connect/token", "names no host"),
            ("https://simsid.example/connect token", "printable ASCII"),
            ("https://u:pw@simsid.example/connect/token", "holds credentials (user:password@)"),
            ("https://x:99999/token", "the port 99999 is not a port number (1 to 65535)"),
            ("https://[::1/token", "has brackets that do not enclose an IPv6 address"),
            ("https://:443/token", "names no host"),
            ("https://x:abc/token", "has a port that is not a number"),
        ],
    )
    def test_a_token_url_breaking_the_rule_is_refused(
        self, env: dict[str, str], url: str, words: str
    ) -> None:
        result = run(
            env,
            "vendors",
            "add",
            "V",
            "--token-url",
            url,
            "--client-id",
            "c",
            "--secret-stdin",
            stdin="s",
        )
        line = refused(result, "SIMS ID's token URL (--token-url)", words)
        assert "pw@" not in line
        assert ok(env, "vendors", "list") == []

    def test_an_empty_name_or_client_id_is_refused(self, env: dict[str, str]) -> None:
        refused(vendor(env, name=""), "the vendor's name (NAME) is empty")
        result = run(
            env,
            "vendors",
            "add",
            "V",
            "--token-url",
            "https://simsid.example/connect/token",
            "--client-id",
            "",
            "--secret-stdin",
            stdin="s",
        )
        refused(result, "the vendor's client id (--client-id) is empty")

    def test_private_key_jwt_takes_an_rsa_private_key_in_pem(self, env: dict[str, str]) -> None:
        method = ("--auth-method", "private_key_jwt")
        line = refused(
            vendor(env, *method, secret="not a key at all"),
            "the vendor's private key (--secret-stdin or --secret-env) is not a PEM private key",
        )
        assert "not a key at all" not in line
        armour = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        refused(vendor(env, *method, secret=armour), "cannot be read as a PEM private key")
        assert ok(env, "vendors", "list") == []
        created = vendor(env, *method, secret=rsa_pem())
        assert created.returncode == 0, created.stderr
        changed = run(env, "vendors", "set-secret", "1", "--secret-stdin", stdin="plain secret")
        refused(changed, "the vendor's private key is not a PEM private key")


class TestPortals:
    @pytest.mark.parametrize(
        ("extra", "words"),
        [
            (("--poll-seconds", "99999999999999"), "from 10 to 604800 seconds"),
            (("--poll-seconds", "0"), "polled at least 10 seconds apart"),
            (("--poll-seconds", "-5"), "polled at least 10 seconds apart"),
            (("--password-days", "30"), "from 60 to 3660 days"),
            (("--password-days", "99999999999"), "from 60 to 3660 days"),
            (("--username", ""), "the portal's username (--username) is empty"),
            (("--username", "x" * 51), "(--username) is 51 characters long: give at most 50"),
            (("--name", "Acme Supplies"), "(--name) must be 1 to 40 lower-case letters"),
            (("--url", "https://hill:pw@portal.example/ws"), "(--url) holds credentials"),
            (
                ("--url", "https://p.example:0/E.asmx"),
                "the portal's URL (--url) is not usable: the port 0 is not a port number",
            ),
            (("--supplier-duns", "98"), "the DUNS number (--supplier-duns) must be 9 digits"),
            (("--url", "http://p.example/E.asmx"), "(--allow-http; allow_http in the admin API)"),
        ],
    )
    def test_a_portal_breaking_a_rule_is_refused(
        self, env: dict[str, str], extra: tuple[str, str], words: str
    ) -> None:
        database = str(registered(env)["database_id"])
        line = refused(portal(env, database, *extra), words)
        assert "hill:pw" not in line
        assert ok(env, "portals", "list") == []

    def test_the_poll_interval_message_says_at_least(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        line = refused(portal(env, database, "--poll-seconds", "0"))
        assert "at most every" not in line
        assert line == (
            "fng-gateway: the portal's poll interval (--poll-seconds) must be a whole number "
            "from 10 to 604800 seconds: a portal is polled at least 10 seconds apart, and at "
            "least once a week"
        )

    def test_password_days_that_are_not_a_whole_number_are_a_usage_error(
        self, env: dict[str, str]
    ) -> None:
        database = str(registered(env)["database_id"])
        failed(portal(env, database, "--password-days", "1e17"), USAGE, "--password-days")

    def test_a_portal_password_is_one_line(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        refused(portal(env, database, password="pw\x07"), "the portal's password")
        add_portal(env, database)
        changed = run(env, "portals", "password", "1", "--password-stdin", stdin="a\x1bb")
        refused(changed, "the portal's password (--password-stdin or --password-env)")

    async def test_a_huge_password_life_stored_before_is_no_overflow_at_poll_time(self) -> None:
        """A portal stored with --password-days 1e17 made the scheduler raise OverflowError
        at every poll; its life is now taken as the longest the registry gives."""

        class Client:
            async def change_password(self, _portal: Any) -> str:
                raise AssertionError("not due")

        passwords = Passwords(store=None, box=None, client=Client(), metrics=None)  # type: ignore[arg-type]
        job = SimpleNamespace(
            portal_id=1, password_days=10**17, password_changed_at=datetime.now(UTC), label="1:p"
        )
        await passwords.keep(job, SimpleNamespace(password="pw"))  # type: ignore[arg-type]


class TestActor:
    def test_an_actor_that_would_forge_audit_lines_is_refused(self, env: dict[str, str]) -> None:
        forged = "evil\n99  2026-01-01T00:00:00+00:00  cli:admin  account.delete"
        refused(
            run(env, "accounts", "add", "acct", "--actor", forged),
            "the name recorded in the audit log (--actor) must be one line of printable",
        )
        refused(run(env, "accounts", "add", "acct", "--actor", "tab\there"), "(--actor)")
        refused(run(env, "accounts", "add", "acct", "--actor", ""), "(--actor) is empty")
        refused(run(env, "accounts", "add", "acct", "--actor", "a" * 97), "give at most 96")
        assert ok(env, "accounts", "list") == []
        assert "evil" not in run(env, "audit").stdout
        ok(env, "accounts", "add", "acct", "--actor", "Alice Smith (ops)")
        assert [e["actor"] for e in ok(env, "audit")] == ["cli:Alice Smith (ops)"]

    def test_a_login_name_that_is_not_one_line_needs_an_actor(self, env: dict[str, str]) -> None:
        odd = {**env, "USER": "ev\nil", "LOGNAME": "ev\nil"}
        refused(run(odd, "accounts", "add", "acct"), "login name", "--actor NAME")
        ok(odd, "accounts", "add", "acct", "--actor", "ops")

    def test_the_import_checks_its_actor_too(self, env: dict[str, str], tmp_path: Path) -> None:
        csv_file = tmp_path / "schools.csv"
        csv_file.write_text("name\n")
        keys = tmp_path / "keys.csv"
        result = run(
            env, "schools", "import", str(csv_file), "--keys-out", str(keys), "--actor", "a\nb"
        )
        refused(result, "(--actor)")
        assert not keys.exists()

    def test_an_operators_token_name_is_one_line(self, env: dict[str, str]) -> None:
        refused(run(env, "admin-tokens", "create", "alice\nbob"), "an operator's name (NAME)")
        refused(run(env, "admin-tokens", "create", "a" * 95), "give at most 94")


# -- 2. numbers out of range: argparse's usage error --------------------------------------------


class TestNumbers:
    @pytest.mark.parametrize(
        "args",
        [
            ["databases", "add", "99999999999999999999", "--vendor", "1", "--name", "x"],
            ["databases", "add", "99999999999", "--vendor", "1", "--name", "x"],
            ["databases", "add", "0", "--vendor", "1", "--name", "x"],
            ["databases", "add", "1", "--vendor", "-1", "--name", "x"],
            ["keys", "list", "2147483648"],
            ["portals", "disable", "1e3"],
            ["eproc", "show", "99999999999999999999", "--order"],
            ["accounts", "grant", "a", "--database", "99999999999", "--interface", "budget"],
        ],
    )
    def test_ids_out_of_range(self, env: dict[str, str], args: list[str]) -> None:
        failed(run(env, *args), USAGE, "must be a whole number from 1 to 2147483647")

    @pytest.mark.parametrize("command", [["audit"], ["eproc", "orders"]])
    @pytest.mark.parametrize("limit", ["-1", "0", "1001", "99999999999999999999", "ten"])
    def test_limits_out_of_range(self, env: dict[str, str], command: list[str], limit: str) -> None:
        failed(
            run(env, *command, "--limit", limit),
            USAGE,
            "argument --limit: must be a whole number from 1 to 1000",
        )

    @pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "-1", "1e30", "soon"])
    def test_seconds_out_of_range(self, env: dict[str, str], value: str) -> None:
        words = "must be a number from 0 to 316224000 seconds (ten years)"
        overlap = run(env, "accounts", "password", "a", f"--overlap-seconds={value}")
        failed(overlap, USAGE, "argument --overlap-seconds: ", words)
        grace = run(env, "keys", "promote", "1", f"--grace-seconds={value}")
        failed(grace, USAGE, "argument --grace-seconds: ", words)

    def test_postgresql_gets_the_same_refusals(self, postgres_url: str, tmp_path: Path) -> None:
        """Where PostgreSQL said "value too long for type character varying(200)" (exit 5) or
        an int32 overflowed, the same one-line refusals."""
        env = cli_environment(tmp_path, FNG_GATEWAY_DATABASE_URL=postgres_url)
        refused(
            run(env, "schools", "add", "x" * 5000, "--la", "123", "--establishment", "0456"),
            "give at most 200",
        )
        failed(
            run(env, "databases", "add", "99999999999", "--vendor", "1", "--name", "x"),
            USAGE,
            "from 1 to 2147483647",
        )
        ids = registered(env)
        refused(portal(env, str(ids["database_id"]), "--poll-seconds", "99999999999999"))


# -- 3. dates -------------------------------------------------------------------------------------


class TestDates:
    @pytest.mark.parametrize(
        ("since", "words"),
        [
            ("yesterday", "'yesterday' is not a date: give an ISO 8601 date or date-time"),
            ("2026-13-45", "such as 2024-09-01 or 2024-09-01T08:00:00+01:00"),
            ("9999-12-31T23:59:59-05:00", "is out of range in UTC"),
            ("0001-01-01T00:00:00+01:00", "is out of range in UTC"),
        ],
    )
    def test_a_bad_since_gives_the_form(self, env: dict[str, str], since: str, words: str) -> None:
        failed(run(env, "audit", "--since", since), USAGE, "argument --since: ", words)

    def test_dates_and_times_are_taken(self, env: dict[str, str]) -> None:
        ok(env, "accounts", "add", "acct")
        assert len(ok(env, "audit", "--since", "2020-01-01")) == 1
        assert len(ok(env, "audit", "--since", "2020-01-01T08:00:00+01:00")) == 1
        assert ok(env, "audit", "--since", "9999-12-30") == []


# -- 4. secrets never shown ---------------------------------------------------------------------


class TestSecretsInOutput:
    def test_a_partner_key_given_is_stored_not_printed(self, env: dict[str, str]) -> None:
        ids = registered(env)
        keyed = {**env, "PK": PARTNER_KEY}
        args = ("databases", "add", str(ids["school_id"]), "--vendor", str(ids["vendor_id"]))
        table = run(
            keyed,
            *args,
            "--name",
            "Given",
            "--fng-key-stdin",
            "--partner-key-env",
            "PK",
            stdin=NEXT_KEY,
        )
        assert table.returncode == 0, table.stderr
        assert PARTNER_KEY not in table.stdout + table.stderr
        assert "partner_key: the key given, stored" in table.stdout
        (given,) = ok(env, "keys", "list", "2")
        assert f"partner_key_fingerprint: {given['fingerprint']}" in table.stdout
        assert given["fingerprint"] == key_digest(PARTNER_KEY)[:12]

    def test_a_next_key_given_is_stored_not_printed(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        rotated = ok({**env, "NK": NEXT_KEY.upper()}, "keys", "rotate", database, "--key-env", "NK")
        assert NEXT_KEY not in json.dumps(rotated).lower()
        assert rotated["next_key"] == "the key given, stored"
        assert rotated["next_key_fingerprint"] == key_digest(NEXT_KEY)[:12]
        ok(env, "keys", "cancel", database)
        made = ok(env, "keys", "rotate", database)  # a key made here is shown, once
        assert len(made["next_key"]) == 36

    def test_urls_with_credentials_never_reach_a_list(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        refused(portal(env, database, "--url", "https://hill:s3cret@p.example/ws"), "(--url)")
        result = run(
            env,
            "vendors",
            "add",
            "W",
            "--token-url",
            "https://u:s3cret@simsid.example/t",
            "--client-id",
            "c",
            "--secret-stdin",
            stdin="s",
        )
        refused(result, "(--token-url) holds credentials")
        listed = run(env, "portals", "list").stdout + run(env, "vendors", "list").stdout
        assert "s3cret" not in listed + run(env, "audit").stdout


# -- 5. messages that say what is wrong ----------------------------------------------------------


class TestMessages:
    def test_an_unset_variable_is_not_set_not_empty(self, env: dict[str, str]) -> None:
        ids = registered(env)
        result = run(
            {key: value for key, value in env.items() if key != "NOPE"},
            "databases",
            "add",
            str(ids["school_id"]),
            "--vendor",
            str(ids["vendor_id"]),
            "--name",
            "Other",
            "--fng-key-env",
            "NOPE",
        )
        line = failed(result, UNAVAILABLE, "the environment variable NOPE (--fng-key-env)")
        assert "is not set" in line and "--fng-key-stdin" in line and "empty" not in line

    async def test_show_of_an_order_names_an_order(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        add_portal(env, database)
        failed(run(env, "eproc", "show", "1", "--order"), NOT_FOUND, "no quarantined order 1")
        failed(run(env, "eproc", "show", "1"), NOT_FOUND, "no quarantined document 1")
        store = create_store(env["FNG_GATEWAY_DATABASE_URL"])
        try:
            _documents, orders = await quarantine(store, int(database), 1, count=1)
        finally:
            await store.close()
        shown = ok(env, "eproc", "show", str(orders[0]), "--order")
        assert (shown["kind"], shown["reference"], shown["content"]) == (
            "order",
            "order-1",
            "<Order/>",
        )

    def test_a_grant_adds_a_payment_system_to_what_is_granted(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        ok(env, "accounts", "add", "acct")
        grant = ("accounts", "grant", "acct", "--database", database, "--interface", "ejournal")
        ok(env, *grant, "--system", "TPPCS")
        ok(env, *grant, "--system", "NEW")
        (account,) = ok(env, "accounts", "list")
        assert account["system_identifiers"] == ["NEW", "TPPCS"]
        assert account["grants"] == [{"database_id": int(database), "interface": "ejournal"}]
        refused(
            run(env, *grant, "--system", "NEW"),
            "account 'acct' already has ejournal, payment system NEW on database 1: nothing to "
            "grant",
        )


# -- 6. no-ops are refused, as keys cancel refuses one ------------------------------------------


class TestNoOps:
    def test_keys_retire_without_a_retiring_key(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        cancel = refused(run(env, "keys", "cancel", database))
        assert cancel == f"fng-gateway: database {database} has no next key"
        retire = refused(run(env, "keys", "retire", database))
        assert retire == f"fng-gateway: database {database} has no retiring key"
        failed(run(env, "keys", "retire", "99"), NOT_FOUND, "there is no database 99")
        ok(env, "keys", "rotate", database)
        ok(env, "keys", "promote", database, "--grace-seconds", "600")
        assert ok(env, "keys", "retire", database) == {"database_id": 1, "done": "retire"}
        refused(run(env, "keys", "retire", database), "has no retiring key")
        assert actions(env).count("partner_key.retire") == 1

    def test_revoking_an_interface_never_granted(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        ok(env, "accounts", "add", "acct")
        base = ("--database", database, "--interface")
        ok(env, "accounts", "grant", "acct", *base, "ejournal")
        refused(
            run(env, "accounts", "revoke", "acct", *base, "budget", "--interface", "ejournal"),
            "account 'acct' has no grant of budget on database 1: nothing was revoked",
        )
        (account,) = ok(env, "accounts", "list")
        assert [g["interface"] for g in account["grants"]] == ["ejournal"]
        ok(env, "accounts", "revoke", "acct", *base, "ejournal")
        refused(run(env, "accounts", "revoke", "acct", *base, "ejournal"), "no grant of ejournal")
        assert actions(env).count("account.revoke") == 1

    def test_disabling_a_disabled_portal_or_account(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        add_portal(env, database)
        refused(run(env, "portals", "enable", "1"), "portal 1 is already enabled")
        ok(env, "portals", "disable", "1")
        assert refused(run(env, "portals", "disable", "1")) == (
            "fng-gateway: portal 1 is already disabled"
        )
        failed(run(env, "portals", "disable", "9"), NOT_FOUND, "there is no portal 9")
        ok(env, "accounts", "add", "acct")
        refused(run(env, "accounts", "enable", "acct"), "account 'acct' is already enabled")
        ok(env, "accounts", "disable", "acct")
        refused(run(env, "accounts", "disable", "acct"), "account 'acct' is already disabled")
        assert actions(env).count("portal.disable") == 1
        assert actions(env).count("account.disable") == 1


# -- the same rules through the admin API and the registry service ------------------------------


class TestEveryEntryPoint:
    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/schools", {"name": "", "la_number": "123", "establishment_number": "0456"}),
            ("/schools", {"name": "a\nb", "la_number": "123", "establishment_number": "0456"}),
            ("/schools", {"name": "a\x85b", "la_number": "123", "establishment_number": "0456"}),
            ("/schools", {"name": "   ", "la_number": "123", "establishment_number": "0456"}),
            ("/schools", {"name": "x" * 201, "la_number": "123", "establishment_number": "0456"}),
            ("/accounts", {"username": "bad name with spaces"}),
            ("/accounts", {"username": "Ünïcode"}),
            ("/accounts", {"username": "ok", "password": "short"}),
        ],
    )
    async def test_the_admin_api_refuses_the_same(
        self, admin: Admin, path: str, body: dict[str, Any]
    ) -> None:
        await admin.post(path, body, expect=422)

    async def test_vendors_and_portals_through_the_api(self, admin: Admin) -> None:
        vendor_body = {
            "name": "V",
            "token_url": "https://simsid.example/connect/token",
            "client_id": "c",
            "secret": "s",
        }
        for change in (
            {"token_url": "notaurl"},
            {"token_url": "ftp://x/y"},
            {"token_url": "https://u:pw@simsid.example/connect/token"},
            {"name": ""},
            {"client_id": ""},
            {"auth_method": "private_key_jwt"},
        ):
            problem = await admin.post("/vendors", {**vendor_body, **change}, expect=422)
            assert "pw@" not in json.dumps(problem)
        armour = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        await admin.post(
            "/vendors",
            {**vendor_body, "auth_method": "private_key_jwt", "secret": armour},
            expect=409,
        )
        await admin.post(
            "/vendors",
            {**vendor_body, "auth_method": "private_key_jwt", "secret": rsa_pem()},
            expect=201,
        )
        database_id = (await new_database(admin))["id"]
        portal_body = {
            "database_id": database_id,
            "name": "acme",
            "url": "https://portal.example/ws",
            "username": "hill",
            "password": "pw",
            "supplier_duns": ["987654321"],
        }
        for change in (
            {"url": "https://hill:pw@portal.example/ws"},
            {"poll_seconds": 0},
            {"poll_seconds": 99999999999999},
            {"password_days": 10**17},
            {"username": ""},
        ):
            await admin.post("/portals", {**portal_body, **change}, expect=422)
        await admin.get("/audit?limit=-1", expect=422)
        await admin.get("/audit?limit=1001", expect=422)
        assert await new_vendor(admin)

    async def test_the_registry_service_refuses_the_same(self, admin: Admin) -> None:
        """Whatever calls the service (the sandbox, a test, a future entry point)."""
        tenancy = admin.gateway.tenancy
        with pytest.raises(RegistryError, match="the school's name is empty"):
            await tenancy.add_school("", la_number="123", establishment_number="0456")
        with pytest.raises(RegistryError, match="the account's user name must be"):
            await tenancy.add_account("bad name")
        with pytest.raises(RegistryError, match="holds credentials"):
            await tenancy.add_vendor(
                "V", token_url="https://u:p@x.example/t", client_id="c", credential="s"
            )
        database_id = (await new_database(admin))["id"]
        with pytest.raises(RegistryError, match="polled at least 10 seconds apart"):
            await tenancy.add_portal(
                database_id,
                name="acme",
                url="https://p.example/ws",
                username="u",
                password="p",
                supplier_duns=["987654321"],
                poll_seconds=10**14,
            )
        with pytest.raises(RegistryError, match="from 1 to 1000"):
            await tenancy.audit_entries(limit=-1)

"""The command line is strict where a mistake would otherwise pass in silence or lose a secret:
an interrupted import keeps every key it stored; conflicting secret sources are refused; a
secret typed at a terminal is not echoed; FNG keys follow the import's rules; an operator's
name shows as written; a secret shown once is never shown to nobody; and every refusal names
its option. Each test runs the real command."""

from __future__ import annotations

import csv
import fcntl
import os
import select
import signal
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.test_bulk_import import school_rows, write
from tests.integration.test_cli import ok, registered, run
from tests.support import COMMAND, cli_environment

REFUSED, USAGE, UNAVAILABLE, INTERRUPTED = 1, 2, 4, 130
FNG_KEY = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER_KEY = "16fd2706-8baf-433b-82eb-8c7fada847da"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(tmp_path)


def one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """Exit ``code``, no traceback, the error one ``fng-gateway:`` line holding ``words``."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if "NOTE: creating" not in line]
    assert len(lines) == 1 and lines[0].startswith("fng-gateway: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def vendor_for_import(env: dict[str, str]) -> None:
    ok(
        env,
        "vendors",
        "add",
        "Payments Ltd",
        "--token-url",
        "https://simsid.example/connect/token",
        "--client-id",
        "payments",
        "--secret-stdin",
        stdin="s",
    )


def start_import(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """``schools import`` of 1500 schools, one row in three without a partner key, started;
    and how many keys it generates."""
    vendor_for_import(env)
    rows = school_rows(1500, keyless_every=3)
    source = write(tmp_path / "big.csv", rows)
    process = subprocess.Popen(
        [COMMAND, "schools", "import", str(source), "--keys-out", str(tmp_path / "k.csv")],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, sum(1 for row in rows if not row["partner_key"])


@pytest.fixture(scope="module")
def import_seconds(tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long the import takes here, uninterrupted."""
    tmp_path = tmp_path_factory.mktemp("timed")
    started = time.monotonic()
    process, _ = start_import(cli_environment(tmp_path), tmp_path)
    process.communicate(timeout=120)
    assert process.returncode == 0
    return time.monotonic() - started


class TestInterruptedImport:
    @pytest.mark.parametrize("fraction", [0.3, 0.6, 0.8, 0.88, 0.92, 0.96, 1.0, 1.1, 1.5])
    def test_a_committed_import_keeps_its_keys_file(
        self, env: dict[str, str], tmp_path: Path, import_seconds: float, fraction: float
    ) -> None:
        """Whenever Ctrl-C comes: schools committed => the keys file holds every generated
        key; nothing committed => no keys file. Never a traceback."""
        process, generated = start_import(env, tmp_path)
        time.sleep(import_seconds * fraction)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
        assert "Traceback" not in stdout + stderr, stderr
        assert "unexpected failure" not in stderr, stderr
        # Killed by the signal (as a shell counts it, 130) only once Python is exiting.
        assert process.returncode in (0, INTERRUPTED, -signal.SIGINT), (process.returncode, stderr)
        keys_out = tmp_path / "k.csv"
        schools = ok(env, "schools", "list")
        if schools:
            assert len(schools) == 1500
            with keys_out.open(encoding="utf-8") as handle:
                saved = list(csv.DictReader(handle))
            assert len(saved) == generated
            assert all(len(row["partner_key"]) == 36 for row in saved)
        else:
            assert not keys_out.exists(), stderr
            assert process.returncode == INTERRUPTED
            assert stderr.strip().splitlines()[-1] == (
                "fng-gateway: interrupted: nothing was imported"
            )


class TestSecretSources:
    @pytest.mark.parametrize(
        ("args", "options"),
        [
            (
                ["databases", "add", "1", "--vendor", "1", "--name", "X", "--fng-key-env", "FK"],
                ("--partner-key-stdin", "--partner-key-env", "PK"),
            ),
            (["vendors", "set-secret", "1"], ("--secret-stdin", "--secret-env", "PK")),
            (["accounts", "password", "someone"], ("--password-stdin", "--password-env", "PK")),
            (["accounts", "add", "someone"], ("--password-stdin", "--password-env", "PK")),
            (["keys", "rotate", "1"], ("--key-stdin", "--key-env", "PK")),
            (["fng-key", "set", "1"], ("--key-stdin", "--key-env", "PK")),
        ],
    )
    def test_both_sources_of_one_secret_are_refused(
        self, env: dict[str, str], args: list[str], options: tuple[str, str, str]
    ) -> None:
        stdin_option, env_option, variable = options
        environment = {**env, "PK": OTHER_KEY, "FK": FNG_KEY}
        result = run(environment, *args, stdin_option, env_option, variable, stdin=FNG_KEY)
        one_line(result, USAGE, stdin_option, env_option)

    def test_a_secret_typed_at_a_terminal_is_not_echoed(self, env: dict[str, str]) -> None:
        password = "typed-at-a-terminal-42"
        controller, terminal = os.openpty()

        def own_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        process = subprocess.Popen(
            [COMMAND, "accounts", "add", "typist", "--password-stdin", "--json"],
            env=env,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=own_terminal,
        )
        os.close(terminal)
        assert process.stderr is not None
        prompt = b""  # typed only once asked: echo is off by then
        deadline = time.monotonic() + 30
        while b"(not echoed)" not in prompt and time.monotonic() < deadline:
            if select.select([process.stderr], [], [], 0.5)[0]:
                prompt += os.read(process.stderr.fileno(), 1024)
        os.write(controller, password.encode() + b"\n")
        stdout, stderr = process.communicate(timeout=60)
        stderr = prompt + stderr
        shown = b""
        time.sleep(0.2)
        while select.select([controller], [], [], 0.2)[0]:
            try:
                chunk = os.read(controller, 1024)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        os.close(controller)
        assert process.returncode == 0, stderr
        assert b"password (not echoed)" in stderr  # the prompt, on stderr
        assert password.encode() not in shown + stdout + stderr
        assert [account["username"] for account in ok(env, "accounts", "list")] == ["typist"]


class TestFngKeys:
    def test_the_cli_refuses_what_the_import_refuses(self, env: dict[str, str]) -> None:
        first = registered(env)
        school, vendor = str(first["school_id"]), str(first["vendor_id"])
        add = ["databases", "add", school, "--vendor", vendor, "--name", "Private funds"]
        taken = run({**env, "FK": FNG_KEY}, *add, "--fng-key-env", "FK")
        one_line(taken, REFUSED, "the FNG key is already database 'Public funds' of school")
        same = run(
            {**env, "FK": OTHER_KEY, "PK": OTHER_KEY.upper()},
            *add,
            "--fng-key-env",
            "FK",
            "--partner-key-env",
            "PK",
        )
        one_line(same, REFUSED, "the partner key is the FNG key")
        unchanged = run({**env, "FK": FNG_KEY}, "fng-key", "set", "1", "--key-env", "FK")
        one_line(unchanged, REFUSED, "current FNG key", "nothing would change")
        assert len(ok(env, "databases", "list")) == 1
        assert ok({**env, "FK": OTHER_KEY}, "fng-key", "set", "1", "--key-env", "FK")
        again = run({**env, "FK": OTHER_KEY}, "fng-key", "set", "1", "--key-env", "FK")
        one_line(again, REFUSED, "next FNG key", "nothing would change")


class TestOperatorNames:
    @pytest.mark.parametrize("name", ["ops\u202eevil", "ops\u200bevil", "ops\u2066x", "a\nb"])
    def test_an_invisible_or_bidi_character_is_refused(
        self, env: dict[str, str], name: str
    ) -> None:
        line = one_line(run(env, "admin-tokens", "create", name), REFUSED, "(NAME)")
        assert "printable" in line
        assert ok(env, "admin-tokens", "list") == []


def closed_stdout(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The command run with standard output closed (``>&-``)."""
    return subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", COMMAND, *args],
        capture_output=False,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        timeout=60,
    )


def full_stdout(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [COMMAND, *args],
            stdout=full,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            timeout=60,
        )


class TestSecretsShownOnce:
    def test_closed_stdout_is_refused_before_any_change(self, env: dict[str, str]) -> None:
        database = str(registered(env)["database_id"])
        for args, shown in (
            (("accounts", "add", "nobody"), "generated password"),
            (("keys", "rotate", database), "next partner key"),
            (("admin-tokens", "create", "ops"), "token"),
        ):
            result = closed_stdout(env, *args)
            result.stdout = ""
            one_line(result, USAGE, "standard output is closed", shown, "shown to nobody")
        assert ok(env, "accounts", "list") == []
        assert [key["state"] for key in ok(env, "keys", "list", database)] == ["active"]
        assert ok(env, "admin-tokens", "list") == []
        # A command that shows no secret runs as before.
        assert closed_stdout(env, "schools", "list").returncode == 0

    def test_a_full_stdout_says_the_change_was_made_and_what_to_do(
        self, env: dict[str, str]
    ) -> None:
        result = full_stdout(env, "accounts", "add", "lost")
        result.stdout = ""
        line = one_line(result, UNAVAILABLE, "the change was made", "generated password")
        assert "accounts password lost" in line and "bug" not in line
        assert [account["username"] for account in ok(env, "accounts", "list")] == ["lost"]

    def test_a_new_master_key_or_the_sandboxs_credentials_are_not_shown_to_nobody(
        self, env: dict[str, str]
    ) -> None:
        key = closed_stdout(env, "secrets", "new-key")
        key.stdout = ""
        one_line(key, USAGE, "the new master key would be shown to nobody")
        sandbox = closed_stdout(env, "sandbox", "--port", "0")
        sandbox.stdout = ""
        one_line(sandbox, USAGE, "the demo credentials would be shown to nobody", "--info-file")

    def test_output_that_cannot_be_written_is_a_refusal_not_a_bug(
        self, env: dict[str, str]
    ) -> None:
        key = full_stdout(env, "secrets", "new-key")
        key.stdout = ""
        one_line(key, UNAVAILABLE, "standard output cannot be written", "run the command again")
        migrated = full_stdout(env, "migrate")
        migrated.stdout = ""
        one_line(migrated, UNAVAILABLE, "cannot be written", "brought up to date all the same")
        assert ok(env, "schools", "list") == []  # the store is there, migrated


class TestKeysFile:
    def test_a_keys_file_that_cannot_be_made_is_a_usage_error_naming_it(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        """As a sandbox's --info-file in a directory that does not exist: exit 2, before any
        work, naming the option."""
        vendor_for_import(env)
        source = write(tmp_path / "few.csv", school_rows(2, keyless_every=1))
        result = run(
            env, "schools", "import", str(source), "--keys-out", str(tmp_path / "no" / "k.csv")
        )
        one_line(result, USAGE, "the --keys-out file", "cannot be created", "No such file")
        assert ok(env, "schools", "list") == []


class TestMasterKeys:
    def test_a_secret_is_not_stored_under_keys_that_open_no_other(
        self, env: dict[str, str]
    ) -> None:
        """A command that encrypts a secret refuses, before writing, master keys that decrypt
        none of the stored secrets: what it stored could then never be opened by the keys
        that open the rest."""
        vendor_for_import(env)
        wrong = {**env, "FNG_GATEWAY_MASTER_KEYS": run(env, "secrets", "new-key").stdout.strip()}
        refused = run(wrong, "vendors", "set-secret", "1", "--secret-stdin", stdin="other")
        one_line(refused, UNAVAILABLE, "the master keys decrypt none of the 1 stored secret(s)")
        # Nothing was written: the right keys still open every stored secret.
        assert ok(env, "secrets", "reencrypt")["reencrypted"] == 1
        # A command that stores no secret runs as before.
        assert ok(wrong, "vendors", "list")[0]["name"] == "Payments Ltd"

    def test_a_source_that_holds_no_key_is_named(self, env: dict[str, str], tmp_path: Path) -> None:
        empty = tmp_path / "empty.keys"
        empty.write_text("# the keys go here\n\n")
        for keys, named in (
            ({"FNG_GATEWAY_MASTER_KEYS": ",,"}, "FNG_GATEWAY_MASTER_KEYS holds no master key"),
            (
                {"FNG_GATEWAY_MASTER_KEYS": "", "FNG_GATEWAY_MASTER_KEYS_FILE": str(empty)},
                f"the master keys file {empty} holds no master key",
            ),
        ):
            one_line(run({**env, **keys}, "vendors", "list"), UNAVAILABLE, named)

    def test_keys_in_the_environment_and_a_file_in_the_config_are_named_as_given(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        config = tmp_path / "gateway.toml"
        config.write_text(f'master_keys_file = "{tmp_path / "keys"}"\n')
        result = run({**env, "FNG_GATEWAY_CONFIG_FILE": str(config)}, "vendors", "list")
        one_line(
            result,
            UNAVAILABLE,
            f"FNG_GATEWAY_MASTER_KEYS and master_keys_file in {config} are both set",
        )


class TestOptionsNamed:
    @pytest.mark.parametrize(
        ("option", "value", "words"),
        [
            ("--la", "12", "the LA number (--la) must be 3 digits"),
            ("--establishment", "45", "the establishment number (--establishment) must be 4"),
            ("--duns", "12", "the DUNS number (--duns) must be 9 digits"),
            ("--language", "english", "the language (--language) must be a code"),
            ("--currency", "gbp", "the currency (--currency) must be a three-letter code"),
        ],
    )
    def test_a_school_refusal_names_its_option(
        self, env: dict[str, str], option: str, value: str, words: str
    ) -> None:
        given = {"--la": "123", "--establishment": "4567", option: value}
        args = [item for pair in given.items() for item in pair]
        one_line(run(env, "schools", "add", "S", *args), REFUSED, words)

    def test_a_bad_key_names_its_option(self, env: dict[str, str]) -> None:
        result = run(
            {**env, "FK": "not-a-guid"},
            *("databases", "add", "1", "--vendor", "1", "--name", "X", "--fng-key-env", "FK"),
        )
        line = one_line(result, REFUSED, "the FNG key (--fng-key-stdin or --fng-key-env)", "GUID")
        assert "not-a-guid" not in line

    def test_an_encrypted_private_key_is_named_so(self, env: dict[str, str]) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pems: list[Any] = [
            key.private_bytes(
                serialization.Encoding.PEM,
                form,
                serialization.BestAvailableEncryption(b"passphrase"),
            ).decode()
            for form in (
                serialization.PrivateFormat.PKCS8,
                serialization.PrivateFormat.TraditionalOpenSSL,
            )
        ]
        for pem in pems:
            result = run(
                env,
                *("vendors", "add", "V", "--token-url", "https://simsid.example/connect/token"),
                *("--client-id", "v", "--auth-method", "private_key_jwt", "--secret-stdin"),
                stdin=pem,
            )
            one_line(result, REFUSED, "is encrypted", "unencrypted")

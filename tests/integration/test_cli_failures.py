"""Every failure an operator can meet at start-up is one line saying what is wrong and what to
do, with the README's exit code (4: the store, a setting or a port), never a traceback; and no
misconfiguration passes in silence. Each test runs the real command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, require_service
from tests.support import COMMAND, cli_environment

UNAVAILABLE = 4


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(
        tmp_path, FNG_GATEWAY_LOG_FORMAT="text", FNG_GATEWAY_EPROC__ENABLED="false"
    )


def run(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=90
    )


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command failed with exit code 4 and its last line of output, the error, holds
    ``words``; no traceback anywhere. ``serve`` may log before it fails; a command prints the
    one line alone."""
    assert result.returncode == UNAVAILABLE, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("fng-gateway: "), result.stderr
    for word in words:
        assert word in line, (word, line)
    return line


def serve_starts(env: dict[str, str]) -> list[str]:
    """``serve`` reaches "listening on" and stops on SIGTERM; what it wrote."""
    process = subprocess.Popen(
        [COMMAND, "serve", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if not line or "listening on" in line:
            break
    # The signal handlers are installed just after "listening on" is printed: a SIGTERM in
    # between ends the process by the signal, which is not what is tested here.
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=60)
    lines.extend(rest.splitlines())
    assert any("listening on" in line for line in lines), lines
    assert process.returncode in (0, -signal.SIGTERM), lines
    assert not any("Traceback" in line for line in lines), lines
    return lines


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


class TestTheStore:
    @pytest.mark.parametrize("command", [["serve"], ["migrate"], ["schools", "list"]])
    def test_an_unreachable_database_is_refused_without_its_password(
        self, env: dict[str, str], command: list[str]
    ) -> None:
        port = closed_port()
        url = f"postgresql+asyncpg://gateway:s3cret-pw@127.0.0.1:{port}/fng"
        line = refused(
            run({**env, "FNG_GATEWAY_DATABASE_URL": url}, *command),
            f"cannot connect to the PostgreSQL server at 127.0.0.1:{port} (connection refused)",
            "FNG_GATEWAY_DATABASE_URL",
        )
        assert "s3cret-pw" not in line

    @pytest.mark.parametrize("command", [["serve"], ["migrate"], ["schools", "list"]])
    def test_database_that_does_not_exist(self, env: dict[str, str], command: list[str]) -> None:
        require_service("PostgreSQL", "127.0.0.1", 5432)
        url = POSTGRES_URL.rsplit("/", 1)[0] + "/no_such_database_here"
        refused(
            run({**env, "FNG_GATEWAY_DATABASE_URL": url}, *command),
            "the database 'no_such_database_here' does not exist",
            "createdb no_such_database_here",
        )

    def test_a_store_never_migrated_when_migrating_is_off(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        (tmp_path / "empty.db").touch()
        for command in (["serve"], ["schools", "list"]):
            refused(
                run(
                    {**env, "FNG_GATEWAY_DATABASE_URL": url, "FNG_GATEWAY_AUTO_MIGRATE": "false"},
                    *command,
                ),
                "was never migrated",
                "fng-gateway migrate",
            )

    def test_a_file_that_is_not_a_store(self, env: dict[str, str], tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("not a database\n" * 100)
        url = f"sqlite:///{tmp_path / 'notes.txt'}"
        refused(
            run({**env, "FNG_GATEWAY_DATABASE_URL": url}, "schools", "list"),
            "is not a SQLite database",
        )

    def test_postgresql_url_without_a_driver_means_asyncpg(
        self, env: dict[str, str], postgres_url: str
    ) -> None:
        plain = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        result = run({**env, "FNG_GATEWAY_DATABASE_URL": plain}, "migrate")
        assert result.returncode == 0, result.stderr
        assert "the store is up to date: the PostgreSQL database" in result.stdout

    def test_another_driver_is_refused_saying_what_to_write(self, env: dict[str, str]) -> None:
        url = "postgresql+psycopg2://gateway:s3cret-pw@db/fng"
        line = refused(
            run({**env, "FNG_GATEWAY_DATABASE_URL": url}, "migrate"),
            "FNG_GATEWAY_DATABASE_URL",
            "asyncpg, not psycopg2",
        )
        assert "s3cret-pw" not in line


class TestSettings:
    def test_config_file_that_is_not_toml_names_the_line(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        config = tmp_path / "gateway.toml"
        config.write_text('log_level = "INFO"\nport = \n')
        refused(
            run({**env, "FNG_GATEWAY_CONFIG_FILE": str(config)}, "serve"),
            f"the config file {config} is not valid TOML",
            "line 2",
        )

    def test_config_file_that_does_not_exist(self, env: dict[str, str], tmp_path: Path) -> None:
        missing = tmp_path / "missing.toml"
        refused(
            run({**env, "FNG_GATEWAY_CONFIG_FILE": str(missing)}, "schools", "list"),
            f"the config file {missing} (FNG_GATEWAY_CONFIG_FILE) does not exist",
        )

    def test_a_key_of_the_config_file_that_is_no_setting(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        config = tmp_path / "gateway.toml"
        config.write_text('databse_url = "sqlite:///x.db"\n')
        refused(
            run({**env, "FNG_GATEWAY_CONFIG_FILE": str(config)}, "schools", "list"),
            "databse_url in the config file: no such setting (did you mean database_url?)",
        )

    def test_the_config_file_is_read(self, env: dict[str, str], tmp_path: Path) -> None:
        """The README's example: settings and several master keys from a TOML file."""
        keys = [env["FNG_GATEWAY_MASTER_KEYS"], run(env, "secrets", "new-key").stdout.strip()]
        config = tmp_path / "gateway.toml"
        config.write_text(
            f'database_url = "sqlite:///{tmp_path / "from-file.db"}"\n'
            f'master_keys = "{keys[0]},{keys[1]}"\n\n[xml]\nmax_depth = 32\n'
        )
        only_file = {
            key: value
            for key, value in env.items()
            if key not in ("FNG_GATEWAY_DATABASE_URL", "FNG_GATEWAY_MASTER_KEYS")
        }
        result = run({**only_file, "FNG_GATEWAY_CONFIG_FILE": str(config)}, "schools", "list")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "from-file.db").exists()

    def test_a_mistyped_variable_is_refused_naming_the_setting(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        """FNG_GATEWAY_DATABSE_URL is not taken for nothing while ./fng-gateway.db is made."""
        typo = {key: value for key, value in env.items() if key != "FNG_GATEWAY_DATABASE_URL"} | {
            "FNG_GATEWAY_DATABSE_URL": env["FNG_GATEWAY_DATABASE_URL"]
        }
        for command in (["schools", "list"], ["serve"]):
            refused(
                run(typo, *command, cwd=tmp_path),
                "FNG_GATEWAY_DATABSE_URL is not a setting",
                "did you mean FNG_GATEWAY_DATABASE_URL?",
            )
        assert not (tmp_path / "fng-gateway.db").exists()

    def test_a_new_sqlite_store_is_announced(self, env: dict[str, str], tmp_path: Path) -> None:
        default = {key: value for key, value in env.items() if key != "FNG_GATEWAY_DATABASE_URL"}
        first = run(default, "schools", "list", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        created = tmp_path / "fng-gateway.db"
        assert first.stderr.splitlines() == [
            f"fng-gateway: NOTE: creating a new SQLite store, {created} "
            "(set FNG_GATEWAY_DATABASE_URL to use another store)"
        ]
        again = run(default, "schools", "list", cwd=tmp_path)
        assert (again.returncode, again.stderr) == (0, "")

    def test_serve_says_which_store_it_uses(self, env: dict[str, str], tmp_path: Path) -> None:
        path = tmp_path / "gateway.db"
        for expected in ("creating a new SQLite store, ", "store: the SQLite file "):
            lines = serve_starts(env)
            said = [line for line in lines if expected in line]
            assert said and str(path) in said[0], lines
            level = "WARNING" if expected.startswith("creating") else "INFO"
            assert f" {level} " in said[0], said


class TestMasterKeys:
    @pytest.mark.parametrize("command", [["serve"], ["schools", "list"]])
    def test_a_key_that_is_not_a_fernet_key_is_named_by_position_not_shown(
        self, env: dict[str, str], command: list[str]
    ) -> None:
        good = env["FNG_GATEWAY_MASTER_KEYS"]
        wrong = "not-a-key-but-a-secret-all-the-same"
        keys = {**env, "FNG_GATEWAY_MASTER_KEYS": f"{good},{wrong}"}
        result = run(keys, *command)
        refused(result, "master key 2 of 2 is not a Fernet key", "fng-gateway secrets new-key")
        assert wrong not in result.stderr + result.stdout
        # Nothing is announced, or made, for a gateway that cannot start.
        assert "creating a new SQLite store" not in result.stderr, result.stderr

    def test_a_keys_file_that_does_not_exist(self, env: dict[str, str], tmp_path: Path) -> None:
        keys = {key: value for key, value in env.items() if key != "FNG_GATEWAY_MASTER_KEYS"}
        keys["FNG_GATEWAY_MASTER_KEYS_FILE"] = str(tmp_path / "no-such-file")
        refused(
            run(keys, "serve"),
            "the master keys file cannot be read (No such file or directory)",
            "no-such-file",
            "FNG_GATEWAY_MASTER_KEYS_FILE the path of a readable file",
        )


class TestPorts:
    def test_serve_on_a_port_in_use(self, env: dict[str, str], held_port: int) -> None:
        refused(
            run(env, "serve", "--port", str(held_port)),
            f"port {held_port} on 127.0.0.1 is already in use",
            "--port",
        )

    def test_sandbox_on_a_port_in_use(self, env: dict[str, str], held_port: int) -> None:
        refused(
            run(env, "sandbox", "--port", str(held_port)),
            f"port {held_port} on 127.0.0.1 is already in use",
            "choose another port with --port",
        )

    def test_sandbox_whose_own_port_is_in_use(self, env: dict[str, str], held_port: int) -> None:
        refused(
            run(env, "sandbox", "--port", "0", "--sandbox-port", str(held_port)),
            f"port {held_port} on 127.0.0.1 is already in use",
            "--sandbox-port",
        )

    def test_an_earlier_runs_info_file_is_gone_from_the_start(
        self, env: dict[str, str], held_port: int, tmp_path: Path
    ) -> None:
        """A script waiting for --info-file must not read the last run's: the sandbox removes
        it before anything else, so even a run that fails to start leaves none."""
        info = tmp_path / "up.json"
        info.write_text('{"stale": true}')
        refused(
            run(env, "sandbox", "--port", str(held_port), "--info-file", str(info)),
            "already in use",
        )
        assert not info.exists()


class TestTheCommandsEdge:
    """What befalls a command outside its own code ends in its exit code, never a traceback."""

    @pytest.mark.parametrize("closed", [0, 1, 2], ids=["stdin", "stdout", "stderr"])
    def test_a_closed_standard_stream(self, env: dict[str, str], closed: int) -> None:
        """As `fng-gateway schools list <&-` (or >&-, 2>&-) runs it: the stream is opened on
        the null device, and nothing the command opens takes its number."""
        result = subprocess.run(
            [COMMAND, "schools", "list", "--json"],
            env=env,
            capture_output=closed != 1,
            text=True,
            timeout=90,
            preexec_fn=lambda: os.close(closed),
        )
        assert result.returncode == 0, result.stderr
        if closed != 2:
            assert "Traceback" not in (result.stderr or "")

    def test_a_secret_on_a_closed_stdin_is_no_secret(self, env: dict[str, str]) -> None:
        result = subprocess.run(
            [COMMAND, "accounts", "add", "pay", "--password-stdin"],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            preexec_fn=lambda: os.close(0),
        )
        assert (result.returncode, result.stderr.strip()) == (
            1,
            "fng-gateway: no password on standard input",
        )

    def test_a_secret_that_is_not_text(self, env: dict[str, str]) -> None:
        result = subprocess.run(
            [COMMAND, "accounts", "add", "pay", "--password-stdin"],
            env=env,
            input=b"\xff\xfe\x00secret",
            capture_output=True,
            timeout=90,
        )
        assert result.returncode == 1
        assert result.stderr.decode().strip() == (
            "fng-gateway: the password on standard input is not UTF-8 text"
        )

    def test_a_reader_that_goes_away(self, env: dict[str, str]) -> None:
        """`fng-gateway audit | head -0`: the command ends quietly with 141, as a process
        ended by SIGPIPE does."""
        reader, writer = os.pipe()
        os.close(reader)
        result = subprocess.run(
            [COMMAND, "audit", "--json"],
            env=env,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=90,
        )
        os.close(writer)
        assert result.returncode == 141, result.stderr
        assert [line for line in result.stderr.splitlines() if "NOTE" not in line] == []

    def test_ctrl_c_while_it_starts(self, env: dict[str, str]) -> None:
        """Interrupted while it starts (the gateway's modules loading, the store opening):
        130, as shells number an interrupt, and nothing else. Only Python's own start, before
        the first line of the command runs (a few hundredths of a second on a quiet
        machine), is out of its reach: an interrupt there is Python's to report."""
        for delay in (0.05, 0.1, 0.2, 0.4):
            process = subprocess.Popen(
                [COMMAND, "schools", "list"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(delay)
            process.send_signal(signal.SIGINT)
            _out, err = process.communicate(timeout=90)
            assert process.returncode in (0, 130, -signal.SIGINT, 1), (delay, err)
            if "Traceback" in err:  # Python's start, not the command's
                assert "gateway/cli" not in err and "in main" not in err, err
            else:
                assert process.returncode in (0, 130, -signal.SIGINT), (delay, err)

    def test_a_setting_of_the_config_file_is_named_as_the_file_writes_it(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        config = tmp_path / "gateway.toml"
        config.write_text('port = "eighty"\n')
        line = refused(run({**env, "FNG_GATEWAY_CONFIG_FILE": str(config)}, "serve"))
        assert f"port in {config} (or FNG_GATEWAY_PORT)" in line, line


class TestOptions:
    @pytest.mark.parametrize(
        ("args", "said"),
        [
            (["serve", "--port", "70000"], "70000 is not a port: give 1 to 65535"),
            (["serve", "--host", ""], "an empty address"),
            (["serve", "--workers", "0"], "0 workers: give 1 to 256"),
            (["sandbox", "--sandbox-port", "-1"], "-1 is not a port"),
            (["sandbox", "--info-file", "/nonexistent/info.json"], "does not exist"),
            (["sandbox", "--info-file", "/"], "/ is a directory"),
        ],
    )
    def test_a_value_no_server_could_use_is_a_usage_error(
        self, env: dict[str, str], args: list[str], said: str
    ) -> None:
        result = run(env, *args)
        assert result.returncode == 2, result.stderr
        assert said in result.stderr.strip().splitlines()[-1], result.stderr
        assert "Traceback" not in result.stderr

    def test_the_sandbox_port_would_pass_the_last(self, env: dict[str, str]) -> None:
        """A port out of range is a usage error (2), as --port 70000 is."""
        result = run(env, "sandbox", "--port", "65535")
        assert result.returncode == 2, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        assert "65536" in line and "--sandbox-port" in line, line

    def test_upstreams_only_reads_the_logging_settings(self, env: dict[str, str]) -> None:
        refused(
            run(
                {**env, "FNG_GATEWAY_LOG_LEVEL": "loud"},
                "sandbox",
                "--upstreams-only",
                "--port",
                "0",
            ),
            "FNG_GATEWAY_LOG_LEVEL",
        )

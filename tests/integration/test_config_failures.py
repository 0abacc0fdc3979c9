"""Settings and stores an operator can get wrong: each is refused at start with one line saying
what is wrong and what to do, exit code 4, never a traceback; and what is right but unusual
(a store a newer gateway migrated, rediss://, networks separated by commas) is taken. Each
test runs the real command, as test_cli_failures does."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.store.cache import create_cache
from tests.conftest import POSTGRES_URL, require_service
from tests.integration.test_cli_failures import closed_port, refused, run, serve_starts
from tests.support import COMMAND, cli_environment


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(
        tmp_path, FNG_GATEWAY_LOG_FORMAT="text", FNG_GATEWAY_EPROC__ENABLED="false"
    )


def with_(env: dict[str, str], **settings: str) -> dict[str, str]:
    return {**env, **settings}


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in names}


def succeeded(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def migrated(env: dict[str, str], tmp_path: Path) -> Path:
    """A SQLite store brought up to date by ``fng-gateway migrate``."""
    path = tmp_path / "store.db"
    succeeded(run(with_(env, FNG_GATEWAY_DATABASE_URL=sqlite_url(path)), "migrate"))
    return path


def as_unprivileged(command: list[str]) -> list[str]:
    """``command`` run so that file permissions apply to it: as it is for a user, and for root
    without the capabilities that let it read and write any file (uid 0 still, so it can run
    the command from a virtualenv in a directory only root may enter)."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]


def run_unprivileged(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        as_unprivileged([COMMAND, *args]), capture_output=True, text=True, env=env, timeout=90
    )


COMMANDS = [["serve"], ["migrate"], ["schools", "list"]]


class TestSqliteFiles:
    """Finding 1: a path SQLite cannot use is named with the reason, and no aiosqlite worker
    thread outlives the event loop to print a traceback after the message."""

    @pytest.mark.parametrize("command", COMMANDS)
    def test_a_directory(self, env: dict[str, str], tmp_path: Path, command: list[str]) -> None:
        directory = tmp_path / "somedir"
        directory.mkdir()
        setting = with_(env, FNG_GATEWAY_DATABASE_URL=f"sqlite:///{directory}")
        # The traceback came in some runs only (a race with the event loop's closing):
        # several runs, none may show it.
        for _ in range({"schools": 6, "migrate": 3}.get(command[0], 1)):
            refused(run(setting, *command), f"the SQLite store {directory} is a directory")

    @pytest.mark.parametrize("command", COMMANDS)
    def test_a_file_this_user_cannot_read(
        self, env: dict[str, str], migrated: Path, command: list[str]
    ) -> None:
        migrated.chmod(0)
        line = refused(
            run_unprivileged(with_(env, FNG_GATEWAY_DATABASE_URL=sqlite_url(migrated)), *command),
            f"the SQLite file {migrated} cannot be read by this user",
            "FNG_GATEWAY_DATABASE_URL",
        )
        assert "directory exists" not in line

    def test_a_read_only_file(self, env: dict[str, str], migrated: Path) -> None:
        migrated.chmod(0o444)
        refused(
            run_unprivileged(
                with_(env, FNG_GATEWAY_DATABASE_URL=sqlite_url(migrated)), "schools", "list"
            ),
            f"the SQLite file {migrated} cannot be written by this user",
        )

    def test_a_file_in_a_read_only_directory_is_one_sentence(
        self, env: dict[str, str], migrated: Path
    ) -> None:
        """SQLite's own "attempt to write a readonly database", in a sentence that reads."""
        migrated.parent.chmod(0o555)
        try:
            line = refused(
                run_unprivileged(
                    with_(env, FNG_GATEWAY_DATABASE_URL=sqlite_url(migrated)), "schools", "list"
                ),
                f"the SQLite file {migrated} cannot be written by this user",
                "or set FNG_GATEWAY_DATABASE_URL to another",
            )
        finally:
            migrated.parent.chmod(0o755)
        assert "): or" not in line

    def test_a_directory_that_does_not_exist(self, env: dict[str, str], tmp_path: Path) -> None:
        path = tmp_path / "missing" / "store.db"
        refused(
            run(with_(env, FNG_GATEWAY_DATABASE_URL=sqlite_url(path)), "migrate"),
            f"its directory {path.parent} does not exist",
        )


class TestInMemoryStores:
    """Finding 2: a store that dies with the process is refused, not "up to date"."""

    @pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite://"])
    @pytest.mark.parametrize("command", COMMANDS)
    def test_refused(self, env: dict[str, str], url: str, command: list[str]) -> None:
        result = run(with_(env, FNG_GATEWAY_DATABASE_URL=url), *command)
        refused(
            result,
            "FNG_GATEWAY_DATABASE_URL",
            "in-memory SQLite database",
            "needs a store that outlives it: give the path of a file",
        )
        assert "up to date" not in result.stdout


def set_revision(path: Path, revision: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))


class TestRevisions:
    """Finding 3: a store a newer gateway migrated serves older replicas (a rolling upgrade)
    and is not migrated by code that does not know its revision; a damaged schema is told."""

    def test_migrate_refuses_a_store_of_a_newer_gateway(
        self, env: dict[str, str], migrated: Path
    ) -> None:
        set_revision(migrated, "0099")
        refused(
            run(with_(env, FNG_GATEWAY_DATABASE_URL=sqlite_url(migrated)), "migrate"),
            "was migrated by a newer gateway (revision 0099",
            "run that version's `fng-gateway migrate`, or upgrade this one",
        )

    @pytest.mark.parametrize("auto_migrate", ["true", "false"])
    def test_commands_use_a_store_of_a_newer_gateway(
        self, env: dict[str, str], migrated: Path, auto_migrate: str
    ) -> None:
        set_revision(migrated, "0099")
        setting = with_(
            env,
            FNG_GATEWAY_DATABASE_URL=sqlite_url(migrated),
            FNG_GATEWAY_AUTO_MIGRATE=auto_migrate,
        )
        result = run(setting, "schools", "list")
        succeeded(result)
        assert result.stderr == ""
        serve_starts(setting)
        with sqlite3.connect(migrated) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0099",)]

    def test_a_revision_no_gateway_made(self, env: dict[str, str], migrated: Path) -> None:
        set_revision(migrated, "0003a")
        refused(
            run(with_(env, FNG_GATEWAY_DATABASE_URL=sqlite_url(migrated)), "migrate"),
            "is at revision 0003a, which no migration of this gateway makes",
        )

    @pytest.mark.parametrize("command", COMMANDS)
    def test_a_table_dropped_from_a_current_store(
        self, env: dict[str, str], migrated: Path, command: list[str]
    ) -> None:
        with sqlite3.connect(migrated) as conn:
            conn.execute("DROP TABLE audit_log")
        refused(
            run(with_(env, FNG_GATEWAY_DATABASE_URL=sqlite_url(migrated)), *command),
            "is at revision 0006 but lacks the table audit_log, so its schema is damaged",
            "restore the store from a backup",
        )

    @pytest.mark.parametrize("command", COMMANDS)
    def test_a_table_dropped_on_postgresql(
        self, env: dict[str, str], postgres_url: str, command: list[str]
    ) -> None:
        """PostgreSQL said so with a ProgrammingError, exit code 5."""
        setting = with_(env, FNG_GATEWAY_DATABASE_URL=postgres_url)
        succeeded(run(setting, "migrate"))
        postgres(postgres_url, "DROP TABLE audit_log")
        refused(run(setting, *command), "lacks the table audit_log, so its schema is damaged")


def postgres(url: str, statement: str) -> None:
    async def execute() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(execute())


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


class TestDatabaseUrls:
    """Finding 4: a URL asyncpg cannot use is refused saying what to write; a server that does
    not answer is reported in seconds."""

    @pytest.mark.parametrize(
        ("url", "words"),
        [
            (
                "postgresql+asyncpg://gw:s3cret-pw@127.0.0.1:99999/test",
                ["the port 99999 of the database URL is not a port number (1 to 65535)"],
            ),
            ("postgresql+asyncpg://gw:s3cret-pw@127.0.0.1:abc/test", ["host and port"]),
            ("postgresql://gw:s3cret-pw@[::1:5432/test", ["in brackets ([::1]:5432)"]),
            (
                "postgresql://gw:s3cret-pw@127.0.0.1:5432/test?sslmode=require",
                ["sslmode= is not one asyncpg understands", "asyncpg calls it ssl"],
            ),
            (
                "postgresql://gw:s3cret-pw@127.0.0.1:5432/test?connect_timeout=5",
                ["connect_timeout= is not one asyncpg understands", "asyncpg calls it timeout"],
            ),
            (
                "postgresql://gw:s3cret-pw@127.0.0.1:5432/test?application_name=gw",
                ["application_name= is not one asyncpg understands", "it takes"],
            ),
            ("postgresql://gw:s3cret-pw@127.0.0.1:5432/test?ssl=on", ["ssl=on is not an SSL"]),
            ("postgresql://gw:s3cret-pw@127.0.0.1:5432/test?timeout=0", ["timeout=0 is not"]),
            (
                "postgresql://gw:s3cret-pw@127.0.0.1:5432",
                ["names no database", "postgresql://user:password@host:5432/NAME"],
            ),
            ("postgresql://127.0.0.1:5432/test", ["names no user"]),
            ("sqlite://somehost/store.db", ["a SQLite URL names a file, not a host"]),
            ("postgresql://gw:s3cret-pw@", ["names no database"]),
        ],
    )
    def test_a_url_asyncpg_cannot_use(
        self, env: dict[str, str], url: str, words: list[str]
    ) -> None:
        for command in (["migrate"], ["serve"]):
            line = refused(
                run(with_(env, FNG_GATEWAY_DATABASE_URL=url), *command),
                "invalid setting FNG_GATEWAY_DATABASE_URL",
                *words,
            )
            assert "s3cret-pw" not in line

    def test_a_port_that_never_answers_is_reported_in_seconds(
        self, env: dict[str, str], silent_port: int
    ) -> None:
        url = f"postgresql://gw@127.0.0.1:{silent_port}/fng"
        started = time.monotonic()
        refused(
            run(with_(env, FNG_GATEWAY_DATABASE_URL=url), "schools", "list"),
            f"the PostgreSQL server at 127.0.0.1:{silent_port} did not answer within 10 seconds",
        )
        assert time.monotonic() - started < 30

    @pytest.mark.parametrize("command", COMMANDS)
    def test_the_url_sets_the_connect_timeout(
        self, env: dict[str, str], silent_port: int, command: list[str]
    ) -> None:
        url = f"postgresql://gw@127.0.0.1:{silent_port}/fng?timeout=1.5"
        started = time.monotonic()
        refused(
            run(with_(env, FNG_GATEWAY_DATABASE_URL=url), *command),
            "did not answer within 1.5 seconds",
            "check that PostgreSQL (not another service) listens there",
        )
        assert time.monotonic() - started < 20

    def test_redis_is_not_postgresql(self, env: dict[str, str]) -> None:
        require_service("Redis", "127.0.0.1", 6379)
        url = "postgresql://gw@127.0.0.1:6379/fng?timeout=2"
        refused(
            run(with_(env, FNG_GATEWAY_DATABASE_URL=url), "migrate"),
            "the PostgreSQL server at 127.0.0.1:6379 did not answer within 2 seconds",
        )

    def test_verify_full_without_a_root_certificate(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        require_service("PostgreSQL", "127.0.0.1", 5432)
        url = f"{POSTGRES_URL}?ssl=verify-full"
        home = without(with_(env, HOME=str(tmp_path)), "PGSSLROOTCERT")
        refused(
            run(with_(home, FNG_GATEWAY_DATABASE_URL=url), "schools", "list"),
            "cannot verify the server (root certificate file",
            "PGSSLROOTCERT, or write ssl=require",
        )

    def test_options_asyncpg_takes_are_taken(self, env: dict[str, str], postgres_url: str) -> None:
        url = f"{postgres_url}?ssl=prefer&timeout=5"
        setting = with_(env, FNG_GATEWAY_DATABASE_URL=url)
        for command in (["migrate"], ["schools", "list"]):
            succeeded(run(setting, *command))


class TestRedisUrls:
    """Finding 5."""

    @pytest.mark.parametrize(
        ("url", "words"),
        [
            ("notaurl", ["not a Redis URL: write redis://host:6379/0, or rediss://"]),
            ("http://127.0.0.1:6379/0", ["http:// is not Redis"]),
            ("redis://127.0.0.1:6379/abc", ["the database 'abc' in its path is not a number"]),
            ("redis://127.0.0.1:99999/0", ["its port is not a port number"]),
            ("redis://:s3cret-pw@/0", ["it names no host"]),
            ("redis://127.0.0.1:6379/0?ssl_cert_reqs=none", ["is for TLS", "rediss://"]),
            ("redis://127.0.0.1:6379/0?pool_max_size=3", ["pool_max_size= is not one"]),
            ("redis://127.0.0.1:6379/0?socket_timeout=soon", ["socket_timeout"]),
        ],
    )
    def test_refused(self, env: dict[str, str], url: str, words: list[str]) -> None:
        line = refused(
            run(with_(env, FNG_GATEWAY_REDIS_URL=url), "serve"),
            "invalid setting FNG_GATEWAY_REDIS_URL",
            *words,
        )
        assert "s3cret-pw" not in line

    def test_rediss_is_taken(self, env: dict[str, str]) -> None:
        """TLS: the gateway serves (its cache degraded while no Redis answers there)."""
        url = f"rediss://gw:s3cret-pw@127.0.0.1:{closed_port()}/1?ssl_cert_reqs=required"
        serve_starts(with_(env, FNG_GATEWAY_REDIS_URL=url))

    def test_rediss_speaks_tls(self) -> None:
        from redis.asyncio.connection import SSLConnection

        cache = create_cache("rediss://gw:pw@redis.internal:6380/2")
        pool = cache.client.connection_pool
        assert pool.connection_class is SSLConnection
        assert pool.connection_kwargs["host"] == "redis.internal"
        assert pool.connection_kwargs["port"] == 6380
        assert pool.connection_kwargs["db"] == 2
        assert pool.connection_kwargs["username"] == "gw"

    def test_an_empty_variable_means_no_redis(self, env: dict[str, str]) -> None:
        succeeded(run(with_(env, FNG_GATEWAY_REDIS_URL=""), "schools", "list"))


class TestValuesThatAreNotJson:
    """Finding 6."""

    @pytest.mark.parametrize(
        "value",
        ["10.0.0.0/8", "10.0.0.0/8,192.168.0.0/16", "10.0.0.0/8, fd00::/8", '["10.0.0.0/8"]'],
    )
    def test_trusted_proxies_as_json_or_separated_by_commas(
        self, env: dict[str, str], value: str
    ) -> None:
        succeeded(run(with_(env, FNG_GATEWAY_TRUSTED_PROXIES=value), "schools", "list"))

    @pytest.mark.parametrize("value", ['["not-a-net"]', "10.0.0.0/8,not-a-net", "[10.0.0.0/8"])
    def test_a_trusted_proxy_that_is_not_a_network(self, env: dict[str, str], value: str) -> None:
        refused(
            run(with_(env, FNG_GATEWAY_TRUSTED_PROXIES=value), "serve"),
            "invalid setting FNG_GATEWAY_TRUSTED_PROXIES",
        )

    def test_a_trusted_proxy_in_the_config_file(self, env: dict[str, str], tmp_path: Path) -> None:
        config = tmp_path / "gateway.toml"
        config.write_text('trusted_proxies = ["10.0.0.0/8", "not-a-net"]\n')
        refused(
            run(with_(env, FNG_GATEWAY_CONFIG_FILE=str(config)), "serve"),
            "'not-a-net' is not an IP address or network",
        )

    @pytest.mark.parametrize(
        ("variable", "example"),
        [
            ("FNG_GATEWAY_FNG", "FNG_GATEWAY_FNG__BASE_URL"),
            ("FNG_GATEWAY_FNG__PATHS", "FNG_GATEWAY_FNG__PATHS__GET_BANKS"),
            ("FNG_GATEWAY_SHUTDOWN", "FNG_GATEWAY_SHUTDOWN__DRAIN_SECONDS"),
        ],
    )
    def test_a_whole_group_that_is_not_json(
        self, env: dict[str, str], variable: str, example: str
    ) -> None:
        for command in (["serve"], ["schools", "list"]):
            refused(
                run(with_(env, **{variable: "notjson"}), *command),
                f"{variable} would set a whole group of settings at once",
                f"with a variable of its own (such as {example})",
            )

    def test_a_whole_group_as_json_is_taken(self, env: dict[str, str]) -> None:
        group = '{"base_url": "http://127.0.0.1:9/fng", "timeout_seconds": 5}'
        succeeded(run(with_(env, FNG_GATEWAY_FNG=group), "schools", "list"))


class TestBinaryFiles:
    """Finding 7."""

    def test_a_config_file_that_is_not_text(self, env: dict[str, str], tmp_path: Path) -> None:
        config = tmp_path / "gateway.toml"
        config.write_bytes(b"\xff\xfe\x00binary\x80\x81")
        refused(
            run(with_(env, FNG_GATEWAY_CONFIG_FILE=str(config)), "serve"),
            f"the config file {config} is not UTF-8 text",
        )

    @pytest.mark.parametrize("command", [["serve"], ["schools", "list"]])
    def test_a_master_keys_file_that_is_not_text(
        self, env: dict[str, str], tmp_path: Path, command: list[str]
    ) -> None:
        keys = tmp_path / "master-keys"
        keys.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
        result = run(
            with_(without(env, "FNG_GATEWAY_MASTER_KEYS"), FNG_GATEWAY_MASTER_KEYS_FILE=str(keys)),
            *command,
        )
        refused(result, f"the master keys file {keys} is not UTF-8 text")


class TestBounds:
    """Finding 8: every duration and count has a sane upper bound, and is finite."""

    @pytest.mark.parametrize(
        ("variable", "value", "words"),
        [
            ("FNG_GATEWAY_SHUTDOWN__DRAIN_SECONDS", "inf", "finite"),
            ("FNG_GATEWAY_SHUTDOWN__DRAIN_SECONDS", "1e12", "less than or equal to 600"),
            ("FNG_GATEWAY_SHUTDOWN__GRACE_SECONDS", "nan", "finite"),
            ("FNG_GATEWAY_KEYS__RETIRE_GRACE_SECONDS", "1e300", "less than or equal"),
            ("FNG_GATEWAY_KEYS__PASSWORD_OVERLAP_SECONDS", "inf", "finite"),
            ("FNG_GATEWAY_LEDGER__LEASE_SECONDS", "-inf", "finite"),
            ("FNG_GATEWAY_AUTH__MAX_FAILURES", "10000000000", "less than or equal"),
            ("FNG_GATEWAY_MASTER_KEYS_RELOAD_SECONDS", "1e9", "less than or equal"),
            ("FNG_GATEWAY_EPROC__MAX_BACKOFF_SECONDS", "infinity", "finite"),
        ],
    )
    def test_refused(self, env: dict[str, str], variable: str, value: str, words: str) -> None:
        for command in (["serve"], ["schools", "list"]):
            refused(run(with_(env, **{variable: value}), *command), variable, words)


class TestMasterKeysAndEventLoop:
    """Finding 9."""

    def test_both_master_keys_and_a_file(self, env: dict[str, str], tmp_path: Path) -> None:
        keys = tmp_path / "master-keys"
        keys.write_text(env["FNG_GATEWAY_MASTER_KEYS"] + "\n")
        for command in (["serve"], ["schools", "list"]):
            refused(
                run(with_(env, FNG_GATEWAY_MASTER_KEYS_FILE=str(keys)), *command),
                "FNG_GATEWAY_MASTER_KEYS and FNG_GATEWAY_MASTER_KEYS_FILE are both set",
                "unset one of them",
            )

    def test_an_empty_variable_counts_as_unset(self, env: dict[str, str], tmp_path: Path) -> None:
        keys = tmp_path / "master-keys"
        keys.write_text(env["FNG_GATEWAY_MASTER_KEYS"] + "\n")
        setting = with_(env, FNG_GATEWAY_MASTER_KEYS="", FNG_GATEWAY_MASTER_KEYS_FILE=str(keys))
        succeeded(run(setting, "schools", "list"))
        serve_starts(setting)

    def test_no_key_at_all_still_says_so(self, env: dict[str, str]) -> None:
        refused(
            run(with_(env, FNG_GATEWAY_MASTER_KEYS="  "), "schools", "list"),
            "no master key is configured",
        )

    @pytest.mark.parametrize("command", [["serve"], ["migrate"], ["schools", "list"]])
    def test_an_unknown_event_loop(self, env: dict[str, str], command: list[str]) -> None:
        refused(
            run(with_(env, FNG_GATEWAY_EVENT_LOOP="bogus"), *command),
            "FNG_GATEWAY_EVENT_LOOP=bogus is not an event loop the gateway runs",
            "uvloop or asyncio",
        )

    @pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
    def test_the_event_loops_it_runs(self, env: dict[str, str], loop: str) -> None:
        succeeded(run(with_(env, FNG_GATEWAY_EVENT_LOOP=loop), "schools", "list"))


class TestConfigFilePath:
    """Finding 10."""

    @pytest.mark.parametrize("command", [["serve"], ["schools", "list"]])
    def test_a_directory(self, env: dict[str, str], tmp_path: Path, command: list[str]) -> None:
        refused(
            run(with_(env, FNG_GATEWAY_CONFIG_FILE=str(tmp_path)), *command),
            f"the config file {tmp_path} (FNG_GATEWAY_CONFIG_FILE) is a directory",
        )

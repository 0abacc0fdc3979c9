"""Settings, master keys, stores and sandbox options that used to be taken in silence, or to
end in a traceback: each is refused with one line saying what is wrong and what to do (exit 4
for a setting, a store or a master key, 2 for the command line). Real commands, as
test_cli_failures runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.integration.test_cli_failures import refused, run, serve_starts
from tests.integration.test_config_failures import as_unprivileged, sqlite_url
from tests.support import COMMAND, cli_environment, info_written

USAGE = 2


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(
        tmp_path, FNG_GATEWAY_LOG_FORMAT="text", FNG_GATEWAY_EPROC__ENABLED="false"
    )


def usage(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == USAGE, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in line, (word, line)
    return line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestTheAddress:
    @pytest.mark.parametrize("host", ["", "   "])
    def test_an_empty_host_setting_is_refused_naming_it(
        self, env: dict[str, str], host: str
    ) -> None:
        line = refused(run({**env, "FNG_GATEWAY_HOST": host}, "serve", "--port", "0"))
        assert "FNG_GATEWAY_HOST" in line and "every interface" in line
        assert "--host" not in line

    def test_an_empty_host_in_the_config_file_is_refused(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        config = tmp_path / "gateway.toml"
        config.write_text('host = ""\n')
        line = refused(
            run({**env, "FNG_GATEWAY_CONFIG_FILE": str(config)}, "serve", "--port", "0"),
            "host in",
        )
        assert "--host" not in line


class TestMasterKeys:
    @pytest.mark.parametrize("suffix", [";junk", "junk!!", ",junk"])
    def test_a_key_with_more_after_it_is_refused_by_position(
        self, env: dict[str, str], suffix: str
    ) -> None:
        key = Fernet.generate_key().decode()
        line = refused(
            run({**env, "FNG_GATEWAY_MASTER_KEYS": key + suffix}, "serve", "--port", "0"),
            "is not a Fernet key",
        )
        assert "master key 1 of 1" in line or "master key 2 of 2" in line
        assert key not in line and "junk" not in line
        if suffix.startswith(";"):
            assert "commas" in line

    def test_keys_that_open_none_of_the_stored_secrets_are_refused(
        self, env: dict[str, str]
    ) -> None:
        token_url = "https://id.example/connect/token"
        added = subprocess.run(
            [
                COMMAND,
                "vendors",
                "add",
                "v",
                "--token-url",
                token_url,
                "--client-id",
                "v",
                "--secret-stdin",
            ],
            input="a vendor secret",
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
        )
        assert added.returncode == 0, added.stderr
        other = Fernet.generate_key().decode()
        line = refused(
            run({**env, "FNG_GATEWAY_MASTER_KEYS": other}, "serve", "--port", "0"),
            "decrypt none of the",
            "stored under",
        )
        assert other not in line
        # The old key after a new one: some secrets open, the gateway starts.
        serve_starts(
            {**env, "FNG_GATEWAY_MASTER_KEYS": f"{other},{env['FNG_GATEWAY_MASTER_KEYS']}"}
        )

    def test_new_key_reads_the_settings_as_every_command(self, env: dict[str, str]) -> None:
        refused(run({**env, "FNG_GATEWAY_CONFIG_FILE": "/nonexistent"}, "secrets", "new-key"))
        refused(run({**env, "FNG_GATEWAY_LOG_LEVL": "DEBUG"}, "secrets", "new-key"), "LOG_LEVEL")


class TestUpstreamSettings:
    @pytest.mark.parametrize(
        "url", ["", "localhost:8081/fng", "ftp://x/fng", "http://gw:s3cret-pw@fng.example/fng"]
    )
    def test_a_base_url_that_is_no_http_url_is_refused(self, env: dict[str, str], url: str) -> None:
        line = refused(
            run({**env, "FNG_GATEWAY_FNG__BASE_URL": url}, "serve", "--port", "0"),
            "FNG_GATEWAY_FNG__BASE_URL",
        )
        assert "s3cret-pw" not in line

    @pytest.mark.parametrize(
        "variable",
        [
            "FNG_GATEWAY_FNG__PATHS__GET_BANKS",
            "FNG_GATEWAY_FNG__HEADERS__PSK",
            "FNG_GATEWAY_SIMSID__SCOPE",
        ],
    )
    def test_an_empty_path_header_or_scope_is_refused(
        self, env: dict[str, str], variable: str
    ) -> None:
        refused(run({**env, variable: ""}, "serve", "--port", "0"), variable)

    def test_a_header_name_with_a_space_is_refused(self, env: dict[str, str]) -> None:
        refused(
            run({**env, "FNG_GATEWAY_FNG__HEADERS__PSK": "X PSK"}, "serve", "--port", "0"),
            "not an HTTP header name",
        )


class TestSqlite:
    @pytest.mark.parametrize("query", ["?mode=ro", "?foo=bar"])
    def test_query_options_are_refused(
        self, env: dict[str, str], tmp_path: Path, query: str
    ) -> None:
        url = f"sqlite:///{tmp_path / 'x.db'}{query}"
        line = refused(run({**env, "FNG_GATEWAY_DATABASE_URL": url}, "migrate"), "takes no options")
        assert query.strip("?").split("=")[0] + "=" in line
        assert "SAWarning" not in line

    def test_a_symlink_loop(self, env: dict[str, str], tmp_path: Path) -> None:
        (tmp_path / "a.db").symlink_to(tmp_path / "b.db")
        (tmp_path / "b.db").symlink_to(tmp_path / "a.db")
        env = {**env, "FNG_GATEWAY_DATABASE_URL": sqlite_url(tmp_path / "a.db")}
        refused(run(env, "serve", "--port", "0"), "leads back to itself")

    def test_a_file_name_too_long(self, env: dict[str, str], tmp_path: Path) -> None:
        env = {**env, "FNG_GATEWAY_DATABASE_URL": sqlite_url(tmp_path / ("a" * 300))}
        refused(run(env, "serve", "--port", "0"), "too long")


class TestSandboxOptions:
    def test_one_port_for_both_is_a_usage_error(self, env: dict[str, str]) -> None:
        port = str(free_port())
        usage(
            run(env, "sandbox", "--port", port, "--sandbox-port", port),
            "--sandbox-port",
            "different",
        )

    def test_an_empty_info_file_name(self, env: dict[str, str]) -> None:
        usage(run(env, "sandbox", "--info-file", ""), "the file name is empty")

    def test_an_info_file_this_user_may_not_write(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        info = tmp_path / "info.json"
        info.write_text("")
        info.chmod(0o444)
        result = subprocess.run(
            as_unprivileged([COMMAND, "sandbox", "--port", "0", "--info-file", str(info)]),
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
        )
        usage(result, "may not write", str(info))

    def test_the_port_setting_is_honoured(self, env: dict[str, str], tmp_path: Path) -> None:
        port = free_port()
        info = tmp_path / "info.json"
        process = subprocess.Popen(
            [COMMAND, "sandbox", "--sandbox-port", "0", "--info-file", str(info)],
            env={**env, "FNG_GATEWAY_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert info_written(info, process)["gateway_url"] == f"http://127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
        assert os.path.exists(info)

"""The container image, built with podman from the work tree, runs the gateway as a non-root
user on a read-only root filesystem, configured by the environment alone.

What these tests need of the machine, and how the image is built: see ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from lxml import etree

from gateway import ns
from gateway.cli.quickstart import Registered, register_demo
from gateway.store import create_store
from gateway.store.migrate import upgrade
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.conftest import Sandbox
from tests.container.conftest import ROOT, Podman, free_port
from tests.support import Auth, operation, soap_call

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

UID = 10001
DATA = "/var/lib/fng-gateway"


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


class TestImage:
    def test_configuration(self, podman: Podman, image: str) -> None:
        """The image runs ``fng-gateway serve`` in exec form as 10001:10001, listens on every
        interface on 8080, checks /healthz, writes no bytecode and carries the OCI labels."""
        inspected = json.loads(podman("image", "inspect", image).stdout)[0]
        config = inspected["Config"]
        project = pyproject()["project"]
        assert config["User"] == f"{UID}:{UID}"
        assert (config["Entrypoint"], config["Cmd"]) == (["fng-gateway"], ["serve"])
        assert list(config["ExposedPorts"]) == ["8080/tcp"]
        assert config["WorkingDir"] == DATA
        env = dict(item.split("=", 1) for item in config["Env"])
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert env["FNG_GATEWAY_HOST"] == "0.0.0.0"
        assert env["FNG_GATEWAY_DATABASE_URL"] == f"sqlite+aiosqlite:///{DATA}/fng-gateway.db"
        assert env["PATH"].startswith("/opt/venv/bin:")
        health = inspected["Healthcheck"]["Test"]  # kept: the image was built in docker format
        assert health[0] == "CMD" and "/healthz" in " ".join(health)
        assert config["Labels"]["org.opencontainers.image.title"] == project["name"]
        assert config["Labels"]["org.opencontainers.image.description"] == project["description"]
        assert config["Labels"]["org.opencontainers.image.licenses"] == project["license"]

    def test_nothing_but_the_installed_gateway(self, podman: Podman, image: str) -> None:
        """The build leaves no installer in the virtualenv, no compiler, source tree, wheel or
        pip cache; the gateway and its schemas are installed in /opt/venv, compiled. (What the
        base image brings is the base's: python:3.11-slim has a pip of its own in /usr/local.)"""
        script = (
            "for tool in gcc cc make curl; do command -v $tool; done; "
            "python3 -m pip --version >/dev/null 2>&1 && echo pip-in-venv; "
            "ls -d /src /root/.cache /tmp/wheels /opt/venv/bin/pip* 2>/dev/null; "
            "find /opt /root /tmp /var/lib/fng-gateway -name '*.whl' 2>/dev/null; "
            "python3 -c 'import gateway, pathlib; "
            'print(sorted(p.name for p in (pathlib.Path(gateway.__file__).parent / "_schemas")'
            ".iterdir()))'; "
            "ls /opt/venv/lib/python3*/site-packages/gateway/__pycache__ | grep -c pyc"
        )
        run = ["run", "--rm", "--network", "none", "--read-only", "--entrypoint", "sh"]
        done = podman(*run, image, "-c", script)
        *unwanted, schemas, compiled = done.stdout.splitlines()
        assert unwanted == []
        assert schemas == str(sorted(p.name for p in (ROOT / "schemas").iterdir() if p.is_dir()))
        assert int(compiled) > 0

    async def test_serves_read_only_as_non_root(
        self,
        podman: Podman,
        image: str,
        sandbox: Sandbox,
        tmp_path: Path,
        http: aiohttp.ClientSession,
    ) -> None:
        """On a read-only root with only /tmp and the data volume writable, as 10001 with no
        capabilities, the image's ``serve`` is ready, serves the WSDL and a SOAP call through
        the sandbox, passes its own health check, and stops cleanly on SIGTERM."""
        data = tmp_path / "data"
        data.mkdir()
        database_url = f"sqlite+aiosqlite:///{data / 'fng-gateway.db'}"  # the image's default
        key = Fernet.generate_key()
        await upgrade(database_url)
        store = create_store(database_url)
        demo = await register_demo(TenancyAdmin(store, SecretBox([key])), sandbox.demo, sandbox.url)
        await store.close()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "FNG_GATEWAY_MASTER_KEYS": key.decode(),
            "FNG_GATEWAY_PORT": str(port),
            # The container shares the machine's network: listen on its loopback only.
            "FNG_GATEWAY_HOST": "127.0.0.1",
            "FNG_GATEWAY_FNG__BASE_URL": f"{sandbox.url}/fng",
            "FNG_GATEWAY_EPROC__ENABLED": "false",
        }
        name = f"fng-gateway-test-{uuid.uuid4().hex[:12]}"
        run = ["run", "--detach", "--name", name, "--network", "host"]
        # Writable: /tmp and the data volume only (chowned to the container's user by :U).
        run += ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,nosuid,size=64m"]
        run += ["--volume", f"{data}:{DATA}:U"]
        run += ["--user", f"{UID}:{UID}", "--cap-drop=all", "--security-opt=no-new-privileges"]
        # The health check runs when asked to, not from a systemd timer (there is none here).
        run += ["--health-interval", "disable"]
        run += [f"--env={variable}" for variable in env]  # the values: from podman's environment
        await podman.call(*run, image, env=env)
        try:
            await self._check_serving(podman, name, url, http, demo_auth(demo))
            started = time.monotonic()
            await podman.call("stop", "--time", "30", name, timeout=60)
            stopped = json.loads((await podman.call("inspect", name)).stdout)[0]["State"]
            # SIGTERM reached the gateway as PID 1 and it exited by itself, before the SIGKILL.
            assert stopped["ExitCode"] == 0, stopped
            assert time.monotonic() - started < 30
        except BaseException:
            logs = await podman.call("logs", name, check=False)
            print(f"--- container log ---\n{logs.stdout[-8000:]}{logs.stderr[-8000:]}")
            raise
        finally:
            await podman.call("rm", "--force", name, check=False)

    async def _check_serving(
        self, podman: Podman, name: str, url: str, http: aiohttp.ClientSession, auth: Auth
    ) -> None:
        await wait_ready(podman, name, url, http)
        async with http.get(f"{url}/soap/ejournal?wsdl") as response:
            assert response.status == 200
            wsdl = etree.fromstring(await response.read())
        assert wsdl.tag == f"{{{ns.WSDL}}}definitions"
        assert wsdl.get("targetNamespace") == ns.EJOURNAL
        locations = wsdl.xpath("//@location")
        assert isinstance(locations, list)
        assert f"{url}/soap/ejournal" in locations  # the address the client used
        # Registry from the mounted SQLite file, token from SIMS ID and banks from FNG (both the
        # sandbox on the machine's loopback), the master key from the environment.
        answer = await soap_call(
            http, f"{url}/soap/ejournal", operation("GetBanks", systemIdentifier="TPPCS"), auth
        )
        assert (answer.status, answer.part("isSuccess")) == (200, "true"), answer.raw

        # The image's own HEALTHCHECK, run inside the container.
        health = await podman.call("healthcheck", "run", name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        uid = (await podman.call("exec", name, "id", "-u")).stdout.strip()
        assert uid == str(UID)
        status = (await podman.call("exec", name, "cat", "/proc/1/status")).stdout
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert uids == [str(UID)] * 4  # real, effective, saved, filesystem
        cmdline = (await podman.call("exec", name, "cat", "/proc/1/cmdline")).stdout
        assert cmdline.split("\0")[1:3] == ["/opt/venv/bin/fng-gateway", "serve"]  # exec form
        probe = "touch /opt/venv/probe && echo root; touch /tmp/probe && echo tmp; "
        probe += f"touch {DATA}/probe && echo data"
        writable = await podman.call("exec", name, "sh", "-c", probe, check=False)
        assert writable.stdout.split() == ["tmp", "data"], writable.stdout + writable.stderr
        assert "Read-only file system" in writable.stderr


def demo_auth(demo: Registered) -> Auth:
    return Auth(demo.username, demo.password, demo.database_key)


async def wait_ready(podman: Podman, name: str, url: str, http: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{url}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        state = json.loads((await podman.call("inspect", name)).stdout)[0]["State"]
        assert state["Running"], f"the container stopped: {state}"
        await asyncio.sleep(0.5)
    raise AssertionError("the container's /readyz did not answer 200 in 90 s")

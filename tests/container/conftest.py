"""podman as these machines run it, and the image built from the work tree, for the tests
of this folder.

They need podman, runc and a base image: ``localhost/base-python:bookworm`` (made once per
machine by ``.ci/base-image``, from Debian's packages, since no registry image can be pulled
here), or the image named by ``FNG_TEST_BASE_IMAGE``. Without them they skip, except under
``CI=true``, where they fail. The image is built once per test session, whatever the number
of xdist workers, and from podman's layer cache when nothing it is made of changed.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.conftest import CI

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("FNG_TEST_BASE_IMAGE", "localhost/base-python:bookworm")
TAG = "localhost/fng-gateway:test"
# One build at a time on this machine: xdist workers and concurrent test sessions alike.
BUILD_LOCK = Path(tempfile.gettempdir()) / "fng-gateway-image-build.lock"
# The CA bundle of a host whose way to the package index is a TLS-inspecting proxy, given to
# pip in the build stage only (see the Dockerfile's PIP_CERT).
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def unavailable(reason: str) -> NoReturn:
    if CI:
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


class Podman:
    """podman as it works on these machines, whose limits and cgroups trip over its defaults:
    runc, cgroupfs and no default ulimits."""

    def __init__(self, executable: str, runtime: str, conf: Path) -> None:
        self.command = [executable, "--runtime", runtime, "--cgroup-manager", "cgroupfs"]
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.command, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args[:2])} … exited {done.returncode}:\n{done.stderr[-4000:]}"
            )
        return done

    async def call(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """The same, off the event loop (which serves the sandbox the container calls)."""
        return await asyncio.to_thread(self, *args, **kwargs)

    def build(self, log: Path) -> str:
        """Build the Dockerfile on the base image; the build's output goes to ``log``."""
        iidfile = log.with_suffix(".iid")
        args = ["build", "--format", "docker"]  # the OCI format has no HEALTHCHECK
        args += ["--layers", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
        ca = next((path for path in HOST_CA_BUNDLES if Path(path).is_file()), None)
        if ca is not None:
            args += ["--volume", f"{ca}:/run/build-ca.crt:ro"]
            args += ["--build-arg", "PIP_CERT=/run/build-ca.crt"]
        args += ["--iidfile", str(iidfile), "--tag", TAG, str(ROOT)]
        with log.open("w") as output:
            done = subprocess.run(
                [*self.command, *args],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=540,
                check=False,
            )
        assert done.returncode == 0, f"podman build failed:\n{log.read_text()[-6000:]}"
        # The images this tag named before are dangling now; their build-stage layers, which
        # carry no label, stay as the cache of the next build.
        self("image", "prune", "--force", "--filter", "label=org.opencontainers.image.title")
        return iidfile.read_text().strip()


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    executable = shutil.which("podman")
    runtime = shutil.which("runc") or next(
        (path for path in ("/usr/sbin/runc", "/usr/bin/runc") if Path(path).exists()), None
    )
    if executable is None or runtime is None:
        unavailable("podman and runc are not installed (apt-get install podman runc)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    podman = Podman(executable, runtime, conf)
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        unavailable(f"the base image {BASE_IMAGE} is missing (.ci/base-image makes it)")
    return podman


@pytest.fixture(scope="session")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image's id. The first worker to take the lock builds; the others find its id."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # this run's, common to its workers
    built = shared / "container-image.id"
    with BUILD_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not built.exists():
                built.write_text(podman.build(shared / "container-build.log"))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return built.read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""Fixtures of the .NET library's tests: the library built once, C# programs compiled
against it and run with Mono, and the gateway run as a user runs it (``fng-gateway
sandbox``), one process per test.

Without Mono (``mcs``, ``mono``) the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from filelock import FileLock

from tests.support import info_written

CI = os.environ.get("CI") == "true"
ROOT = Path(__file__).parents[2]
LIBRARY = ROOT / "clients" / "dotnet"
HERE = Path(__file__).parent
JOURNAL = ROOT / "examples" / "PostJournal.xml"
COMMAND = str(Path(sys.executable).with_name("fng-gateway"))
#: The .NET Framework 4.5 reference assemblies: programs are built as 4.5 applications.
REFERENCES = Path("/usr/lib/mono/4.5-api")
#: Retries quick enough for tests: waits of 50, 100, 200 ms (plus up to a quarter).
QUICK = ("attempts=4", "delay=50", "maxdelay=200")
#: Proxy settings of the machine that must not reach the programs unless a test sets them.
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}


def require_mono() -> None:
    missing = [tool for tool in ("mcs", "mono") if shutil.which(tool) is None]
    if not missing:
        return
    message = f"{' and '.join(missing)} not found (install mono-devel)"
    if CI:
        pytest.fail(f"{message}; the .NET tests are required when CI=true")
    pytest.skip(message)


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The JSON lines a scenario printed."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    @property
    def step(self) -> dict[str, Any]:
        (only,) = self.steps
        return only


@dataclass(frozen=True)
class DotNet:
    """The built library and the scenario program, in a directory of their own."""

    directory: Path

    @property
    def dll(self) -> Path:
        return self.directory / "CSFMSEJournalInterface.dll"

    @property
    def scenarios(self) -> Path:
        return self.directory / "Scenarios.exe"

    async def compile(self, source: Path, exe: Path) -> None:
        """Compile a program against the library, as a .NET 4.5 application, with the library
        copied beside it."""
        await _check(_compile_command(source, exe, self.dll))
        if exe.parent != self.directory:
            shutil.copy(self.dll, exe.parent / self.dll.name)

    async def run(
        self, exe: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> Run:
        environment = {
            name: value
            for name, value in os.environ.items()
            if name.lower() not in _PROXY_VARIABLES
        }
        environment.update(env or {})
        process = await asyncio.create_subprocess_exec(
            "mono",
            str(exe),
            *args,
            cwd=cwd or exe.parent,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 150)
        assert process.returncode is not None
        return Run(process.returncode, stdout.decode(), stderr.decode())

    async def scenario(self, *args: str, env: dict[str, str] | None = None) -> Run:
        run = await self.run(self.scenarios, *args, env=env)
        assert run.returncode == 0, run
        return run


def _compile_command(source: Path, exe: Path, dll: Path) -> list[str]:
    references = [
        f"-r:{REFERENCES / name}" for name in ("mscorlib.dll", "System.dll", "System.Xml.dll")
    ]
    return [
        "mcs",
        "-noconfig",
        "-nostdlib",
        *references,
        f"-r:{dll}",
        "-nologo",
        f"-out:{exe}",
        str(source),
    ]


async def _check(command: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output.decode()


def _build(directory: Path) -> None:
    subprocess.run([str(LIBRARY / "build.sh"), str(directory)], check=True, capture_output=True)
    dll = directory / "CSFMSEJournalInterface.dll"
    exe = directory / "Scenarios.exe"
    subprocess.run(
        _compile_command(HERE / "Scenarios.cs", exe, dll), check=True, capture_output=True
    )


@pytest.fixture(scope="session")
def dotnet(tmp_path_factory: pytest.TempPathFactory) -> DotNet:
    """The library built with build.sh, once for the whole run (xdist workers share it)."""
    require_mono()
    if "PYTEST_XDIST_WORKER" not in os.environ:
        directory = tmp_path_factory.getbasetemp() / "dotnet"
        _build(directory)
        return DotNet(directory)
    shared = tmp_path_factory.getbasetemp().parent
    directory = shared / "dotnet"
    with FileLock(str(shared / "dotnet.lock")):
        if not (directory / "Scenarios.exe").exists():
            _build(directory)
    return DotNet(directory)


@dataclass
class GatewayProcess:
    """``fng-gateway sandbox``, as a user runs it, and what its info file says."""

    info: dict[str, Any]
    log: Path

    @property
    def url(self) -> str:
        return str(self.info["gateway_url"])

    @property
    def sandbox_url(self) -> str:
        return str(self.info["sandbox_url"])

    @property
    def database_key(self) -> str:
        return str(self.info["schools"][0]["database_key"])

    def account(self, server: str | None = None, database: str | None = None) -> list[str]:
        """The four values the constructor takes, as scenario arguments."""
        return [
            f"server={server or self.url}",
            f"database={database or self.database_key}",
            f"username={self.info['account']['username']}",
            f"password={self.info['account']['password']}",
        ]

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{self.sandbox_url}/_sandbox/{path}", json=body) as response,
        ):
            assert response.status < 400, await response.text()
            return await response.json(content_type=None)

    async def faults(self, *rules: dict[str, Any]) -> None:
        await self.control("PUT", "faults", {"rules": list(rules)})

    async def clear_faults(self) -> None:
        await self.control("DELETE", "faults")

    async def submissions(self) -> list[str]:
        """The submission ids FNG holds, one entry per posted journal."""
        return [journal["submission_id"] for journal in await self.control("GET", "journals")]

    async def audit_messages(self) -> list[str]:
        return [note["message"] for note in await self.control("GET", "audit-messages")]


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[GatewayProcess]]]:
    """Starts ``fng-gateway sandbox --port 0`` (on ``host``), stopped with SIGTERM at the end."""
    processes: list[subprocess.Popen[bytes]] = []
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("FNG_GATEWAY_")
    }

    async def start(host: str = "127.0.0.1") -> GatewayProcess:
        index = len(processes)
        info_file, log = tmp_path / f"sandbox-{index}.json", tmp_path / f"sandbox-{index}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [COMMAND, "sandbox", "--port", "0", "--host", host, "--info-file", str(info_file)],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        processes.append(process)
        info = await asyncio.to_thread(info_written, info_file, process, log)
        return GatewayProcess(info, log)

    yield start
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


@pytest.fixture
async def gateway(
    start_gateway: Callable[..., Awaitable[GatewayProcess]],
) -> GatewayProcess:
    return await start_gateway()


def journal(directory: Path, submission: str = "0071", row_version: int = 1) -> Path:
    """Seed 001's sample journal (examples/PostJournal.xml) as submission ``submission``
    whose sections continue from row version ``row_version - 1``."""
    text = JOURNAL.read_text()
    text = text.replace('submissionID="0071"', f'submissionID="{submission}"')
    text = text.replace('lastRowVersion="1"', f'lastRowVersion="{row_version}"')
    path = directory / f"PostJournal-{submission}.xml"
    path.write_text(text)
    return path

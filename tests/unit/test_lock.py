"""The lock agrees with pyproject.toml.

``requirements/*.txt`` pin, with hashes, what the image and CI install: ``gateway.txt`` the
gateway's dependencies, ``build.txt`` the build backend (``build.in``), ``test.txt`` all of
them and the test tools. Each file must pin every requirement its inputs name, at a version
the requirement allows, and name as direct inputs exactly those requirements: a dependency
added, removed or narrowed in pyproject.toml without relocking fails here.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[2]
LOCKS = ROOT / "requirements"
PYPROJECT = "fng-gateway (pyproject.toml)"
BUILD_IN = "-r requirements/build.in"
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(?P<version>[^\s;\\]+)")


@dataclass
class Pin:
    version: Version
    hashes: int = 0
    via: set[str] = field(default_factory=set)


def read_lock(path: Path) -> dict[str, Pin]:
    """Each pinned package of a lock, by canonical name: its version, hash count, sources."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        pinned = _PIN.match(line)
        if pinned:
            current = Pin(Version(pinned["version"]))
            pins[canonicalize_name(pinned["name"])] = current
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            current.hashes += 1
        elif current is not None and line.strip().startswith("#"):
            source = line.strip().lstrip("#").strip()
            source = source.removeprefix("via").strip()
            if source:
                current.via.add(source)
    return pins


def pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def project_requirements(*extras: str) -> list[Requirement]:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    return [Requirement(name) for name in names]


def build_requirements() -> list[Requirement]:
    lines = (LOCKS / "build.in").read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


INPUTS = {
    "gateway.txt": {PYPROJECT: lambda: project_requirements()},
    "build.txt": {BUILD_IN: build_requirements},
    "test.txt": {PYPROJECT: lambda: project_requirements("test"), BUILD_IN: build_requirements},
}


def disagreements(path: Path, lock: str) -> list[str]:
    """Where the lock at ``path`` disagrees with the inputs of ``lock``; empty if nowhere."""
    pins = read_lock(path)
    found = [] if pins else [f"{lock} pins nothing"]
    for source, requirements in INPUTS[lock].items():
        wanted = {canonicalize_name(r.name): r for r in requirements()}
        direct = {name for name, pin in pins.items() if source in pin.via}
        found += [f"{lock} lacks {name}, asked for by {source}" for name in set(wanted) - direct]
        found += [f"{lock} keeps {name}, no longer in {source}" for name in direct - set(wanted)]
        found += [
            f"{lock} pins {name} {pins[name].version}, outside {requirement}"
            for name, requirement in wanted.items()
            if name in pins
            and not requirement.specifier.contains(pins[name].version, prereleases=True)
        ]
    found += [f"{lock} pins {name} without a hash" for name, pin in pins.items() if not pin.hashes]
    return found


@pytest.mark.parametrize("lock", sorted(INPUTS))
def test_the_lock_pins_what_its_inputs_ask_for(lock: str) -> None:
    assert disagreements(LOCKS / lock, lock) == [], "relock: see the README's 'Tests' section"


def test_the_build_lock_builds_what_pyproject_names_as_its_backend() -> None:
    system = pyproject()["build-system"]
    assert isinstance(system, dict)
    backend = {canonicalize_name(Requirement(r).name): str(r) for r in system["requires"]}
    locked = {canonicalize_name(r.name): str(r) for r in build_requirements()}
    assert backend.items() <= locked.items()


def test_a_stale_lock_is_caught(tmp_path: Path) -> None:
    """The check fails on a lock that no longer matches pyproject.toml."""
    text = (LOCKS / "gateway.txt").read_text(encoding="utf-8")
    stale = tmp_path / "gateway.txt"
    stale.write_text(
        re.sub(r"^aiohttp==\S+", "aiohttp==3.0.0", text, flags=re.MULTILINE).replace(
            "    #   fng-gateway (pyproject.toml)\n    #   authlib", "    #   authlib"
        ),
        encoding="utf-8",
    )
    found = disagreements(stale, "gateway.txt")
    assert "gateway.txt pins aiohttp 3.0.0, outside aiohttp<4,>=3.12" in found
    assert any(problem.startswith("gateway.txt lacks ") for problem in found), found

"""The chart rendered by a real helm: ``helm`` runs it, ``Chart`` renders and reads manifests.

helm is fetched once when the machine has none (``helm_binary``). Without a network that
fetch fails and these tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.helm_binary import REPO_ROOT, HelmUnavailable, find_helm

CI = os.environ.get("CI") == "true"
CHART = REPO_ROOT / "helm" / "fng-gateway"
EVERYTHING = Path(__file__).parent / "values-everything.yaml"
RELEASE = "fng-gateway"
NAMESPACE = "schools"
#: The chart's lowest Kubernetes, the helm layer's, and helm 4.1's client version.
KUBE_VERSIONS = ("1.25.0", "1.33.0", "1.35.0")
DEFAULT_KUBE = "1.33.0"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1"
#: A valid Fernet key, for values that need one.
MASTER_KEY = "hZ0cdvuhzbgVcvPwAJ4nNf5DvN8ZNdoDDSMp3cxMmD8="
POSTGRES = "postgresql+asyncpg://gw:pw@db.example:5432/gw"


class HelmFailed(Exception):
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(result.stderr or result.stdout)
        self.stderr = result.stderr


@dataclass
class Chart:
    """Runs helm on the chart, isolated from the user's helm settings and clusters."""

    binary: Path
    home: Path
    _renders: dict[tuple[Any, ...], list[dict[str, Any]]] = field(default_factory=dict)

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        kubeconfig = self.home / "kubeconfig"
        kubeconfig.touch()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(kubeconfig),
            "NO_COLOR": "1",
        }
        return subprocess.run(
            [str(self.binary), *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    @staticmethod
    def _value_args(files: Sequence[Path], sets: Iterable[str]) -> list[str]:
        args: list[str] = []
        for path in files:
            args += ["-f", str(path)]
        for item in sets:
            args += ["--set", item]
        return args

    def template_result(
        self,
        files: Sequence[Path] = (),
        sets: Sequence[str] = (),
        *,
        kube_version: str = DEFAULT_KUBE,
        api_versions: Sequence[str] = (),
        release: str = RELEASE,
    ) -> subprocess.CompletedProcess[str]:
        args: list[str | Path] = ["template", release, CHART, "--namespace", NAMESPACE]
        args += ["--kube-version", kube_version, *self._value_args(files, sets)]
        for api in api_versions:
            args += ["--api-versions", api]
        return self.run(*args)

    def render(
        self,
        files: Sequence[Path] = (),
        sets: Sequence[str] = (),
        *,
        kube_version: str = DEFAULT_KUBE,
        api_versions: Sequence[str] = (),
        release: str = RELEASE,
    ) -> list[dict[str, Any]]:
        """The manifests ``helm template`` renders (cached: tests must not change them)."""
        key = (tuple(files), tuple(sets), kube_version, tuple(api_versions), release)
        if key not in self._renders:
            result = self.template_result(
                files, sets, kube_version=kube_version, api_versions=api_versions, release=release
            )
            if result.returncode != 0:
                raise HelmFailed(result)
            self._renders[key] = [d for d in yaml.safe_load_all(result.stdout) if d]
        return self._renders[key]

    def render_error(self, files: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
        """helm's complaint for values that must be refused."""
        result = self.template_result(files, sets)
        assert result.returncode != 0, f"helm template accepted {sets}"
        return result.stderr

    def lint(
        self, files: Sequence[Path] = (), sets: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        args: list[str | Path] = ["lint", "--strict", CHART, "--kube-version", DEFAULT_KUBE]
        return self.run(*args, *self._value_args(files, sets))

    def notes(self, files: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
        """NOTES.txt as `helm install` prints it (a client-side dry run: no cluster)."""
        args: list[str | Path] = [
            *("install", RELEASE, CHART, "--namespace", NAMESPACE, "--dry-run=client")
        ]
        result = self.run(*args, *self._value_args(files, sets))
        if result.returncode != 0:
            raise HelmFailed(result)
        return result.stdout.split("NOTES:", 1)[1]


def helm_chart(home: Path) -> Chart:
    """The chart on a real helm; without one the test skips, or fails when CI=true."""
    try:
        binary = find_helm()
    except HelmUnavailable as exc:
        if CI:
            pytest.fail(f"helm is required when CI=true: {exc}")
        pytest.skip(f"no helm: {exc}")
    return Chart(binary, home)


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Chart:
    return helm_chart(tmp_path_factory.mktemp("helm-home"))


def only(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one manifest of that kind (and name)."""
    found = [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} manifests named {name}"
    return found[0]


def kinds(manifests: list[dict[str, Any]]) -> list[str]:
    return sorted(m["kind"] for m in manifests)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = manifest["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The container's explicit variables: a value, or where it comes from."""
    return {
        e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifest).get("env", [])
    }

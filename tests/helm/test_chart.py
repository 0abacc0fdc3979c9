"""The chart lints, renders, and every manifest passes Kubernetes' schemas, strictly."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.helm import kube_schemas
from tests.helm.conftest import CHART, EVERYTHING, KUBE_VERSIONS, SERVICE_MONITOR_API, Chart, kinds

pytestmark = pytest.mark.helm

#: Values files and --set arguments: the defaults, every option, and the other branches
#: (every secret from existingSecret, master keys as a variable, SQLite without a claim, the
#: chart's ServiceAccount left out).
VALUES: dict[str, tuple[tuple[Path, ...], tuple[str, ...]]] = {
    "defaults": ((), ()),
    "everything": ((EVERYTHING,), ()),
    "others": (
        (),
        (
            "existingSecret=creds",
            "masterKeys.existingSecretKey=keys",
            "masterKeys.mountAsFile=false",
            "database.existingSecretKey=db",
            "redis.existingSecretKey=redis",
            "serviceAccount.create=false",
            "replicaCount=2",
            "networkPolicy.enabled=true",
            "ingress.enabled=true",
            "podDisruptionBudget.maxUnavailable=50%",
        ),
    ),
    "sqlite-emptydir": ((), ("database.sqlite.persistence.enabled=false",)),
}


class TestLint:
    @pytest.mark.parametrize("values", VALUES)
    def test_lint_passes(self, chart: Chart, values: str) -> None:
        """`helm lint --strict` finds nothing wrong, and no template's fail() fired (lint only
        logs those)."""
        result = chart.lint(*VALUES[values])
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout
        assert "fail" not in result.stderr, result.stderr
        assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


class TestRender:
    def test_defaults_render_one_sqlite_replica(self, chart: Chart) -> None:
        """The defaults: one pod on SQLite kept on a claim; no Job, no optional object."""
        assert kinds(chart.render()) == [
            "ConfigMap",
            "Deployment",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
        ]

    def test_everything_renders_every_kind(self, chart: Chart) -> None:
        """With every option on, each object of the chart is rendered."""
        manifests = chart.render([EVERYTHING], api_versions=[SERVICE_MONITOR_API])
        assert kinds(manifests) == [
            "ConfigMap",  # settings
            "ConfigMap",  # Grafana dashboard
            "Deployment",
            "HorizontalPodAutoscaler",
            "Ingress",
            "Job",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Secret",  # the chart's
            "Secret",  # the migrations hook's
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]


class TestKubernetesSchemas:
    @pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
    @pytest.mark.parametrize("values", VALUES)
    def test_every_manifest_validates(self, chart: Chart, values: str, kube_version: str) -> None:
        """Each rendered manifest is valid for that Kubernetes version, unknown fields refused;
        the ServiceMonitor against the chart's subset of its CRD."""
        files, sets = VALUES[values]
        manifests = chart.render(
            files, sets, kube_version=kube_version, api_versions=[SERVICE_MONITOR_API]
        )
        checked = {}
        for manifest in manifests:
            checked[manifest["kind"]] = kube_schemas.validate(manifest, kube_version)
        minor = ".".join(kube_version.split(".")[:2])
        builtin = {kind: how for kind, how in checked.items() if kind != "ServiceMonitor"}
        assert set(builtin.values()) == {f"Kubernetes {minor} (strict)"}

    def test_an_invalid_manifest_is_refused(self) -> None:
        """The check is not vacuous: an unknown field in a pod spec fails it."""
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "x"},
            "spec": {"ports": [{"port": 80, "targetPrt": 8080}]},
        }
        with pytest.raises(Exception, match="targetPrt"):
            kube_schemas.validate(service, "1.33.0")

    def test_an_invalid_service_monitor_is_refused(self) -> None:
        """The ServiceMonitor's own schema refuses an unknown field too."""
        monitor = {
            "apiVersion": SERVICE_MONITOR_API,
            "kind": "ServiceMonitor",
            "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {"selector": {}, "endpoints": [{"port": "http", "intervall": "30s"}]},
        }
        with pytest.raises(Exception, match="intervall"):
            kube_schemas.validate(monitor, "1.33.0")


def test_the_package_holds_the_schema_and_the_dashboard(chart: Chart, tmp_path: Path) -> None:
    """`helm package` makes an archive with the values schema and the dashboard in it."""
    result = chart.run("package", CHART, "--destination", tmp_path)
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("fng-gateway-*.tgz")
    with tarfile.open(archive) as packed:
        names = set(packed.getnames())
    assert {"fng-gateway/values.schema.json", "fng-gateway/dashboards/fng-gateway.json"} <= names

"""The pods: the restricted profile, the probes, shutdown timing, and where settings come from."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.conftest import (
    EVERYTHING,
    MASTER_KEY,
    POSTGRES,
    Chart,
    container,
    env_of,
    only,
)

pytestmark = pytest.mark.helm

VALUES = {"defaults": (), "everything": (EVERYTHING,)}


def _pods(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] in ("Deployment", "Job")]


class TestRestrictedProfile:
    @pytest.mark.parametrize("values", VALUES)
    def test_every_pod_is_restricted(self, chart: Chart, values: str) -> None:
        """The gateway's and the migrations Job's pods meet pod security "restricted": non-root
        as the image's user 10001, no privilege escalation, no capability, seccomp
        RuntimeDefault, and a read-only root filesystem with /tmp an emptyDir."""
        pods = _pods(chart.render(VALUES[values]))
        assert {p["kind"] for p in pods} == (
            {"Deployment"} if values == "defaults" else {"Deployment", "Job"}
        )
        for pod in pods:
            spec = pod["spec"]["template"]["spec"]
            assert spec["securityContext"] == {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            }
            security = container(pod)["securityContext"]
            assert security["runAsNonRoot"] is True
            assert security["runAsUser"] == 10001
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["privileged"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert "add" not in security["capabilities"]
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            assert {"name": "tmp", "mountPath": "/tmp"} in container(pod)["volumeMounts"]
            tmp = next(v for v in spec["volumes"] if v["name"] == "tmp")
            assert "emptyDir" in tmp
            assert not any("hostPath" in v for v in spec["volumes"])
            assert not spec.get("hostNetwork") and not spec.get("hostPID")
            assert spec["automountServiceAccountToken"] is False

    def test_identities_may_be_left_to_the_platform(self, chart: Chart) -> None:
        """On OpenShift the namespace picks the user: null leaves them out, the rest stays."""
        deployment = only(
            chart.render(
                sets=[
                    "securityContext.runAsUser=null",
                    "securityContext.runAsGroup=null",
                    "securityContext.fsGroup=null",
                ]
            ),
            "Deployment",
        )
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container(deployment)["securityContext"]["readOnlyRootFilesystem"] is True

    @pytest.mark.parametrize("values", VALUES)
    def test_service_links_are_off(self, chart: Chart, values: str) -> None:
        """Kubernetes would otherwise set FNG_GATEWAY_PORT=tcp://… for a Service named
        fng-gateway, which the gateway would read as its port and refuse."""
        for pod in _pods(chart.render(VALUES[values])):
            assert pod["spec"]["template"]["spec"]["enableServiceLinks"] is False


class TestProbes:
    @pytest.mark.parametrize("values", VALUES)
    def test_probes_ask_healthz_and_readyz(self, chart: Chart, values: str) -> None:
        """Startup and liveness ask /healthz (the process), readiness /readyz (the store, the
        cache, not draining), all on the port named http, 8080."""
        gateway = container(only(chart.render(VALUES[values]), "Deployment"))
        assert gateway["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert gateway["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    def test_readiness_waits_for_both_checks(self, chart: Chart) -> None:
        """/readyz runs two checks of up to 2 s each: its timeout leaves room for both."""
        gateway = container(only(chart.render(), "Deployment"))
        assert gateway["readinessProbe"]["timeoutSeconds"] >= 4

    def test_the_gateway_listens_on_every_address(self, chart: Chart) -> None:
        config = only(chart.render(), "ConfigMap")["data"]
        assert config["FNG_GATEWAY_HOST"] == "0.0.0.0"
        assert config["FNG_GATEWAY_PORT"] == "8080"


class TestShutdown:
    @pytest.mark.parametrize(
        ("sleep", "drain", "grace", "margin"), [(5, 5, 25, 5), (10, 5, 30, 5), (0, 1, 60, 3)]
    )
    def test_grace_period_covers_sleep_drain_grace_and_margin(
        self, chart: Chart, sleep: int, drain: int, grace: int, margin: int
    ) -> None:
        """terminationGracePeriodSeconds is the preStop sleep + the gateway's drain + its grace
        for calls in flight + a margin, and the gateway is told the same drain and grace."""
        manifests = chart.render(
            sets=[
                f"shutdown.preStopSleepSeconds={sleep}",
                f"shutdown.drainSeconds={drain}",
                f"shutdown.graceSeconds={grace}",
                f"shutdown.marginSeconds={margin}",
            ]
        )
        deployment = only(manifests, "Deployment")
        spec = deployment["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] == sleep + drain + grace + margin
        assert container(deployment)["lifecycle"]["preStop"] == {"sleep": {"seconds": sleep}}
        config = only(manifests, "ConfigMap")["data"]
        assert config["FNG_GATEWAY_SHUTDOWN__DRAIN_SECONDS"] == str(drain)
        assert config["FNG_GATEWAY_SHUTDOWN__GRACE_SECONDS"] == str(grace)

    def test_defaults_give_forty_seconds(self, chart: Chart) -> None:
        """5 s preStop + 5 s drain + 25 s grace + 5 s margin, as values.yaml works out."""
        spec = only(chart.render(), "Deployment")["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] == 40

    def test_before_1_30_the_image_sleeps(self, chart: Chart) -> None:
        """Kubernetes' own sleep action came in 1.30; before it the image's sleep runs."""
        deployment = only(chart.render(kube_version="1.29.0"), "Deployment")
        assert container(deployment)["lifecycle"]["preStop"] == {
            "exec": {"command": ["sleep", "5"]}
        }


class TestStoreAndMigrations:
    def test_sqlite_migrates_at_start_on_its_volume(self, chart: Chart) -> None:
        """Without PostgreSQL: SQLite on the claim, the pod migrates it, no Job, Recreate."""
        manifests = chart.render()
        config = only(manifests, "ConfigMap")["data"]
        assert config["FNG_GATEWAY_DATABASE_URL"] == (
            "sqlite+aiosqlite:////var/lib/fng-gateway/fng-gateway.db"
        )
        assert config["FNG_GATEWAY_AUTO_MIGRATE"] == "true"
        deployment = only(manifests, "Deployment")
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert {"name": "data", "mountPath": "/var/lib/fng-gateway"} in container(deployment)[
            "volumeMounts"
        ]
        claim = only(manifests, "PersistentVolumeClaim")
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert not [m for m in manifests if m["kind"] == "Job"]

    def test_postgres_is_migrated_by_a_hook_job(self, chart: Chart) -> None:
        """With PostgreSQL a pre-install/pre-upgrade Job runs `fng-gateway migrate` with the
        same image, and the pods do not migrate."""
        manifests = chart.render([EVERYTHING])
        job = only(manifests, "Job")
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        deployment = only(manifests, "Deployment")
        assert container(job)["image"] == container(deployment)["image"]
        assert container(job)["command"] + container(job)["args"] == ["fng-gateway", "migrate"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert only(manifests, "ConfigMap", "gateway")["data"]["FNG_GATEWAY_AUTO_MIGRATE"] == (
            "false"
        )

    def test_the_job_finds_the_url_before_the_release_exists(self, chart: Chart) -> None:
        """A hook runs before the release's Secret exists, so an inline URL reaches the Job
        through a hook Secret created just before it."""
        manifests = chart.render(sets=[f"database.url={POSTGRES}"])
        job = only(manifests, "Job")
        hook_secret = only(manifests, "Secret", "fng-gateway-migrations")
        assert hook_secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        weight = int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"])
        assert weight < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
        assert env_of(job)["FNG_GATEWAY_DATABASE_URL"] == {
            "secretKeyRef": {"name": "fng-gateway-migrations", "key": "database-url"}
        }
        assert "serviceAccountName" not in job["spec"]["template"]["spec"]

    def test_migrations_may_be_left_to_the_operator(self, chart: Chart) -> None:
        manifests = chart.render(sets=[f"database.url={POSTGRES}", "migrations.enabled=false"])
        assert not [m for m in manifests if m["kind"] == "Job"]
        assert only(manifests, "ConfigMap")["data"]["FNG_GATEWAY_AUTO_MIGRATE"] == "true"


class TestSecrets:
    def test_master_keys_file_is_a_mounted_directory(self, chart: Chart) -> None:
        """Mounted as a directory (never subPath), so Kubernetes' symlink swap reaches the
        file FNG_GATEWAY_MASTER_KEYS_FILE names; the keys are not also in the environment."""
        manifests = chart.render([EVERYTHING])
        deployment = only(manifests, "Deployment")
        gateway = container(deployment)
        mount = next(m for m in gateway["volumeMounts"] if m["name"] == "master-keys")
        assert "subPath" not in mount and mount["readOnly"] is True
        volume = next(
            v
            for v in deployment["spec"]["template"]["spec"]["volumes"]
            if v["name"] == "master-keys"
        )
        assert volume["secret"]["secretName"] == "fng-gateway-credentials"
        (item,) = volume["secret"]["items"]
        assert item["key"] == "master-keys"
        config = only(manifests, "ConfigMap", "gateway")["data"]
        assert config["FNG_GATEWAY_MASTER_KEYS_FILE"] == f"{mount['mountPath']}/{item['path']}"
        assert "FNG_GATEWAY_MASTER_KEYS" not in env_of(deployment)

    def test_master_keys_as_a_variable(self, chart: Chart) -> None:
        """Or as FNG_GATEWAY_MASTER_KEYS from the chart's Secret, with no file."""
        manifests = chart.render(
            sets=[f"masterKeys.value={MASTER_KEY}", "masterKeys.mountAsFile=false"]
        )
        deployment = only(manifests, "Deployment")
        assert env_of(deployment)["FNG_GATEWAY_MASTER_KEYS"] == {
            "secretKeyRef": {"name": "fng-gateway", "key": "master-keys"}
        }
        assert "FNG_GATEWAY_MASTER_KEYS_FILE" not in only(manifests, "ConfigMap")["data"]
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        assert "master-keys" not in [v["name"] for v in volumes]

    def test_the_chart_secret_holds_the_secrets_and_the_config_map_none(self, chart: Chart) -> None:
        manifests = chart.render(
            sets=[
                f"masterKeys.value={MASTER_KEY}",
                f"database.url={POSTGRES}",
                "redis.url=redis://:pw@redis:6379/0",
            ]
        )
        secret = only(manifests, "Secret", "fng-gateway")
        assert sorted(secret["data"]) == ["database-url", "master-keys", "redis-url"]
        config = only(manifests, "ConfigMap")["data"]
        assert not {"FNG_GATEWAY_DATABASE_URL", "FNG_GATEWAY_REDIS_URL"} & set(config)
        rendered = str(config)
        assert "pw@" not in rendered and MASTER_KEY not in rendered

    def test_production_settings(self, chart: Chart) -> None:
        """What values-everything asks for reaches the gateway: FNG, trusted proxies as JSON,
        the admin API, JSON logs, the official schemas and extra settings."""
        config = only(chart.render([EVERYTHING]), "ConfigMap", "gateway")["data"]
        assert config["FNG_GATEWAY_FNG__BASE_URL"] == "https://fng.example.org/fng"
        assert config["FNG_GATEWAY_TRUSTED_PROXIES"] == '["10.244.0.0/16","fd00:10:244::/56"]'
        assert config["FNG_GATEWAY_ADMIN__ENABLED"] == "true"
        assert config["FNG_GATEWAY_LOG_FORMAT"] == "json"
        assert config["FNG_GATEWAY_EPROC__EBIS_SCHEMA_DIR"] == "/etc/fng-gateway/schemas"
        assert config["FNG_GATEWAY_XML__MAX_BYTES"] == "16777216"
        assert config["FNG_GATEWAY_AUTH__MAX_FAILURES"] == "5"

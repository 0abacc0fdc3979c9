"""Values are checked before anything is rendered: unknown keys, and what cannot work."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.helm.conftest import CHART, POSTGRES, Chart, env_of, only

pytestmark = pytest.mark.helm

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
#: The one object passed through unchecked key by key: Kubernetes checks it.
PASS_THROUGH = {"#/properties/affinity"}


def _objects(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            found.append((where, node))
        for key, child in node.items():
            found += _objects(child, f"{where}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _objects(child, f"{where}/{index}")
    return found


class TestSchema:
    def test_every_object_refuses_unknown_keys(self) -> None:
        """Each object in values.schema.json says what it accepts: additionalProperties is
        false, or a type for the values of a free map (labels, annotations, settings)."""
        loose = [
            where
            for where, node in _objects(SCHEMA, "#")
            if "additionalProperties" not in node
            and where not in PASS_THROUGH
            and where != "#/definitions"
        ]
        assert loose == []
        structs = [n for _, n in _objects(SCHEMA, "#") if "properties" in n]
        assert all(n["additionalProperties"] is False for n in structs)

    def test_the_defaults_meet_the_schema(self) -> None:
        """values.yaml itself is valid against the schema (checked here without helm too)."""
        import jsonschema
        import yaml

        values = yaml.safe_load((CHART / "values.yaml").read_text())
        jsonschema.Draft7Validator(SCHEMA).validate(values)

    @pytest.mark.parametrize(
        ("setting", "key"),
        [
            ("replicas=2", "replicas"),
            ("service.prot=8080", "prot"),
            ("config.fng.baseURL=https://fng.example", "baseURL"),
            ("networkPolicy.egress.postgres.ports[0].port=5432", "postgres"),
            ("probes.readiness.path=/ready", "path"),
        ],
    )
    def test_an_unknown_key_is_refused_by_name(self, chart: Chart, setting: str, key: str) -> None:
        """A misspelt key fails the render and the message names it (in helm 4's words or
        helm 3's)."""
        error = chart.render_error(sets=[setting])
        assert "schema" in error
        assert re.search(
            rf"additional properties '{key}' not allowed|Additional property {key} is not allowed",
            error,
        ), error

    @pytest.mark.parametrize(
        "name", ["FNG_GATEWAY_DATABASE_URL", "FNG_GATEWAY_MASTER_KEYS", "FNG_GATEWAY_PORT", "DEBUG"]
    )
    def test_extra_env_takes_no_secret_and_nothing_the_chart_sets(
        self, chart: Chart, name: str
    ) -> None:
        """config.extraEnv is for other FNG_GATEWAY_ settings: secrets (which would land in a
        ConfigMap) and the chart's own variables are refused."""
        error = chart.render_error(sets=[f"config.extraEnv.{name}=x"])
        assert name in error

    @pytest.mark.parametrize(
        ("setting", "message"),
        [
            # postgresql:// would mean psycopg2, which the gateway does not ship.
            ("database.url=postgresql://gw:s3cret@db:5432/gw", "database.url must start with"),
            ("redis.url=http://:s3cret@redis:6379", "redis.url must start with"),
        ],
    )
    def test_urls_are_checked_without_printing_them(
        self, chart: Chart, setting: str, message: str
    ) -> None:
        """A URL with a driver the gateway lacks is refused, and the password stays out of
        the message."""
        error = chart.render_error(sets=[setting])
        assert message in error
        assert "s3cret" not in error

    def test_a_wrong_type_is_refused(self, chart: Chart) -> None:
        assert "replicaCount" in chart.render_error(sets=["replicaCount=two"])


class TestReplicasNeedPostgres:
    @pytest.mark.parametrize(
        ("sets", "why"),
        [
            (["replicaCount=2"], "replicaCount is 2"),
            (["autoscaling.enabled=true"], "autoscaling is enabled"),
        ],
    )
    def test_several_replicas_without_a_database_fail_clearly(
        self, chart: Chart, sets: list[str], why: str
    ) -> None:
        """More than one replica on SQLite is refused, saying what to set."""
        error = chart.render_error(sets=sets)
        assert f"fng-gateway: {why}, but several replicas must share one PostgreSQL" in error
        assert "set database.url" in error and "database.existingSecretKey" in error

    def test_several_replicas_on_sqlite_fail(self, chart: Chart) -> None:
        error = chart.render_error(
            sets=["replicaCount=2", "database.url=sqlite+aiosqlite:////data/gw.db"]
        )
        assert "database.url is not a postgresql+asyncpg:// URL" in error

    def test_several_replicas_with_an_inline_url_render(self, chart: Chart) -> None:
        manifests = chart.render(sets=["replicaCount=3", f"database.url={POSTGRES}"])
        deployment = only(manifests, "Deployment")
        assert deployment["spec"]["replicas"] == 3
        assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
        assert env_of(deployment)["FNG_GATEWAY_DATABASE_URL"] == {
            "secretKeyRef": {"name": "fng-gateway", "key": "database-url"}
        }

    def test_several_replicas_with_an_existing_secret_render(self, chart: Chart) -> None:
        """The URL may live in a Secret made outside the chart; the chart then makes none."""
        manifests = chart.render(
            sets=[
                "replicaCount=2",
                "existingSecret=creds",
                "database.existingSecretKey=db",
                "masterKeys.existingSecretKey=keys",
            ]
        )
        assert not [m for m in manifests if m["kind"] == "Secret"]
        ref = {"secretKeyRef": {"name": "creds", "key": "db"}}
        assert env_of(only(manifests, "Deployment"))["FNG_GATEWAY_DATABASE_URL"] == ref
        assert env_of(only(manifests, "Job"))["FNG_GATEWAY_DATABASE_URL"] == ref


class TestSecretSources:
    def test_inline_and_existing_at_once_fail(self, chart: Chart) -> None:
        error = chart.render_error(
            sets=["existingSecret=s", f"database.url={POSTGRES}", "database.existingSecretKey=db"]
        )
        assert "database is given both inline and as existingSecretKey" in error

    def test_an_existing_key_needs_the_existing_secret(self, chart: Chart) -> None:
        error = chart.render_error(sets=["redis.existingSecretKey=redis-url"])
        assert "redis.existingSecretKey" in error and "existingSecret" in error

    def test_official_schemas_need_their_config_map(self, chart: Chart) -> None:
        error = chart.render_error(sets=["officialSchemas.ebis=true"])
        assert "officialSchemas.configMap" in error

    def test_min_replicas_above_max_replicas_is_refused(self, chart: Chart) -> None:
        error = chart.render_error(
            sets=[
                f"database.url={POSTGRES}",
                "autoscaling.enabled=true",
                "autoscaling.minReplicas=5",
                "autoscaling.maxReplicas=3",
            ]
        )
        assert "minReplicas is above autoscaling.maxReplicas" in error

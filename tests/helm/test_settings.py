"""The settings the chart renders are ones the gateway accepts, read as the pod reads them."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.helm.conftest import EVERYTHING, MASTER_KEY, POSTGRES, Chart, container, only
from tests.helm.helm_binary import REPO_ROOT

pytestmark = pytest.mark.helm

READ = """
import json
from gateway.config import Settings
s = Settings()
print(json.dumps({
    "host": s.host, "port": s.port, "database_url": s.database_url,
    "redis_url": s.redis_url, "auto_migrate": s.auto_migrate,
    "trusted_proxies": list(s.trusted_proxies), "log_format": s.log_format,
    "admin": s.admin.enabled, "fng": s.fng.base_url, "eproc": s.eproc.enabled,
    "keys_file": str(s.master_keys_file) if s.master_keys_file else None,
    "keys": s.master_keys is not None, "max_bytes": s.xml.max_bytes,
    "drain": s.shutdown.drain_seconds, "grace": s.shutdown.grace_seconds,
}))
"""


def _pod_environment(manifests: list[dict[str, Any]], secrets: dict[str, str]) -> dict[str, str]:
    """The variables the gateway's container starts with: the ConfigMap (envFrom), then each
    secretKeyRef resolved from ``secrets`` (by key)."""
    deployment = only(manifests, "Deployment")
    gateway = container(deployment)
    (source,) = gateway["envFrom"]
    config_map = only(manifests, "ConfigMap", source["configMapRef"]["name"])
    environment = dict(config_map["data"])
    for variable in gateway.get("env", []):
        ref = variable["valueFrom"]["secretKeyRef"]
        environment[variable["name"]] = secrets[ref["key"]]
    return environment


def _settings(environment: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", READ],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    settings: dict[str, Any] = json.loads(result.stdout)
    return settings


class TestTheGatewayAcceptsTheChartsSettings:
    def test_the_defaults_reach_the_gateway(self, chart: Chart) -> None:
        settings = _settings(_pod_environment(chart.render(), {}))
        assert settings["host"] == "0.0.0.0" and settings["port"] == 8080
        assert settings["database_url"].startswith("sqlite+aiosqlite:////var/lib/fng-gateway/")
        assert settings["auto_migrate"] is True
        assert settings["log_format"] == "json"
        assert (settings["drain"], settings["grace"]) == (5.0, 25.0)

    def test_every_value_reaches_the_gateway(self, chart: Chart) -> None:
        secrets = {
            "database-url": POSTGRES,
            "redis-url": "redis://redis:6379/0",
            "master-keys": MASTER_KEY,
        }
        settings = _settings(_pod_environment(chart.render([EVERYTHING]), secrets))
        assert settings == {
            "host": "0.0.0.0",
            "port": 8080,
            "database_url": POSTGRES,
            "redis_url": "redis://redis:6379/0",
            "auto_migrate": False,
            "trusted_proxies": ["10.244.0.0/16", "fd00:10:244::/56"],
            "log_format": "json",
            "admin": True,
            "fng": "https://fng.example.org/fng",
            "eproc": True,
            "keys_file": "/etc/fng-gateway/master-keys/master-keys",
            "keys": False,
            "max_bytes": 16777216,
            "drain": 5.0,
            "grace": 30.0,
        }

    def test_master_keys_from_the_environment(self, chart: Chart) -> None:
        manifests = chart.render(
            sets=[f"masterKeys.value={MASTER_KEY}", "masterKeys.mountAsFile=false"]
        )
        settings = _settings(_pod_environment(manifests, {"master-keys": MASTER_KEY}))
        assert settings["keys"] is True and settings["keys_file"] is None

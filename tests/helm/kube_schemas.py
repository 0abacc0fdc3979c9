"""Rendered manifests checked against Kubernetes' own schemas, strictly.

Built-in kinds go through ``kubernetes_validate.validate(..., strict=True)``: the OpenAPI
schemas of the Kubernetes version asked for, with every unknown field refused. A custom
resource has no schema there, so each CRD the chart renders has one here: its ``metadata`` is
Kubernetes' ObjectMeta (from the same strict definitions) and its ``spec`` the subset of the
CRD's fields the chart writes, each typed as the CRD types it, with unknown fields refused.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import kubernetes_validate
from referencing import Registry, Resource

DEFINITIONS = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = f"{DEFINITIONS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LABEL_SELECTOR = f"{DEFINITIONS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"

#: monitoring.coreos.com/v1 ServiceMonitor, the fields of the Prometheus operator's CRD that the
#: chart renders (the CRD's `interval` and `scrapeTimeout` patterns included).
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?"
    r"(([0-9]+)ms)?)$",
}
SERVICE_MONITOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"$ref": OBJECT_META},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {"$ref": LABEL_SELECTOR},
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "honorLabels": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}
CUSTOM_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
}


def _definitions(kube_version: str) -> Resource[Any]:
    folder = f"v{'.'.join(kube_version.split('.')[:2])}.0-local-strict"
    path = resources.files(kubernetes_validate) / "kubernetes-json-schema" / folder
    return Resource.from_contents(json.loads((path / "_definitions.json").read_text()))


def validate(manifest: dict[str, Any], kube_version: str) -> str:
    """Raise if ``manifest`` breaks its schema; return which schema checked it."""
    key = (manifest["apiVersion"], manifest["kind"])
    custom = CUSTOM_SCHEMAS.get(key)
    if custom is None:
        checked = kubernetes_validate.validate(manifest, kube_version, strict=True)
        return f"Kubernetes {checked} (strict)"
    registry: Registry[Any] = Registry().with_resource(DEFINITIONS, _definitions(kube_version))
    jsonschema.Draft202012Validator(custom, registry=registry).validate(manifest)
    return f"the chart's subset of the {key[1]} CRD (strict), ObjectMeta of Kubernetes"

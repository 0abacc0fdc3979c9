"""The Grafana dashboard shipped with the chart asks for the metrics the gateway exports."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.helm.conftest import CHART

pytestmark = pytest.mark.helm

DASHBOARD: dict[str, Any] = json.loads((CHART / "dashboards" / "fng-gateway.json").read_text())

#: What the gateway exports (/metrics), with each metric's labels.
METRICS = {
    "fng_gateway_calls_total": {"interface", "operation", "outcome"},
    "fng_gateway_call_seconds_bucket": {"interface", "operation", "le"},
    "fng_gateway_upstream_seconds_bucket": {"upstream", "operation", "le"},
    "fng_gateway_upstream_responses_total": {"upstream", "operation", "status"},
    "fng_gateway_token_fetches_total": {"outcome"},
    "fng_gateway_token_cache_total": {"result"},
    "fng_gateway_eproc_queue_depth": set(),
    "fng_gateway_eproc_quarantined": set(),
    "fng_gateway_eproc_portal_errors_total": {"portal", "kind"},
    "fng_gateway_eproc_portal_polls_total": {"portal", "outcome"},
    "fng_gateway_eproc_documents_total": {"outcome"},
    "fng_gateway_eproc_orders_total": {"outcome"},
    "fng_gateway_eproc_password_store_failures_total": set(),
    "fng_gateway_draining": set(),
}
#: Labels Prometheus adds to every target's series.
TARGET_LABELS = {"namespace", "pod"}


def _exported() -> dict[str, set[str]]:
    """Sample names and label names of the gateway's metrics, as /metrics shows them."""
    from prometheus_client.metrics import MetricWrapperBase

    from gateway.observability.metrics import Metrics

    exported: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        (family,) = metric.describe()
        labels = set(metric._labelnames)  # prometheus_client has no public accessor
        suffix = {"counter": "_total", "histogram": "_bucket"}.get(family.type, "")
        exported[family.name + suffix] = labels | ({"le"} if family.type == "histogram" else set())
    return exported


def _panels() -> list[dict[str, Any]]:
    return [p for p in DASHBOARD["panels"] if p["type"] != "row"]


def _expressions() -> list[str]:
    return [t["expr"] for p in _panels() for t in p["targets"]]


class TestDashboard:
    def test_every_metric_is_shown(self) -> None:
        used = {name for e in _expressions() for name in re.findall(r"fng_gateway_\w+", e)}
        assert used == set(METRICS)

    def test_labels_are_the_metrics_own(self) -> None:
        """Each `by (…)` and each matcher names a label its metric has."""
        for expression in _expressions():
            names = set(re.findall(r"fng_gateway_\w+", expression))
            allowed = set().union(*(METRICS[n] for n in names)) | TARGET_LABELS
            grouped = {
                label.strip()
                for group in re.findall(r"by \(([^)]*)\)", expression)
                for label in group.split(",")
            }
            matched = set(re.findall(r"(\w+)\s*(?:=~|!=|=)\s*\"", expression))
            assert grouped | matched <= allowed, expression

    def test_latency_panels_are_quantiles_of_histograms(self) -> None:
        """p50 and p99 of calls and of upstream calls, over rate()s of the buckets."""
        quantiles = [e for e in _expressions() if "histogram_quantile" in e]
        for metric in ("fng_gateway_call_seconds_bucket", "fng_gateway_upstream_seconds_bucket"):
            mine = [e for e in quantiles if metric in e]
            assert any(e.startswith("histogram_quantile(0.5,") for e in mine)
            assert any(e.startswith("histogram_quantile(0.99,") for e in mine)
            assert all(f"rate({metric}" in e and "le)" in e for e in mine)

    def test_the_gateway_exports_them(self) -> None:
        """Every metric the dashboard asks for is in the gateway's registry, with those labels
        (a counter's samples end in _total, a histogram's buckets in _bucket with le)."""
        assert {name: _exported().get(name) for name in METRICS} == METRICS

    def test_panels_are_well_formed(self) -> None:
        """Unique ids, a place on the grid, the dashboard's data source variable."""
        ids = [p["id"] for p in DASHBOARD["panels"]]
        assert len(ids) == len(set(ids))
        for panel in _panels():
            assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"] and panel["title"] and panel["description"]
        variables = [v["name"] for v in DASHBOARD["templating"]["list"]]
        assert variables == ["datasource", "namespace", "pod"]
        assert DASHBOARD["uid"] == "fng-gateway"

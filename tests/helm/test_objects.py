"""The objects around the pods: Service, Ingress, autoscaling, disruptions, network, monitoring."""

from __future__ import annotations

import pytest

from tests.helm.conftest import (
    CHART,
    EVERYTHING,
    POSTGRES,
    SERVICE_MONITOR_API,
    Chart,
    only,
)

pytestmark = pytest.mark.helm


class TestServiceAndIngress:
    def test_the_service_reaches_gateway_pods_only(self, chart: Chart) -> None:
        """Its selector names the gateway component, so the migrations Job's pods (same
        release, same name) never receive calls."""
        service = only(chart.render([EVERYTHING]), "Service")
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
        assert service["spec"]["ports"][0]["targetPort"] == "http"

    def test_the_ingress_exposes_the_integrations_by_default(self, chart: Chart) -> None:
        """By default the Ingress carries /soap and /xml only: not /admin nor /metrics."""
        ingress = only(chart.render(sets=["ingress.enabled=true"]), "Ingress")
        paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
        assert paths == ["/soap", "/xml"]
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
        assert backend == {"service": {"name": "fng-gateway", "port": {"name": "http"}}}

    def test_the_ingress_with_every_option(self, chart: Chart) -> None:
        ingress = only(chart.render([EVERYTHING]), "Ingress")
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert ingress["spec"]["tls"][0]["secretName"] == "fng-gateway-tls"
        hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
        assert hosts == ["fng-gateway.example.org", "fng-admin.internal.example.org"]


class TestScaling:
    def test_autoscaling_replaces_replicas(self, chart: Chart) -> None:
        manifests = chart.render([EVERYTHING])
        assert "replicas" not in only(manifests, "Deployment")["spec"]
        hpa = only(manifests, "HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "gateway",
        }
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
        targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
        assert targets["cpu"] == {"type": "Utilization", "averageUtilization": 65}
        assert targets["memory"] == {"type": "Utilization", "averageUtilization": 80}

    def test_the_disruption_budget_is_one_unavailable_unless_min_available_is_set(
        self, chart: Chart
    ) -> None:
        """maxUnavailable 1 by default; minAvailable, when set, is used instead."""
        default = only(chart.render(), "PodDisruptionBudget")["spec"]
        assert default["maxUnavailable"] == 1 and "minAvailable" not in default
        everything = only(chart.render([EVERYTHING]), "PodDisruptionBudget")["spec"]
        assert everything["minAvailable"] == 2 and "maxUnavailable" not in everything
        assert everything["selector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"

    def test_spread_constraints_select_the_gateway(self, chart: Chart) -> None:
        spec = only(chart.render([EVERYTHING]), "Deployment")["spec"]["template"]["spec"]
        for constraint in spec["topologySpreadConstraints"]:
            labels = constraint["labelSelector"]["matchLabels"]
            assert labels["app.kubernetes.io/component"] == "gateway"
            assert labels["app.kubernetes.io/instance"] == "fng-gateway"


class TestNetworkPolicy:
    def test_who_may_call_and_what_may_be_called(self, chart: Chart) -> None:
        """In: the ingress controller and monitoring, on 8080 only. Out: DNS, PostgreSQL,
        Redis, FNG and SIMS ID, portals (443), and the extra rule."""
        policy = only(chart.render([EVERYTHING]), "NetworkPolicy")["spec"]
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        components = policy["podSelector"]["matchExpressions"][0]
        assert components["values"] == ["gateway", "migrations"]
        callers, monitoring = policy["ingress"]
        assert callers["ports"] == [{"port": "http", "protocol": "TCP"}]
        assert callers["from"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "ingress-nginx"
        }
        assert monitoring["from"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }
        ports = [[p["port"] for p in rule["ports"]] for rule in policy["egress"]]
        assert ports == [[53, 53], [5432], [6379], [443], [443], [8443]]

    def test_empty_destinations_mean_any_address(self, chart: Chart) -> None:
        """With no CIDR or selector given, a rule allows its ports to any address."""
        policy = only(chart.render(sets=["networkPolicy.enabled=true"]), "NetworkPolicy")["spec"]
        dns, postgresql, redis, fng, portals = policy["egress"]
        assert "to" in dns
        assert all("to" not in rule for rule in (postgresql, redis, fng, portals))
        assert [p["port"] for p in portals["ports"]] == [443]

    def test_no_callers_means_none(self, chart: Chart) -> None:
        policy = only(
            chart.render(sets=["networkPolicy.enabled=true", "networkPolicy.metricsFrom=null"]),
            "NetworkPolicy",
        )["spec"]
        assert policy["ingress"] == []


class TestMonitoring:
    def test_service_monitor_needs_the_operators_api(self, chart: Chart) -> None:
        """Enabled in values, the ServiceMonitor is rendered only where the cluster serves
        monitoring.coreos.com/v1."""
        without = chart.render([EVERYTHING])
        assert not [m for m in without if m["kind"] == "ServiceMonitor"]
        monitor = only(
            chart.render([EVERYTHING], api_versions=[SERVICE_MONITOR_API]), "ServiceMonitor"
        )
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["schools"]}

    def test_service_monitor_is_off_by_default(self, chart: Chart) -> None:
        manifests = chart.render(
            sets=[f"database.url={POSTGRES}"], api_versions=[SERVICE_MONITOR_API]
        )
        assert not [m for m in manifests if m["kind"] == "ServiceMonitor"]

    def test_the_dashboard_config_map(self, chart: Chart) -> None:
        """The shipped dashboard, verbatim, labelled for Grafana's sidecar."""
        dashboard = only(chart.render([EVERYTHING]), "ConfigMap", "gateway-dashboard")
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert dashboard["metadata"]["namespace"] == "monitoring"
        assert dashboard["metadata"]["annotations"] == {"grafana_folder": "FNG"}
        shipped = (CHART / "dashboards" / "fng-gateway.json").read_text()
        assert dashboard["data"]["fng-gateway.json"] == shipped.rstrip("\n")

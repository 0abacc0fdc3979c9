"""NOTES.txt tells the operator where the WSDLs are and what to do first."""

from __future__ import annotations

import pytest

from tests.helm.conftest import EVERYTHING, MASTER_KEY, POSTGRES, Chart

pytestmark = pytest.mark.helm


class TestNotes:
    def test_through_the_ingress(self, chart: Chart) -> None:
        """The WSDLs at each Ingress host that carries /soap, the admin API's OpenAPI at the
        host that carries /admin, the first token and the namespace label."""
        notes = chart.notes([EVERYTHING])
        assert "https://fng-gateway.example.org/soap/ejournal?wsdl" in notes
        assert "https://fng-gateway.example.org/soap/budget?wsdl" in notes
        assert "https://fng-admin.internal.example.org/soap/" not in notes
        assert "https://fng-admin.internal.example.org/admin/openapi.json" in notes
        assert (
            "kubectl -n schools exec deploy/gateway -- fng-gateway admin-tokens create NAME"
            in notes
        )
        assert (
            "kubectl label namespace schools pod-security.kubernetes.io/enforce=restricted" in notes
        )
        assert "WARNING: no master keys" not in notes

    def test_through_the_service(self, chart: Chart) -> None:
        """Without an Ingress: the in-cluster address and a port-forward."""
        notes = chart.notes()
        assert "http://fng-gateway.schools.svc:8080/soap/ejournal?wsdl" in notes
        assert "http://fng-gateway.schools.svc:8080/soap/budget?wsdl" in notes
        assert "kubectl -n schools port-forward svc/fng-gateway 8080:8080" in notes
        assert "Is off (config.admin.enabled=false)" in notes
        assert "/admin/openapi.json" in notes

    def test_warnings_for_what_is_missing(self, chart: Chart) -> None:
        """The defaults install, and the notes say what a working gateway still lacks."""
        notes = chart.notes()
        assert "WARNING: no master keys are configured" in notes
        assert "WARNING: config.fng.baseUrl is empty" in notes
        assert "the store is SQLite" in notes

    def test_several_replicas_without_redis_are_warned(self, chart: Chart) -> None:
        notes = chart.notes(
            sets=[f"database.url={POSTGRES}", "replicaCount=2", f"masterKeys.value={MASTER_KEY}"]
        )
        assert "several replicas without Redis" in notes
        assert "SQLite" not in notes

"""Prometheus metrics: one registry per application, served at ``/metrics``."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.portal_errors = Counter(
            "fng_gateway_eproc_portal_errors",
            "Polls of a supplier portal that failed, by portal and kind of failure.",
            ["portal", "kind"],
            registry=self.registry,
        )
        self.portal_polls = Counter(
            "fng_gateway_eproc_portal_polls",
            "Polls of a supplier portal, by portal and outcome.",
            ["portal", "outcome"],
            registry=self.registry,
        )
        self.documents = Counter(
            "fng_gateway_eproc_documents",
            "Documents from supplier portals, by what became of them.",
            ["outcome"],
            registry=self.registry,
        )
        self.orders = Counter(
            "fng_gateway_eproc_orders",
            "Authorised orders for supplier portals, by what became of them.",
            ["outcome"],
            registry=self.registry,
        )
        self.quarantined = Gauge(
            "fng_gateway_eproc_quarantined",
            "Documents and orders held in quarantine for an operator.",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "fng_gateway_eproc_queue_depth",
            "Documents collected from portals and not yet acknowledged.",
            registry=self.registry,
        )
        self.password_store_failures = Counter(
            "fng_gateway_eproc_password_store_failures",
            "Portal passwords changed at the portal that could not be stored.",
            registry=self.registry,
        )

    async def handler(self, _request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

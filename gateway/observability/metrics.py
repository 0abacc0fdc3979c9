"""Prometheus metrics: one registry per application, served at ``/metrics``.

Calls by interface, operation and outcome, with their latency; every call to an upstream
(FNG, SIMS ID, supplier portals) with its latency and status, measured by aiohttp trace hooks
rather than at each call site; token fetches and cache hits; the eProcurement pipeline;
whether the process is draining.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Final

import aiohttp
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from gateway.errors import GatewayError

log = logging.getLogger(__name__)

#: Latency buckets (seconds), from a fraction of a millisecond to the longest timeouts.
BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        #: Refreshed just before each scrape: gauges that cost a query are paid for by the
        #: scraper, once per scrape, not by the work they describe.
        self.before_scrape: list[Callable[[], Awaitable[None]]] = []
        self.calls = Counter(
            "fng_gateway_calls",
            "Calls to the gateway's services, by interface, operation and outcome (ok, or the "
            "fault's code).",
            ["interface", "operation", "outcome"],
            registry=self.registry,
        )
        self.call_seconds = Histogram(
            "fng_gateway_call_seconds",
            "How long calls to the gateway's services took.",
            ["interface", "operation"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "fng_gateway_upstream_seconds",
            "How long the gateway's own calls took, by upstream (fng, simsid, portal).",
            ["upstream", "operation"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.upstream_responses = Counter(
            "fng_gateway_upstream_responses",
            "The gateway's own calls by upstream, operation and HTTP status (or error).",
            ["upstream", "operation", "status"],
            registry=self.registry,
        )
        self.token_fetches = Counter(
            "fng_gateway_token_fetches",
            "Token requests to SIMS ID, by outcome (ok, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.token_cache = Counter(
            "fng_gateway_token_cache",
            "Tokens wanted, by where they came from (hit: held already; miss: fetched or "
            "read from the shared cache).",
            ["result"],
            registry=self.registry,
        )
        self.draining = Gauge(
            "fng_gateway_draining",
            "1 while the process is shutting down (its readiness answers 503).",
            registry=self.registry,
        )
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
        self.checksum_mismatches = Counter(
            "fng_gateway_eproc_checksum_mismatches",
            "Order checksums FMS would refuse, let through by a warn policy, by portal and "
            "direction (in: content orders; out: authorised orders).",
            ["portal", "direction"],
            registry=self.registry,
        )
        self.password_store_failures = Counter(
            "fng_gateway_eproc_password_store_failures",
            "Portal passwords changed at the portal that could not be stored.",
            registry=self.registry,
        )

    def looked_up(self, *, hit: bool) -> None:
        self.token_cache.labels("hit" if hit else "miss").inc()

    def fetched(self, *, ok: bool) -> None:
        self.token_fetches.labels("ok" if ok else "failed").inc()

    def observe_call(self, interface: str, operation: str, outcome: str, seconds: float) -> None:
        self.calls.labels(interface, operation, outcome).inc()
        self.call_seconds.labels(interface, operation).observe(seconds)

    def trace_config(self) -> aiohttp.TraceConfig:
        """Hooks for the one client session: every request that names its upstream and
        operation (``trace_request_ctx={"upstream": …, "operation": …}``) is measured."""
        trace = aiohttp.TraceConfig()

        async def start(_session: object, context: SimpleNamespace, _params: object) -> None:
            context.started = time.perf_counter()

        async def end(
            _session: object, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
        ) -> None:
            self._upstream(context, str(params.response.status))

        async def failed(
            _session: object, context: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams
        ) -> None:
            if isinstance(params.exception, GatewayError):
                # Raised by the gateway's own client middleware before anything was sent (no
                # SIMS ID token): that upstream's failure is counted by its own request.
                return
            self._upstream(context, "error")

        trace.on_request_start.append(start)
        trace.on_request_end.append(end)
        trace.on_request_exception.append(failed)
        return trace

    def _upstream(self, context: SimpleNamespace, status: str) -> None:
        labels = getattr(context, "trace_request_ctx", None)
        if not isinstance(labels, dict) or "upstream" not in labels:
            return
        upstream, operation = labels["upstream"], labels.get("operation", "-")
        self.upstream_responses.labels(upstream, operation, status).inc()
        started = getattr(context, "started", None)
        if started is not None:
            self.upstream_seconds.labels(upstream, operation).observe(time.perf_counter() - started)

    async def handler(self, _request: web.Request) -> web.Response:
        for refresh in self.before_scrape:
            try:
                await refresh()
            except GatewayError as exc:
                # The last values stand; the rest of the metrics are still worth having.
                log.warning("a gauge could not be refreshed", extra={"error": exc.message})
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

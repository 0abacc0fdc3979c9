"""Builds the gateway's aiohttp application. Wiring only: no behaviour lives here.

Resources open and close in ``cleanup_ctx`` generators, in order: the store (migrated
when ``auto_migrate`` is on), the shared cache and the one HTTP client session, then the
services built on them. Handlers reach them through typed application keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiocache.base import BaseCache
from aiohttp import web

from gateway.admin.api import create_admin_app, document
from gateway.admin.routing import RouteTable
from gateway.budget.documents import IMPORT_SCHEMA
from gateway.budget.service import BudgetService
from gateway.budget.soap import budget_soap_service
from gateway.config import Settings
from gateway.ejournal.service import EJournalService
from gateway.ejournal.soap import ejournal_soap_service
from gateway.eproc import admin_routes as eproc_admin
from gateway.eproc.pipeline import Pipeline
from gateway.eproc.portal import INDEX_SCHEMA, load_client
from gateway.eproc.rules import EBIS_INVOICE, EBIS_ORDER, INVOICE_PROFILE, ORDER_PROFILE
from gateway.eproc.scheduler import Scheduler
from gateway.errors import ConfigurationError
from gateway.fng import FngClient
from gateway.fng.documents import (
    BANKS_SCHEMA,
    BUDGET_RESULT_SCHEMA,
    CHART_SCHEMA,
    EPROC_SCHEMA,
    RESULTS_SCHEMA,
    YEARS_SCHEMA,
)
from gateway.observability import context
from gateway.observability.health import Health
from gateway.observability.metrics import Metrics
from gateway.simsid import TokenProvider
from gateway.soap.middleware import error_responses, request_context
from gateway.soap.security import Credentials
from gateway.soap.service import SoapService, service_routes
from gateway.store import Store, create_store
from gateway.store.cache import CACHE_ERRORS, ReadThrough, create_cache
from gateway.store.ledger import Ledger
from gateway.store.migrate import make_ready
from gateway.store.shared import FailedLogins, SharedLocks, redis_client
from gateway.tenancy.callers import CallerResolver
from gateway.tenancy.key_changes import RegistryKeys
from gateway.tenancy.lockout import Lockout, failure_keep
from gateway.tenancy.model import Caller, Interface
from gateway.tenancy.rotation import KeyRotation
from gateway.tenancy.secrets import SecretBox
from gateway.xmlsafe import Limits, SchemaRegistry, shipped_schemas_dir

log = logging.getLogger(__name__)

SETTINGS: Final = web.AppKey("settings", Settings)
BOX: Final = web.AppKey("box", SecretBox)
HEALTH: Final = web.AppKey("health", Health)
SCHEMAS: Final = web.AppKey("schemas", SchemaRegistry)
STORE: Final = web.AppKey("store", Store)
CACHE: Final = web.AppKey("cache", BaseCache)
SESSION: Final = web.AppKey("session", aiohttp.ClientSession)
TOKENS: Final = web.AppKey("tokens", TokenProvider)
CALLERS: Final = web.AppKey("callers", CallerResolver)
LEDGER: Final = web.AppKey("ledger", Ledger)
FNG: Final = web.AppKey("fng", FngClient)
EJOURNAL: Final = web.AppKey("ejournal", SoapService[Any])
BUDGET: Final = web.AppKey("budget", SoapService[Any])
METRICS: Final = web.AppKey("metrics", Metrics)
LOCKS: Final = web.AppKey("locks", SharedLocks)
FAILED_LOGINS: Final = web.AppKey("failed_logins", FailedLogins)
SCHEDULER: Final = web.AppKey("scheduler", Scheduler)

#: The admin API's operations that capability packages contribute.
ADMIN_ROUTES: Final[tuple[RouteTable, ...]] = (eproc_admin.routes,)

SCHEMA_NAMES: Final = (
    "ejournal/ControlAccounts.xsd",
    BANKS_SCHEMA,
    RESULTS_SCHEMA,
    CHART_SCHEMA,
    YEARS_SCHEMA,
    IMPORT_SCHEMA,
    BUDGET_RESULT_SCHEMA,
    INDEX_SCHEMA,
    ORDER_PROFILE,
    INVOICE_PROFILE,
    EPROC_SCHEMA,
)


def limits_from(settings: Settings) -> Limits:
    xml = settings.xml
    return Limits(
        max_bytes=xml.max_bytes,
        max_depth=xml.max_depth,
        max_elements=xml.max_elements,
        max_attributes=xml.max_attributes,
        body_timeout=xml.body_timeout_seconds,
        stream_above=xml.stream_above_bytes,
    )


async def _keys_file_ctx(app: web.Application) -> AsyncIterator[None]:
    """Follow a mounted master keys file: Kubernetes replaces it by swapping a symlink."""
    settings = app[SETTINGS]
    box = app[BOX]

    async def watch() -> None:
        while True:
            await asyncio.sleep(settings.master_keys_reload_seconds)
            try:
                if await asyncio.to_thread(box.reload_if_changed):
                    log.info("the master keys file changed; its keys are now in use")
            except ConfigurationError as exc:
                log.error(
                    "the master keys file could not be used; the keys in use stay",
                    extra={"error": exc.message},
                )

    task = asyncio.create_task(watch(), name="master-keys-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = create_store(settings.database_url)
    try:
        await make_ready(store, settings.database_url, auto_migrate=settings.auto_migrate)
    except BaseException:
        await store.close()
        raise
    app[STORE] = store
    app[HEALTH].add_check("store", store.ping)
    yield
    await store.close()


async def _client_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cache = create_cache(settings.redis_url)
    app[CACHE] = cache
    client = redis_client(settings.redis_url)
    app[LOCKS] = SharedLocks(
        client,
        timeout=settings.simsid.timeout_seconds * 3,
        wait=settings.simsid.timeout_seconds * 2,
    )
    app[FAILED_LOGINS] = FailedLogins(
        client,
        window=settings.auth.failure_window_seconds,
        keep=failure_keep(settings.auth),
    )

    async def cache_ok() -> bool:
        try:
            await cache.exists("readyz")
        except CACHE_ERRORS:
            return False
        return True

    # Without Redis every replica goes on alone (see Health): degraded, still ready.
    app[HEALTH].add_check("cache", cache_ok, required=False)
    if settings.redis_url and not await cache_ok():
        log.warning(
            "Redis at %s cannot be reached: this replica goes on alone (its own token "
            "cache, failed logins and locks) until it can; check FNG_GATEWAY_REDIS_URL",
            urlsplit(settings.redis_url).netloc.rpartition("@")[2],  # never its password
        )
    connector = aiohttp.TCPConnector(
        limit=settings.fng.max_connections, ttl_dns_cache=300, enable_cleanup_closed=True
    )
    session = aiohttp.ClientSession(
        connector=connector, raise_for_status=False, trace_configs=[app[METRICS].trace_config()]
    )
    app[SESSION] = session
    tokens = TokenProvider(
        session,
        cache,
        app[BOX],
        settings.simsid,
        shared_lock=app[LOCKS].hold,
        observe=app[METRICS],
    )
    app[TOKENS] = tokens
    yield
    await tokens.close()
    await session.close()
    await cache.close()
    if client is not None:
        await client.aclose()


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    limits = limits_from(settings)
    callers = CallerResolver(
        app[STORE],
        app[BOX],
        cache_seconds=settings.auth.registry_cache_seconds,
        lockout=Lockout(app[FAILED_LOGINS], app[STORE], settings.auth),
    )
    app[CALLERS] = callers
    ledger = Ledger(
        app[STORE],
        lease_seconds=settings.ledger.lease_seconds,
        wait_seconds=settings.ledger.wait_seconds,
    )
    app[LEDGER] = ledger
    keys = RegistryKeys(
        callers,
        KeyRotation(app[STORE], app[BOX], actor="gateway"),
        grace=timedelta(seconds=settings.keys.retire_grace_seconds),
    )
    fng = FngClient(app[SESSION], app[TOKENS], settings.fng, app[SCHEMAS], limits, keys)
    app[FNG] = fng

    def authenticator(interface: Interface) -> Callable[[Credentials], Awaitable[Caller]]:
        async def authenticate(credentials: Credentials) -> Caller:
            caller = await callers.authenticate(
                credentials.username,
                credentials.password,
                credentials.partner_key,
                interface,
                credentials.remote,
            )
            target = caller.target
            context.school.set(f"{target.la_number}/{target.establishment_number}")
            return caller

        return authenticate

    app[EJOURNAL] = ejournal_soap_service(
        EJournalService(fng, ledger, app[SCHEMAS], limits),
        authenticator(Interface.EJOURNAL),
        schemas_dir=shipped_schemas_dir(),
        limits=limits,
        trusted_proxies=settings.trusted_proxies,
        observe=app[METRICS].observe_call,
    )
    reads = ReadThrough(app[CACHE], ttl=settings.budget.cache_seconds, namespace="budget")
    app[BUDGET] = budget_soap_service(
        BudgetService(fng, ledger, app[SCHEMAS], limits, reads),
        authenticator(Interface.BUDGET),
        schemas_dir=shipped_schemas_dir(),
        limits=limits,
        trusted_proxies=settings.trusted_proxies,
        observe=app[METRICS].observe_call,
    )
    yield


async def _eproc_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    eproc = settings.eproc
    client = await load_client(
        app[SESSION],
        shipped_schemas_dir() / "eproc" / "EProcurementService.wsdl",
        call_seconds=eproc.call_timeout_seconds,
        limits=limits_from(settings),
        schemas=app[SCHEMAS],
    )
    pipeline = Pipeline(
        store=app[STORE],
        box=app[BOX],
        callers=app[CALLERS],
        fng=app[FNG],
        client=client,
        schemas=app[SCHEMAS],
        limits=limits_from(settings),
        metrics=app[METRICS],
        settings=eproc,
    )
    scheduler = Scheduler(app[STORE], app[BOX], pipeline, app[METRICS], eproc)
    app[SCHEDULER] = scheduler
    app[METRICS].before_scrape.append(scheduler.refresh_gauges)
    if eproc.enabled:
        scheduler.start()
    yield
    await scheduler.stop()


def begin_draining(app: web.Application) -> None:
    """The first step of a graceful shutdown: readiness 503, no new eProcurement work."""
    app[HEALTH].draining = True
    app[METRICS].draining.set(1)
    if SCHEDULER in app:
        app[SCHEDULER].pause()
    log.info("draining: readiness now answers 503")


def _schema_registry(settings: Settings) -> SchemaRegistry:
    """Every schema, compiled once; operators' official schemas where they gave them."""
    names = list(SCHEMA_NAMES)
    overrides: dict[str, Path | None] = {
        CHART_SCHEMA: settings.budget.chart_schema,
        YEARS_SCHEMA: settings.budget.years_schema,
        IMPORT_SCHEMA: settings.budget.import_schema,
    }
    ebis = settings.eproc.ebis_schema_dir
    if ebis is not None:
        names += [EBIS_ORDER, EBIS_INVOICE]
        overrides[EBIS_ORDER] = ebis / "Order-v3.xsd"
        overrides[EBIS_INVOICE] = ebis / "Invoice-v3.xsd"
    return SchemaRegistry(shipped_schemas_dir(), names, overrides=overrides)


def create_app(settings: Settings, *, box: SecretBox | None = None) -> web.Application:
    """The gateway application. ``box`` overrides the master keys named in ``settings``."""
    app = web.Application(
        middlewares=[request_context, error_responses],
        client_max_size=settings.xml.max_bytes,
    )
    app[SETTINGS] = settings
    app[BOX] = box or SecretBox.from_sources(settings.master_keys, settings.master_keys_file)
    app[SCHEMAS] = _schema_registry(settings)
    app[METRICS] = Metrics()
    health = Health()
    app[HEALTH] = health
    app.router.add_routes(health.routes())
    app.router.add_get("/metrics", app[METRICS].handler)
    app.router.add_routes(service_routes("ejournal", EJOURNAL))
    app.router.add_routes(service_routes("budget", BUDGET))
    app.cleanup_ctx.extend([_keys_file_ctx, _store_ctx, _client_ctx, _services_ctx, _eproc_ctx])
    if settings.admin.enabled:
        app.add_subapp(
            "/admin/",
            create_admin_app(
                settings.admin,
                settings.keys,
                store=STORE,
                box=BOX,
                callers=CALLERS,
                contributed=ADMIN_ROUTES,
            ),
        )
    return app


def admin_document(prefix: str = "/admin") -> dict[str, Any]:
    """The admin API's OpenAPI document, as the gateway serves it."""
    return document(ADMIN_ROUTES, prefix)

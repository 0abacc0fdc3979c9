"""Running the gateway: ``serve``, ``sandbox`` (with the sandbox and a demo school, or the
sandbox alone), ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli.common import (
    DONE,
    INTERNAL,
    UsageRefused,
    announce_new_store,
    check_master_keys,
    new_sqlite_file,
    require_output,
    settings,
    write_out,
)
from gateway.errors import ConfigurationError, StoreUnavailable

log = logging.getLogger("gateway.cli")

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.config import Settings

# The application is imported by the commands that run it, so that the command line starts
# quickly.


async def _serve_until_stopped(
    runners: Sequence[web.AppRunner], drain: Callable[[], None], drain_seconds: float
) -> None:
    """Run until SIGTERM or SIGINT; then drain (readiness 503 while load balancers catch up),
    close the listeners, and let calls in flight finish within the runners' grace."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        drain()
        await asyncio.sleep(drain_seconds)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def _runner(
    app: web.Application,
    grace_seconds: float,
    ready: Callable[[], Awaitable[None]] | None = None,
) -> web.AppRunner:
    """``app`` set up to serve (our access log, our signal handling, calls in flight given
    ``grace_seconds`` at shutdown), not yet listening. ``ready``, when given, runs once the
    app is set up (its store up) and may refuse."""
    from aiohttp import web

    from gateway.observability.logging import AccessLogger

    runner = web.AppRunner(
        app, access_log_class=AccessLogger, handle_signals=False, shutdown_timeout=grace_seconds
    )
    await runner.setup()
    if ready is not None:
        try:
            await ready()
        except BaseException:
            await runner.cleanup()
            raise
    return runner


async def _start(
    app: web.Application,
    host: str,
    port: int,
    grace_seconds: float = 25.0,
    *,
    option: str = "--port",
    host_option: str = "--host",
    ready: Callable[[], Awaitable[None]] | None = None,
) -> tuple[web.AppRunner, int]:
    """Start ``app`` listening on ``host:port``; ``option`` is how the user chooses the port,
    named when it cannot be used, and ``host_option`` the address. ``ready``, when given,
    runs once the app is set up (its store up) and before it listens, and may refuse."""
    from aiohttp import web

    runner = await _runner(app, grace_seconds, ready)
    try:
        # A burst of callers (a payment provider posting for many schools at once) waits in
        # the listen queue rather than being refused: 1024, not 128.
        await web.TCPSite(runner, host, port, backlog=1024).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigurationError(_listen_failure(exc, host, port, option, host_option)) from None
    return runner, int(runner.addresses[0][1])  # the bound port, when 0 was asked for


def _listen_failure(
    exc: OSError, host: str, port: int, option: str, host_option: str = "--host"
) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another fng-gateway?): stop what holds "
            f"it, or choose another port with {option}"
        )
    if exc.errno == errno.EACCES:
        return f"this user may not listen on port {port}: choose a port above 1023 with {option}"
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return (
            f"cannot listen on {host!r}: it is not an address of this machine; correct "
            f"{host_option}"
        )
    return (
        f"cannot listen on {host}:{port} ({exc.strerror or exc}): check {host_option} and {option}"
    )


async def serve(args: argparse.Namespace) -> int:
    from gateway.app import begin_draining, create_app
    from gateway.observability.logging import configure_logging
    from gateway.store.engine import sqlite_file_problem, where
    from gateway.tenancy.secrets import SecretBox

    overrides = {
        name: value
        for name in ("host", "port", "workers")
        if (value := getattr(args, name)) is not None
    }
    config = settings(**overrides)
    configure_logging(config.log_level, config.log_format)
    # The master keys first: a store is not announced for a gateway that cannot start.
    box = SecretBox.from_sources(config.master_keys, config.master_keys_file)
    if args.listen_fd is None:  # the supervisor or the only process, not a worker
        problem = sqlite_file_problem(config.database_url)
        if problem is not None:  # before a new store is announced where none can be made
            raise StoreUnavailable(problem)
        created = new_sqlite_file(config.database_url)
        if created is not None:
            log.warning(
                "creating a new SQLite store, %s: set FNG_GATEWAY_DATABASE_URL for a store "
                "that lasts (and PostgreSQL for more than one replica)",
                created,
            )
        else:
            log.info("store: %s", where(config.database_url))
        if config.workers > 1:
            return await _supervise(config)
    app = create_app(config, box=box)

    async def keys_open_secrets() -> None:
        from gateway.app import STORE

        await check_master_keys(app[STORE], box)

    if args.listen_fd is not None:
        runner = await _start_on(
            app, args.listen_fd, config.shutdown.grace_seconds, ready=keys_open_secrets
        )
    else:
        runner, port = await _start(
            app,
            config.host,
            config.port,
            config.shutdown.grace_seconds,
            option=_chosen("--port", "port", args),
            host_option=_chosen("--host", "host", args),
            ready=keys_open_secrets,
        )
        print(f"fng-gateway listening on http://{config.host}:{port}", file=sys.stderr)
    await _serve_until_stopped([runner], lambda: begin_draining(app), config.shutdown.drain_seconds)
    return DONE


def _chosen(option: str, name: str, args: argparse.Namespace) -> str:
    """How the user chose a setting: the option, or FNG_GATEWAY_… (environment or file)."""
    if getattr(args, name, None) is not None:
        return option
    variable = f"FNG_GATEWAY_{name.upper()}"
    config_file = os.environ.get("FNG_GATEWAY_CONFIG_FILE")
    if variable not in os.environ and config_file:
        return f"{name} in {config_file} (or {option})"
    return f"{variable} (or {option})"


async def _start_on(
    app: web.Application,
    fd: int,
    grace_seconds: float,
    ready: Callable[[], Awaitable[None]] | None = None,
) -> web.AppRunner:
    """Start ``app`` on the listening socket a supervisor handed down."""
    from aiohttp import web

    runner = await _runner(app, grace_seconds, ready)
    await web.SockSite(runner, socket.socket(fileno=fd)).start()
    return runner


async def _supervise(config: Settings) -> int:
    """``serve --workers N``: bind the socket once, bring the store up to date once, then run
    N worker processes on that socket. SIGTERM or SIGINT is passed to every worker, each
    drains as a single process does, and the supervisor exits when all have. A worker that
    exits by itself stops the others, and the supervisor exits with its code, so that
    whatever runs the gateway (Kubernetes, systemd) restarts it whole."""
    from gateway.store import create_store
    from gateway.store.migrate import make_ready

    try:
        listener = socket.create_server((config.host, config.port), backlog=1024)
    except OSError as exc:
        raise ConfigurationError(
            _listen_failure(exc, config.host, config.port, "--port", "--host or FNG_GATEWAY_HOST")
        ) from None
    with listener:
        store = create_store(config.database_url)
        try:
            await make_ready(store, config.database_url, auto_migrate=config.auto_migrate)
        finally:
            await store.close()
        port = int(listener.getsockname()[1])
        command = [sys.executable, "-m", "gateway.cli", "serve", "--workers", "1"]
        workers = [
            await asyncio.create_subprocess_exec(
                *command, "--listen-fd", str(listener.fileno()), pass_fds=(listener.fileno(),)
            )
            for _ in range(config.workers)
        ]
        print(
            f"fng-gateway listening on http://{config.host}:{port} with {len(workers)} workers",
            file=sys.stderr,
        )
        return await _until_workers_end(workers)


async def _until_workers_end(workers: Sequence[asyncio.subprocess.Process]) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    waits = {asyncio.ensure_future(worker.wait()): worker for worker in workers}
    stop = asyncio.ensure_future(stopping.wait())
    done, _ = await asyncio.wait([stop, *waits], return_when=asyncio.FIRST_COMPLETED)
    code = DONE
    if stop not in done:
        ended = next(iter(done))
        # A worker's own code when it failed with one (4: the store, say), else 5.
        code = ended.result() if ended.result() > 0 else INTERNAL
        log.error(
            "a worker (pid %s) exited with code %s; stopping the others, then exiting with %s",
            waits[ended].pid,
            ended.result(),
            code,
        )
    stop.cancel()
    for worker in workers:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*waits)
    # After SIGTERM, a worker still starting dies of the signal: nothing was in flight on it.
    return code if code != DONE else max((c for c in codes if c > 0), default=DONE)


async def migrate(_args: argparse.Namespace) -> int:
    from gateway.store.engine import where
    from gateway.store.migrate import upgrade

    url = settings().database_url
    announce_new_store(url)
    await upgrade(url)
    write_out(
        f"the store is up to date: {where(url)}",
        lost="the store was brought up to date all the same",
    )
    return DONE


async def new_key(_args: argparse.Namespace) -> int:
    from gateway.tenancy.secrets import SecretBox

    # As every command: a mistyped FNG_GATEWAY_ variable or a missing config file stops it.
    settings()
    require_output("new master key")
    write_out(SecretBox.new_key(), lost="the new key was not shown: run the command again")
    return DONE


async def sandbox(args: argparse.Namespace) -> int:
    from gateway.admin.tokens import AdminTokens
    from gateway.app import STORE, begin_draining, create_app
    from gateway.cli.quickstart import register_demo, upstreams_info
    from gateway.observability.logging import configure_logging
    from gateway.sandbox import SandboxState, create_sandbox_app, seed_demo
    from gateway.tenancy.secrets import SecretBox
    from gateway.tenancy.service import TenancyAdmin

    if not args.info_file:
        require_output("demo credentials", otherwise="or give --info-file")
    else:
        # An earlier run's file would be read as this one's until this run writes its own.
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            args.info_file.unlink()
    # What the command line gave, before the settings fill in what it did not.
    args.given = argparse.Namespace(host=args.host, port=args.port)
    with tempfile.TemporaryDirectory(prefix="fng-gateway-sandbox-") as data:
        data_dir = Path(data)
        store_url = f"sqlite+aiosqlite:///{data_dir / 'gateway.db'}"
        if args.upstreams_only:  # the gateway runs apart: its FNG_GATEWAY_HOST/PORT are its own
            args.host = args.host or "127.0.0.1"
            args.port = 8080 if args.port is None else args.port
        else:  # --host and --port, else FNG_GATEWAY_HOST and FNG_GATEWAY_PORT, as serve does
            given = {name: getattr(args, name) for name in ("host", "port")}
            given = {name: value for name, value in given.items() if value is not None}
            chosen = settings(**given, database_url=store_url, admin={"enabled": True})
            args.host, args.port = chosen.host, chosen.port
        _check_sandbox_ports(args)
        state = await SandboxState.open(f"sqlite+aiosqlite:///{data_dir / 'sandbox.db'}")
        sandbox_port = (
            args.sandbox_port
            if args.sandbox_port is not None
            else (args.port + 1 if args.port else 0)
        )
        try:
            demo = await seed_demo(state)
            sandbox_runner, sandbox_port = await _start(
                create_sandbox_app(state), args.host, sandbox_port, option="--sandbox-port"
            )
        except BaseException:
            await state.close()
            raise
        sandbox_url = f"http://{_url_host(args.host)}:{sandbox_port}"
        if args.upstreams_only:
            try:
                await _upstreams_only(args, upstreams_info(demo, sandbox_url), sandbox_runner)
            finally:
                await state.close()
            return DONE
        config = settings(
            host=args.host,
            port=args.port,
            database_url=store_url,
            fng={"base_url": f"{sandbox_url}/fng"},
            admin={"enabled": True},
            # A person reads this console: plain text, unless asked otherwise.
            log_format=os.environ.get("FNG_GATEWAY_LOG_FORMAT", "text"),
        )
        configure_logging(config.log_level, config.log_format)
        box = SecretBox([SecretBox.new_key().encode()])
        app = create_app(config, box=box)
        try:
            runner, port = await _start(
                app,
                args.host,
                args.port,
                option=_chosen("--port", "port", args.given),
                host_option=_chosen("--host", "host", args.given),
            )
        except BaseException:
            await sandbox_runner.cleanup()
            await state.close()
            raise
        try:
            registered = await register_demo(
                TenancyAdmin(app[STORE], box, actor="sandbox"), demo, sandbox_url
            )
            admin_token = await AdminTokens(app[STORE], "sandbox").create("demo-operator")
        except BaseException:
            await runner.cleanup()
            await sandbox_runner.cleanup()
            await state.close()
            raise
        gateway_url = f"http://{_url_host(args.host)}:{port}"
        info = {
            "gateway_url": gateway_url,
            "sandbox_url": sandbox_url,
            "wsdl": {
                "ejournal": f"{gateway_url}/soap/ejournal?wsdl",
                "budget": f"{gateway_url}/soap/budget?wsdl",
            },
            **registered.info(demo),
            "admin": {"url": f"{gateway_url}/admin/", "token": admin_token},
        }
        if args.info_file:
            await _write_info(args.info_file, info)
        _print_welcome(info)
        try:
            await _serve_until_stopped([sandbox_runner, runner], lambda: begin_draining(app), 0)
        finally:
            await state.close()
    return DONE


def _check_sandbox_ports(args: argparse.Namespace) -> None:
    """The gateway's port and the sandbox's, once chosen: two, and both ports."""
    if args.sandbox_port is None and args.port == 65535:
        raise UsageRefused(
            "the sandbox's port would be the gateway's plus one, 65536: choose it with "
            "--sandbox-port"
        )
    if args.sandbox_port is not None and args.sandbox_port == args.port != 0:
        where = "--port" if args.given.port is not None else "FNG_GATEWAY_PORT"
        raise UsageRefused(
            f"{where} and --sandbox-port are both {args.port}, and the gateway and its sandbox "
            "each need a port of their own: give them two different ports"
        )


async def _write_info(path: Path, info: dict[str, Any]) -> None:
    try:
        await asyncio.to_thread(_write_private, path, json.dumps(info, indent=2))
    except OSError as exc:
        raise UsageRefused(
            f"cannot write the --info-file {path} ({exc.strerror or type(exc).__name__}): give "
            "the path of a file this user may write"
        ) from None


async def _upstreams_only(
    args: argparse.Namespace, info: dict[str, Any], runner: web.AppRunner
) -> None:
    """The sandbox alone, for a gateway run apart (``fng-gateway serve``) to use."""
    from gateway.observability.logging import configure_logging

    # The gateway's own settings are not read here (it runs apart), but its logging ones are.
    config = settings(log_format=os.environ.get("FNG_GATEWAY_LOG_FORMAT", "text"))
    configure_logging(config.log_level, config.log_format)
    if args.info_file:
        await _write_info(args.info_file, info)
    _print_upstreams(info)
    await _serve_until_stopped([runner], lambda: None, 0)


def _port(text: str) -> int:
    """A port option: 1 to 65535, or 0 for any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: give 1 to 65535 (0: any free)")
    return value


def _host(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty address: give one, such as 127.0.0.1, or 0.0.0.0 for every interface"
        )
    return text.strip()


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{value} workers: give 1 to 256")
    return value


def _writable(path: str) -> Path:
    """A file a command will write: its directory must exist, and it must not be one."""
    if not path.strip():
        raise argparse.ArgumentTypeError("the file name is empty: give the path of a file")
    file = Path(path)
    if file.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a directory: give a file's path")
    if not file.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the directory of {path} does not exist")
    if not os.access(file.parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"this user may not write in the directory of {path}")
    if file.exists() and not os.access(file, os.W_OK):
        raise argparse.ArgumentTypeError(f"this user may not write the file {path}")
    return file


def _write_private(path: Path, text: str) -> None:
    """``text`` in ``path``, for its owner only (mkstemp's 0600), whole or not at all: a
    reader waiting for the file never reads half of it."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming, not binding
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _print_welcome(info: dict[str, Any]) -> None:
    school = info["schools"][0]
    system = info["payment_system"]
    budget = info["budget"]
    eproc = info["eproc"]
    codes = "\n".join(
        f"    {label:<16} {', '.join(system[key])}"
        for label, key in (
            ("banks", "banks"),
            ("products", "products"),
            ("VAT", "vat_codes"),
            ("charges", "charge_codes"),
            ("VAT on charges", "charge_vat_codes"),
        )
    )
    print(
        "\nfng-gateway is running with its sandbox (SIMS ID and FNG stand-ins) and a demo school."
        f"\n\n  E-Journal WSDL    {info['wsdl']['ejournal']}"
        f"\n  Budget WSDL       {info['wsdl']['budget']}"
        f"\n  Username          {info['account']['username']}"
        f"\n  Password          {info['account']['password']}"
        f"\n  Database key      {school['database_key']}"
        f"\n  School            {school['name']} ({school['la_number']}/"
        f"{school['establishment_number']}), {school['database']}"
        f"\n  Payment system    {system['system_identifier']}, with these codes mapped:\n{codes}"
        f"\n  Budget planning   years {', '.join(budget['financial_years'])} "
        f"(open: {budget['open_year']}); ledger codes "
        f"{', '.join(sorted({item['ledger_code'] for item in budget['fund_allocations']}))}; "
        f"cost centres {', '.join(budget['cost_centres'])}"
        f"\n  eProcurement      portal {eproc['portal']} (supplier DUNS {eproc['supplier_duns']}), "
        f"polled every {eproc['poll_seconds']} s for the school (DUNS {eproc['school_duns']});"
        f"\n                    {len(eproc['documents'])} documents waiting there, some valid, "
        "some breaking one of FMS's import rules each"
        f"\n  Admin API         {info['admin']['url']}openapi.json"
        f"\n                    bearer token {info['admin']['token']}"
        f"\n  Sandbox           {info['sandbox_url']}/_sandbox/stats"
        f"\n                    {info['sandbox_url']}/_sandbox/eproc/documents (what FNG received)"
        f"\n                    {info['sandbox_url']}/_sandbox/portals/{eproc['portal']}"
        "\n\nSend Username, Password and Database in the SOAP AuthHeader of each call."
        "\nStop with Ctrl-C; the demo data lives as long as this process.\n",
        flush=True,
    )


def _print_upstreams(info: dict[str, Any]) -> None:
    simsid, fng, school, database, portal = (
        info[part] for part in ("simsid", "fng", "school", "database", "portal")
    )
    print(
        "\nThe sandbox is running alone: SIMS ID, FNG and a supplier's portal, with a demo "
        "school, for a gateway you run yourself (fng-gateway serve)."
        f"\n\n  SIMS ID token URL {simsid['token_url']}"
        f"\n    client id       {simsid['client_id']}"
        f"\n    client secret   {simsid['client_secret']} ({simsid['auth_method']})"
        f"\n  FNG base URL      {fng['base_url']}  (FNG_GATEWAY_FNG__BASE_URL)"
        f"\n  School            {school['name']} ({school['la_number']}/"
        f"{school['establishment_number']}), DUNS {school['duns']}"
        f"\n  Database          {database['name']}"
        f"\n    FNG key         {database['fng_key']}"
        f"\n    partner key     {database['partner_key']}"
        f"\n  Payment system    {info['payment_system']['system_identifier']}"
        f"\n  Supplier portal   {portal['url']}"
        f"\n    user name       {portal['username']}"
        f"\n    password        {portal['password']}"
        f"\n    supplier DUNS   {portal['supplier_duns']}"
        f"\n  Sandbox           {info['sandbox_url']}/_sandbox/stats"
        "\n\nRegister the school in your gateway with the CLI, as the README's "
        '"Running it" shows.'
        "\nStop with Ctrl-C; the demo data lives as long as this process.\n",
        flush=True,
    )


# -- parser --------------------------------------------------------------------------------


def register(commands: Any, groups: dict[str, Any]) -> None:
    parser = commands.add_parser(
        "sandbox",
        help="run the gateway with its sandbox and a demo school",
        description=(
            "Run the gateway with its sandbox (stand-ins for SIMS ID, FNG and a supplier's "
            "portal) in one process, on SQLite in a temporary directory, with a demo school "
            "registered; prints what a client needs. The demo data lives as long as the "
            "process."
        ),
    )
    parser.add_argument(
        "--host",
        type=_host,
        help="the address both listen on (default FNG_GATEWAY_HOST, or 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        help="the gateway's port (default FNG_GATEWAY_PORT, or 8080; 0: any free)",
    )
    parser.add_argument(
        "--sandbox-port",
        type=_port,
        default=None,
        help="the sandbox's port (default: the gateway's plus one)",
    )
    parser.add_argument(
        "--info-file", type=_writable, help="write the URLs and demo credentials here as JSON"
    )
    parser.add_argument(
        "--upstreams-only",
        action="store_true",
        help=(
            "run the sandbox alone (SIMS ID, FNG and the demo portal, default port 8081), "
            "for a gateway you run with 'fng-gateway serve'; prints what to register"
        ),
    )
    parser.set_defaults(run=sandbox)
    serve_parser = commands.add_parser(
        "serve",
        help="run the gateway",
        description=(
            "Run the gateway. It is configured by FNG_GATEWAY_* environment variables (nested "
            "settings with __, e.g. FNG_GATEWAY_FNG__BASE_URL), over a TOML file named by "
            "FNG_GATEWAY_CONFIG_FILE; the README's settings table lists them all. A master "
            "key is required to read stored secrets: FNG_GATEWAY_MASTER_KEYS (Fernet keys, "
            "newest first, separated by commas) or FNG_GATEWAY_MASTER_KEYS_FILE; make one "
            "with 'fng-gateway secrets new-key'. The store is FNG_GATEWAY_DATABASE_URL "
            "(default: the SQLite file fng-gateway.db in the current directory)."
        ),
    )
    serve_parser.add_argument(
        "--host",
        type=_host,
        help="the address to listen on (default FNG_GATEWAY_HOST, or 127.0.0.1)",
    )
    serve_parser.add_argument(
        "--port", type=_port, help="the port to listen on (default FNG_GATEWAY_PORT, or 8080)"
    )
    serve_parser.add_argument(
        "--workers",
        type=_workers,
        help=(
            "processes sharing the port, to use several cores (default FNG_GATEWAY_WORKERS, "
            "or 1); give them Redis and PostgreSQL"
        ),
    )
    # A worker of ``--workers``: the listening socket its supervisor handed down.
    serve_parser.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    serve_parser.set_defaults(run=serve)
    commands.add_parser(
        "migrate",
        help="bring the store's schema up to date",
        description=(
            "Apply the gateway's migrations to the store named by FNG_GATEWAY_DATABASE_URL. "
            "Safe to run from several replicas at once."
        ),
    ).set_defaults(run=migrate)
    groups["secrets"].add_parser("new-key", help="print a new master key").set_defaults(run=new_key)

"""The ``fng-gateway`` command line.

    fng-gateway sandbox            the gateway and its sandbox in one process, demo seeded
    fng-gateway serve              the gateway, configured by the environment
    fng-gateway migrate            bring the store's schema up to date
    fng-gateway secrets new-key    print a new master key
    fng-gateway vendors add …      a SIMS ID client registration
    fng-gateway schools add …      a school
    fng-gateway databases add …    a school's FNG database, with its keys
    fng-gateway accounts add …     an integration account (its password is shown once)
    fng-gateway accounts grant …   let an account use a database's interfaces
    fng-gateway portals add|list   suppliers' eProcurement portals
    fng-gateway eproc …            quarantined documents and orders: list, show, retry, release

Secrets are read from standard input or the environment, never from arguments (which
other users of the machine can see). Exit codes: 0 done, 1 refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from pydantic import ValidationError

from gateway.app import STORE, create_app
from gateway.config import Settings
from gateway.eproc.admin import EprocAdmin
from gateway.errors import GatewayError
from gateway.observability.logging import AccessLogger, configure_logging
from gateway.quickstart import register_demo
from gateway.store import Store, create_store
from gateway.store.migrate import upgrade
from gateway.store.tables import portals
from gateway.tenancy.model import AuthMethod, Interface
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import RegistryService


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SystemExit(f"fng-gateway: invalid settings:\n{exc}") from None


def _secret(prompt_env: str | None, use_stdin: bool, what: str) -> str:
    if prompt_env:
        value = os.environ.get(prompt_env)
        if not value:
            raise SystemExit(f"fng-gateway: the environment variable {prompt_env} is empty")
        return value
    if use_stdin:
        value = sys.stdin.read().strip()
        if not value:
            raise SystemExit(f"fng-gateway: no {what} on standard input")
        return value
    raise SystemExit(
        f"fng-gateway: give the {what} with --{what.replace(' ', '-')}-stdin or "
        f"--{what.replace(' ', '-')}-env"
    )


async def _serve_until_stopped(runners: Sequence[web.AppRunner]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log_class=AccessLogger, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])  # the bound port, when 0 was asked for


# -- serve, migrate, secrets -------------------------------------------------------------


async def _serve(_args: argparse.Namespace) -> int:
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    runner, port = await _start(create_app(settings), settings.host, settings.port)
    print(f"fng-gateway listening on http://{settings.host}:{port}", file=sys.stderr)
    await _serve_until_stopped([runner])
    return 0


async def _migrate(_args: argparse.Namespace) -> int:
    settings = _settings()
    await upgrade(settings.database_url)
    print("the store is up to date")
    return 0


async def _new_key(_args: argparse.Namespace) -> int:
    print(SecretBox.new_key())
    return 0


# -- registry ------------------------------------------------------------------------------


async def _with_store(
    action: Callable[[Store, SecretBox, str], Awaitable[Any]], as_json: bool
) -> int:
    """Open the store, run ``action``, print its result (a table, or JSON with --json)."""
    settings = _settings()
    box = SecretBox.from_sources(settings.master_keys, settings.master_keys_file)
    if settings.auto_migrate:
        await upgrade(settings.database_url)
    store = create_store(settings.database_url)
    try:
        result = await action(store, box, f"cli:{os.getenv('USER', '?')}")
    finally:
        await store.close()
    _print(result, as_json)
    return 0


def _print(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, default=str))
    elif isinstance(result, list):
        if not result:
            print("(none)")
            return
        columns = list(result[0])
        widths = {c: max(len(c), *(len(str(row[c])) for row in result)) for c in columns}
        print("  ".join(c.ljust(widths[c]) for c in columns))
        for row in result:
            print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


async def _with_registry(
    action: Callable[[RegistryService], Awaitable[dict[str, Any]]], as_json: bool
) -> int:
    async def run(store: Store, box: SecretBox, actor: str) -> dict[str, Any]:
        return await action(RegistryService(store, box, actor=actor))

    return await _with_store(run, as_json)


async def _vendors_add(args: argparse.Namespace) -> int:
    credential = _secret(args.secret_env, args.secret_stdin, "secret")

    async def action(service: RegistryService) -> dict[str, Any]:
        vendor_id = await service.add_vendor(
            args.name,
            token_url=args.token_url,
            client_id=args.client_id,
            credential=credential,
            auth_method=AuthMethod(args.auth_method),
        )
        return {"vendor_id": vendor_id}

    return await _with_registry(action, args.json)


async def _schools_add(args: argparse.Namespace) -> int:
    async def action(service: RegistryService) -> dict[str, Any]:
        school_id = await service.add_school(
            args.name,
            la_number=args.la,
            establishment_number=args.establishment,
            duns=args.duns,
            language=args.language,
            currency=args.currency,
        )
        return {"school_id": school_id}

    return await _with_registry(action, args.json)


async def _databases_add(args: argparse.Namespace) -> int:
    fng_key = _secret(args.fng_key_env, args.fng_key_stdin, "fng key")

    async def action(service: RegistryService) -> dict[str, Any]:
        created = await service.add_database(
            args.school,
            vendor_id=args.vendor,
            name=args.name,
            fng_key=fng_key,
        )
        return {"database_id": created.database_id, "partner_key": created.partner_key}

    return await _with_registry(action, args.json)


async def _accounts_add(args: argparse.Namespace) -> int:
    password = _secret(None, True, "password") if args.password_stdin else None

    async def action(service: RegistryService) -> dict[str, Any]:
        created = await service.add_account(args.username, password)
        result: dict[str, Any] = {"account_id": created.account_id}
        if password is None:
            result["password"] = created.password
        return result

    return await _with_registry(action, args.json)


async def _accounts_grant(args: argparse.Namespace) -> int:
    async def action(service: RegistryService) -> dict[str, Any]:
        account_id = await service.find_account(args.username)
        if account_id is None:
            raise SystemExit(f"fng-gateway: there is no account named {args.username!r}")
        await service.grant(
            account_id, args.database, [Interface(i) for i in args.interface], args.system or []
        )
        return {"granted": True}

    return await _with_registry(action, args.json)


async def _portals_add(args: argparse.Namespace) -> int:
    password = _secret(args.password_env, args.password_stdin, "password")

    async def action(service: RegistryService) -> dict[str, Any]:
        portal_id = await service.add_portal(
            args.database,
            name=args.name,
            url=args.url,
            username=args.username,
            password=password,
            supplier_duns=args.supplier_duns,
            poll_seconds=args.poll_seconds,
            password_days=args.password_days,
        )
        return {"portal_id": portal_id}

    return await _with_registry(action, args.json)


async def _portals_list(args: argparse.Namespace) -> int:
    async def action(store: Store, _box: SecretBox, _actor: str) -> list[dict[str, Any]]:
        async with store.read() as conn:
            rows = await conn.execute(sa.select(portals).order_by(portals.c.id))
            return [
                {
                    "id": row.id,
                    "database": row.database_id,
                    "name": row.name,
                    "url": row.url,
                    "supplier_duns": row.supplier_duns,
                    "enabled": row.enabled,
                    "poll_seconds": row.poll_seconds,
                    "last_success": row.last_success_at,
                    "failures": row.failures,
                    "last_error": row.last_error or "",
                }
                for row in rows
            ]

    return await _with_store(action, args.json)


async def _eproc(args: argparse.Namespace) -> int:
    async def action(store: Store, _box: SecretBox, actor: str) -> Any:
        admin = EprocAdmin(store, actor)
        if args.action == "quarantine":
            return [item.as_dict() for item in await admin.quarantined()]
        if args.action == "show":
            item, content = await admin.document(args.id)
            return {**item.as_dict(), "content": content.decode("utf-8", "replace")}
        operation = {
            ("retry", False): admin.retry_document,
            ("release", False): admin.release_document,
            ("retry", True): admin.retry_order,
            ("release", True): admin.release_order,
        }[(args.action, args.order)]
        await operation(args.id)
        return {"id": args.id, "done": args.action}

    return await _with_store(action, args.json)


# -- sandbox -------------------------------------------------------------------------------


async def _sandbox(args: argparse.Namespace) -> int:
    from gateway.sandbox import SandboxState, create_sandbox_app, seed_demo

    with tempfile.TemporaryDirectory(prefix="fng-gateway-sandbox-") as data:
        data_dir = Path(data)
        state = await SandboxState.open(f"sqlite+aiosqlite:///{data_dir / 'sandbox.db'}")
        demo = await seed_demo(state)
        sandbox_port = (
            args.sandbox_port
            if args.sandbox_port is not None
            else (args.port + 1 if args.port else 0)
        )
        sandbox_runner, sandbox_port = await _start(
            create_sandbox_app(state), args.host, sandbox_port
        )
        sandbox_url = f"http://{_url_host(args.host)}:{sandbox_port}"
        settings = _settings(
            host=args.host,
            port=args.port,
            database_url=f"sqlite+aiosqlite:///{data_dir / 'gateway.db'}",
            fng={"base_url": f"{sandbox_url}/fng"},
            # A person reads this console: plain text, unless asked otherwise.
            log_format=os.environ.get("FNG_GATEWAY_LOG_FORMAT", "text"),
        )
        configure_logging(settings.log_level, settings.log_format)
        box = SecretBox([SecretBox.new_key().encode()])
        app = create_app(settings, box=box)
        runner, port = await _start(app, args.host, args.port)
        try:
            registered = await register_demo(
                RegistryService(app[STORE], box, actor="sandbox"), demo, sandbox_url
            )
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
        }
        if args.info_file:
            await asyncio.to_thread(
                _write_private, Path(args.info_file), json.dumps(info, indent=2)
            )
        _print_welcome(info)
        try:
            await _serve_until_stopped([sandbox_runner, runner])
        finally:
            await state.close()
    return 0


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


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
        f"\n  Sandbox           {info['sandbox_url']}/_sandbox/stats"
        f"\n                    {info['sandbox_url']}/_sandbox/eproc/documents (what FNG received)"
        f"\n                    {info['sandbox_url']}/_sandbox/portals/{eproc['portal']}"
        "\n\nSend Username, Password and Database in the SOAP AuthHeader of each call."
        "\nStop with Ctrl-C; the demo data lives as long as this process.\n",
        flush=True,
    )


# -- parser --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fng-gateway", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser(
        "sandbox", help="run the gateway with its sandbox and a demo school"
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8080, help="the gateway's port (0: any free)")
    sandbox.add_argument(
        "--sandbox-port",
        type=int,
        default=None,
        help="the sandbox's port (default: the gateway's plus one)",
    )
    sandbox.add_argument("--info-file", help="write the URLs and demo credentials here as JSON")
    sandbox.set_defaults(run=_sandbox)

    commands.add_parser("serve", help="run the gateway").set_defaults(run=_serve)
    commands.add_parser("migrate", help="bring the store's schema up to date").set_defaults(
        run=_migrate
    )
    secrets = commands.add_parser("secrets", help="master keys").add_subparsers(
        dest="action", required=True
    )
    secrets.add_parser("new-key", help="print a new master key").set_defaults(run=_new_key)

    def with_json(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
        return p

    vendors = commands.add_parser("vendors", help="SIMS ID client registrations").add_subparsers(
        dest="action", required=True
    )
    vendor_add = with_json(vendors.add_parser("add", help="add a vendor"))
    vendor_add.add_argument("name")
    vendor_add.add_argument("--token-url", required=True)
    vendor_add.add_argument("--client-id", required=True)
    vendor_add.add_argument(
        "--auth-method",
        choices=[m.value for m in AuthMethod],
        default=AuthMethod.CLIENT_SECRET_BASIC.value,
    )
    vendor_add.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the client secret (or private key) from standard input",
    )
    vendor_add.add_argument("--secret-env", metavar="VAR", help="read it from this variable")
    vendor_add.set_defaults(run=_vendors_add)

    schools = commands.add_parser("schools", help="schools").add_subparsers(
        dest="action", required=True
    )
    school_add = with_json(schools.add_parser("add", help="add a school"))
    school_add.add_argument("name")
    school_add.add_argument("--la", required=True, help="LA number (3 digits)")
    school_add.add_argument(
        "--establishment", required=True, help="establishment number (4 digits)"
    )
    school_add.add_argument("--duns", help="the school's DUNS number, for eProcurement")
    school_add.add_argument("--language", default="en", help="documents' language (default en)")
    school_add.add_argument("--currency", default="GBP", help="documents' currency (default GBP)")
    school_add.set_defaults(run=_schools_add)

    databases = commands.add_parser("databases", help="schools' FNG databases").add_subparsers(
        dest="action", required=True
    )
    database_add = with_json(
        databases.add_parser(
            "add", help="add a school's FNG database; prints its new partner key once"
        )
    )
    database_add.add_argument("school", type=int, help="the school's id")
    database_add.add_argument("--vendor", type=int, required=True, help="the vendor's id")
    database_add.add_argument("--name", required=True)
    database_add.add_argument(
        "--fng-key-stdin",
        action="store_true",
        help="read FNG's key for the database from standard input",
    )
    database_add.add_argument("--fng-key-env", metavar="VAR")
    database_add.set_defaults(run=_databases_add)

    accounts = commands.add_parser("accounts", help="integration accounts").add_subparsers(
        dest="action", required=True
    )
    account_add = with_json(
        accounts.add_parser("add", help="add an account; prints a generated password once")
    )
    account_add.add_argument("username")
    account_add.add_argument("--password-stdin", action="store_true")
    account_add.set_defaults(run=_accounts_add)
    grant = with_json(accounts.add_parser("grant", help="let an account use a database"))
    grant.add_argument("username")
    grant.add_argument("--database", type=int, required=True)
    grant.add_argument(
        "--interface", action="append", required=True, choices=[i.value for i in Interface]
    )
    grant.add_argument(
        "--system",
        action="append",
        help="a payment system identifier the account may post for (repeatable)",
    )
    grant.set_defaults(run=_accounts_grant)

    portal_commands = commands.add_parser(
        "portals", help="suppliers' eProcurement portals"
    ).add_subparsers(dest="action", required=True)
    portal_add = with_json(portal_commands.add_parser("add", help="add a school's portal"))
    portal_add.add_argument("database", type=int, help="the school database's id")
    portal_add.add_argument("--name", required=True, help="unique for the database: a-z, 0-9, -")
    portal_add.add_argument("--url", required=True, help="the portal's EProcurementService URL")
    portal_add.add_argument("--username", required=True)
    portal_add.add_argument("--supplier-duns", required=True)
    portal_add.add_argument("--poll-seconds", type=int, default=300)
    portal_add.add_argument(
        "--password-days",
        type=int,
        default=None,
        help="change the password this often with ChangePassword (>= 60)",
    )
    portal_add.add_argument("--password-stdin", action="store_true")
    portal_add.add_argument("--password-env", metavar="VAR")
    portal_add.set_defaults(run=_portals_add)
    with_json(
        portal_commands.add_parser("list", help="list portals and their health")
    ).set_defaults(run=_portals_list)

    eproc = commands.add_parser("eproc", help="eProcurement work set aside for operators")
    eproc_actions = eproc.add_subparsers(dest="action", required=True)
    with_json(
        eproc_actions.add_parser("quarantine", help="list quarantined documents and orders")
    ).set_defaults(run=_eproc)
    for name, text in (
        ("show", "a quarantined document and its content"),
        ("retry", "check a document again (or send an order again) at the next poll"),
        ("release", "acknowledge a document without delivering it (or count an order as sent)"),
    ):
        command = with_json(eproc_actions.add_parser(name, help=text))
        command.add_argument("id", type=int)
        command.add_argument("--order", action="store_true", help="the id is an order's")
        command.set_defaults(run=_eproc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.run(args))
        return code
    except GatewayError as exc:
        print(f"fng-gateway: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())

"""Operators' commands over the registry: the same service functions the admin API calls."""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gateway.cli.common import (
    actor,
    secret,
    secret_options,
    settings,
    with_actor,
    with_json,
    with_store,
)
from gateway.errors import CallerError, NotFound, RegistryError
from gateway.tenancy.identifiers import (
    ACCOUNT_PASSWORD,
    AUDIT_SUBJECT,
    CLIENT_ID,
    CLIENT_SECRET,
    CURRENCY_CODE,
    DATABASE_NAME,
    DUNS_NUMBER,
    ESTABLISHMENT,
    FNG_KEY,
    ID,
    LA,
    LANGUAGE_CODE,
    LIMIT,
    MAX_SYSTEMS,
    PARTNER_KEY,
    PASSWORD_DAYS,
    POLL_SECONDS,
    PORTAL_NAME,
    PORTAL_PASSWORD,
    PORTAL_URL,
    PORTAL_USERNAME,
    PRIVATE_KEY,
    SCHOOL_NAME,
    SECONDS,
    SYSTEM_IDENTIFIER,
    TOKEN_NAME,
    TOKEN_URL,
    USERNAME,
    VENDOR_NAME,
    Bounded,
    Text,
    check,
)
from gateway.tenancy.model import AuthMethod, ChecksumPolicy, Interface

if TYPE_CHECKING:
    from gateway.store import Store
    from gateway.tenancy.secrets import SecretBox
    from gateway.tenancy.service import TenancyAdmin

# The service modules are imported by the commands that use them, so that the command line
# starts quickly.

Namespace = argparse.Namespace


# -- what a command is given: checked by the registry's own rules before the store is opened,
# each refusal naming the option it came from ------------------------------------------------


def _number(rule: Bounded) -> Callable[[str], Any]:
    """An argparse type for ``rule``: a number out of its range is a usage error (exit 2),
    said in one line, as argparse says an unknown option."""

    def parse(text: str) -> int | float:
        value: int | float
        if rule.whole:
            if re.fullmatch(r"\s*[0-9]{1,20}\s*", text) is None:
                raise argparse.ArgumentTypeError(f"must be a whole number {rule.range}")
            value = int(text)
        else:
            try:
                value = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"must be a number {rule.range}") from None
        problem = rule.problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


#: Ids (PostgreSQL's INTEGER), list lengths, and graces and overlaps in seconds.
_id = _number(ID)
_limit = _number(LIMIT)
_seconds = _number(SECONDS)


def _since(text: str) -> datetime:
    """An ISO 8601 date or date-time, in UTC unless it gives its offset."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: give an ISO 8601 date or date-time, such as 2024-09-01 "
            "or 2024-09-01T08:00:00+01:00 (UTC when no offset is given)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range in UTC: give a time from 0001-01-02 to 9999-12-30"
        ) from None


def _stdin_or_env(what: str) -> str:
    flag = what.replace(" ", "-")
    return f"--{flag}-stdin or --{flag}-env"


async def _store(
    action: Callable[[Store, SecretBox], Awaitable[Any]],
    args: Namespace,
    shown_once: tuple[str, str] | None = None,
    *,
    stores_secret: bool = False,
) -> int:
    """``with_store``, once the actor is known to be one the audit log can record;
    ``shown_once`` for a command whose result shows a secret once, ``stores_secret`` for
    one that encrypts a secret."""
    if hasattr(args, "actor"):
        actor(args)
    return await with_store(action, args, shown_once=shown_once, stores_secret=stores_secret)


def _admin(store: Store, box: SecretBox, args: Namespace) -> TenancyAdmin:
    from gateway.tenancy.service import TenancyAdmin

    return TenancyAdmin(store, box, actor=actor(args))


def _fingerprint(key: str) -> str:
    """What ``keys list`` shows of a key: the start of its SHA-256, never the key."""
    from gateway.tenancy.keys import key_digest, normalise_key

    return key_digest(normalise_key(key) or key)[:12]


async def _account_id(service: TenancyAdmin, username: str) -> int:
    account_id = await service.find_account(username)
    if account_id is None:
        raise NotFound(f"there is no account named {username!r}")
    return account_id


# -- vendors ---------------------------------------------------------------------------------


async def vendors_add(args: Namespace) -> int:
    credential = secret(args, "secret")
    assert credential is not None
    check(VENDOR_NAME, args.name, given_as="NAME")
    check(TOKEN_URL, args.token_url, given_as="--token-url")
    check(CLIENT_ID, args.client_id, given_as="--client-id")
    check(CLIENT_SECRET, credential, given_as=_stdin_or_env("secret"))
    if args.auth_method == AuthMethod.PRIVATE_KEY_JWT.value:
        check(PRIVATE_KEY, credential, given_as=_stdin_or_env("secret"))

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        vendor_id = await _admin(store, box, args).add_vendor(
            args.name,
            token_url=args.token_url,
            client_id=args.client_id,
            credential=credential,
            auth_method=AuthMethod(args.auth_method),
        )
        return {"vendor_id": vendor_id}

    return await _store(action, args, stores_secret=True)


async def vendors_list(args: Namespace) -> int:
    return await _store(lambda store, box: _admin(store, box, args).vendors(), args)


async def vendors_set_secret(args: Namespace) -> int:
    credential = secret(args, "secret")
    assert credential is not None
    check(CLIENT_SECRET, credential, given_as=_stdin_or_env("secret"))

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        await _admin(store, box, args).set_vendor_credential(args.vendor, credential)
        return {"vendor_id": args.vendor, "secret": "changed"}

    return await _store(action, args, stores_secret=True)


# -- schools and databases -----------------------------------------------------------------------


async def schools_add(args: Namespace) -> int:
    check(SCHOOL_NAME, args.name, given_as="NAME")
    check(LA, args.la, given_as="--la")
    check(ESTABLISHMENT, args.establishment, given_as="--establishment")
    if args.duns is not None:
        check(DUNS_NUMBER, args.duns, given_as="--duns")
    check(LANGUAGE_CODE, args.language, given_as="--language")
    check(CURRENCY_CODE, args.currency, given_as="--currency")

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        school_id = await _admin(store, box, args).add_school(
            args.name,
            la_number=args.la,
            establishment_number=args.establishment,
            duns=args.duns,
            language=args.language,
            currency=args.currency,
        )
        return {"school_id": school_id}

    return await _store(action, args)


async def schools_list(args: Namespace) -> int:
    return await _store(lambda store, box: _admin(store, box, args).schools(), args)


async def databases_add(args: Namespace) -> int:
    if args.fng_key_stdin and args.partner_key_stdin:
        raise CallerError(
            "only one key can come from stdin: give the other with --fng-key-env VAR "
            "or --partner-key-env VAR"
        )
    fng_key = secret(args, "fng key")
    assert fng_key is not None
    partner_key = secret(args, "partner key", required=False)
    check(DATABASE_NAME, args.name, given_as="--name")
    check(FNG_KEY, fng_key, given_as=_stdin_or_env("fng key"))
    if partner_key is not None:
        check(PARTNER_KEY, partner_key, given_as=_stdin_or_env("partner key"))

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        created = await _admin(store, box, args).add_database(
            args.school,
            vendor_id=args.vendor,
            name=args.name,
            fng_key=fng_key,
            partner_key=partner_key,
        )
        if partner_key is None:  # made here: shown this once
            return {"database_id": created.database_id, "partner_key": created.partner_key}
        # The operator's own key is never printed back (it would stay in a terminal's
        # scrollback, a CI log): that it was stored, and its fingerprint, as keys list shows.
        return {
            "database_id": created.database_id,
            "partner_key": "the key given, stored",
            "partner_key_fingerprint": _fingerprint(created.partner_key),
        }

    shown = (
        ("generated partner key", "rotate it with 'fng-gateway keys rotate' (then promote)")
        if partner_key is None
        else None
    )
    return await _store(action, args, shown, stores_secret=True)


async def databases_list(args: Namespace) -> int:
    return await _store(lambda store, box: _admin(store, box, args).databases(), args)


# -- keys ----------------------------------------------------------------------------------------


async def keys(args: Namespace) -> int:
    grace = timedelta(
        seconds=args.grace_seconds
        if getattr(args, "grace_seconds", None) is not None
        else settings().keys.retire_grace_seconds
    )
    given = secret(args, "key", required=False) if args.action == "rotate" else None
    if given is not None:
        check(PARTNER_KEY, given, given_as=_stdin_or_env("key"))
    shown = (
        (
            "next partner key",
            f"cancel it with 'fng-gateway keys cancel {args.database}' and rotate again",
        )
        if args.action == "rotate" and given is None
        else None
    )

    async def action(store: Store, box: SecretBox) -> Any:
        from gateway.tenancy.rotation import KeyRotation

        rotation = KeyRotation(store, box, actor(args))
        if args.action == "list":
            return await rotation.partner_keys(args.database)
        if args.action == "rotate":
            key = await rotation.rotate_partner_key(args.database, given)
            if given is not None:  # the operator's own key: never printed back
                return {
                    "database_id": args.database,
                    "next_key": "the key given, stored",
                    "next_key_fingerprint": _fingerprint(key),
                    "note": "enter it in FNG's application set-up screen, then promote it",
                }
            return {
                "database_id": args.database,
                "next_key": key,
                "note": "enter it in FNG's application set-up screen, then promote it",
            }
        if args.action == "promote":
            deadline = await rotation.promote_partner_key(args.database, grace)
            return {"database_id": args.database, "old_key_refused_from": deadline.isoformat()}
        if args.action == "cancel":
            await rotation.cancel_partner_key(args.database)
        else:
            # As cancel refuses a database with no next key, retire refuses one with no
            # retiring key still accepted: there would be nothing to do.
            now = datetime.now(UTC)
            retiring = [
                key
                for key in await rotation.partner_keys(args.database)
                if key["state"] == "retiring"
                and key["retire_at"] is not None
                and datetime.fromisoformat(key["retire_at"]) > now
            ]
            if not retiring:
                raise RegistryError(f"database {args.database} has no retiring key")
            await rotation.retire_now(args.database)
        return {"database_id": args.database, "done": args.action}

    return await _store(action, args, shown, stores_secret=args.action == "rotate")


async def fng_key(args: Namespace) -> int:
    key = secret(args, "key") if args.action == "set" else None
    if key is not None:
        check(FNG_KEY, key, given_as=_stdin_or_env("key"))

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        from gateway.tenancy.rotation import KeyRotation

        rotation = KeyRotation(store, box, actor(args))
        if key is not None:
            await _admin(store, box, args).set_next_fng_key(args.database, key)
            return {
                "database_id": args.database,
                "next_fng_key": "stored",
                "note": "used as soon as FNG refuses the current key",
            }
        await rotation.promote_fng_key(args.database)
        return {"database_id": args.database, "fng_key": "promoted"}

    return await _store(action, args, stores_secret=key is not None)


# -- accounts ------------------------------------------------------------------------------------


async def accounts_add(args: Namespace) -> int:
    password = secret(args, "password", required=False)
    check(USERNAME, args.username, given_as="USERNAME")
    if password is not None:
        check(ACCOUNT_PASSWORD, password, given_as=_stdin_or_env("password"))

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        created = await _admin(store, box, args).add_account(args.username, password)
        result: dict[str, Any] = {"account_id": created.account_id}
        if password is None:
            result["password"] = created.password
        return result

    shown = (
        (
            "generated password",
            f"set a new one with 'fng-gateway accounts password {args.username}'",
        )
        if password is None
        else None
    )
    return await _store(action, args, shown)


async def accounts_list(args: Namespace) -> int:
    return await _store(lambda store, box: _admin(store, box, args).accounts(), args)


async def accounts_grant(args: Namespace) -> int:
    systems = getattr(args, "system", None) or []
    if len(systems) > MAX_SYSTEMS:
        raise RegistryError(f"a grant names at most {MAX_SYSTEMS} payment systems (--system)")
    for system in systems:
        check(SYSTEM_IDENTIFIER, system, given_as="--system")

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        service = _admin(store, box, args)
        account_id = await _account_id(service, args.username)
        interfaces = [Interface(item) for item in args.interface or []]
        if args.action == "grant":
            await service.grant(account_id, args.database, interfaces, systems)
        else:
            await service.revoke(account_id, args.database, interfaces, strict=True)
        return {"username": args.username, "done": args.action}

    return await _store(action, args)


async def accounts_password(args: Namespace) -> int:
    password = secret(args, "password", required=False)
    if password is not None:
        check(ACCOUNT_PASSWORD, password, given_as=_stdin_or_env("password"))
    overlap = timedelta(
        seconds=args.overlap_seconds
        if args.overlap_seconds is not None
        else settings().keys.password_overlap_seconds
    )

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        from gateway.tenancy.rotation import KeyRotation

        new = await KeyRotation(store, box, actor(args)).change_password(
            args.username, overlap, password
        )
        result: dict[str, Any] = {
            "username": args.username,
            "old_password_refused_from": (datetime.now(UTC) + overlap).isoformat(),
        }
        if password is None:
            result["password"] = new
        return result

    shown = (
        (
            "generated password",
            f"run 'fng-gateway accounts password {args.username}' again",
        )
        if password is None
        else None
    )
    return await _store(action, args, shown)


async def accounts_access(args: Namespace) -> int:
    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        service = _admin(store, box, args)
        if args.action == "unlock":
            await service.unlock_account(args.username)
        else:
            await service.set_account_enabled(args.username, args.action == "enable", strict=True)
        return {"username": args.username, "done": args.action}

    return await _store(action, args)


# -- portals and eProcurement work ------------------------------------------------------------


async def portals_add(args: Namespace) -> int:
    password = secret(args, "password")
    assert password is not None
    check(PORTAL_NAME, args.name, given_as="--name")
    check(PORTAL_URL, args.url, given_as="--url")
    for number in args.supplier_duns:
        check(DUNS_NUMBER, number, given_as="--supplier-duns")
    check(PORTAL_USERNAME, args.username, given_as="--username")
    check(PORTAL_PASSWORD, password, given_as=_stdin_or_env("password"))
    check(POLL_SECONDS, args.poll_seconds, given_as="--poll-seconds")
    if args.password_days is not None:
        check(PASSWORD_DAYS, args.password_days, given_as="--password-days")

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        portal_id = await _admin(store, box, args).add_portal(
            args.database,
            name=args.name,
            url=args.url,
            username=args.username,
            password=password,
            supplier_duns=args.supplier_duns,
            poll_seconds=args.poll_seconds,
            password_days=args.password_days,
            allow_http=args.allow_http,
            require_handshake_codes=not args.waive_handshake_codes,
            checksum_policy=args.checksum_policy,
        )
        return {"portal_id": portal_id}

    return await _store(action, args, stores_secret=True)


async def portals_list(args: Namespace) -> int:
    return await _store(lambda store, box: _admin(store, box, args).portals(), args)


async def portals_change(args: Namespace) -> int:
    password = secret(args, "password") if args.action == "password" else None
    if password is not None:
        check(PORTAL_PASSWORD, password, given_as=_stdin_or_env("password"))

    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        service = _admin(store, box, args)
        if password is not None:
            await service.set_portal_password(args.portal, password)
        else:
            await service.set_portal_enabled(args.portal, args.action == "enable", strict=True)
        return {"portal_id": args.portal, "done": args.action}

    return await _store(action, args, stores_secret=password is not None)


async def eproc(args: Namespace) -> int:
    async def action(store: Store, _box: SecretBox) -> Any:
        from gateway.eproc.admin import EprocAdmin

        admin = EprocAdmin(store, actor(args))
        if args.action == "quarantine":
            return [item.as_dict() for item in await admin.quarantined()]
        if args.action == "orders":
            return await admin.orders(args.limit)
        if args.action == "resend-order":
            await admin.resend_order(args.id)
            return {"id": args.id, "done": "resend"}
        if args.action == "show":
            item, content = await (admin.order if args.order else admin.document)(args.id)
            return {**item.as_dict(), "content": content.decode("utf-8", "replace")}
        operation = {
            ("retry", False): admin.retry_document,
            ("release", False): admin.release_document,
            ("retry", True): admin.retry_order,
            ("release", True): admin.release_order,
        }[(args.action, args.order)]
        await operation(args.id)
        return {"id": args.id, "done": args.action}

    return await _store(action, args)


# -- secrets, audit, operators' tokens ---------------------------------------------------------


async def secrets_reencrypt(args: Namespace) -> int:
    async def action(store: Store, box: SecretBox) -> dict[str, Any]:
        from gateway.tenancy.reencrypt import reencrypt

        return {"reencrypted": await reencrypt(store, box, actor(args))}

    return await _store(action, args)


async def audit(args: Namespace) -> int:
    if args.subject is not None:
        check(AUDIT_SUBJECT, args.subject, given_as="--subject")

    async def action(store: Store, box: SecretBox) -> list[dict[str, Any]]:
        return await _admin(store, box, args).audit_entries(
            subject=args.subject, since=args.since, limit=args.limit
        )

    return await _store(action, args)


async def admin_tokens(args: Namespace) -> int:
    if args.action == "create":
        check(TOKEN_NAME, args.name, given_as="NAME")
    elif args.action == "revoke":  # a token named before the rule was tightened, too
        check(Text(TOKEN_NAME.what, TOKEN_NAME.max_length), args.name, given_as="NAME")

    async def action(store: Store, _box: SecretBox) -> Any:
        from gateway.admin.tokens import AdminTokens

        tokens = AdminTokens(store, actor(args))
        if args.action == "create":
            return {
                "name": args.name,
                "token": await tokens.create(args.name),
                "note": "shown once: send it as 'Authorization: Bearer <token>'",
            }
        if args.action == "revoke":
            await tokens.revoke(args.name)
            return {"name": args.name, "revoked": True}
        return await tokens.list()

    shown = (
        (
            "token",
            f"revoke it with 'fng-gateway admin-tokens revoke {args.name}' and create another",
        )
        if args.action == "create"
        else None
    )
    return await _store(action, args, shown)


# -- the parsers -----------------------------------------------------------------------------------


def register(commands: Any) -> dict[str, Any]:
    """Add the registry's commands; return the command groups, for others to add to."""

    def group(name: str, text: str) -> Any:
        return commands.add_parser(name, help=text).add_subparsers(dest="action", required=True)

    def command(parent: Any, name: str, text: str, run: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = with_actor(with_json(parent.add_parser(name, help=text)))
        parser.set_defaults(run=run)
        return parser

    vendors = group("vendors", "SIMS ID client registrations")
    add = command(vendors, "add", "add a vendor", vendors_add)
    add.add_argument("name", help="a name for the vendor, unique")
    add.add_argument(
        "--token-url", required=True, help="SIMS ID's token endpoint (https://…/connect/token)"
    )
    add.add_argument("--client-id", required=True, help="the vendor's SIMS ID client id")
    add.add_argument(
        "--auth-method",
        choices=[m.value for m in AuthMethod],
        default=AuthMethod.CLIENT_SECRET_BASIC.value,
        help="how the vendor authenticates to SIMS ID (default: client_secret_basic)",
    )
    secret_options(add, "secret", "the client secret (or private key)")
    command(vendors, "list", "list vendors", vendors_list)
    change = command(vendors, "set-secret", "a vendor's new client secret", vendors_set_secret)
    change.add_argument("vendor", type=_id, help="the vendor's id")
    secret_options(change, "secret", "the client secret (or private key)")

    schools = group("schools", "schools")
    add = command(schools, "add", "add a school", schools_add)
    add.add_argument("name", help="the school's name")
    add.add_argument("--la", required=True, help="LA number (3 digits)")
    add.add_argument("--establishment", required=True, help="establishment number (4 digits)")
    add.add_argument("--duns", help="the school's DUNS number, for eProcurement")
    add.add_argument("--language", default="en", help="documents' language (default en)")
    add.add_argument("--currency", default="GBP", help="documents' currency (default GBP)")
    command(schools, "list", "list schools", schools_list)

    databases = group("databases", "schools' FNG databases")
    add = command(databases, "add", "add a database; prints its partner key once", databases_add)
    add.add_argument("school", type=_id, help="the school's id")
    add.add_argument("--vendor", type=_id, required=True, help="the vendor's id")
    add.add_argument(
        "--name", required=True, help="the database's name, e.g. 'Public funds' (unique per school)"
    )
    secret_options(add, "fng key", "FNG's key for the database")
    secret_options(
        add, "partner key", "the partner key already entered in FNG, instead of a new one"
    )
    command(databases, "list", "list databases", databases_list)

    key_commands = group("keys", "partner keys: rotate, promote, cancel, retire, list")
    for name, text in (
        ("list", "a database's keys and their states (never their values)"),
        ("rotate", "issue a next key (shown once) to enter in FNG's set-up screen"),
        ("promote", "make the next key active; the old one retires after a grace"),
        ("cancel", "drop the next key"),
        ("retire", "end the retiring key's grace now"),
    ):
        parser = command(key_commands, name, text, keys)
        parser.add_argument("database", type=_id, help="the database's id")
        if name == "rotate":
            secret_options(parser, "key", "the next key, instead of a new one")
        if name == "promote":
            parser.add_argument(
                "--grace-seconds",
                type=_seconds,
                default=None,
                help="how long callers may still use the old key",
            )

    fng_keys = group("fng-key", "FNG's keys: store the next one, promote it")
    parser = command(fng_keys, "set", "store FNG's new key as next (before FNG uses it)", fng_key)
    parser.add_argument("database", type=_id, help="the database's id")
    secret_options(parser, "key", "FNG's new key")
    parser = command(fng_keys, "promote", "make the next FNG key current", fng_key)
    parser.add_argument("database", type=_id, help="the database's id")

    accounts = group("accounts", "integration accounts")
    add = command(accounts, "add", "add an account; prints a generated password once", accounts_add)
    add.add_argument("username", help="the account's user name, as integrations send it")
    secret_options(add, "password", "its password, instead of a generated one")
    command(accounts, "list", "accounts, their grants and payment systems", accounts_list)
    for name, text in (
        ("grant", "let an account use a database"),
        ("revoke", "stop an account using a database"),
    ):
        parser = command(accounts, name, text, accounts_grant)
        parser.add_argument("username", help="the account's user name")
        parser.add_argument("--database", type=_id, required=True, help="the database's id")
        parser.add_argument(
            "--interface",
            action="append",
            required=True,
            choices=[i.value for i in Interface],
            help=f"an interface it may {'no longer ' if name == 'revoke' else ''}use (repeatable)",
        )
        if name == "grant":
            parser.add_argument(
                "--system", action="append", help="a payment system it may post for (repeatable)"
            )
    parser = command(
        accounts, "password", "a new password; the old one works a while longer", accounts_password
    )
    parser.add_argument("username", help="the account's user name")
    parser.add_argument(
        "--overlap-seconds",
        type=_seconds,
        default=None,
        help="how long the old password keeps working (default: keys.password_overlap_seconds)",
    )
    secret_options(parser, "password", "the new password, instead of a generated one")
    for name, text in (
        ("enable", "enable an account"),
        ("disable", "disable an account"),
        ("unlock", "let an account refused for failed logins log in again, from every address"),
    ):
        command(accounts, name, text, accounts_access).add_argument(
            "username", help="the account's user name"
        )

    portal_commands = group("portals", "suppliers' eProcurement portals")
    add = command(portal_commands, "add", "add a school database's portal", portals_add)
    add.add_argument("database", type=_id, help="the school database's id")
    add.add_argument("--name", required=True, help="unique for the database: a-z, 0-9, -")
    add.add_argument("--url", required=True, help="the portal's EProcurementService URL (https)")
    add.add_argument("--username", required=True, help="the school's user name at the portal")
    add.add_argument(
        "--supplier-duns",
        required=True,
        action="append",
        metavar="DUNS",
        help="a supplier's DUNS number (9 digits, or a GLN) the portal serves; repeat it for "
        "a portal that serves several suppliers (a price-comparison portal)",
    )
    add.add_argument(
        "--allow-http",
        action="store_true",
        help="accept a plain http URL: for a sandbox or a test only (the standard secures "
        "portals with SSL)",
    )
    add.add_argument(
        "--waive-handshake-codes",
        action="store_true",
        help="do not require BuyersCodeForSupplier and SuppliersCodeForBuyer in this portal's "
        "content orders",
    )
    add.add_argument(
        "--checksum-policy",
        type=ChecksumPolicy,
        choices=list(ChecksumPolicy),
        default=None,
        help="a wrong checksum in this portal's content orders: enforce (quarantined), warn "
        "(logged, delivered) or off (default: the gateway's setting)",
    )
    add.add_argument(
        "--poll-seconds",
        type=int,
        default=300,
        help="how often to poll it, in seconds: 10 to 604800 (default 300)",
    )
    add.add_argument(
        "--password-days",
        type=int,
        default=None,
        help="change the password this often with ChangePassword, in days: 60 to 3660",
    )
    secret_options(add, "password", "the portal password")
    command(portal_commands, "list", "portals and their health", portals_list)
    parser = command(
        portal_commands, "password", "a portal's password, changed elsewhere", portals_change
    )
    parser.add_argument("portal", type=_id, help="the portal's id")
    secret_options(parser, "password", "the portal password")
    for name in ("enable", "disable"):
        command(portal_commands, name, f"{name} polling a portal", portals_change).add_argument(
            "portal", type=_id, help="the portal's id"
        )

    work = group("eproc", "eProcurement work set aside for operators")
    command(work, "quarantine", "quarantined documents and orders", eproc)
    for name, text in (
        ("show", "a quarantined document and its content"),
        ("retry", "check a document again (or send an order again) at the next poll"),
        ("release", "acknowledge a document without delivering it (or count an order as sent)"),
    ):
        parser = command(work, name, text, eproc)
        parser.add_argument("id", type=_id, help="the document's (or order's) id")
        parser.add_argument("--order", action="store_true", help="the id is an order's")
    command(
        work, "orders", "authorised orders sent or being sent, newest first", eproc
    ).add_argument(
        "--limit", type=_limit, default=100, help="at most this many, up to 1000 (default 100)"
    )
    command(
        work,
        "resend-order",
        "send an order again at its portal's next orders round, as a copy",
        eproc,
    ).add_argument("id", type=_id, help="the order's id (fng-gateway eproc orders)")

    secrets = group("secrets", "master keys and stored secrets")
    command(
        secrets, "reencrypt", "move every stored secret to the newest master key", secrets_reencrypt
    )

    parser = with_json(commands.add_parser("audit", help="the audit log, newest first"))
    parser.add_argument("--subject", help="e.g. database:3, account:name")
    parser.add_argument(
        "--since",
        type=_since,
        help="an ISO 8601 date or date-time, e.g. 2024-09-01 or 2024-09-01T08:00:00+01:00 "
        "(UTC when no offset is given)",
    )
    parser.add_argument(
        "--limit", type=_limit, default=100, help="at most this many, up to 1000 (default 100)"
    )
    parser.set_defaults(run=audit)

    tokens = group("admin-tokens", "operators' tokens for the admin API")
    command(tokens, "create", "a token for an operator, shown once", admin_tokens).add_argument(
        "name", help="the operator's name, recorded in the audit log"
    )
    command(tokens, "revoke", "revoke an operator's token", admin_tokens).add_argument(
        "name", help="the operator's name"
    )
    command(tokens, "list", "tokens (never their values)", admin_tokens)
    return {"schools": schools, "secrets": secrets}

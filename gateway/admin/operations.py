"""The admin API's own operations: the registry, keys, stored secrets, the audit log and
operators' tokens. One handler per route, over the same service functions as the command
line (``gateway.cli.registry``); the admin layer runs no SQL of its own. Each handler's
signature is its entry in the route table (``gateway.admin.routing``); its docstring is the
operation's summary and description. Capability packages contribute their own route tables
(``gateway.eproc.admin_routes``).

Ids that a body names are checked first, so an unknown one is 404 rather than a service's
"already exists"; a service's ``RegistryError`` is a conflict (409).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.admin.context import Context
from gateway.admin.models import (
    Account,
    AccountRef,
    AdminToken,
    AuditEntry,
    AuditQuery,
    Created,
    CreatedAccount,
    CreatedDatabase,
    Database,
    DatabaseRef,
    Done,
    FngKey,
    Grant,
    Imported,
    ImportQuery,
    NewAccount,
    NewDatabase,
    NewPassword,
    NewPortal,
    NewSchool,
    NewVendor,
    NextKey,
    PartnerKey,
    PasswordChanged,
    Portal,
    PortalPassword,
    PortalRef,
    Promoted,
    PromoteKey,
    Reencrypted,
    Revoke,
    RotateKey,
    School,
    TokenName,
    Vendor,
    VendorRef,
    VendorSecret,
)
from gateway.admin.problems import Conflict, InvalidInput
from gateway.admin.routing import CsvText, RouteTable
from gateway.admin.tokens import AdminTokens
from gateway.errors import ConfigurationError
from gateway.tenancy import bulk
from gateway.tenancy.reencrypt import reencrypt

api = RouteTable(
    tags={
        "vendors": "SIMS ID client registrations.",
        "schools": "Schools, one at a time or from a CSV file.",
        "databases": "Schools' FNG databases.",
        "keys": "Partner keys (ours) and FNG keys, rotated without a failed call.",
        "accounts": "Integration accounts: grants, passwords.",
        "portals": "Suppliers' eProcurement portals.",
        "secrets": "Stored secrets and the master keys.",
        "audit": "Who changed what, when.",
        "tokens": "Operators' tokens for this API.",
    }
)
route = api.route

_CLASH: Final = "A name or key that is already taken."


# -- vendors ---------------------------------------------------------------------------------


@route("GET", "/vendors", tag="vendors")
async def list_vendors(ctx: Context) -> list[Vendor]:
    """SIMS ID client registrations (never their secrets)."""
    return [Vendor.model_validate(row) for row in await ctx.tenancy.vendors()]


@route("POST", "/vendors", tag="vendors", status=201, errors={409: _CLASH})
async def add_vendor(ctx: Context, body: NewVendor) -> Created:
    """Register a vendor's SIMS ID client."""
    vendor_id = await ctx.tenancy.add_vendor(
        body.name,
        token_url=body.token_url,
        client_id=body.client_id,
        credential=body.secret,
        auth_method=body.auth_method,
    )
    return Created(id=vendor_id)


@route("PUT", "/vendors/{vendor_id}/secret", tag="vendors")
async def set_vendor_secret(ctx: Context, path: VendorRef, body: VendorSecret) -> Done:
    """Store a vendor's new client secret (or private key), as SIMS ID now knows it."""
    await ctx.tenancy.set_vendor_credential(path.vendor_id, body.secret)
    return Done(subject=f"vendor:{path.vendor_id}", done="secret")


# -- schools and databases ---------------------------------------------------------------------


@route("GET", "/schools", tag="schools")
async def list_schools(ctx: Context) -> list[School]:
    """Schools."""
    return [School.model_validate(row) for row in await ctx.tenancy.schools()]


@route("POST", "/schools", tag="schools", status=201, errors={409: _CLASH})
async def add_school(ctx: Context, body: NewSchool) -> Created:
    """Add a school.

    Its DUNS number, language and currency are what its suppliers' documents must match."""
    school_id = await ctx.tenancy.add_school(
        body.name,
        la_number=body.la_number,
        establishment_number=body.establishment_number,
        duns=body.duns,
        language=body.language,
        currency=body.currency,
    )
    return Created(id=school_id)


@route(
    "POST",
    "/schools/import",
    tag="schools",
    errors={
        409: "The registry changed while the file was imported: nothing was imported.",
        422: "A parameter is wrong, or the file is: every problem, by line; nothing was imported.",
    },
)
async def import_schools(ctx: Context, query: ImportQuery, body: CsvText) -> Imported:
    """Create or update schools and their databases from a CSV file, all or nothing.

    The header names the columns name, la_number, establishment_number, duns, language,
    currency, database, vendor, fng_key and partner_key, in any order; one row per school
    database. Partner keys generated for new databases are returned this once."""
    try:
        report = await bulk.import_schools(
            ctx.store, ctx.box, ctx.actor, body, generate_keys=query.generate_keys
        )
    except bulk.BulkImportError as exc:
        raise InvalidInput(
            "the file was refused; nothing was imported",
            [
                {"loc": ["body", "line", line], "msg": message, "type": "import"}
                for line, message in exc.problems
            ],
        ) from None
    return Imported.model_validate(
        {
            **report.summary(),
            "generated_keys": [
                {
                    "la_number": key.la_number,
                    "establishment_number": key.establishment_number,
                    "database": key.database,
                    "database_id": key.database_id,
                    "partner_key": key.partner_key,
                }
                for key in report.generated_keys
            ],
        }
    )


@route("GET", "/databases", tag="databases")
async def list_databases(ctx: Context) -> list[Database]:
    """Schools' FNG databases (never their keys)."""
    return [Database.model_validate(row) for row in await ctx.tenancy.databases()]


@route(
    "POST",
    "/databases",
    tag="databases",
    status=201,
    errors={404: "No school or vendor has that id.", 409: _CLASH},
)
async def add_database(ctx: Context, body: NewDatabase) -> CreatedDatabase:
    """Add a school's FNG database, with FNG's key for it; returns its partner key once."""
    await ctx.tenancy.require("school", body.school_id)
    await ctx.tenancy.require("vendor", body.vendor_id)
    created = await ctx.tenancy.add_database(
        body.school_id,
        vendor_id=body.vendor_id,
        name=body.name,
        fng_key=body.fng_key,
        partner_key=body.partner_key,
    )
    return CreatedDatabase(id=created.database_id, partner_key=created.partner_key)


# -- keys ------------------------------------------------------------------------------------


@route("GET", "/databases/{database_id}/partner-keys", tag="keys")
async def list_partner_keys(ctx: Context, path: DatabaseRef) -> list[PartnerKey]:
    """A database's partner keys and their states (fingerprints, never the keys)."""
    await ctx.tenancy.require("database", path.database_id)
    return [
        PartnerKey.model_validate(row) for row in await ctx.rotation.partner_keys(path.database_id)
    ]


@route(
    "POST",
    "/databases/{database_id}/partner-keys/rotate",
    tag="keys",
    status=201,
    errors={409: "The database already has a next key, or the key given is taken."},
)
async def rotate_partner_key(ctx: Context, path: DatabaseRef, body: RotateKey) -> NextKey:
    """Issue the database's next partner key, returned once.

    Callers may use it at once; enter it in FNG's application set-up screen, then promote
    it."""
    key = await ctx.rotation.rotate_partner_key(path.database_id, body.key)
    return NextKey(database_id=path.database_id, next_key=key)


@route(
    "POST",
    "/databases/{database_id}/partner-keys/promote",
    tag="keys",
    errors={409: "The database has no next key."},
)
async def promote_partner_key(ctx: Context, path: DatabaseRef, body: PromoteKey) -> Promoted:
    """Make the next partner key active; the old one is accepted until a grace has passed."""
    grace = body.grace_seconds
    if grace is None:
        grace = ctx.keys.retire_grace_seconds
    deadline = await ctx.rotation.promote_partner_key(path.database_id, timedelta(seconds=grace))
    return Promoted(database_id=path.database_id, old_key_refused_from=deadline)


@route(
    "POST",
    "/databases/{database_id}/partner-keys/cancel",
    tag="keys",
    errors={409: "The database has no next key."},
)
async def cancel_partner_key(ctx: Context, path: DatabaseRef) -> Done:
    """Drop the database's next partner key."""
    await ctx.tenancy.require("database", path.database_id)
    await ctx.rotation.cancel_partner_key(path.database_id)
    return Done(subject=f"database:{path.database_id}", done="partner_key.cancel")


@route("POST", "/databases/{database_id}/partner-keys/retire", tag="keys")
async def retire_partner_key(ctx: Context, path: DatabaseRef) -> Done:
    """End the retiring partner key's grace now: it is refused from now on."""
    await ctx.tenancy.require("database", path.database_id)
    await ctx.rotation.retire_now(path.database_id)
    return Done(subject=f"database:{path.database_id}", done="partner_key.retire")


@route(
    "PUT",
    "/databases/{database_id}/fng-key/next",
    tag="keys",
    errors={
        409: "The key is another database's FNG key or a partner key, or already this "
        "database's current or next key."
    },
)
async def set_next_fng_key(ctx: Context, path: DatabaseRef, body: FngKey) -> Done:
    """Store FNG's new key for the database as next.

    The gateway tries it as soon as FNG refuses the current one, and keeps it once FNG
    accepts it."""
    await ctx.rotation.set_next_fng_key(path.database_id, body.key)
    return Done(subject=f"database:{path.database_id}", done="fng_key.next")


@route(
    "POST",
    "/databases/{database_id}/fng-key/promote",
    tag="keys",
    errors={409: "The database has no next FNG key."},
)
async def promote_fng_key(ctx: Context, path: DatabaseRef) -> Done:
    """Make the next FNG key current."""
    await ctx.rotation.promote_fng_key(path.database_id)
    return Done(subject=f"database:{path.database_id}", done="fng_key.promote")


# -- accounts ----------------------------------------------------------------------------------


@route("GET", "/accounts", tag="accounts")
async def list_accounts(ctx: Context) -> list[Account]:
    """Integration accounts, their grants and payment systems (never their passwords)."""
    return [Account.model_validate(row) for row in await ctx.tenancy.accounts()]


@route("POST", "/accounts", tag="accounts", status=201, errors={409: _CLASH})
async def add_account(ctx: Context, body: NewAccount) -> CreatedAccount:
    """Add an integration account; a generated password is returned once."""
    created = await ctx.tenancy.add_account(body.username, body.password)
    return CreatedAccount(
        id=created.account_id,
        username=body.username,
        password=created.password if body.password is None else None,
    )


@route(
    "POST",
    "/accounts/{account_id}/grant",
    tag="accounts",
    errors={404: "No account or database has that id.", 409: "An interface already granted."},
)
async def grant(ctx: Context, path: AccountRef, body: Grant) -> Done:
    """Let an account use a database's interfaces, and post for payment systems."""
    await ctx.tenancy.require("account", path.account_id)
    await ctx.tenancy.require("database", body.database_id)
    await ctx.tenancy.grant(
        path.account_id,
        body.database_id,
        list(dict.fromkeys(body.interfaces)),
        list(dict.fromkeys(body.system_identifiers)),
    )
    return Done(subject=f"account:{path.account_id}", done="account.grant")


@route(
    "POST",
    "/accounts/{account_id}/revoke",
    tag="accounts",
    errors={404: "No account or database has that id."},
)
async def revoke(ctx: Context, path: AccountRef, body: Revoke) -> Done:
    """Stop an account using a database's interfaces."""
    await ctx.tenancy.require("account", path.account_id)
    await ctx.tenancy.require("database", body.database_id)
    await ctx.tenancy.revoke(
        path.account_id, body.database_id, list(dict.fromkeys(body.interfaces))
    )
    return Done(subject=f"account:{path.account_id}", done="account.revoke")


@route("POST", "/accounts/{account_id}/password", tag="accounts")
async def change_password(ctx: Context, path: AccountRef, body: NewPassword) -> PasswordChanged:
    """Give an account a new password; the old one works for an overlap more.

    A generated password is returned once."""
    username = await ctx.tenancy.username(path.account_id)
    overlap = body.overlap_seconds
    if overlap is None:
        overlap = ctx.keys.password_overlap_seconds
    new = await ctx.rotation.change_password(username, timedelta(seconds=overlap), body.password)
    return PasswordChanged(
        account_id=path.account_id,
        old_password_refused_from=datetime.now(UTC) + timedelta(seconds=overlap),
        password=new if body.password is None else None,
    )


@route("POST", "/accounts/{account_id}/enable", tag="accounts")
async def enable_account(ctx: Context, path: AccountRef) -> Done:
    """Let an account call again."""
    await ctx.tenancy.set_account_enabled(await ctx.tenancy.username(path.account_id), True)
    return Done(subject=f"account:{path.account_id}", done="account.enable")


@route("POST", "/accounts/{account_id}/disable", tag="accounts")
async def disable_account(ctx: Context, path: AccountRef) -> Done:
    """Refuse an account's calls, keeping its grants."""
    await ctx.tenancy.set_account_enabled(await ctx.tenancy.username(path.account_id), False)
    return Done(subject=f"account:{path.account_id}", done="account.disable")


@route("POST", "/accounts/{account_id}/unlock", tag="accounts")
async def unlock_account(ctx: Context, path: AccountRef) -> Done:
    """Let an account refused for failed logins log in again, from every address.

    Its failed logins until now no longer count, on every replica."""
    await ctx.tenancy.unlock_account(await ctx.tenancy.username(path.account_id))
    return Done(subject=f"account:{path.account_id}", done="account.unlock")


# -- portals ----------------------------------------------------------


@route("GET", "/portals", tag="portals")
async def list_portals(ctx: Context) -> list[Portal]:
    """Suppliers' eProcurement portals and their health (never their passwords)."""
    return [Portal.model_validate(row) for row in await ctx.tenancy.portals()]


@route(
    "POST",
    "/portals",
    tag="portals",
    status=201,
    errors={404: "No database has that id.", 409: _CLASH},
)
async def add_portal(ctx: Context, body: NewPortal) -> Created:
    """Add a supplier's eProcurement portal for a school database."""
    await ctx.tenancy.require("database", body.database_id)
    portal_id = await ctx.tenancy.add_portal(
        body.database_id,
        name=body.name,
        url=body.url,
        username=body.username,
        password=body.password,
        supplier_duns=body.supplier_duns,
        poll_seconds=body.poll_seconds,
        password_days=body.password_days,
        enabled=body.enabled,
        allow_http=body.allow_http,
        require_handshake_codes=body.require_handshake_codes,
        checksum_policy=body.checksum_policy,
    )
    return Created(id=portal_id)


@route("PUT", "/portals/{portal_id}/password", tag="portals")
async def set_portal_password(ctx: Context, path: PortalRef, body: PortalPassword) -> Done:
    """Store a portal's password changed by other means (the supplier reset it)."""
    await ctx.tenancy.set_portal_password(path.portal_id, body.password)
    return Done(subject=f"portal:{path.portal_id}", done="portal.password")


@route("POST", "/portals/{portal_id}/enable", tag="portals")
async def enable_portal(ctx: Context, path: PortalRef) -> Done:
    """Poll a portal again."""
    await ctx.tenancy.set_portal_enabled(path.portal_id, True)
    return Done(subject=f"portal:{path.portal_id}", done="portal.enable")


@route("POST", "/portals/{portal_id}/disable", tag="portals")
async def disable_portal(ctx: Context, path: PortalRef) -> Done:
    """Stop polling a portal."""
    await ctx.tenancy.set_portal_enabled(path.portal_id, False)
    return Done(subject=f"portal:{path.portal_id}", done="portal.disable")


# -- secrets, the audit log, operators' tokens ---------------------------------------------


@route(
    "POST",
    "/secrets/reencrypt",
    tag="secrets",
    errors={
        409: "Stored secrets that no configured master key decrypts (they are named): "
        "nothing was re-encrypted."
    },
)
async def reencrypt_secrets(ctx: Context) -> Reencrypted:
    """Re-encrypt every stored secret under the newest master key.

    All or nothing: if a stored secret cannot be decrypted with the configured master keys,
    none is re-encrypted, and the refusal names them (as ``fng-gateway secrets reencrypt``
    does)."""
    try:
        count = await reencrypt(ctx.store, ctx.box, ctx.actor)
    except ConfigurationError as exc:
        # Not the gateway's fault but the registry's state against these keys: a conflict.
        raise Conflict(exc.message) from None
    return Reencrypted(reencrypted=count)


@route("GET", "/audit", tag="audit")
async def audit_log(ctx: Context, query: AuditQuery) -> list[AuditEntry]:
    """The audit log, newest first (never a secret)."""
    rows = await ctx.tenancy.audit_entries(
        subject=query.subject, since=query.since, limit=query.limit
    )
    return [AuditEntry.model_validate(row) for row in rows]


@route("GET", "/tokens", tag="tokens")
async def list_tokens(ctx: Context) -> list[AdminToken]:
    """Operators' tokens (never their values).

    Tokens are made only with the command line (fng-gateway admin-tokens create), so that a
    stolen token cannot make itself a successor."""
    return [
        AdminToken.model_validate(row) for row in await AdminTokens(ctx.store, ctx.actor).list()
    ]


@route("POST", "/tokens/revoke", tag="tokens", errors={404: "No live token has that name."})
async def revoke_token(ctx: Context, body: TokenName) -> Done:
    """Revoke an operator's token: it is refused from now on."""
    await AdminTokens(ctx.store, ctx.actor).revoke(body.name)
    return Done(subject=f"admin_token:{body.name}", done="admin_token.revoke")

"""Operators' functions over the registry: the CLI and the admin API both call these.

Each change is written with its audit entry in the same transaction. Secrets are
encrypted before they reach the store and never written to the audit log.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import NotFound, RegistryError
from gateway.store import Store
from gateway.store.tables import (
    account_systems,
    accounts,
    audit_log,
    databases,
    grants,
    partner_keys,
    portal_suppliers,
    portals,
    schools,
    vendors,
)
from gateway.tenancy.identifiers import (
    ACCOUNT_PASSWORD,
    AUDIT_SUBJECT,
    CLIENT_ID,
    CLIENT_SECRET,
    CURRENCY_CODE,
    DATABASE_NAME,
    DUNS,
    DUNS_NUMBER,
    ESTABLISHMENT,
    FNG_KEY,
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
    SYSTEM_IDENTIFIER,
    TOKEN_URL,
    USERNAME,
    VENDOR_NAME,
    check,
)
from gateway.tenancy.keys import key_digest, new_key, normalise_key
from gateway.tenancy.model import AuthMethod, ChecksumPolicy, Interface, KeyState
from gateway.tenancy.passwords import generate_password, hash_password
from gateway.tenancy.records import audit, database_row, partner_key_row, school_row
from gateway.tenancy.secrets import SecretBox


@dataclass(frozen=True, slots=True)
class CreatedDatabase:
    database_id: int
    partner_key: str  # shown once


@dataclass(frozen=True, slots=True)
class CreatedAccount:
    account_id: int
    password: str  # shown once


#: The tables of what an operator names by id.
_TABLES: Final = {
    "vendor": vendors,
    "school": schools,
    "database": databases,
    "account": accounts,
    "portal": portals,
}

#: The most suppliers one portal serves (a price-comparison portal serves several).
MAX_PORTAL_SUPPLIERS = 500


def portal_url_problem(url: str, allow_http: bool) -> str | None:
    """Why a portal's address is refused, or None. The standard: "Security is provided by
    the use of SSL methods in the Web Services"; plain http only where the portal allows it."""
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url, flags=re.IGNORECASE):
        return "the portal URL must be an https URL"
    if url[:5].lower() == "http:" and not allow_http:
        return (
            "the portal URL must be https (the eProcurement standard secures portals with SSL); "
            "plain http only where the portal allows it (--allow-http; allow_http in the admin "
            "API), for a sandbox or a test"
        )
    return None


def without_credentials(url: str) -> str:
    """A stored address as lists show it: a ``user:password@`` in it (refused since, but
    perhaps stored before) is masked."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", url)


def duns_problem(numbers: Collection[str]) -> str | None:
    """Why a portal's supplier DUNS numbers are refused, or None."""
    if isinstance(numbers, str):
        return "a portal's supplier DUNS numbers are a list, even of one"
    if not numbers:
        return "a portal serves at least one supplier DUNS number"
    if len(numbers) > MAX_PORTAL_SUPPLIERS:
        return f"a portal serves at most {MAX_PORTAL_SUPPLIERS} suppliers"
    if not all(DUNS.fullmatch(number) for number in numbers):
        return "a DUNS number has 9 digits (or a GLN 13)"
    return None


async def require(conn: AsyncConnection, table: sa.Table, row_id: int, what: str) -> None:
    """NotFound unless ``table`` has the row ``row_id``: a foreign key that names nothing is
    told as such, not as a clash with something that exists."""
    found = await conn.scalar(sa.select(table.c.id).where(table.c.id == row_id))
    if found is None:
        raise NotFound(f"there is no {what} {row_id}")


async def insert_unique(conn: AsyncConnection, statement: sa.Insert, what: str) -> int:
    try:
        result = await conn.execute(statement)
    except IntegrityError:
        raise RegistryError(f"{what} already exists") from None
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


class TenancyAdmin:
    def __init__(self, store: Store, box: SecretBox, actor: str = "cli") -> None:
        self._store = store
        self._box = box
        self.actor = actor

    async def add_vendor(
        self,
        name: str,
        *,
        token_url: str,
        client_id: str,
        credential: str,
        auth_method: AuthMethod = AuthMethod.CLIENT_SECRET_BASIC,
    ) -> int:
        check(VENDOR_NAME, name)
        check(TOKEN_URL, token_url)
        check(CLIENT_ID, client_id)
        _check_credential(credential, auth_method)
        async with self._store.write() as conn:
            vendor_id = await insert_unique(
                conn,
                vendors.insert().values(
                    name=name,
                    token_url=token_url,
                    client_id=client_id,
                    auth_method=auth_method.value,
                    credential_enc=self._box.encrypt(credential),
                    created_at=datetime.now(UTC),
                ),
                f"a vendor named {name!r}",
            )
            await audit(
                conn,
                self.actor,
                "vendor.add",
                f"vendor:{vendor_id}",
                name=name,
                client_id=client_id,
                auth_method=auth_method.value,
            )
        return vendor_id

    async def add_school(
        self,
        name: str,
        *,
        la_number: str,
        establishment_number: str,
        duns: str | None = None,
        language: str = "en",
        currency: str = "GBP",
    ) -> int:
        """A school; its DUNS, language and currency are what its suppliers' documents must
        match."""
        check(SCHOOL_NAME, name)
        check(LA, la_number)
        check(ESTABLISHMENT, establishment_number)
        if duns is not None:
            check(DUNS_NUMBER, duns)
        check(LANGUAGE_CODE, language)
        check(CURRENCY_CODE, currency)
        async with self._store.write() as conn:
            school_id = await insert_unique(
                conn,
                schools.insert().values(
                    school_row(
                        name=name,
                        la_number=la_number,
                        establishment_number=establishment_number,
                        duns=duns,
                        language=language,
                        currency=currency,
                        at=datetime.now(UTC),
                    )
                ),
                f"a school {la_number}/{establishment_number}",
            )
            await audit(
                conn,
                self.actor,
                "school.add",
                f"school:{school_id}",
                name=name,
                la_number=la_number,
                establishment_number=establishment_number,
            )
        return school_id

    async def add_database(
        self,
        school_id: int,
        *,
        vendor_id: int,
        name: str,
        fng_key: str,
        partner_key: str | None = None,
    ) -> CreatedDatabase:
        """A school's FNG database, with FNG's key for it and our active partner key."""
        check(DATABASE_NAME, name)
        check(FNG_KEY, fng_key)
        fng = normalise_key(fng_key)
        assert fng is not None
        if partner_key is not None:
            check(PARTNER_KEY, partner_key)
        key = normalise_key(partner_key) if partner_key is not None else new_key()
        assert key is not None
        if key == fng:
            raise RegistryError(
                "the partner key is the FNG key: they are two different keys (FNG's for the "
                "database, ours for its callers): give another partner key, or none to have "
                "one generated"
            )
        async with self._store.write() as conn:
            await require(conn, schools, school_id, "school")
            await require(conn, vendors, vendor_id, "vendor")
            await self._fng_key_unused(conn, fng, database_id=None)
            now = datetime.now(UTC)
            database_id = await insert_unique(
                conn,
                databases.insert().values(
                    database_row(
                        self._box,
                        school_id=school_id,
                        vendor_id=vendor_id,
                        name=name,
                        fng_key=fng,
                        at=now,
                    )
                ),
                f"a database named {name!r} for this school",
            )
            await insert_unique(
                conn,
                partner_keys.insert().values(
                    partner_key_row(self._box, database_id, key, KeyState.ACTIVE, at=now)
                ),
                "that partner key",
            )
            await audit(
                conn,
                self.actor,
                "database.add",
                f"database:{database_id}",
                school_id=school_id,
                vendor_id=vendor_id,
                name=name,
            )
        return CreatedDatabase(database_id=database_id, partner_key=key)

    async def set_next_fng_key(self, database_id: int, key: str) -> None:
        """Store FNG's next key for a database, as the import and ``add_database`` check an
        FNG key: a GUID, no other database's, and a change (not its current or next key)."""
        check(FNG_KEY, key)
        value = normalise_key(key)
        assert value is not None
        async with self._store.write() as conn:
            row = (
                await conn.execute(
                    sa.select(databases.c.fng_key_enc, databases.c.fng_key_next_enc).where(
                        databases.c.id == database_id
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"there is no database {database_id}")
            if self._box.decrypt(row.fng_key_enc).get_secret_value() == value:
                raise RegistryError(
                    f"the key is database {database_id}'s current FNG key: nothing would "
                    "change; give FNG's new key"
                )
            if (
                row.fng_key_next_enc is not None
                and self._box.decrypt(row.fng_key_next_enc).get_secret_value() == value
            ):
                raise RegistryError(
                    f"the key is already database {database_id}'s next FNG key: nothing would "
                    "change"
                )
            await self._fng_key_unused(conn, value, database_id=database_id)
            await conn.execute(
                databases.update()
                .where(databases.c.id == database_id)
                .values(fng_key_next_enc=self._box.encrypt(value))
            )
            await audit(conn, self.actor, "fng_key.next", f"database:{database_id}")

    async def _fng_key_unused(
        self, conn: AsyncConnection, key: str, *, database_id: int | None
    ) -> None:
        """RegistryError when ``key`` (normalised) is another database's FNG key, current or
        next, or any database's partner key: an FNG key belongs to one database only."""
        found = await conn.execute(
            sa.select(
                databases.c.id,
                databases.c.name,
                databases.c.fng_key_enc,
                databases.c.fng_key_next_enc,
                schools.c.la_number,
                schools.c.establishment_number,
            ).join_from(databases, schools, databases.c.school_id == schools.c.id)
        )
        for database in found:
            if database.id == database_id:
                continue
            for encrypted in (database.fng_key_enc, database.fng_key_next_enc):
                if encrypted is not None and self._box.decrypt(encrypted).get_secret_value() == key:
                    raise RegistryError(
                        f"the FNG key is already database {database.name!r} of school "
                        f"{database.la_number}/{database.establishment_number}'s: an FNG key "
                        "belongs to one database only"
                    )
        holder = await conn.scalar(
            sa.select(partner_keys.c.database_id).where(partner_keys.c.digest == key_digest(key))
        )
        if holder is not None:
            raise RegistryError(
                f"the FNG key is a partner key of database {holder}: FNG's key and ours are "
                "two different keys"
            )

    async def add_account(self, username: str, password: str | None = None) -> CreatedAccount:
        check(USERNAME, username)
        if password is not None:
            check(ACCOUNT_PASSWORD, password)
        password = password or generate_password()
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._store.write() as conn:
            account_id = await insert_unique(
                conn,
                accounts.insert().values(
                    username=username,
                    password_hash=password_hash,
                    enabled=True,
                    created_at=datetime.now(UTC),
                ),
                f"an account named {username!r}",
            )
            await audit(conn, self.actor, "account.add", f"account:{account_id}", username=username)
        return CreatedAccount(account_id=account_id, password=password)

    async def grant(
        self,
        account_id: int,
        database_id: int,
        interfaces: list[Interface],
        system_identifiers: Sequence[str] = (),
    ) -> None:
        """Let the account use the database's ``interfaces`` and post for the payment systems
        ``system_identifiers`` (an account's systems hold for every database it may use).
        What it already has is left as it is; a grant that adds nothing is refused."""
        if len(system_identifiers) > MAX_SYSTEMS:
            raise RegistryError(f"a grant names at most {MAX_SYSTEMS} payment systems")
        for system in system_identifiers:
            check(SYSTEM_IDENTIFIER, system)
        async with self._store.write() as conn:
            await require(conn, accounts, account_id, "account")
            await require(conn, databases, database_id, "database")
            granted = set(
                await conn.scalars(
                    sa.select(grants.c.interface).where(
                        grants.c.account_id == account_id, grants.c.database_id == database_id
                    )
                )
            )
            systems = set(
                await conn.scalars(
                    sa.select(account_systems.c.system_identifier).where(
                        account_systems.c.account_id == account_id
                    )
                )
            )
            new_interfaces = [i for i in dict.fromkeys(interfaces) if i.value not in granted]
            new_systems = [s for s in dict.fromkeys(system_identifiers) if s not in systems]
            if not new_interfaces and not new_systems:
                asked = [i.value for i in interfaces] + [
                    f"payment system {s}" for s in system_identifiers
                ]
                raise RegistryError(
                    f"account {await _username(conn, account_id)!r} already has "
                    f"{', '.join(asked) if asked else 'every grant asked for'} on database "
                    f"{database_id}: nothing to grant"
                )
            for interface in new_interfaces:
                await insert_unique(
                    conn,
                    grants.insert().values(
                        account_id=account_id, database_id=database_id, interface=interface.value
                    ),
                    f"a grant of {interface.value}",
                )
            for system in new_systems:
                await conn.execute(
                    account_systems.insert().values(account_id=account_id, system_identifier=system)
                )
            await audit(
                conn,
                self.actor,
                "account.grant",
                f"account:{account_id}",
                database_id=database_id,
                interfaces=[interface.value for interface in new_interfaces],
                system_identifiers=new_systems,
            )

    async def add_portal(
        self,
        database_id: int,
        *,
        name: str,
        url: str,
        username: str,
        password: str,
        supplier_duns: Collection[str],
        poll_seconds: int = 300,
        password_days: int | None = None,
        enabled: bool = True,
        allow_http: bool = False,
        require_handshake_codes: bool = True,
        checksum_policy: ChecksumPolicy | None = None,
    ) -> int:
        """A supplier's eProcurement portal for one school database, serving the suppliers
        ``supplier_duns`` names. ``allow_http`` lets its address be plain http (a sandbox, a
        test); ``require_handshake_codes`` and ``checksum_policy`` (None: the gateway's
        setting) are how its content orders are checked."""
        check(PORTAL_NAME, name)
        check(PORTAL_URL, url)
        if isinstance(supplier_duns, str):  # one supplier's number, not its characters
            supplier_duns = [supplier_duns]
        problem = portal_url_problem(url, allow_http) or duns_problem(supplier_duns)
        if problem is not None:
            raise RegistryError(problem)
        check(PORTAL_USERNAME, username)
        check(PORTAL_PASSWORD, password)
        check(POLL_SECONDS, poll_seconds)
        if password_days is not None:
            check(PASSWORD_DAYS, password_days)
        now = datetime.now(UTC)
        async with self._store.write() as conn:
            await require(conn, databases, database_id, "database")
            portal_id = await insert_unique(
                conn,
                portals.insert().values(
                    database_id=database_id,
                    name=name,
                    url=url,
                    username=username,
                    password_enc=self._box.encrypt(password),
                    enabled=enabled,
                    poll_seconds=poll_seconds,
                    allow_http=allow_http,
                    require_handshake_codes=require_handshake_codes,
                    checksum_policy=None if checksum_policy is None else checksum_policy.value,
                    password_days=password_days,
                    password_changed_at=now,
                    next_poll_at=now,
                    failures=0,
                    created_at=now,
                ),
                f"a portal named {name!r} for this database",
            )
            suppliers = sorted(set(supplier_duns))
            await conn.execute(
                portal_suppliers.insert(),
                [{"portal_id": portal_id, "duns": duns} for duns in suppliers],
            )
            await audit(
                conn,
                self.actor,
                "portal.add",
                f"portal:{portal_id}",
                database_id=database_id,
                name=name,
                url=url,
                username=username,
                supplier_duns=suppliers,
                allow_http=allow_http,
                require_handshake_codes=require_handshake_codes,
                checksum_policy=None if checksum_policy is None else checksum_policy.value,
            )
        return portal_id

    async def require(self, what: str, row_id: int) -> None:
        """NotFound unless a ``what`` (vendor, school, database, account or portal) has the id
        ``row_id``: checked before a change, so that an unknown id is not told as a clash."""
        async with self._store.read() as conn:
            await require(conn, _TABLES[what], row_id, what)

    async def username(self, account_id: int) -> str:
        """The account's username, or NotFound."""
        async with self._store.read() as conn:
            name = await conn.scalar(
                sa.select(accounts.c.username).where(accounts.c.id == account_id)
            )
        if name is None:
            raise NotFound(f"there is no account {account_id}")
        return str(name)

    async def find_account(self, username: str) -> int | None:
        async with self._store.read() as conn:
            value = await conn.scalar(
                sa.select(accounts.c.id).where(accounts.c.username == username)
            )
        return int(value) if value is not None else None

    # -- reading the registry (no secret is ever returned) -----------------------------------

    async def _rows(self, statement: sa.Select[Any]) -> list[dict[str, Any]]:
        async with self._store.read() as conn:
            return [
                {
                    key: value.isoformat() if isinstance(value, datetime) else value
                    for key, value in row._mapping.items()
                }
                for row in await conn.execute(statement)
            ]

    async def vendors(self) -> list[dict[str, Any]]:
        listed = await self._rows(
            sa.select(
                vendors.c.id,
                vendors.c.name,
                vendors.c.token_url,
                vendors.c.client_id,
                vendors.c.auth_method,
                vendors.c.created_at,
            ).order_by(vendors.c.id)
        )
        for vendor in listed:
            vendor["token_url"] = without_credentials(vendor["token_url"])
        return listed

    async def schools(self) -> list[dict[str, Any]]:
        return await self._rows(
            sa.select(
                schools.c.id,
                schools.c.name,
                schools.c.la_number,
                schools.c.establishment_number,
                schools.c.duns,
                schools.c.language,
                schools.c.currency,
                schools.c.created_at,
            ).order_by(schools.c.id)
        )

    async def databases(self) -> list[dict[str, Any]]:
        return await self._rows(
            sa.select(
                databases.c.id,
                databases.c.school_id,
                databases.c.vendor_id,
                databases.c.name,
                databases.c.fng_key_next_enc.is_not(None).label("fng_key_pending"),
                databases.c.created_at,
            ).order_by(databases.c.id)
        )

    async def accounts(self) -> list[dict[str, Any]]:
        listed = await self._rows(
            sa.select(
                accounts.c.id,
                accounts.c.username,
                accounts.c.enabled,
                accounts.c.previous_valid_until.label("old_password_until"),
                accounts.c.created_at,
            ).order_by(accounts.c.id)
        )
        granted = await self._rows(sa.select(grants).order_by(grants.c.database_id))
        systems = await self._rows(sa.select(account_systems))
        for account in listed:
            account["grants"] = [
                {"database_id": g["database_id"], "interface": g["interface"]}
                for g in granted
                if g["account_id"] == account["id"]
            ]
            account["system_identifiers"] = sorted(
                s["system_identifier"] for s in systems if s["account_id"] == account["id"]
            )
        return listed

    async def portals(self) -> list[dict[str, Any]]:
        listed = await self._rows(
            sa.select(
                portals.c.id,
                portals.c.database_id,
                portals.c.name,
                portals.c.url,
                portals.c.username,
                portals.c.enabled,
                portals.c.poll_seconds,
                portals.c.password_days,
                portals.c.allow_http,
                portals.c.require_handshake_codes,
                portals.c.checksum_policy,
                portals.c.password_changed_at,
                portals.c.last_success_at,
                portals.c.failures,
                portals.c.last_error,
            ).order_by(portals.c.id)
        )
        suppliers = await self._rows(sa.select(portal_suppliers).order_by(portal_suppliers.c.duns))
        for portal in listed:
            portal["url"] = without_credentials(portal["url"])
            portal["supplier_duns"] = [
                s["duns"] for s in suppliers if s["portal_id"] == portal["id"]
            ]
        return listed

    async def audit_entries(
        self, *, subject: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        check(LIMIT, limit)
        if subject is not None:
            check(AUDIT_SUBJECT, subject)
        if since is not None and since.tzinfo is None:
            raise RegistryError("the time to list the audit log from must name its time zone")
        statement = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if subject is not None:
            statement = statement.where(audit_log.c.subject == subject)
        if since is not None:
            statement = statement.where(audit_log.c.at >= since)
        rows = await self._rows(statement)
        for row in rows:
            row["detail"] = json.loads(row["detail"])
        return rows

    # -- changing credentials that need no overlap ------------------------------------------

    async def set_vendor_credential(self, vendor_id: int, credential: str) -> None:
        """A vendor's new client secret (or private key), as SIMS ID now knows it."""
        check(CLIENT_SECRET, credential)
        async with self._store.write() as conn:
            method = await conn.scalar(
                sa.select(vendors.c.auth_method).where(vendors.c.id == vendor_id)
            )
            if method is None:
                raise NotFound(f"there is no vendor {vendor_id}")
            _check_credential(credential, AuthMethod(method))
            changed = await conn.execute(
                vendors.update()
                .where(vendors.c.id == vendor_id)
                .values(credential_enc=self._box.encrypt(credential))
            )
            if changed.rowcount != 1:
                raise NotFound(f"there is no vendor {vendor_id}")
            await audit(conn, self.actor, "vendor.credential", f"vendor:{vendor_id}")

    async def set_portal_password(self, portal_id: int, password: str) -> None:
        """A portal's password changed by other means (the supplier reset it)."""
        check(PORTAL_PASSWORD, password)
        async with self._store.write() as conn:
            changed = await conn.execute(
                portals.update()
                .where(portals.c.id == portal_id)
                .values(
                    password_enc=self._box.encrypt(password),
                    password_changed_at=datetime.now(UTC),
                )
            )
            if changed.rowcount != 1:
                raise NotFound(f"there is no portal {portal_id}")
            await audit(conn, self.actor, "portal.password", f"portal:{portal_id}")

    async def set_portal_enabled(
        self, portal_id: int, enabled: bool, *, strict: bool = False
    ) -> None:
        """Poll the portal again, or stop polling it. ``strict`` refuses a portal already so,
        as cancelling a next key that is not there is refused, so that a mistaken id does not
        pass as done (the command line; the admin API answers 200 until its document says
        409 there)."""
        async with self._store.write() as conn:
            current = await conn.scalar(
                sa.select(portals.c.enabled).where(portals.c.id == portal_id)
            )
            if current is None:
                raise NotFound(f"there is no portal {portal_id}")
            if strict and bool(current) == enabled:
                state = "enabled" if enabled else "disabled"
                raise RegistryError(f"portal {portal_id} is already {state}")
            await conn.execute(
                portals.update().where(portals.c.id == portal_id).values(enabled=enabled)
            )
            await audit(
                conn,
                self.actor,
                "portal.enable" if enabled else "portal.disable",
                f"portal:{portal_id}",
            )

    async def revoke(
        self,
        account_id: int,
        database_id: int,
        interfaces: list[Interface],
        *,
        strict: bool = False,
    ) -> None:
        """Stop the account using the database's ``interfaces``. ``strict`` refuses an
        interface it was never granted, revoking nothing (see ``set_portal_enabled``)."""
        async with self._store.write() as conn:
            await require(conn, accounts, account_id, "account")
            await require(conn, databases, database_id, "database")
            granted = set(
                await conn.scalars(
                    sa.select(grants.c.interface).where(
                        grants.c.account_id == account_id, grants.c.database_id == database_id
                    )
                )
            )
            missing = [i.value for i in dict.fromkeys(interfaces) if i.value not in granted]
            if strict and missing:
                raise RegistryError(
                    f"account {await _username(conn, account_id)!r} has no grant of "
                    f"{', '.join(missing)} on database {database_id}: nothing was revoked"
                )
            for interface in interfaces:
                await conn.execute(
                    grants.delete().where(
                        grants.c.account_id == account_id,
                        grants.c.database_id == database_id,
                        grants.c.interface == interface.value,
                    )
                )
            await audit(
                conn,
                self.actor,
                "account.revoke",
                f"account:{account_id}",
                database_id=database_id,
                interfaces=[interface.value for interface in interfaces],
            )

    async def set_account_enabled(
        self, username: str, enabled: bool, *, strict: bool = False
    ) -> None:
        """Let the account call again, or refuse its calls. ``strict`` refuses an account
        already so (see ``set_portal_enabled``)."""
        await self._update_account(
            username,
            "account.enable" if enabled else "account.disable",
            already=("enabled" if enabled else "disabled") if strict else None,
            enabled=enabled,
        )

    async def unlock_account(self, username: str) -> None:
        """Lift the account's lockouts at every address, on every replica: its failed logins
        until now no longer count (see ``gateway.tenancy.lockout``)."""
        await self._update_account(username, "account.unlock", unlocked_at=datetime.now(UTC))

    async def _update_account(
        self,
        username: str,
        action: str,
        *,
        already: str | None = None,
        **values: Any,
    ) -> None:
        """Change the account's ``values``. With ``already`` (the word for the state they
        put it in), an account already holding them is refused: "already enabled"."""
        async with self._store.write() as conn:
            row = (
                await conn.execute(sa.select(accounts).where(accounts.c.username == username))
            ).first()
            if row is None:
                raise NotFound(f"there is no account named {username!r}")
            account_id = row.id
            if already is not None and all(row._mapping[k] == v for k, v in values.items()):
                raise RegistryError(f"account {username!r} is already {already}")
            await conn.execute(accounts.update().where(accounts.c.id == account_id).values(values))
            await audit(conn, self.actor, action, f"account:{account_id}")


def _check_credential(credential: str, auth_method: AuthMethod) -> None:
    """A vendor's secret; for private_key_jwt, a private key it can sign with."""
    check(CLIENT_SECRET, credential)
    if auth_method is AuthMethod.PRIVATE_KEY_JWT:
        check(PRIVATE_KEY, credential)


async def _username(conn: AsyncConnection, account_id: int) -> str:
    return str(await conn.scalar(sa.select(accounts.c.username).where(accounts.c.id == account_id)))

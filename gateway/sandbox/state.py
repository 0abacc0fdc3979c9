"""Everything the sandbox remembers, and every read and write of it.

State lives in SQLite through SQLAlchemy Core (aiosqlite). Writes are serialized twice:
by a lock within the process and by ``BEGIN IMMEDIATE`` in the database, so two
journals can never be checked against the same ledger and both be posted, nor two
budgets with one serial number both be imported, even by two sandbox processes sharing
a file. An in-memory database is one connection shared by the whole process, so there
every read takes the lock too.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import sqlalchemy as sa
from joserfc.jwk import RSAKey
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.sandbox import tables as t
from gateway.sandbox.engine import create_engine, load_or_create_signing_key
from gateway.sandbox.fng import ledger, planning
from gateway.sandbox.fng.budget_rules import (
    ALL_CLOSED,
    LEDGER_TYPES,
    Budget,
    BudgetError,
    Chart,
    CostCentre,
    FiscalYears,
    Fund,
    LedgerCode,
    collapse,
)
from gateway.sandbox.fng.budget_rules import check as check_budget
from gateway.sandbox.fng.journal_rules import MAPPING_KINDS, BankLedger, Journal, RuleError, check
from gateway.sandbox.procurement_state import ProcurementState
from gateway.sandbox.simsid import tokens
from gateway.sandbox.stats import SandboxStats

#: The longest code FMS keeps (ledger, fund, CFR and cost-centre codes).
CODE_LENGTH: Final = 20


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """The result of posting a journal: the broken rules, or nothing when it was posted."""

    errors: tuple[RuleError, ...]

    @property
    def posted(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The result of importing a budget: the broken rules, or nothing when it was imported."""

    errors: tuple[BudgetError, ...]

    @property
    def imported(self) -> bool:
        return not self.errors


def canonical_guid(value: str) -> str:
    """A GUID in FNG's canonical form (lower case, hyphenated); ValueError if it is not one."""
    return str(uuid.UUID(value.strip()))


class SandboxState(ProcurementState):
    """The sandbox's SIMS ID, FNG and supplier portal state. Open with :meth:`open`, then
    :meth:`close`."""

    def __init__(self, engine: AsyncEngine, *, in_memory: bool, signing_key: RSAKey) -> None:
        self._engine = engine
        self._writer = engine.execution_options(sandbox_write=True)
        self._in_memory = in_memory
        self._lock = asyncio.Lock()
        self._signing_key = signing_key
        self.stats = SandboxStats()

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, *, signing_key: RSAKey | None = None) -> SandboxState:
        """Open (and create, if new) the state at an ``sqlite+aiosqlite`` URL.

        A new state generates its RSA signing key, or keeps ``signing_key`` if one is given
        (a fixed key for a deployment, or one key shared by many short-lived test states).
        A state that has a key keeps it, so tokens outlive a restart.
        """
        engine, in_memory = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(t.metadata.create_all)
        key = await load_or_create_signing_key(
            engine.execution_options(sandbox_write=True), signing_key
        )
        return cls(engine, in_memory=in_memory, signing_key=key)

    async def close(self) -> None:
        await self._engine.dispose()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if self._in_memory:
            async with self._lock, self._engine.connect() as conn:
                yield conn
        else:
            async with self._engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock, self._writer.begin() as conn:
            yield conn

    # -- settings ----------------------------------------------------------------------

    async def get_setting(self, name: str) -> str | None:
        async with self._read() as conn:
            value = await conn.scalar(
                sa.select(t.settings.c.value).where(t.settings.c.name == name)
            )
        return value

    async def put_setting(self, name: str, value: str) -> None:
        async with self._write() as conn:
            await conn.execute(sa.delete(t.settings).where(t.settings.c.name == name))
            await conn.execute(sa.insert(t.settings).values(name=name, value=value))

    # -- registrations -----------------------------------------------------------------

    async def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        public_jwk: Mapping[str, Any] | None = None,
    ) -> None:
        """Register a SIMS ID client: a secret (kept hashed), a public key, or both."""
        if not client_id:
            raise ValueError("a client id is required")
        if secret is None and public_jwk is None:
            raise ValueError("a client needs a secret or a public key")
        jwk_text = None
        if public_jwk is not None:
            jwk_text = json.dumps(tokens.import_public_jwk(public_jwk).as_dict(private=False))
        secret_hash = tokens.hash_secret(secret) if secret is not None else None
        async with self._write() as conn:
            await conn.execute(
                sa.insert(t.clients).values(
                    client_id=client_id, secret_hash=secret_hash, public_jwk=jwk_text
                )
            )

    async def add_database(
        self,
        name: str,
        *,
        school_name: str,
        la_number: str,
        establishment_number: str,
        client_id: str,
        fng_key: str,
        partner_key: str,
    ) -> int:
        """Create an FNG database whose set-up grants ``client_id`` with the two keys."""
        if not (la_number.isdigit() and len(la_number) == 3):
            raise ValueError("an LA number has three digits")
        if not (establishment_number.isdigit() and len(establishment_number) == 4):
            raise ValueError("an establishment number has four digits")
        async with self._write() as conn:
            result = await conn.execute(
                sa.insert(t.databases).values(
                    name=name,
                    school_name=school_name,
                    la_number=la_number,
                    establishment_number=establishment_number,
                    client_id=client_id,
                    fng_key=canonical_guid(fng_key),
                    partner_key=canonical_guid(partner_key),
                )
            )
            key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def set_partner_key(self, database_id: int, partner_key: str) -> None:
        """Enter a new integrator key in the database's set-up (a key rotation)."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(t.databases)
                .where(t.databases.c.id == database_id)
                .values(partner_key=canonical_guid(partner_key))
            )
            if result.rowcount != 1:
                raise LookupError(f"no database {database_id}")

    async def set_fng_key(self, database_id: int, fng_key: str) -> None:
        """Issue the database a new FNG key (X-PSK); the old one is refused from then on."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(t.databases)
                .where(t.databases.c.id == database_id)
                .values(fng_key=canonical_guid(fng_key))
            )
            if result.rowcount != 1:
                raise LookupError(f"no database {database_id}")

    async def add_payment_system(
        self,
        database_id: int,
        system_identifier: str,
        name: str,
        mappings: Mapping[str, Mapping[str, str]],
    ) -> int:
        """Set up a payment system and its code mappings (kind → its code → FMS code)."""
        unknown = set(mappings) - set(MAPPING_KINDS)
        if unknown:
            raise ValueError(f"unknown mapping kinds: {', '.join(sorted(unknown))}")
        async with self._write() as conn:
            result = await conn.execute(
                sa.insert(t.payment_systems).values(
                    database_id=database_id, system_identifier=system_identifier, name=name
                )
            )
            assert result.inserted_primary_key is not None
            ps_id = int(result.inserted_primary_key[0])
            rows = [
                {"payment_system_id": ps_id, "kind": kind, "code": code, "fms_code": fms_code}
                for kind, codes in mappings.items()
                for code, fms_code in codes.items()
            ]
            if rows:
                await conn.execute(sa.insert(t.code_mappings), rows)
            banks = [
                {"payment_system_id": ps_id, "bank": code} for code in mappings.get("bank", {})
            ]
            if banks:
                await conn.execute(sa.insert(t.bank_ledgers), banks)
        return ps_id

    # -- budget planning set-up --------------------------------------------------------

    async def add_financial_year(
        self,
        database_id: int,
        description: str,
        start: date,
        *,
        closed: bool,
        lowest_open_period: int = 1,
    ) -> int:
        """Add a year of twelve monthly periods from ``start`` (the first of a month).

        A closed year has every period closed (LowestOpenPeriod 13); an open one has the
        periods before ``lowest_open_period`` closed. Returns the FinancialYearID.
        """
        if not 1 <= len(description) <= 9 or description != collapse(description):
            raise ValueError("a year description has 1 to 9 characters, such as 2026/27")
        if start.day != 1:
            raise ValueError("a financial year starts on the first of a month")
        if not 1 <= lowest_open_period <= 12:
            raise ValueError("the lowest open period of an open year is 1 to 12")
        async with self._write() as conn:
            return await planning.add_year(
                conn,
                database_id,
                description,
                start,
                ALL_CLOSED if closed else lowest_open_period,
                closed=closed,
            )

    async def add_ledger_code(
        self,
        database_id: int,
        year_description: str,
        ledger_type: str,
        code: str,
        description: str,
        funds: Mapping[str, str],
        *,
        group: str = "",
        short_code: str = "",
        normal_profile: str = "Twelfths",
        normal_vat: str = "",
        services: bool = False,
    ) -> None:
        """Add a ledger code to a year's chart, with its funds (fund code → CFR code)."""
        entry = LedgerCode(
            ledger_type=ledger_type,
            code=code,
            description=description,
            group=group,
            short_code=short_code,
            normal_profile=normal_profile,
            normal_vat=normal_vat,
            services=services,
            funds=tuple(Fund(fund_code, cfr_code) for fund_code, cfr_code in funds.items()),
        )
        await self.add_chart(database_id, year_description, [entry])

    async def add_chart(
        self, database_id: int, year_description: str, entries: Iterable[LedgerCode]
    ) -> None:
        """Add ledger codes to a year's chart at once (all of them, or none)."""
        entries = list(entries)
        for entry in entries:
            if entry.ledger_type not in LEDGER_TYPES:
                raise ValueError(f"a ledger type is one of {', '.join(LEDGER_TYPES)}")
            _require_code(entry.code, "a ledger code")
            for fund in entry.funds:
                _require_code(fund.fund_code, "a fund code")
                _require_code(fund.cfr_code, "a CFR code")
        async with self._write() as conn:
            await planning.add_ledger_codes(conn, database_id, year_description, entries)

    async def add_cost_centre(self, database_id: int, code: str, description: str) -> None:
        await self.add_cost_centres(database_id, {code: description})

    async def add_cost_centres(self, database_id: int, centres: Mapping[str, str]) -> None:
        """Add cost centres (code → description) at once (all of them, or none)."""
        for code in centres:
            _require_code(code, "a cost centre code")
        async with self._write() as conn:
            await planning.add_cost_centres(
                conn, database_id, [CostCentre(code, text) for code, text in centres.items()]
            )

    # -- SIMS ID -----------------------------------------------------------------------

    @property
    def signing_key(self) -> RSAKey:
        return self._signing_key

    def jwks(self) -> dict[str, Any]:
        return tokens.public_key_set(self._signing_key)

    async def client_secret_matches(self, client_id: str, secret: str) -> bool:
        async with self._read() as conn:
            stored = await conn.scalar(
                sa.select(t.clients.c.secret_hash).where(t.clients.c.client_id == client_id)
            )
        if stored is None:
            # Spend the same work on unknown clients.
            tokens.secret_matches(secret, tokens.hash_secret(""))
            return False
        return tokens.secret_matches(secret, stored)

    async def client_public_key(self, client_id: str) -> tokens.PublicKey | None:
        async with self._read() as conn:
            text = await conn.scalar(
                sa.select(t.clients.c.public_jwk).where(t.clients.c.client_id == client_id)
            )
        return tokens.import_public(json.loads(text)) if text else None

    async def remember_assertion(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record a client assertion's id; False if it has been presented before."""
        now = int(time.time())
        async with self._write() as conn:
            await conn.execute(
                sa.delete(t.used_assertions).where(t.used_assertions.c.expires_at < now)
            )
            seen = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(t.used_assertions)
                .where(t.used_assertions.c.client_id == client_id)
                .where(t.used_assertions.c.jti == jti)
            )
            if seen:
                return False
            await conn.execute(
                sa.insert(t.used_assertions).values(
                    client_id=client_id, jti=jti, expires_at=max(expires_at, now)
                )
            )
        return True

    async def issue_token(
        self, client_id: str, *, issuer: str, lifetime: int, now: int | None = None
    ) -> str:
        """Sign an access token for ``client_id`` and remember it (so it can be revoked)."""
        issued_at = int(time.time()) if now is None else now
        jti = uuid.uuid4().hex
        token = tokens.mint_access_token(
            self._signing_key,
            issuer=issuer,
            client_id=client_id,
            jti=jti,
            issued_at=issued_at,
            lifetime=lifetime,
        )
        async with self._write() as conn:
            await conn.execute(
                sa.delete(t.issued_tokens).where(t.issued_tokens.c.expires_at < time.time())
            )
            await conn.execute(
                sa.insert(t.issued_tokens).values(
                    jti=jti,
                    client_id=client_id,
                    issued_at=issued_at,
                    expires_at=issued_at + lifetime,
                    revoked=False,
                )
            )
        return token

    async def verify_token(self, token: str, *, issuer: str) -> tokens.AccessClaims:
        """Verify an access token; raise :class:`tokens.TokenError` if it is refused."""
        claims = tokens.verify_access_token(
            token, self._signing_key, issuer=issuer, now=int(time.time())
        )
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(t.issued_tokens.c.client_id, t.issued_tokens.c.revoked).where(
                        t.issued_tokens.c.jti == claims.jti
                    )
                )
            ).first()
        if row is None or row.client_id != claims.client_id:
            raise tokens.TokenError("the token was not issued by this SIMS ID")
        if row.revoked:
            raise tokens.TokenError("the token has been revoked")
        return claims

    async def revoke_tokens(self) -> int:
        """Refuse every token issued so far; return how many were newly revoked."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(t.issued_tokens)
                .where(t.issued_tokens.c.revoked == sa.false())
                .values(revoked=True)
            )
        return int(result.rowcount)

    # -- FNG ---------------------------------------------------------------------------

    async def database_for(self, client_id: str, fng_key: str, partner_key: str) -> int | None:
        """The database whose set-up holds both keys for this client, if there is one."""
        try:
            fng, partner = canonical_guid(fng_key), canonical_guid(partner_key)
        except ValueError:
            return None
        async with self._read() as conn:
            found = await conn.scalar(
                sa.select(t.databases.c.id)
                .where(t.databases.c.fng_key == fng)
                .where(t.databases.c.partner_key == partner)
                .where(t.databases.c.client_id == client_id)
            )
        return None if found is None else int(found)

    async def banks(
        self, database_id: int, system_identifier: str
    ) -> list[tuple[str, BankLedger]] | None:
        """Each mapped bank of a payment system with its ledger; None if it is unknown."""
        async with self._read() as conn:
            ps_id = await ledger.payment_system_id(conn, database_id, system_identifier)
            if ps_id is None:
                return None
            found = await ledger.ledgers(conn, ps_id)
            codes = (
                await conn.scalars(
                    sa.select(t.code_mappings.c.code)
                    .where(t.code_mappings.c.payment_system_id == ps_id)
                    .where(t.code_mappings.c.kind == "bank")
                    .order_by(t.code_mappings.c.code)
                )
            ).all()
        return [(code, found.get(code, BankLedger())) for code in codes]

    async def post_journal(self, database_id: int, journal: Journal) -> PostOutcome:
        """Check a journal against the ledger and, if it breaks no rule, post all of it."""
        async with self._write() as conn:
            ps_id = await ledger.payment_system_id(conn, database_id, journal.system_identifier)
            view = None if ps_id is None else await ledger.ledger_view(conn, ps_id, journal)
            errors = check(journal, view)
            if errors or ps_id is None or view is None:
                return PostOutcome(tuple(errors))
            await ledger.post(conn, ps_id, journal, view)
        self.stats.posted_submissions += 1
        self.stats.journal_lines += journal.lines
        return PostOutcome(())

    async def add_audit_message(self, database_id: int, client_id: str, message: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                sa.insert(t.audit_messages).values(
                    database_id=database_id,
                    client_id=client_id,
                    received_at=t.now_iso(),
                    message=message,
                )
            )
        self.stats.audit_messages += 1

    async def financial_years(self, database_id: int) -> FiscalYears:
        """The database's school and financial years, read at one moment."""
        async with self._read() as conn:
            school = await planning.school(conn, database_id)
            years = await planning.years(conn, database_id)
        if school is None:
            raise LookupError(f"no database {database_id}")
        return FiscalYears(school, years)

    async def chart(self, database_id: int, day: date) -> Chart | None:
        """The chart of accounts of the year that contains ``day``; None if no year does."""
        async with self._read() as conn:
            school = await planning.school(conn, database_id)
            if school is None:
                raise LookupError(f"no database {database_id}")
            year = next(
                (y for y in await planning.years(conn, database_id) if y.contains(day)), None
            )
            if year is None:
                return None
            codes = await planning.ledger_codes(conn, year.id)
            centres = await planning.cost_centres(conn, database_id)
        return Chart(school, year, codes, centres)

    async def import_budget(
        self, database_id: int, client_id: str, budget: Budget
    ) -> ImportOutcome:
        """Check a budget against the database and, if it breaks no rule, import all of it."""
        async with self._write() as conn:
            school = await planning.school(conn, database_id)
            if school is None:
                raise LookupError(f"no database {database_id}")
            view = await planning.budget_view(conn, database_id, school, budget)
            errors = check_budget(budget, view)
            year = view.year(budget.financial_year)
            if errors or year is None:
                return ImportOutcome(tuple(errors))
            await planning.import_budget(conn, database_id, client_id, budget, year)
        self.stats.budgets_imported += 1
        return ImportOutcome(())

    # -- observation -------------------------------------------------------------------

    async def journals(self) -> list[dict[str, Any]]:
        """Every posted submission with its lines, oldest first."""
        s, ps, jl = t.submissions, t.payment_systems, t.journal_lines
        async with self._read() as conn:
            heads = (
                await conn.execute(
                    sa.select(
                        s.c.id,
                        ps.c.database_id,
                        ps.c.system_identifier,
                        s.c.submission_id,
                        s.c.posted_at,
                        s.c.transaction_line_count,
                        s.c.requested_by,
                        s.c.source,
                    )
                    .join(ps, ps.c.id == s.c.payment_system_id)
                    .order_by(s.c.id)
                )
            ).all()
            lines = (await conn.execute(sa.select(jl).order_by(jl.c.id))).all()
        by_submission: dict[int, list[dict[str, Any]]] = {}
        for line in lines:
            by_submission.setdefault(line.submission_row, []).append(
                {
                    "bank": line.bank,
                    "section": line.section,
                    "id": line.transaction_id,
                    "gross_amount": line.gross_amount,
                    "code": line.code,
                    "vat_code": line.vat_code,
                    "attributes": json.loads(line.attributes),
                }
            )
        return [
            {
                "database_id": head.database_id,
                "system_identifier": head.system_identifier,
                "submission_id": head.submission_id,
                "posted_at": head.posted_at,
                "transaction_line_count": head.transaction_line_count,
                "requested_by": head.requested_by,
                "source": head.source,
                "lines": by_submission.get(head.id, []),
            }
            for head in heads
        ]

    async def audit_messages(self) -> list[dict[str, Any]]:
        a = t.audit_messages
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(a).order_by(a.c.id))).all()
        return [
            {
                "database_id": row.database_id,
                "client_id": row.client_id,
                "received_at": row.received_at,
                "message": row.message,
            }
            for row in rows
        ]

    async def budgets(self) -> list[dict[str, Any]]:
        """Every imported budget with its allocations, oldest first."""
        async with self._read() as conn:
            return await planning.imported_budgets(conn)


def _require_code(value: str, what: str) -> None:
    if not 1 <= len(value) <= CODE_LENGTH or value != collapse(value):
        raise ValueError(f"{what} has 1 to {CODE_LENGTH} characters, without surrounding spaces")


def new_guid() -> str:
    """A fresh random key, as FNG and integrators issue them."""
    return str(uuid.uuid4())


def new_secret() -> str:
    """A client secret that only survives a correct RFC 6749 §2.3.1 encoding.

    It holds a space, ``:``, ``%`` and ``+``: a client that puts it in a Basic header without
    form-urlencoding it first, or that decodes ``+`` wrongly, is refused.
    """
    return f"sbx {secrets.token_urlsafe(18)}:%41+{secrets.token_hex(4)}"

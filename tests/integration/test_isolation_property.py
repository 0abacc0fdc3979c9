"""Isolation as a property: across many accounts, databases and keys in every state, no call
ever reaches a database its account was not granted, and every refusal is the same fault.

One world serves the module: the demo school and six more, each with its own SIMS ID client
(vendor) and FNG database, set up in the sandbox and in the gateway; partner keys rotated,
promoted and retired so that every state is present (active, next, retiring before its
deadline, retiring past it, and deleted); accounts granted databases per interface in a
pattern that differs from one account to the next. The gateway remembers nothing between
calls (the caller resolver's cache and the read cache are off) and throttles no one, so each
call is judged on the registry as it stands.

Hypothesis draws calls (an account and its password or a wrong one; a key of the account's
own databases, any registered key, an unknown GUID or a malformed key, in any of a GUID's
notations; an operation of either service; SOAP 1.1 or 1.2 with an AuthHeader or a WS-Security
UsernameToken, or the plain XML binding with HTTP Basic and X-School-Key) and each is sent to
the real gateway over loopback. The sandbox counts, per
database, the calls FNG let through to it, and keeps what was posted, imported and noted:

- a call whose account is granted the key's database for the operation's interface, with a
  key the gateway accepts, reaches exactly that database, with exactly the FNG calls the
  operation makes, and what it wrote landed there;
- any other call is the one refusal of its binding (the SOAP version's fault, or the plain
  binding's problem document: the same status, content type and body to the byte but for the
  request id) and the sandbox hears nothing at all.

Timing is not asserted: the caller resolver does the same work on every path, which a test
on a shared machine cannot measure.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import string
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from xml.sax.saxutils import escape

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway import ns
from gateway.app import CALLERS, STORE
from gateway.sandbox import SandboxState, create_sandbox_app, seed_demo
from gateway.tenancy.model import Interface
from gateway.tenancy.rotation import KeyRotation
from gateway.tenancy.secrets import SecretBox
from tests.conftest import Gateway, Sandbox, add_school, gateway_settings, start_gateway
from tests.support import (
    Auth,
    BankEntry,
    SoapAnswer,
    Txn,
    auth_header,
    basic,
    budget_operation,
    budget_xml,
    envelope,
    journal_xml,
    operation,
    post_journals_body,
)

T = TypeVar("T")

EJOURNAL, BUDGET = Interface.EJOURNAL, Interface.BUDGET
BOTH = (EJOURNAL, BUDGET)

#: The key states the gateway accepts from callers ("retiring" is before its deadline).
ACCEPTED: Final = frozenset({"active", "next", "retiring"})

REFUSED = "AuthenticationException:the credentials or the database key were not accepted"
NOT_A_GUID = (
    "AuthenticationException:Database must be the partner key GUID (8-4-4-4-12 hexadecimal "
    "digits) that the gateway's operator issued for the school's FNG database, not a database "
    "name (on the plain XML binding, the X-School-Key header)"
)

#: Each school's partner key history, applied in turn: rotate (a ``next`` key), promote (next
#: becomes active, active retiring with a day's grace, and keys past their deadline are
#: deleted) and expire (the retiring keys' deadline is now). School 0 is the demo's.
KEY_HISTORIES: Final = (
    ("rotate",),  # active, next
    (),  # active
    ("rotate", "promote"),  # retiring, active
    ("rotate", "promote", "expire", "rotate", "promote", "expire"),  # gone, expired, active
    ("rotate", "promote", "rotate"),  # retiring, active, next
    ("rotate", "promote", "expire", "rotate"),  # expired, active, next
    ("rotate", "promote", "rotate", "promote"),  # retiring, retiring, active
)

#: Accounts beyond each school's own (which is granted its database for both interfaces):
#: database index → interfaces.
CROSS_ACCOUNTS: Final[dict[str, dict[int, tuple[Interface, ...]]]] = {
    "multi-a": {1: BOTH, 2: (EJOURNAL,), 4: (BUDGET,)},
    "multi-b": {0: (BUDGET,), 3: BOTH, 5: (EJOURNAL,), 6: (BUDGET,)},
    "multi-c": {2: (BUDGET,), 6: (EJOURNAL,)},
}


@dataclass
class Database:
    la_number: str
    establishment_number: str
    gateway_id: int
    sandbox_id: int
    #: Journals FNG holds for it: the next journal's row versions start from here.
    posted: int = 0


@dataclass(frozen=True)
class Key:
    value: str
    database: int
    state: str  # active, next, retiring, expired or gone


@dataclass(frozen=True)
class Account:
    username: str
    password: str = field(repr=False)
    grants: frozenset[tuple[int, Interface]]


@dataclass(frozen=True)
class Op:
    name: str
    interface: Interface
    #: The FNG calls an accepted call makes.
    reaches: tuple[str, ...]


OPERATIONS: Final = (
    Op("GetBanks", EJOURNAL, ("GetBanks",)),
    Op("PostJournals", EJOURNAL, ("PostJournals",)),
    Op("PostAuditMessage", EJOURNAL, ("PostAuditMessage",)),
    Op("GetChartOfAccounts", BUDGET, ("ExportGlAccount",)),
    Op("GetFinancialYears", BUDGET, ("ExportFinancialYears",)),
    Op("ImportBudget", BUDGET, ("ExportFinancialYears", "ExportGlAccount", "ImportBudget")),
)


@dataclass(frozen=True)
class Call:
    account: Account
    right_password: bool
    #: The Database element's text, and the registered key it names, if any.
    presented: str
    key: Key | None
    op: Op
    #: "1.1" or "1.2" (SOAP), or "plain" (the plain XML binding).
    version: str
    wsse: bool

    @property
    def password(self) -> str:
        return self.account.password if self.right_password else "not the password"

    @property
    def accepted(self) -> bool:
        """Whether the gateway must let the call through to the key's database."""
        return (
            self.right_password
            and self.key is not None
            and self.key.state in ACCEPTED
            and (self.key.database, self.op.interface) in self.account.grants
        )


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    http: aiohttp.ClientSession
    sandbox: Sandbox
    gateway: Gateway
    databases: list[Database]
    keys: list[Key]
    accounts: list[Account]
    open_year: str
    fund: tuple[str, str, str]
    cost_centre: str
    serials: Iterator[int]
    #: What the sandbox had seen after the last call.
    last: Seen = field(init=False)
    #: The refusal of each binding: status, content type, body without its request id.
    #: The one refusal of each binding, for a key of a GUID's shape (False) and for a key
    #: that is not a GUID (True), which is told what a key must be.
    refusals: dict[tuple[str, bool], tuple[int, str, bytes]] = field(default_factory=dict)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def account(self, username: str) -> Account:
        return next(account for account in self.accounts if account.username == username)

    def key(self, database: int, state: str) -> Key:
        return next(k for k in self.keys if k.database == database and k.state == state)


# -- building the world ---------------------------------------------------------------------


async def _keys_after(
    sandbox: Sandbox, gateway: Gateway, database: Database, first: str, history: tuple[str, ...]
) -> dict[str, str]:
    """Apply one school's key history, keeping FNG's set-up on the active key; each key the
    database ever had, with its state."""
    rotation = KeyRotation(gateway.app[STORE], gateway.box, "operator")
    states = {first: "active"}
    for step in history:
        if step == "rotate":
            states[await rotation.rotate_partner_key(database.gateway_id)] = "next"
        elif step == "promote":
            await rotation.promote_partner_key(database.gateway_id, grace=timedelta(days=1))
            moves = {"expired": "gone", "active": "retiring", "next": "active"}
            states = {key: moves.get(state, state) for key, state in states.items()}
            active = next(key for key, state in states.items() if state == "active")
            await sandbox.state.databases.set_partner_key(database.sandbox_id, active)
        else:
            await rotation.retire_now(database.gateway_id)
            states = {k: "expired" if s == "retiring" else s for k, s in states.items()}
    # The registry's own view agrees (an expired key is one retiring past its deadline).
    listed = await rotation.partner_keys(database.gateway_id)
    assert sorted((key["fingerprint"], key["state"]) for key in listed) == sorted(
        (hashlib.sha256(value.encode()).hexdigest()[:12], state.replace("expired", "retiring"))
        for value, state in states.items()
        if state != "gone"
    )
    return states


async def _school(sandbox: Sandbox, gateway: Gateway, index: int) -> tuple[Database, Auth]:
    """School ``index``, its vendor, database and own account (see ``add_school``)."""
    la, establishment = f"{400 + index}", f"{1000 + index}"
    auth = await add_school(
        sandbox,
        gateway,
        f"School {index}",
        la_number=la,
        establishment_number=establishment,
        username=f"school-{index}",
    )
    tenancy = gateway.tenancy
    school_id = next(s["id"] for s in await tenancy.schools() if s["la_number"] == la)
    gateway_id = next(d["id"] for d in await tenancy.databases() if d["school_id"] == school_id)
    # FNG's database is the one whose set-up holds the keys the gateway sends for it.
    target = await gateway.app[CALLERS].database_target(gateway_id)
    assert target is not None
    sandbox_id = await sandbox.state.databases.find(
        target.vendor.client_id,
        target.fng_key.get_secret_value(),
        target.partner_key.get_secret_value(),
    )
    assert sandbox_id is not None
    return Database(la, establishment, gateway_id, sandbox_id), auth


async def _build(tmp: Path, closers: list[Callable[[], Awaitable[None]]]) -> World:
    """The world; ``closers`` gets what must be closed, as it is opened."""

    async def serve(app: web.Application) -> TestServer:
        server = TestServer(app)
        closers.append(server.close)
        await server.start_server()
        return server

    state = await SandboxState.open("sqlite+aiosqlite:///:memory:")
    closers.append(state.close)
    demo = await seed_demo(state)
    sandbox_server = await serve(create_sandbox_app(state))
    sandbox = Sandbox(state, demo, str(sandbox_server.make_url("")).rstrip("/"), sandbox_server)
    config = gateway_settings(
        tmp,
        sandbox,
        auth={
            "registry_cache_seconds": 0,
            "max_failures": 0,
            "max_account_failures": 0,
            "max_address_failures": 0,
        },
        budget={"cache_seconds": 0},
    )
    gateway = await start_gateway(serve, config, SecretBox([Fernet.generate_key()]), sandbox)

    registered = gateway.demo
    databases = [
        Database(
            demo.la_number, demo.establishment_number, registered.database_id, demo.database_id
        )
    ]
    firsts = [registered.database_key]
    accounts = [Account(registered.username, registered.password, frozenset((0, i) for i in BOTH))]
    for index in range(1, len(KEY_HISTORIES)):
        database, auth = await _school(sandbox, gateway, index)
        databases.append(database)
        firsts.append(auth.database)
        accounts.append(Account(auth.username, auth.password, frozenset((index, i) for i in BOTH)))
    keys = [
        Key(value, index, state)
        for index, history in enumerate(KEY_HISTORIES)
        for value, state in (
            await _keys_after(sandbox, gateway, databases[index], firsts[index], history)
        ).items()
    ]
    for username, granted in CROSS_ACCOUNTS.items():
        created = await gateway.tenancy.add_account(username)
        for index, interfaces in granted.items():
            await gateway.tenancy.grant(
                created.account_id, databases[index].gateway_id, list(interfaces), ["TPPCS"]
            )
        grants = frozenset((index, i) for index, some in granted.items() for i in some)
        accounts.append(Account(username, created.password, grants))
    accounts.append(Account("nobody", "the password of no account", frozenset()))

    ledger, fund, cfr = demo.fund_allocations[0]
    http = aiohttp.ClientSession()
    closers.append(http.close)
    return World(
        loop=asyncio.get_running_loop(),
        http=http,
        sandbox=sandbox,
        gateway=gateway,
        databases=databases,
        keys=keys,
        accounts=accounts,
        open_year=demo.open_year,
        fund=(ledger, fund, cfr),
        cost_centre=demo.cost_centres[0],
        serials=itertools.count(1),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The world, on an event loop of its own that runs while a test makes its calls (one
    gateway and one sandbox for every example; hypothesis and function fixtures do not mix).
    The refusals of each binding are taken from a call with an unknown key and one with a
    key that is not a GUID."""
    loop = asyncio.new_event_loop()
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        built = loop.run_until_complete(_build(tmp_path_factory.mktemp("isolation"), closers))
        for version, malformed in itertools.product(("1.1", "1.2", "plain"), (False, True)):
            account = built.account("school-1")
            presented = "FMS_LIVE" if malformed else str(uuid.uuid4())
            unknown = Call(account, True, presented, None, OPERATIONS[0], version, False)
            answer, content_type = built.run(send(built, unknown))
            if version == "plain":
                assert (answer.status, content_type) == (401, "application/problem+xml")
                assert b"<code>AUTHENTICATION_FAILED</code>" in answer.raw, answer.raw
                assert (b"partner key GUID" in answer.raw) == malformed, answer.raw
            else:
                assert answer.is_fault, answer.raw
                assert answer.fault_code == "AUTHENTICATION_FAILED", answer.raw
                assert answer.fault_string == (NOT_A_GUID if malformed else REFUSED)
            built.refusals[version, malformed] = (
                answer.status,
                content_type,
                scrubbed(answer.raw),
            )
        built.last = built.run(seen(built))
        assert built.last.reached == {}, "a refusal reached FNG"
        yield built
    finally:
        for close in reversed(closers):
            loop.run_until_complete(close())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


# -- calls ----------------------------------------------------------------------------------


def scrubbed(raw: bytes) -> bytes:
    """A fault's (or problem document's) body without its request id, the one part that
    differs from call to call."""
    return re.sub(rb"<(gw:)?requestId>[^<]*</(gw:)?requestId>", b"<requestId/>", raw)


def _lower(key: str) -> str:
    return key


def _upper(key: str) -> str:
    return key.upper()


def _braced(key: str) -> str:
    return "{" + key + "}"


def _digits_only(key: str) -> str:
    return key.replace("-", "")


def _padded(key: str) -> str:
    return f"  {key}\n"


#: Notations of one GUID that a caller may send for it.
NOTATIONS: Final[tuple[Callable[[str], str], ...]] = (
    _lower,
    _upper,
    _braced,
    _digits_only,
    _padded,
)


def as_guid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def _malformed(keys: list[Key]) -> st.SearchStrategy[str]:
    """Not a GUID: a registered key a digit short, a digit long or with a letter that is not
    hexadecimal, or any short text."""
    values = st.sampled_from([key.value for key in keys])
    return st.one_of(
        values.map(lambda key: key[:-1]),
        values.map(lambda key: key + "0"),
        values.map(lambda key: "g" + key[1:]),
        st.text(
            string.ascii_letters + string.digits + string.punctuation + " ", max_size=40
        ).filter(lambda text: text.strip() != "" and as_guid(text) is None),
    )


def calls(world: World) -> st.SearchStrategy[Call]:
    @st.composite
    def draw(data: st.DrawFn) -> Call:
        account = data(st.sampled_from(world.accounts))
        right_password = data(st.sampled_from([True] * 5 + [False]))
        op = data(st.sampled_from(OPERATIONS))
        own = [k for k in world.keys if (k.database, op.interface) in account.grants]
        kind = data(st.sampled_from(["own", "own", "any", "unknown", "malformed"]))
        key: Key | None = None
        if kind in ("own", "any"):
            key = data(st.sampled_from(own if kind == "own" and own else world.keys))
            presented = data(st.sampled_from(NOTATIONS))(key.value)
        elif kind == "unknown":
            presented = data(st.sampled_from(NOTATIONS))(str(data(st.uuids())))
        else:
            presented = data(_malformed(world.keys))
        version = data(st.sampled_from(["1.1", "1.2", "plain"]))
        return Call(account, right_password, presented, key, op, version, wsse=data(st.booleans()))

    return draw()


def _body(world: World, call: Call, serial: int) -> str:
    """The operation's body; what it writes is valid for the key's database (or the demo's)."""
    database = world.databases[call.key.database if call.key else 0]
    match call.op.name:
        case "GetBanks":
            return operation("GetBanks", systemIdentifier="TPPCS")
        case "PostJournals":
            done = database.posted
            journal = journal_xml(
                [
                    BankEntry(
                        "BK1",
                        orders=[Txn(f"o{serial}")],
                        settlements=[Txn(f"s{serial}")],
                        base={"Orders": done, "Settlements": done},
                    )
                ],
                submission_id=f"P{serial:06d}",
            )
            return post_journals_body(journal)
        case "PostAuditMessage":
            return operation("PostAuditMessage", message=f"note {serial}")
        case "GetChartOfAccounts":
            return budget_operation("GetChartOfAccounts", date=date.today().isoformat())
        case "GetFinancialYears":
            return budget_operation("GetFinancialYears")
        case _:
            ledger, fund, cfr = world.fund
            budget = budget_xml(
                serial,
                world.open_year,
                [(ledger, fund, cfr, "100.00")],
                [(ledger, world.cost_centre, "25.00")],
                la_number=database.la_number,
                school_number=database.establishment_number,
            )
            message = budget.replace("<Message>", '<Message xmlns="">', 1)
            return budget_operation("ImportBudget", xmlData=message)


def _header(call: Call, namespace: str) -> str:
    if not call.wsse:
        return auth_header(Auth(call.account.username, call.password, call.presented), namespace)
    return (
        f'<wsse:Security xmlns:wsse="{ns.WSSE}"><wsse:UsernameToken>'
        f"<wsse:Username>{escape(call.account.username)}</wsse:Username>"
        f'<wsse:Password Type="{ns.WSSE_PASSWORD_TEXT}">{escape(call.password)}</wsse:Password>'
        "</wsse:UsernameToken></wsse:Security>"
        f'<AuthHeader xmlns="{namespace}">'
        f"<Database>{escape(call.presented)}</Database></AuthHeader>"
    )


async def send(world: World, call: Call, serial: int = 0) -> tuple[SoapAnswer, str]:
    """The call, as a SOAP client sends it (or a plain XML client); the answer and its
    content type."""
    service, namespace = (
        ("ejournal", ns.EJOURNAL) if call.op.interface is EJOURNAL else ("budget", ns.BUDGET)
    )
    if call.version == "plain":
        return await _send_plain(world, call, serial, service)
    data = envelope(_body(world, call, serial), _header(call, namespace), call.version)
    content_type = (
        "text/xml; charset=utf-8"
        if call.version == "1.1"
        else "application/soap+xml; charset=utf-8"
    )
    async with world.http.post(
        f"{world.gateway.url}/soap/{service}",
        data=data.encode(),
        headers={"Content-Type": content_type},
    ) as response:
        raw = await response.read()
        return SoapAnswer(response.status, etree.fromstring(raw), raw), response.content_type


async def _send_plain(
    world: World, call: Call, serial: int, service: str
) -> tuple[SoapAnswer, str]:
    """The operation's element as the body of ``POST /xml/{service}/{operation}``. An answer
    that is not a problem document is put in a SOAP 1.1 body, so that it reads like one."""
    headers = {
        "Authorization": basic(call.account.username, call.password),
        # A header cannot hold a line break; the spaces around the key stay.
        "X-School-Key": call.presented.replace("\n", " "),
        "Content-Type": "application/xml",
    }
    async with world.http.post(
        f"{world.gateway.url}/xml/{service}/{call.op.name}",
        data=_body(world, call, serial).encode(),
        headers=headers,
    ) as response:
        raw = await response.read()
        status, content_type = response.status, response.content_type
    if content_type == "application/problem+xml":
        return SoapAnswer(status, etree.fromstring(raw), raw), content_type
    document = re.sub(rb"^<\?xml[^>]*\?>", b"", raw).strip()
    wrapped = f'<s:Envelope xmlns:s="{ns.SOAP11_ENV}"><s:Body>'.encode() + document
    return SoapAnswer(status, etree.fromstring(wrapped + b"</s:Body></s:Envelope>"), raw), (
        content_type
    )


# -- what the sandbox saw --------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """The sandbox's counters: every FNG call (refused ones too), tokens, journals posted,
    notes and budgets kept; and per database, the calls that reached it."""

    stats: dict[str, Any]
    reached: dict[str, dict[str, int]]


async def _sandbox(world: World, path: str) -> Any:
    async with world.http.get(f"{world.sandbox.url}/_sandbox/{path}") as response:
        assert response.status == 200
        return await response.json()


async def seen(world: World) -> Seen:
    stats, reached = await asyncio.gather(
        _sandbox(world, "stats"), _sandbox(world, "stats/databases")
    )
    return Seen(stats, reached)


def reached_since(before: Seen, after: Seen) -> dict[str, Counter[str]]:
    """The calls that reached each database between two observations."""
    delta: dict[str, Counter[str]] = {}
    for database, counts in after.reached.items():
        earlier = before.reached.get(database, {})
        grown = +Counter({op: n - earlier.get(op, 0) for op, n in counts.items()})
        if grown:
            delta[database] = grown
    return delta


#: What an operation that writes leaves in FNG: its counter, where the sandbox lists it, and
#: the field that names it.
WRITES: Final = {
    "PostJournals": ("posted_submissions", "journals", "submission_id"),
    "PostAuditMessage": ("audit_messages", "audit-messages", "message"),
    "ImportBudget": ("budgets_imported", "budgets", "serial_number"),
}


def _written(op: str, serial: int) -> str:
    return {"PostJournals": f"P{serial:06d}", "PostAuditMessage": f"note {serial}"}.get(
        op, str(serial)
    )


async def check(world: World, call: Call) -> None:
    """Send the call and judge it against what the sandbox saw."""
    serial = next(world.serials)
    before = world.last
    answer, content_type = await send(world, call, serial)
    after = world.last = await seen(world)
    if not call.accepted:
        refusal = (answer.status, content_type, scrubbed(answer.raw))
        malformed = as_guid(call.presented) is None
        assert refusal == world.refusals[call.version, malformed], answer.raw
        assert after == before, "a refused call reached FNG"
        return
    assert call.key is not None
    database = world.databases[call.key.database]
    assert not answer.is_fault, answer.raw
    assert reached_since(before, after) == {str(database.sandbox_id): Counter(call.op.reaches)}
    for op, (counter, _, _) in WRITES.items():
        grown = after.stats[counter] - before.stats[counter]
        assert grown == (op == call.op.name), (counter, grown)
    if call.op.name in WRITES:
        _, listing, name = WRITES[call.op.name]
        latest = (await _sandbox(world, listing))[-1]
        written = (latest["database_id"], latest[name])
        assert written == (database.sandbox_id, _written(call.op.name, serial))
    match call.op.name:
        case "GetBanks":
            assert answer.part("isSuccess") == "true", answer.raw
        case "PostJournals":
            assert answer.result().get("isSuccess") == "true", answer.raw
            database.posted += 1
        case "GetChartOfAccounts" | "GetFinancialYears":
            header = answer.result().find("Header")
            assert header is not None, answer.raw
            school = (header.findtext("LANumber"), header.findtext("SchoolNumber"))
            assert school == (database.la_number, database.establishment_number)
        case "ImportBudget":
            assert answer.result().get("isSuccess") == "true", answer.raw


# -- the tests -------------------------------------------------------------------------------


def test_every_kind_of_refusal_is_the_same_fault(world: World) -> None:
    """Each way a call can be wrong, in each SOAP version, is the one refusal (or, for a key
    that is not a GUID, the one telling what a key is), and FNG hears nothing; the same
    account with its own key gets through. (The property below draws these too, but by
    chance.)"""
    account = world.account("multi-b")  # granted 3 for both, 0 for budget, 5 for ejournal
    mine, theirs = world.key(3, "active"), world.key(1, "active")
    expired, gone = world.key(3, "expired"), world.key(3, "gone")
    other_interface = {EJOURNAL: world.key(0, "active"), BUDGET: world.key(5, "active")}
    nobody = world.account("nobody")
    cases: list[tuple[Account, bool, str, Key | None]] = [
        (account, True, str(uuid.uuid4()), None),  # unknown
        (account, True, expired.value, expired),
        (account, True, gone.value, gone),  # deleted at a later promotion
        (account, True, "my-school", None),  # malformed
        (account, True, mine.value[:-1], None),  # a digit short
        (account, True, theirs.value, theirs),  # another school's, not granted
        (account, True, "", None),  # a key granted for the other interface: set below
        (account, False, mine.value, mine),  # a wrong password
        (nobody, True, mine.value, mine),  # no such account
    ]
    for version in ("1.1", "1.2", "plain"):
        for index, (caller, right_password, presented, key) in enumerate(cases):
            op = OPERATIONS[index % len(OPERATIONS)]
            if not presented:
                key = other_interface[op.interface]
                presented = key.value
            call = Call(caller, right_password, presented, key, op, version, index % 2 == 1)
            assert not call.accepted, call
            world.run(check(world, call))
        for op in (OPERATIONS[0], OPERATIONS[4]):
            call = Call(account, True, mine.value, mine, op, version, False)
            assert call.accepted
            world.run(check(world, call))


def _outcome(call: Call) -> str:
    """Why the call gets through or is refused (the first reason that applies)."""
    if call.accepted:
        assert call.key is not None
        return f"{call.op.name} with a key {call.key.state}"
    if not call.right_password or not call.account.grants:
        return "refused: credentials"
    if call.key is None:
        return "refused: " + ("malformed key" if as_guid(call.presented) is None else "unknown key")
    if call.key.state not in ACCEPTED:
        return f"refused: key {call.key.state}"
    return "refused: not granted"


def test_no_call_reaches_a_database_not_granted(world: World) -> None:
    """Drawn calls: each reaches exactly its key's database when the account is granted it and
    the key is accepted, and is otherwise the one refusal that reaches nothing."""
    outcomes: Counter[str] = Counter()
    bindings: Counter[tuple[str, bool]] = Counter()

    @settings(max_examples=150, deadline=None, derandomize=True, database=None)
    @given(calls(world))
    def property_holds(call: Call) -> None:
        world.run(check(world, call))
        outcomes[_outcome(call)] += 1
        bindings[call.version, call.accepted] += 1

    property_holds()
    # Each binding was let through and refused.
    assert set(bindings) == {(v, a) for v in ("1.1", "1.2", "plain") for a in (True, False)}
    # The draws covered the ground: every operation got through, with keys in every state
    # the gateway accepts, and every reason for a refusal came up.
    through = [outcome.split(" with a key ") for outcome in outcomes if " with a key " in outcome]
    assert {op for op, _ in through} == {op.name for op in OPERATIONS}, outcomes
    assert {state for _, state in through} == ACCEPTED, outcomes
    assert {outcome for outcome in outcomes if outcome.startswith("refused")} == {
        "refused: credentials",
        "refused: malformed key",
        "refused: unknown key",
        "refused: key expired",
        "refused: key gone",
        "refused: not granted",
    }, outcomes

"""The callers of the fault-injection suite: payment systems posting chains of journals, a
budget planning tool importing budgets, each call timed and its answer sorted.

A payment system's journals on one bank form a chain (each one's row versions follow the
last one's), so each bank is one caller posting in order; banks, and budgets, go at once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

from gateway import ns
from gateway.sandbox import DemoSeed
from tests.conftest import Sandbox
from tests.support import (
    Auth,
    BankEntry,
    Txn,
    budget_operation,
    budget_xml,
    journal_xml,
    operation,
    post_journals_body,
    soap_call,
)

Outcome = Literal["success", "refused", "fault", "no answer"]


@dataclass(frozen=True)
class Answer:
    """What one call got: ``success``; ``refused`` (a result document that is not a
    success); ``fault`` (a SOAP fault with its ``code``); or ``no answer`` (the connection
    failed, or nothing came within the bound: ``code`` says which)."""

    what: str
    outcome: Outcome
    code: str
    seconds: float

    def __str__(self) -> str:
        return f"{self.what}: {self.outcome} {self.code} in {self.seconds:.2f} s"


def journal(bank: str, n: int) -> tuple[str, str]:
    """The submission id and document of the ``n``-th journal of a bank's chain: one order
    and one settlement that cancel out, after the ``n - 1`` before it."""
    submission_id = f"{bank}-{n:03d}"
    document = journal_xml(
        [
            BankEntry(
                bank,
                orders=[Txn(f"{submission_id}-o")],
                settlements=[Txn(f"{submission_id}-s")],
                base={"Orders": n - 1, "Settlements": n - 1},
            )
        ],
        submission_id=submission_id,
    )
    return submission_id, document


def budget(demo: DemoSeed, serial: int) -> str:
    """A valid budget of the demo school's open year, with its own serial number."""
    ledger, fund, cfr = demo.fund_allocations[serial % len(demo.fund_allocations)]
    return budget_xml(
        serial,
        demo.open_year,
        [(ledger, fund, cfr, f"{1000 + serial}.00")],
        [(ledger, demo.cost_centres[0], "250.00")],
    )


@dataclass
class Client:
    """Real SOAP calls (plain POSTs of envelopes) to one gateway, each within ``bound``
    seconds or recorded as ``no answer``."""

    http: aiohttp.ClientSession
    url: str
    auth: Auth
    bound: float
    answers: list[Answer] = field(default_factory=list)

    async def _call(self, what: str, path: str, body: str, namespace: str) -> Answer:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.bound):
                reply = await soap_call(
                    self.http, f"{self.url}{path}", body, self.auth, namespace=namespace
                )
        except TimeoutError:
            answer = Answer(what, "no answer", "timeout", time.monotonic() - started)
        except aiohttp.ClientError as exc:
            answer = Answer(what, "no answer", type(exc).__name__, time.monotonic() - started)
        else:
            seconds = time.monotonic() - started
            if reply.is_fault:
                assert reply.status == 500, reply.raw
                assert ":" in reply.fault_string, reply.raw  # [ExceptionType]:[Message]
                answer = Answer(what, "fault", reply.fault_code, seconds)
            else:
                # isSuccess: an attribute of the result document, or (GetBanks) a part.
                flag = reply.result().get("isSuccess") or reply.part("isSuccess")
                success = flag == "true"
                codes = ",".join(e.get("code", "") for e in reply.result().iterfind("Errors/Error"))
                answer = Answer(what, "success" if success else "refused", codes, seconds)
        self.answers.append(answer)
        return answer

    async def post_journal(self, submission_id: str, document: str) -> Answer:
        return await self._call(
            submission_id, "/soap/ejournal", post_journals_body(document), ns.EJOURNAL
        )

    async def import_budget(self, serial: int, document: str) -> Answer:
        body = budget_operation(
            "ImportBudget", xmlData=document.replace("<Message>", '<Message xmlns="">', 1)
        )
        return await self._call(f"budget {serial}", "/soap/budget", body, ns.BUDGET)

    async def get_banks(self) -> Answer:
        body = operation("GetBanks", systemIdentifier="TPPCS")
        return await self._call("GetBanks", "/soap/ejournal", body, ns.EJOURNAL)


@dataclass
class Submissions:
    """Journals (per bank, in chain order) and budgets a test has sent, and which of them
    have not succeeded yet."""

    demo: DemoSeed
    journals: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    budgets: dict[int, str] = field(default_factory=dict)
    unsettled: set[str] = field(default_factory=set)

    async def post_journals(self, client: Client, bank: str, count: int) -> None:
        """Post the next ``count`` journals of a bank's chain, one after another, as its
        payment system would."""
        chain = self.journals.setdefault(bank, [])
        for _ in range(count):
            submission_id, document = journal(bank, len(chain) + 1)
            chain.append((submission_id, document))
            answer = await client.post_journal(submission_id, document)
            if answer.outcome != "success":
                self.unsettled.add(submission_id)

    async def import_budgets(self, client: Client, count: int) -> None:
        """Import ``count`` new budgets, one after another."""
        for _ in range(count):
            serial = len(self.budgets) + 1
            document = budget(self.demo, serial)
            self.budgets[serial] = document
            answer = await client.import_budget(serial, document)
            if answer.outcome != "success":
                self.unsettled.add(f"budget {serial}")

    async def burst(
        self, client: Client, *, journals: int, budget_callers: int, budgets: int
    ) -> list[Answer]:
        """Every bank's payment system posting ``journals`` journals while
        ``budget_callers`` planning tools import ``budgets`` budgets each, all at once; the
        answers they got."""
        before = len(client.answers)
        await asyncio.gather(
            *(self.post_journals(client, bank, journals) for bank in self.demo.banks),
            *(self.import_budgets(client, budgets) for _ in range(budget_callers)),
        )
        return client.answers[before:]

    async def retry_unsettled(self, client: Client) -> list[Answer]:
        """Send every submission that has not succeeded again, unchanged (same submission
        id or serial number, same content): banks at once, each chain in order."""

        async def chain(entries: list[tuple[str, str]]) -> list[Answer]:
            return [
                await client.post_journal(submission_id, document)
                for submission_id, document in entries
                if submission_id in self.unsettled
            ]

        async def budgets() -> list[Answer]:
            return [
                await client.import_budget(serial, document)
                for serial, document in self.budgets.items()
                if f"budget {serial}" in self.unsettled
            ]

        results = await asyncio.gather(*(chain(e) for e in self.journals.values()), budgets())
        answers = [answer for group in results for answer in group]
        self.unsettled -= {answer.what for answer in answers if answer.outcome == "success"}
        return answers

    @property
    def submission_ids(self) -> list[str]:
        return sorted(sid for chain in self.journals.values() for sid, _document in chain)

    @property
    def serials(self) -> list[str]:
        return sorted(str(serial) for serial in self.budgets)


async def assert_in_fng_once(sandbox: Sandbox, sent: Submissions) -> None:
    """Every journal and budget sent is in FNG, each exactly once, with all its lines."""
    journals = await sandbox.journals()
    assert sorted(j["submission_id"] for j in journals) == sent.submission_ids
    assert all(len(j["lines"]) == 2 for j in journals), journals
    budgets = await sandbox.state.budgets.imported()
    assert sorted(str(b["serial_number"]) for b in budgets) == sent.serials
    stats = await sandbox.stats()
    assert stats["posted_submissions"] == len(sent.submission_ids)
    assert stats["budgets_imported"] == len(sent.serials)

"""The sandbox's counters, which let tests prove how often something happened.

They are kept in memory: they observe traffic, and a restart begins them again at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

#: The FNG calls the sandbox counts.
OPERATIONS: Final = (
    "GetBanks",
    "PostJournals",
    "PostAuditMessage",
    "ExportGlAccount",
    "ExportFinancialYears",
    "ImportBudget",
    "PostDocument",
    "AuthorisedOrders",
    "MarkOrderSent",
)

#: The methods of a supplier portal's EProcurementService, each counted per portal.
PORTAL_METHODS: Final = (
    "ChangePassword",
    "FetchIndex",
    "FetchIndexFromDate",
    "UpdateDocumentStatus",
    "FetchDoc",
    "SendOrder",
    "ResetAll",
)


@dataclass(slots=True)
class PortalCounters:
    """What one supplier portal saw: calls per method (refused ones too), successful
    ``UpdateDocumentStatus(id, true)`` calls, and orders stored by ``SendOrder``."""

    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PORTAL_METHODS, 0))
    documents_acknowledged: int = 0
    orders_received: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "documents_acknowledged": self.documents_acknowledged,
            "orders_received": self.orders_received,
        }


@dataclass(slots=True)
class SandboxStats:
    """Counters that let tests prove how often something happened."""

    token_requests: int = 0
    tokens_issued: int = 0
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    posted_submissions: int = 0
    journal_lines: int = 0
    #: SHA-256 of the body of the last PostJournals FNG received, so that a client can tell
    #: the journal it sent went through as it was.
    last_journal_sha256: str | None = None
    audit_messages: int = 0
    budgets_imported: int = 0
    #: Distinct eProcurement documents FNG stored, and authorised orders marked sent.
    documents_received: int = 0
    orders_sent: int = 0
    #: Per supplier portal, by name (a portal appears once it is called or reset).
    portals: dict[str, PortalCounters] = field(default_factory=dict)
    #: Per database, the calls FNG let through to it (token and both keys accepted), by
    #: operation (a database appears once it is reached).
    databases: dict[int, dict[str, int]] = field(default_factory=dict)

    def portal(self, name: str) -> PortalCounters:
        return self.portals.setdefault(name, PortalCounters())

    def reached(self, database_id: int, operation: str) -> None:
        self.databases.setdefault(database_id, dict.fromkeys(OPERATIONS, 0))[operation] += 1

    def databases_as_dict(self) -> dict[str, dict[str, int]]:
        return {str(key): dict(counts) for key, counts in sorted(self.databases.items())}

    def reset(self) -> None:
        self.token_requests = self.tokens_issued = 0
        self.requests = dict.fromkeys(OPERATIONS, 0)
        self.posted_submissions = self.journal_lines = self.audit_messages = 0
        self.last_journal_sha256 = None
        self.budgets_imported = 0
        self.documents_received = self.orders_sent = 0
        self.portals = {}
        self.databases = {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "requests": dict(self.requests),
            "posted_submissions": self.posted_submissions,
            "journal_lines": self.journal_lines,
            "last_journal_sha256": self.last_journal_sha256,
            "audit_messages": self.audit_messages,
            "budgets_imported": self.budgets_imported,
            "documents_received": self.documents_received,
            "orders_sent": self.orders_sent,
            "portals": {name: c.as_dict() for name, c in sorted(self.portals.items())},
        }

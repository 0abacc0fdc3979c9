"""The sandbox's own tables, in SQLAlchemy Core.

They are created with ``metadata.create_all`` when a state is opened: the sandbox is a
test double and a quick start, so it has no migrations. Amounts are kept as decimal
strings, so nothing is rounded on any backend; times are ISO 8601 strings in UTC, and
token times are Unix seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()


def iso_utc(moment: datetime) -> str:
    """A moment as the sandbox stores it: UTC, to the millisecond (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def now_iso() -> str:
    """Now, as the sandbox stores moments."""
    return iso_utc(datetime.now(UTC))


#: Small values the sandbox keeps for itself: its signing key, the demo's credentials.
settings = sa.Table(
    "sandbox_settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

#: SIMS ID client registrations (vendors). A client has a secret, a public key, or both.
clients = sa.Table(
    "clients",
    metadata,
    sa.Column("client_id", sa.String(200), primary_key=True),
    sa.Column("secret_hash", sa.String(300), nullable=True),
    sa.Column("public_jwk", sa.Text, nullable=True),
)

#: Access tokens issued, so that they can be revoked.
issued_tokens = sa.Table(
    "issued_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(200), nullable=False),
    sa.Column("issued_at", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Integer, nullable=False, index=True),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

#: Client assertion ids already presented (RFC 7523 replay protection), until they expire.
used_assertions = sa.Table(
    "used_assertions",
    metadata,
    sa.Column("client_id", sa.String(200), primary_key=True),
    sa.Column("jti", sa.String(200), primary_key=True),
    sa.Column("expires_at", sa.Integer, nullable=False, index=True),
)

#: FNG databases and what their application set-up screen holds.
databases = sa.Table(
    "databases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("school_name", sa.String(200), nullable=False),
    sa.Column("la_number", sa.String(3), nullable=False),
    sa.Column("establishment_number", sa.String(4), nullable=False),
    sa.Column("client_id", sa.ForeignKey("clients.client_id"), nullable=False),
    # Both keys are stored as canonical lower-case GUIDs.
    sa.Column("fng_key", sa.String(36), nullable=False, unique=True),
    sa.Column("partner_key", sa.String(36), nullable=False, unique=True),
)

#: Payment systems set up in a database (FMS's "Payment System Parameters").
payment_systems = sa.Table(
    "payment_systems",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id"), nullable=False),
    sa.Column("system_identifier", sa.String(100), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.UniqueConstraint("database_id", "system_identifier"),
)

#: A payment system's code mappings: its own code to the FMS ledger, bank or VAT code.
code_mappings = sa.Table(
    "code_mappings",
    metadata,
    sa.Column("payment_system_id", sa.ForeignKey("payment_systems.id"), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("code", sa.String(100), primary_key=True),
    sa.Column("fms_code", sa.String(100), nullable=False),
)

#: Per mapped bank: what has been posted to it, as row versions per section and a net.
bank_ledgers = sa.Table(
    "bank_ledgers",
    metadata,
    sa.Column("payment_system_id", sa.ForeignKey("payment_systems.id"), primary_key=True),
    sa.Column("bank", sa.String(100), primary_key=True),
    sa.Column("orders", sa.Integer, nullable=False, default=0),
    sa.Column("settlements", sa.Integer, nullable=False, default=0),
    sa.Column("order_reversals", sa.Integer, nullable=False, default=0),
    sa.Column("settlement_reversals", sa.Integer, nullable=False, default=0),
    sa.Column("net", sa.String(64), nullable=False, default="0"),
)

#: Posted journals, one row per submission.
submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("payment_system_id", sa.ForeignKey("payment_systems.id"), nullable=False),
    sa.Column("submission_id", sa.String(200), nullable=False),
    sa.Column("posted_at", sa.String(40), nullable=False),
    sa.Column("transaction_line_count", sa.Integer, nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.UniqueConstraint("payment_system_id", "submission_id"),
)

#: The transactions of posted journals.
journal_lines = sa.Table(
    "journal_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("submission_row", sa.ForeignKey("submissions.id"), nullable=False, index=True),
    sa.Column("bank", sa.String(100), nullable=False),
    sa.Column("section", sa.String(30), nullable=False),
    sa.Column("transaction_id", sa.String(200), nullable=False),
    sa.Column("gross_amount", sa.String(64), nullable=False),
    # The product code of an order, the charges code of a settlement.
    sa.Column("code", sa.String(100), nullable=False),
    # The VAT code of an order, the charges VAT code of a settlement.
    sa.Column("vat_code", sa.String(100), nullable=False),
    # Every attribute of the transaction as sent, as a JSON object.
    sa.Column("attributes", sa.Text, nullable=False),
)

#: Notes added to a database's audit trail.
audit_messages = sa.Table(
    "audit_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id"), nullable=False),
    sa.Column("client_id", sa.String(200), nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)

#: A database's financial years. The row id is the year's FinancialYearID.
financial_years = sa.Table(
    "financial_years",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id"), nullable=False),
    sa.Column("description", sa.String(9), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    # ISO dates: the first day of the year and of the next one.
    sa.Column("starts", sa.String(10), nullable=False),
    sa.Column("next_starts", sa.String(10), nullable=False),
    sa.Column("lowest_open_period", sa.Integer, nullable=False),
    sa.UniqueConstraint("database_id", "description"),
)

#: The periods of a financial year.
periods = sa.Table(
    "periods",
    metadata,
    sa.Column("year_id", sa.ForeignKey("financial_years.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("starts", sa.String(10), nullable=False),
)

#: A financial year's chart of accounts: its ledger codes.
ledger_codes = sa.Table(
    "ledger_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("year_id", sa.ForeignKey("financial_years.id"), nullable=False),
    sa.Column("ledger_type", sa.String(2), nullable=False),
    sa.Column("code", sa.String(20), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("ledger_group", sa.String(100), nullable=False),
    sa.Column("short_code", sa.String(20), nullable=False),
    sa.Column("normal_profile", sa.String(50), nullable=False),
    sa.Column("normal_vat", sa.String(20), nullable=False),
    sa.Column("services", sa.Boolean, nullable=False),
    sa.UniqueConstraint("year_id", "code"),
)

#: The funds a ledger code may be budgeted in, each with its CFR code.
ledger_funds = sa.Table(
    "ledger_funds",
    metadata,
    sa.Column("ledger_code_id", sa.ForeignKey("ledger_codes.id"), primary_key=True),
    sa.Column("fund_code", sa.String(20), primary_key=True),
    sa.Column("cfr_code", sa.String(20), nullable=False),
)

#: A database's cost centres.
cost_centres = sa.Table(
    "cost_centres",
    metadata,
    sa.Column("database_id", sa.ForeignKey("databases.id"), primary_key=True),
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("description", sa.String(200), nullable=False),
)

#: Imported budgets, one row per file. The serial number is kept as plain digits (an
#: xs:positiveInteger has no upper bound), unique per database.
budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id"), nullable=False),
    sa.Column("serial_number", sa.Text, nullable=False),
    sa.Column("year_id", sa.ForeignKey("financial_years.id"), nullable=False),
    sa.Column("date_created", sa.String(40), nullable=False),
    sa.Column("imported_at", sa.String(40), nullable=False),
    sa.Column("client_id", sa.String(200), nullable=False),
    sa.UniqueConstraint("database_id", "serial_number"),
)

#: The allocations of imported budgets, in document order within each section.
budget_allocations = sa.Table(
    "budget_allocations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("budget_id", sa.ForeignKey("budgets.id"), nullable=False, index=True),
    # FundAllocation or CostCentreAllocation.
    sa.Column("section", sa.String(30), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("ledger_code", sa.String(20), nullable=False),
    sa.Column("fund_code", sa.String(20), nullable=True),
    sa.Column("cfr_code", sa.String(20), nullable=True),
    sa.Column("cost_centre", sa.String(20), nullable=True),
    sa.Column("amount", sa.String(64), nullable=False),
    sa.Column("profile", sa.String(200), nullable=True),
)

# -- eProcurement ----------------------------------------------------------------------------

#: Documents the gateway delivered to FNG from supplier portals, one per (source, id).
eproc_documents = sa.Table(
    "eproc_documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id"), nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("document_id", sa.String(100), nullable=False),
    # order, invoice or creditnote.
    sa.Column("doc_type", sa.String(20), nullable=False),
    # The body exactly as delivered, and its SHA-256 (hex) to recognise a redelivery.
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("database_id", "source", "document_id"),
)

#: Orders authorised in FNG, to be sent to their suppliers; sent once sent_at is set.
authorised_orders = sa.Table(
    "authorised_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id"), nullable=False),
    # FNG's id for the order, unique within its database.
    sa.Column("order_id", sa.String(100), nullable=False),
    sa.Column("supplier_duns", sa.String(13), nullable=False),
    sa.Column("order_xml", sa.Text, nullable=False),
    sa.Column("authorised_at", sa.String(40), nullable=False),
    sa.Column("sent_at", sa.String(40), nullable=True),
    sa.UniqueConstraint("database_id", "order_id"),
)

#: The content order an authorised order was made from: the source and document id the
#: gateway delivered it under (an order raised in FNG has none). A table of its own, so that
#: a sandbox database made before it gains it.
authorised_order_origins = sa.Table(
    "authorised_order_origins",
    metadata,
    sa.Column("authorised_order_id", sa.ForeignKey("authorised_orders.id"), primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("document_id", sa.String(100), nullable=False),
)

#: Supplier portals (EProcurementService), each with the one account a school holds there.
portals = sa.Table(
    "portals",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("username", sa.String(50), nullable=False),
    # Kept in clear: the portal must hand it back from ChangePassword and to the control API.
    sa.Column("password", sa.String(256), nullable=False),
    # The suppliers it serves, by DUNS, separated by spaces (a price-comparison portal serves
    # several).
    sa.Column("supplier_duns", sa.Text, nullable=False),
    sa.Column("refuse_auth", sa.Boolean, nullable=False, default=False),
)

#: The documents a portal queues for collection: content orders, invoices, credit notes, quotes.
portal_documents = sa.Table(
    "portal_documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("portal", sa.ForeignKey("portals.name"), nullable=False),
    sa.Column("uuid", sa.String(100), nullable=False),
    # order, invoice, creditnote or quote.
    sa.Column("doc_type", sa.String(20), nullable=False),
    # The text FetchDoc returns, as given (it need not be well-formed).
    sa.Column("xml", sa.Text, nullable=False),
    # UTC, to the millisecond: 2026-11-20T09:30:00.000Z (so text order is time order).
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("processed", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint("portal", "uuid"),
)

#: Authorised orders a portal received with SendOrder, as sent.
portal_orders = sa.Table(
    "portal_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("portal", sa.ForeignKey("portals.name"), nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("buyers_order_number", sa.String(200), nullable=True),
    sa.Column("xml", sa.Text, nullable=False),
)

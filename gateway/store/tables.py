"""The gateway's tables, in SQLAlchemy Core. Alembic's migrations create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _created() -> sa.Column[datetime]:
    return sa.Column("created_at", UtcDateTime(), nullable=False, default=lambda: datetime.now(UTC))


vendors = sa.Table(
    "vendors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("token_url", sa.String(500), nullable=False),
    sa.Column("client_id", sa.String(200), nullable=False),
    # client_secret_basic | client_secret_post | private_key_jwt
    sa.Column("auth_method", sa.String(32), nullable=False),
    # The client secret, or the private key (PEM) for private_key_jwt; encrypted.
    sa.Column("credential_enc", sa.Text, nullable=False),
    _created(),
)

schools = sa.Table(
    "schools",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("la_number", sa.String(3), nullable=False),
    sa.Column("establishment_number", sa.String(4), nullable=False),
    sa.Column("duns", sa.String(13), nullable=True),
    # The school's system parameters that eProcurement documents must match.
    sa.Column("language", sa.String(8), nullable=False, server_default="en"),
    sa.Column("currency", sa.String(3), nullable=False, server_default="GBP"),
    _created(),
    sa.UniqueConstraint("la_number", "establishment_number", name="uq_schools_dfe"),
)

databases = sa.Table(
    "databases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("school_id", sa.ForeignKey("schools.id", ondelete="CASCADE"), nullable=False),
    sa.Column("vendor_id", sa.ForeignKey("vendors.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    # The key FNG issued for this database (sent as X-PSK); encrypted.
    sa.Column("fng_key_enc", sa.Text, nullable=False),
    # A replacement FNG has issued, tried when FNG refuses the current one; encrypted.
    sa.Column("fng_key_next_enc", sa.Text, nullable=True),
    _created(),
    sa.UniqueConstraint("school_id", "name", name="uq_databases_school_name"),
)

partner_keys = sa.Table(
    "partner_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "database_id", sa.ForeignKey("databases.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    # SHA-256 of the normalised GUID: inbound calls are looked up by it.
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("key_enc", sa.Text, nullable=False),
    # active | next | retiring
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("retire_at", UtcDateTime(), nullable=True),
    _created(),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    # After a password change the old one is still accepted until this deadline.
    sa.Column("previous_password_hash", sa.String(200), nullable=True),
    sa.Column("previous_valid_until", UtcDateTime(), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    # An operator's unlock: failed logins of the account counted before it no longer count.
    sa.Column("unlocked_at", UtcDateTime(), nullable=True),
    _created(),
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id", ondelete="CASCADE"), primary_key=True),
    # ejournal | budget | eproc
    sa.Column("interface", sa.String(16), primary_key=True),
)

account_systems = sa.Table(
    "account_systems",
    metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("system_identifier", sa.String(100), primary_key=True),
)

#: The longest submission id the ledger keeps: a journal's submissionID, a budget's serial number.
SUBMISSION_ID_LENGTH: Final = 200

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id"), nullable=False),
    # ejournal | budget | eproc; scope is the payment system for journals.
    sa.Column("interface", sa.String(16), nullable=False),
    sa.Column("scope", sa.String(100), nullable=False),
    sa.Column("submission_id", sa.String(SUBMISSION_ID_LENGTH), nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    # in_progress | posted | open | unknown
    sa.Column("state", sa.String(16), nullable=False),
    # Who holds an in_progress entry, and until when; a lapsed lease may be taken over.
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("lease_until", UtcDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    # What FNG shows once this submission has landed (interface-defined JSON).
    sa.Column("expectations", sa.Text, nullable=False),
    # The result document returned to the caller, once known.
    sa.Column("result", sa.LargeBinary, nullable=True),
    _created(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint(
        "database_id", "interface", "scope", "submission_id", name="uq_ledger_submission"
    ),
)

portals = sa.Table(
    "portals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id", ondelete="CASCADE"), nullable=False),
    # Unique per database; FNG knows the portal's documents by it (their "source").
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("url", sa.String(500), nullable=False),
    sa.Column("username", sa.String(50), nullable=False),
    sa.Column("password_enc", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("poll_seconds", sa.Integer, nullable=False),
    # A plain http address is refused unless this is set (for the sandbox and tests).
    sa.Column("allow_http", sa.Boolean, nullable=False, server_default=sa.false()),
    # Whether BuyersCodeForSupplier and SuppliersCodeForBuyer must be in a content order.
    sa.Column("require_handshake_codes", sa.Boolean, nullable=False, server_default=sa.true()),
    # enforce | warn | off; None: the gateway's setting.
    sa.Column("checksum_policy", sa.String(8), nullable=True),
    # Change the password with ChangePassword this often (at least 60 days); None: never.
    sa.Column("password_days", sa.Integer, nullable=True),
    sa.Column("password_changed_at", UtcDateTime(), nullable=False),
    # When its index is read next (after failures, later each time).
    sa.Column("next_poll_at", UtcDateTime(), nullable=False),
    # When FNG is next asked for its suppliers' authorised orders; None: now.
    sa.Column("next_orders_at", UtcDateTime(), nullable=True),
    # The last poll whose index was read and handled.
    sa.Column("last_success_at", UtcDateTime(), nullable=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    # The replica polling it, until when.
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    _created(),
    sa.UniqueConstraint("database_id", "name", name="uq_portals_database_name"),
)

#: The suppliers a portal serves (a price-comparison portal serves several), by DUNS.
portal_suppliers = sa.Table(
    "portal_suppliers",
    metadata,
    sa.Column("portal_id", sa.ForeignKey("portals.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("duns", sa.String(13), primary_key=True),
)

eproc_documents = sa.Table(
    "eproc_documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("portal_id", sa.ForeignKey("portals.id", ondelete="CASCADE"), nullable=False),
    # The portal's id for the document (FetchIndex's uuid).
    sa.Column("document_id", sa.String(100), nullable=False),
    # order | invoice | creditnote
    sa.Column("doc_type", sa.String(16), nullable=False),
    # fetched | delivered | acknowledged | quarantined | released
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("rule", sa.String(40), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    _created(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("portal_id", "document_id", name="uq_eproc_documents_portal_document"),
    # The work queue and the gauges look documents up by state.
    sa.Index("ix_eproc_documents_state_portal", "state", "portal_id"),
)

eproc_orders = sa.Table(
    "eproc_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("database_id", sa.ForeignKey("databases.id", ondelete="CASCADE"), nullable=False),
    # FNG's id for the authorised order.
    sa.Column("order_id", sa.String(100), nullable=False),
    sa.Column("portal_id", sa.ForeignKey("portals.id", ondelete="SET NULL"), nullable=True),
    # sending | delivered | sent | quarantined | released | queued (to be sent again)
    sa.Column("state", sa.String(16), nullable=False),
    # The order as FNG gave it (each file sent is stamped original or copy).
    sa.Column("content", sa.LargeBinary, nullable=False),
    # SendOrder calls that may have reached the portal: the first goes as "original", every
    # later one as "copy" (OrderHead/Function/Code).
    sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rule", sa.String(40), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    _created(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("database_id", "order_id", name="uq_eproc_orders_database_order"),
    sa.Index("ix_eproc_orders_state", "state"),
)

admin_tokens = sa.Table(
    "admin_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    # SHA-256 of the token (random, so a fast hash is enough); the token is shown once.
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    sa.Column("last_used_at", UtcDateTime(), nullable=True),
    _created(),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False, default=lambda: datetime.now(UTC)),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default="{}"),
)

"""portals: their own settings, several suppliers, an orders clock; orders count their sends

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00.000000

Each portal's single supplier DUNS moves to ``portal_suppliers`` (a portal may serve several
suppliers); a portal registered with a plain http address keeps working, its new
``allow_http`` set; an order already sent counts one send.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_suppliers",
        sa.Column("portal_id", sa.Integer(), nullable=False),
        sa.Column("duns", sa.String(length=13), nullable=False),
        sa.ForeignKeyConstraint(
            ["portal_id"],
            ["portals.id"],
            name=op.f("fk_portal_suppliers_portal_id_portals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("portal_id", "duns", name=op.f("pk_portal_suppliers")),
    )
    op.execute(
        "INSERT INTO portal_suppliers (portal_id, duns) SELECT id, supplier_duns FROM portals"
    )
    with op.batch_alter_table("portals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("allow_http", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "require_handshake_codes", sa.Boolean(), server_default=sa.true(), nullable=False
            )
        )
        batch_op.add_column(sa.Column("checksum_policy", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("next_orders_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("supplier_duns")
    op.execute(
        sa.text("UPDATE portals SET allow_http = :yes WHERE lower(url) LIKE 'http:%'").bindparams(
            yes=True
        )
    )
    with op.batch_alter_table("eproc_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sends", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE eproc_orders SET sends = 1 "
        "WHERE state IN ('delivered', 'sent') OR rule = 'outcome_unknown'"
    )


def downgrade() -> None:
    with op.batch_alter_table("eproc_orders", schema=None) as batch_op:
        batch_op.drop_column("sends")
    with op.batch_alter_table("portals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("supplier_duns", sa.String(length=13), server_default="", nullable=False)
        )
    # A portal keeps one supplier only: the lowest of its DUNS numbers.
    op.execute(
        "UPDATE portals SET supplier_duns = (SELECT min(duns) FROM portal_suppliers "
        "WHERE portal_suppliers.portal_id = portals.id)"
    )
    with op.batch_alter_table("portals", schema=None) as batch_op:
        batch_op.alter_column("supplier_duns", server_default=None)
        batch_op.drop_column("next_orders_at")
        batch_op.drop_column("checksum_policy")
        batch_op.drop_column("require_handshake_codes")
        batch_op.drop_column("allow_http")
    op.drop_table("portal_suppliers")

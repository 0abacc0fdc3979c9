"""indexes for eProcurement's work queue

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 14:45:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_eproc_documents_state_portal", "eproc_documents", ["state", "portal_id"], unique=False
    )
    op.create_index("ix_eproc_orders_state", "eproc_orders", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_eproc_orders_state", table_name="eproc_orders")
    op.drop_index("ix_eproc_documents_state_portal", table_name="eproc_documents")

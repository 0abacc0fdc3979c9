"""operators

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 13:30:30.081915
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_admin_tokens_digest")),
        sa.UniqueConstraint("name", name=op.f("uq_admin_tokens_name")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("previous_password_hash", sa.String(length=200), nullable=True)
        )
        batch_op.add_column(
            sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("databases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fng_key_next_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("databases", schema=None) as batch_op:
        batch_op.drop_column("fng_key_next_enc")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("previous_valid_until")
        batch_op.drop_column("previous_password_hash")

    op.drop_table("admin_tokens")

"""Access and audit: the proxy's bearer tokens (SHA-256 only) and the auditor commands' log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of model constants: a revision must not change when the models do.
TOKEN_ID_LENGTH = 12
MAX_PRINCIPAL = 256
MAX_GROUPS_TEXT = 4096
SHA256_HEX_LENGTH = 64
MAX_AUDIT_COMMAND = 64


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(TOKEN_ID_LENGTH), nullable=False),
        sa.Column("principal", sa.String(MAX_PRINCIPAL), nullable=False),
        sa.Column("groups", sa.String(MAX_GROUPS_TEXT), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sha256", sa.String(SHA256_HEX_LENGTH), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("sha256", name=op.f("uq_tokens_sha256")),
    )
    op.create_index(op.f("ix_tokens_principal"), "tokens", ["principal"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(MAX_PRINCIPAL), nullable=False),
        sa.Column("command", sa.String(MAX_AUDIT_COMMAND), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_log_actor"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_tokens_principal"), table_name="tokens")
    op.drop_table("tokens")

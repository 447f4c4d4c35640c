"""Initial index: shells, connections, refused_attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the model enums: a revision must not change when the models do.
STATUSES = ("active", "ended", "interrupted")
END_REASONS = (
    "exit",
    "client-closed",
    "client-dropped",
    "upstream-closed",
    "kicked",
    "proxy-shutdown",
    "error",
    "record-failure",
)
CHANNELS = ("stdin", "stdout", "stderr", "status", "resize", "heartbeat", "close", "unknown")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _counters() -> list[sa.Column]:
    columns = []
    for channel in CHANNELS:
        columns.append(
            sa.Column(f"bytes_{channel}", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        columns.append(
            sa.Column(f"frames_{channel}", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    return columns


def upgrade() -> None:
    op.create_table(
        "shells",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("runtime_arn", sa.String(2048), nullable=False),
        sa.Column("qualifier", sa.String(100), nullable=False),
        sa.Column("session_id", sa.String(256), nullable=False),
        sa.Column("shell_id", sa.String(128), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_exit_code", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shells")),
        sa.UniqueConstraint(
            "runtime_arn",
            "qualifier",
            "session_id",
            "shell_id",
            name=op.f("uq_shells_runtime_arn_qualifier_session_id_shell_id"),
        ),
    )
    op.create_index(op.f("ix_shells_shell_id"), "shells", ["shell_id"])

    op.create_table(
        "connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shell_pk", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(256), nullable=True),
        sa.Column("client_address", sa.String(256), nullable=False),
        sa.Column("upstream", sa.String(2048), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.Column("close_code", sa.Integer(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        *_counters(),
        sa.Column("invalid_utf8", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("recording_path", sa.String(1024), nullable=False),
        sa.Column("recording_size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("cast_version", sa.Integer(), nullable=False),
        sa.Column("cols", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("reconnected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("bytes_dropped", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.ForeignKeyConstraint(["shell_pk"], ["shells.id"], name=op.f("fk_connections_shell_pk_shells")),
        sa.CheckConstraint(_in("status", STATUSES), name=op.f("ck_connections_status")),
        sa.CheckConstraint(_in("end_reason", END_REASONS), name=op.f("ck_connections_end_reason")),
        sa.CheckConstraint("cast_version IN (1, 2, 3)", name=op.f("ck_connections_cast_version")),
        sqlite_autoincrement=True,
    )
    for column in ("shell_pk", "principal", "started_at", "status", "exit_code"):
        op.create_index(op.f(f"ix_connections_{column}"), "connections", [column])

    op.create_table(
        "refused_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal", sa.String(256), nullable=True),
        sa.Column("client_address", sa.String(256), nullable=False),
        sa.Column("runtime_arn", sa.String(2048), nullable=True),
        sa.Column("qualifier", sa.String(100), nullable=True),
        sa.Column("shell_id", sa.String(128), nullable=True),
        sa.Column("session_id", sa.String(256), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(1024), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refused_attempts")),
        sa.CheckConstraint(
            "http_status >= 400 AND http_status <= 599", name=op.f("ck_refused_attempts_http_status")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_refused_attempts_at"), "refused_attempts", ["at"])
    op.create_index(op.f("ix_refused_attempts_principal"), "refused_attempts", ["principal"])


def downgrade() -> None:
    op.drop_index(op.f("ix_refused_attempts_principal"), table_name="refused_attempts")
    op.drop_index(op.f("ix_refused_attempts_at"), table_name="refused_attempts")
    op.drop_table("refused_attempts")
    for column in ("exit_code", "status", "started_at", "principal", "shell_pk"):
        op.drop_index(op.f(f"ix_connections_{column}"), table_name="connections")
    op.drop_table("connections")
    op.drop_index(op.f("ix_shells_shell_id"), table_name="shells")
    op.drop_table("shells")

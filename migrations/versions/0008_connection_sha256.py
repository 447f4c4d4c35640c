"""Index: recordings found by their SHA-256 without reading every connection.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

``recorder import`` asks, for every file, whether its bytes are in the index already: first among
imports (``imports.sha256`` is unique, so indexed), then among the proxy's own recordings by
``connections.sha256``, which had no index. Every new file read the whole connections table: 0.6
ms a lookup with 100 connections, 2.8 ms with 10,000, and it grows with the archive.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_connections_sha256"), "connections", ["sha256"])


def downgrade() -> None:
    op.drop_index(op.f("ix_connections_sha256"), table_name="connections")

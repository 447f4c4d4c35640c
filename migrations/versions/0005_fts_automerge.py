"""Search: SQLite's full-text tables merge their segments less eagerly (automerge 16, not 4).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

FTS5 writes each transaction's tokens as a new segment and merges segments in the background of
later writes, by default as soon as 4 segments stand at one level. On the search benchmark's
text that merging was most of the cost of indexing, and it grows with the index: 60 MB of log
lines went in at 9.9 MB/s with 4, 17.6 MB/s with 16 (FTS5's largest setting), while searches for
a word, a prefix and a phrase stayed under 0.3 ms either way (more segments to look in, each one
a b-tree seek). The setting is stored in each table's ``_config``, so it holds for every writer.
PostgreSQL's GIN indexes have no such setting: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies of model constants: a revision must not change when the models do.
SEARCH_TABLES = ("commands", "output_lines", "input_lines")
AUTOMERGE = 16
FTS5_DEFAULT_AUTOMERGE = 4


def _automerge(value: int) -> None:
    if op.get_context().dialect.name == "sqlite":
        for table in SEARCH_TABLES:
            op.execute(f"INSERT INTO {table}_fts({table}_fts, rank) VALUES ('automerge', {value})")


def upgrade() -> None:
    _automerge(AUTOMERGE)


def downgrade() -> None:
    # Back to the default through FTS5 (which tells open connections), then without the row,
    # as the tables were before (no row means the default).
    _automerge(FTS5_DEFAULT_AUTOMERGE)
    if op.get_context().dialect.name == "sqlite":
        for table in SEARCH_TABLES:
            op.execute(f"DELETE FROM {table}_fts_config WHERE k = 'automerge'")

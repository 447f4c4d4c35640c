"""Search: SQLite's full-text tables merge a level at once only at 64 segments, not 16.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

FTS5 merges segments two ways: incrementally, a little on each write, once a level holds
``automerge`` segments (16 since revision 0005), and all at once, inside the writing transaction,
once a level holds ``crisismerge`` segments (default 16). With both at 16 every level that filled
up was merged whole in one transaction: on the search benchmark's 1 GB archive such a commit
held SQLite's single write lock past the 5 s busy timeout, and a second importer (or the proxy
opening a connection) failed with "database is locked". At 64 the incremental merges keep up and
the all-at-once merge is the rare last resort it is meant to be (the same 1:4 ratio as FTS5's
defaults, 4 and 16). PostgreSQL's GIN indexes have no such setting: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen copies of model constants: a revision must not change when the models do.
SEARCH_TABLES = ("commands", "output_lines", "input_lines")
CRISISMERGE = 64
FTS5_DEFAULT_CRISISMERGE = 16


def _crisismerge(value: int) -> None:
    if op.get_context().dialect.name == "sqlite":
        for table in SEARCH_TABLES:
            op.execute(f"INSERT INTO {table}_fts({table}_fts, rank) VALUES ('crisismerge', {value})")


def upgrade() -> None:
    _crisismerge(CRISISMERGE)


def downgrade() -> None:
    # Back to the default through FTS5 (which tells open connections), then without the row.
    _crisismerge(FTS5_DEFAULT_CRISISMERGE)
    if op.get_context().dialect.name == "sqlite":
        for table in SEARCH_TABLES:
            op.execute(f"DELETE FROM {table}_fts_config WHERE k = 'crisismerge'")

"""Search: prefix indexes on SQLite's full-text tables, so ``word*`` queries seek like words do.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Without a prefix index FTS5 answers ``kube*`` by merging the row lists of every word that starts
with ``kube`` in full, whatever rowid range the query asks for, so the newest-first windows of a
search cannot skip the older hits. With ``prefix='2 3 4'`` prefixes of two to four characters
have row lists of their own (longer prefixes read the four-character list and check the rest).
The tables are rebuilt from their content tables; the triggers of revision 0002 refer to them by
name and stay as they are. PostgreSQL's GIN index already matches prefixes: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of model constants: a revision must not change when the models do.
MAX_INDEXED_CHARS = 16384
SEARCH_TABLES = ("commands", "output_lines", "input_lines")
FTS5_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* Nd'"
PREFIXES = "2 3 4"


def _rebuild(table: str, options: str) -> None:
    op.execute(f"DROP TABLE {table}_fts")
    op.execute(
        f"CREATE VIRTUAL TABLE {table}_fts USING fts5("
        f"text, content='{table}', content_rowid='id', tokenize=\"{FTS5_TOKENIZER}\"{options})"
    )
    # Every row the table holds was in the index before (the store adds each batch it writes).
    op.execute(
        f"INSERT INTO {table}_fts(rowid, text) SELECT id, substr(text, 1, {MAX_INDEXED_CHARS}) FROM {table}"
    )


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for table in SEARCH_TABLES:
            _rebuild(table, f", prefix='{PREFIXES}'")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for table in SEARCH_TABLES:
            _rebuild(table, "")

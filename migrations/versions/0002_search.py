"""Search: commands, output lines and typed input per connection, imports, full-text indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Rows of a connection belong to one indexing *generation*; ``indexed_recordings`` names the
generation searches see, so a connection is re-indexed in short transactions and flipped over
at once (SQLite has one writer: a long transaction would stall the proxy's own writes).

The full-text index depends on the database:

- SQLite: FTS5 external-content tables (``<table>_fts``), tokenizer ``unicode61`` without
  diacritic removal, letters and decimal digits as token characters. The store adds new rows to
  them; triggers mirror deletes and updates.
- PostgreSQL: a stored generated ``tsv`` column, ``to_tsvector('simple', ...)``, with a GIN index.

Both index the text with every character that is not a letter or digit read as a separator, and
only its first MAX_INDEXED_CHARS characters, so the same query finds the same rows on both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of model constants: a revision must not change when the models do.
MAX_INDEXED_CHARS = 16384
MAX_SOURCE_NAME = 1024
SEARCH_TABLES = ("commands", "output_lines", "input_lines")
FTS5_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* Nd'"


def _dialect() -> str:
    return op.get_context().dialect.name


def _connection_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["connection_id"],
        ["connections.id"],
        name=op.f(f"fk_{table}_connection_id_connections"),
        ondelete="CASCADE",
    )


def _text_rows(table: str, *extra: sa.Column) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        *extra,
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        _connection_fk(table),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f(f"ix_{table}_connection_id"), table, ["connection_id", "generation", "seq"], unique=True
    )


def _sqlite_fts(table: str) -> None:
    indexed_new = f"substr(new.text, 1, {MAX_INDEXED_CHARS})"
    indexed_old = f"substr(old.text, 1, {MAX_INDEXED_CHARS})"
    op.execute(
        f"CREATE VIRTUAL TABLE {table}_fts USING fts5("
        f"text, content='{table}', content_rowid='id', tokenize=\"{FTS5_TOKENIZER}\")"
    )
    # External content: the index holds only tokens. New rows are added to it by the store, a
    # batch at a time (INSERT ... SELECT is several times faster than a per-row trigger);
    # deletes and updates, wherever they come from (a cascade, say), are mirrored by triggers.
    op.execute(
        f"CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {table}_fts({table}_fts, rowid, text) VALUES ('delete', old.id, {indexed_old}); END"
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_update AFTER UPDATE OF text ON {table} BEGIN "
        f"INSERT INTO {table}_fts({table}_fts, rowid, text) VALUES ('delete', old.id, {indexed_old}); "
        f"INSERT INTO {table}_fts(rowid, text) VALUES (new.id, {indexed_new}); END"
    )


def _postgresql_tsv(table: str) -> None:
    # Non-alphanumerics become spaces first, so the parser sees plain words (no file, host or
    # hyphenated-word tokens) and splits text exactly where SQLite's unicode61 does.
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
        f"to_tsvector('simple'::regconfig, regexp_replace(left(text, {MAX_INDEXED_CHARS}), "
        f"'[^[:alnum:]]+', ' ', 'g'))) STORED"
    )
    op.create_index(op.f(f"ix_{table}_tsv"), table, ["tsv"], postgresql_using="gin")


def upgrade() -> None:
    op.create_table(
        "indexed_recordings",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("command_count", sa.Integer(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("input_count", sa.Integer(), nullable=False),
        sa.Column("problem_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_indexed_recordings")),
        _connection_fk("indexed_recordings"),
    )
    _text_rows(
        "commands",
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("output_preview", sa.Text(), nullable=False),
        sa.Column("end_offset", sa.Float(), nullable=True),
    )
    _text_rows("output_lines")
    _text_rows("input_lines")
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("source_name", sa.String(MAX_SOURCE_NAME), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("skipped_lines", sa.Integer(), nullable=False),
        sa.Column("adjusted_lines", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
        _connection_fk("imports"),
        sa.UniqueConstraint("connection_id", name=op.f("uq_imports_connection_id")),
        sa.UniqueConstraint("sha256", name=op.f("uq_imports_sha256")),
        sqlite_autoincrement=True,
    )
    if _dialect() == "sqlite":
        for table in SEARCH_TABLES:
            _sqlite_fts(table)
    elif _dialect() == "postgresql":
        for table in SEARCH_TABLES:
            _postgresql_tsv(table)


def downgrade() -> None:
    if _dialect() == "sqlite":
        for table in reversed(SEARCH_TABLES):
            for suffix in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_fts_{suffix}")
            op.execute(f"DROP TABLE {table}_fts")
    elif _dialect() == "postgresql":
        for table in reversed(SEARCH_TABLES):
            op.drop_index(op.f(f"ix_{table}_tsv"), table_name=table)
    op.drop_table("imports")
    for table in reversed(SEARCH_TABLES):
        op.drop_index(op.f(f"ix_{table}_connection_id"), table_name=table)
        op.drop_table(table)
    op.drop_table("indexed_recordings")

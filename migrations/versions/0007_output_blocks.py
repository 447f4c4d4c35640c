"""Search, PostgreSQL: output lines in blocks of up to 20, one stripped tsvector a block.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

A common word is searched window by window, newest connections first (``recorder.index.search``),
and PostgreSQL's GIN index has no order to read a window's rows by: it read every output line of
the window's connections and checked each line's ``tsv`` (on the search benchmark's archive, 16
connections of about 700 lines each for ``kube*``: 5.3 of the search's 12 ms). ``output_blocks``
holds the lexemes of consecutive lines of a connection's generation, at most BLOCK_LINES lines
and about BLOCK_CHARS characters (of each line's first MAX_INDEXED_CHARS, as ``tsv``) a block, so
a window reads 20 times fewer rows and checks lines only inside the blocks that match.

A block's lexemes are all its lines' lexemes, without positions (``strip``): a search matches
blocks with its phrases loosened to all of their words, which every matching line's block has,
then checks each of the block's lines with the exact query. Blocks of an indexing run are written
with its lines (``recorder.index.rows``); this revision builds them for the rows already there.
SQLite's FTS5 seeks by row id in a window and needs no such table: it gets none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen copies of model constants: a revision must not change when the models do.
MAX_INDEXED_CHARS = 16384
BLOCK_LINES = 20
BLOCK_CHARS = 65536


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.create_table(
        "output_blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("tsv", sa.dialects.postgresql.TSVECTOR(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_output_blocks")),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_output_blocks_connection_id_connections"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        op.f("ix_output_blocks_connection_id"),
        "output_blocks",
        ["connection_id", "generation", "first_seq"],
        unique=True,
    )
    # Every generation's lines, as rows.fill_output_blocks groups them (the same statement, frozen):
    # a block never spans BLOCK_LINES seq values or a BLOCK_CHARS step of the running length.
    op.execute(
        "INSERT INTO output_blocks (connection_id, generation, first_seq, last_seq, tsv) "
        "SELECT connection_id, generation, min(seq), max(seq), strip(to_tsvector('simple'::regconfig, "
        "regexp_replace(string_agg(piece, ' ' ORDER BY seq), '[^[:alnum:]]+', ' ', 'g'))) "
        f"FROM (SELECT connection_id, generation, seq, left(text, {MAX_INDEXED_CHARS}) AS piece, "
        f"sum(length(left(text, {MAX_INDEXED_CHARS}))) OVER (PARTITION BY connection_id, generation "
        "ORDER BY seq) AS upto FROM output_lines) AS lines "
        f"GROUP BY connection_id, generation, seq / {BLOCK_LINES}, upto / {BLOCK_CHARS}"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.drop_index(op.f("ix_output_blocks_connection_id"), table_name="output_blocks")
    op.drop_table("output_blocks")

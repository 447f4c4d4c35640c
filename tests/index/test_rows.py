"""Search rows written in generations: invisible until committed, replaced at once, idempotent."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from recorder.errors import UnknownConnection
from recorder.index.db import make_engine, upgrade
from recorder.index.models import BLOCK_CHARS, BLOCK_LINES, MAX_INDEXED_CHARS
from recorder.index.rows import CommandRow, split_text
from recorder.index.search import search
from recorder.index.store import Index

ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/shop"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Cmd:
    offset: float
    text: str
    exit_code: int | None = 0
    output_preview: str = ""
    end_offset: float | None = None


@dataclass(frozen=True)
class Line:
    offset: float
    text: str


def _open(index: Index, **overrides: Any) -> int:
    values: dict[str, Any] = {
        "runtime_arn": ARN,
        "qualifier": None,
        "session_id": "session-1",
        "shell_id": "shell-1",
        "principal": "alice",
        "client_address": "127.0.0.1:50000",
        "upstream": "local",
        "started_at": T0,
        "recording_path": "recordings/one.cast",
        "cast_version": 2,
        "cols": 80,
        "rows": 24,
    }
    values.update(overrides)
    return index.open_connection(**values)


def _raw_count(index: Index, table: str, conn_id: int) -> int:
    with index.engine.connect() as conn:
        count = conn.execute(
            sa.text(f"SELECT count(*) FROM {table} WHERE connection_id = :c"), {"c": conn_id}
        ).scalar()
    return int(count or 0)


def test_replace_search_rows_round_trips_commands_in_order(index: Index) -> None:
    conn_id = _open(index)
    row = index.replace_search_rows(
        conn_id,
        [Cmd(1.5, "ls /nope", 2, "ls: cannot access", 1.7), Cmd(3.0, "pwd", None, "/root", None)],
        [Line(1.6, "ls: cannot access '/nope'")],
        [Line(1.0, "ls /nope")],
        problem_count=3,
    )
    assert row is not None
    assert (row.command_count, row.line_count, row.input_count, row.problem_count) == (2, 1, 1, 3)
    assert index.indexed(conn_id) == row
    assert index.connection_commands(conn_id) == [
        CommandRow(conn_id, 0, 1.5, "ls /nope", 2, "ls: cannot access", 1.7),
        CommandRow(conn_id, 1, 3.0, "pwd", None, "/root", None),
    ]


def test_reindexing_replaces_rows_and_leaves_no_duplicates(index: Index) -> None:
    conn_id = _open(index)
    for _ in range(3):
        index.replace_search_rows(conn_id, [Cmd(1.0, "uptime")], [Line(1.1, "up 3 days")], [])
    assert [h.kind for h in search(index, "uptime")] == ["command"]
    assert len(search(index, "days")) == 1
    assert _raw_count(index, "commands", conn_id) == 1
    assert _raw_count(index, "output_lines", conn_id) == 1


def test_rows_stay_invisible_until_the_run_commits(index: Index) -> None:
    conn_id = _open(index)
    index.replace_search_rows(conn_id, [Cmd(1.0, "old-command")], [], [])
    writer = index.search_writer(conn_id, batch_rows=2)
    writer.add_commands([Cmd(float(i), f"new-command {i}") for i in range(5)])
    # Written in three transactions already, yet searches still see only the live run.
    assert [h.text for h in search(index, "command")] == ["old-command"]
    writer.commit()
    assert [h.text for h in search(index, "command")] == [f"new-command {i}" for i in range(5)]
    assert _raw_count(index, "commands", conn_id) == 5


def test_discarded_run_leaves_the_live_rows_alone(index: Index) -> None:
    conn_id = _open(index)
    index.replace_search_rows(conn_id, [Cmd(1.0, "kept")], [], [])
    writer = index.search_writer(conn_id)
    writer.add_lines([Line(2.0, "half written")])
    writer.discard()
    assert [h.text for h in search(index, "kept")] == ["kept"]
    assert search(index, "half") == []
    assert _raw_count(index, "output_lines", conn_id) == 0


def test_failing_source_discards_the_run(index: Index) -> None:
    conn_id = _open(index)

    def broken() -> Any:
        yield Line(1.0, "first")
        raise RuntimeError("emulator exploded")

    with pytest.raises(RuntimeError):
        index.replace_search_rows(conn_id, [], broken(), [])
    assert index.indexed(conn_id) is None
    assert _raw_count(index, "output_lines", conn_id) == 0


def test_run_that_started_later_wins_and_the_loser_cleans_up(index: Index) -> None:
    conn_id = _open(index)
    early = index.search_writer(conn_id)
    late = index.search_writer(conn_id)
    assert late.generation > early.generation
    early.add_commands([Cmd(1.0, "from-early")])
    late.add_commands([Cmd(1.0, "from-late")])
    assert late.commit() is not None
    assert early.commit() is None
    assert [h.text for h in search(index, "from")] == ["from-late"]
    assert _raw_count(index, "commands", conn_id) == 1


def test_long_lines_are_split_into_rows_at_one_offset(index: Index) -> None:
    conn_id = _open(index)
    text = ("word " * (MAX_INDEXED_CHARS // 5 * 2)) + "needle"
    row = index.replace_search_rows(conn_id, [], [Line(4.0, text)], [])
    assert row is not None and row.line_count == 3
    (hit,) = search(index, "needle")
    assert hit.offset == 4.0 and hit.text.endswith("needle")


def test_nul_characters_are_replaced_and_huge_exit_codes_dropped(index: Index) -> None:
    conn_id = _open(index)
    index.replace_search_rows(conn_id, [Cmd(1.0, "echo a\x00b", exit_code=2**40)], [], [])
    (cmd,) = index.connection_commands(conn_id)
    assert cmd.text == "echo a\ufffdb"
    assert cmd.exit_code is None


def test_rows_of_an_unknown_connection_are_refused(index: Index) -> None:
    with pytest.raises(UnknownConnection):
        index.replace_search_rows(4242, [Cmd(1.0, "x")], [], [])


def test_starting_an_indexing_run_waits_for_no_writer(sqlite_url: str) -> None:
    # It only checks that the connection exists: a read, which on SQLite takes no write lock, so
    # an indexing run never queues behind (or holds up) another writer just to begin.
    engine = make_engine(sqlite_url)
    upgrade(engine)
    index = Index(engine)
    conn_id = _open(index)
    with pytest.raises(UnknownConnection):
        index.search_writer(4242)
    other = sqlite3.connect(str(engine.url.database), isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's write lock throughout
        writer = index.search_writer(conn_id)
        assert writer.connection_id == conn_id and not writer.done
        other.execute("ROLLBACK")
        writer.add_lines([Line(1.0, "after the other writer")])
        assert writer.commit() is not None
    finally:
        other.close()
        engine.dispose()


def test_negative_or_infinite_offsets_are_refused(index: Index) -> None:
    conn_id = _open(index)
    with pytest.raises(ValueError, match="offset"):
        index.replace_search_rows(conn_id, [Cmd(-1.0, "x")], [], [])
    with pytest.raises(ValueError, match="offset"):
        index.replace_search_rows(conn_id, [], [Line(float("inf"), "x")], [])


def test_deleting_a_connection_deletes_its_rows_and_their_index_entries(index: Index) -> None:
    conn_id = _open(index)
    index.replace_search_rows(conn_id, [Cmd(1.0, "secret-thing")], [Line(1.0, "secret-thing")], [])
    with index.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM connections WHERE id = :c"), {"c": conn_id})
    assert search(index, "secret") == []
    assert _raw_count(index, "commands", conn_id) == 0
    if index.engine.dialect.name == "sqlite":
        with index.engine.connect() as conn:
            # The FTS5 index itself no longer knows the word (not just the joined rows).
            found = conn.exec_driver_sql(
                "SELECT count(*) FROM commands_fts WHERE commands_fts MATCH 'secret'"
            ).scalar()
        assert found == 0


def test_split_text_cuts_after_spaces_and_keeps_every_character() -> None:
    text = "aaaa bbbb cccc dddd"
    pieces = split_text(text, limit=10)
    assert "".join(pieces) == text
    assert all(len(p) <= 10 for p in pieces)
    assert pieces[0] == "aaaa bbbb "
    assert split_text("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]
    with pytest.raises(ValueError):
        split_text("x", limit=0)


@given(
    text=st.text(alphabet=st.sampled_from("ab "), max_size=300),
    limit=st.integers(1, 40),
)
def test_split_text_pieces_rejoin_fit_the_limit_and_cut_after_a_space_when_they_can(
    text: str, limit: int
) -> None:
    pieces = split_text(text, limit=limit)
    assert "".join(pieces) == text
    assert all(len(p) <= limit for p in pieces)
    for piece in pieces[:-1]:
        # A cut falls after a space when the second half of the window has one.
        if " " in piece[limit // 2 : limit] or len(piece) < limit:
            assert piece.endswith(" ")


def test_split_text_of_a_huge_line_is_linear() -> None:
    # 50 MB with no space: re-slicing the rest for every piece would copy ~80 GB.
    text = "x" * 50_000_000
    pieces = split_text(text)
    assert len(pieces) == -(-len(text) // MAX_INDEXED_CHARS)
    assert sum(len(p) for p in pieces) == len(text)


def test_sqlite_full_text_index_stays_consistent_with_its_tables(index: Index) -> None:
    if index.engine.dialect.name != "sqlite":
        pytest.skip("FTS5 is SQLite's full-text index")
    first, second = _open(index), _open(index, shell_id="shell-2")
    for conn_id in (first, second, first):
        writer = index.search_writer(conn_id, batch_rows=3)
        writer.add_commands([Cmd(float(i), f"command {i} of {conn_id}") for i in range(7)])
        writer.add_lines([Line(float(i), f"line {i}") for i in range(5)])
        writer.add_inputs([Line(0.5, "typed")])
        writer.commit()
    abandoned = index.search_writer(second)
    abandoned.add_lines([Line(1.0, "never live")])
    abandoned.discard()
    with index.engine.connect() as conn:
        for table in ("commands", "output_lines", "input_lines"):
            # One FTS5 document (its docsize row) per table row, with the same ids.
            assert _ids(conn, f"SELECT id FROM {table}_fts_docsize") == _ids(conn, f"SELECT id FROM {table}")
            conn.exec_driver_sql(f"INSERT INTO {table}_fts({table}_fts) VALUES ('integrity-check')")
        matched = _ids(conn, "SELECT rowid FROM commands_fts WHERE commands_fts MATCH 'command'")
        assert matched == _ids(conn, "SELECT id FROM commands") and len(matched) == 14


def _ids(conn: sa.Connection, sql: str) -> list[int]:
    return sorted(int(r[0]) for r in conn.exec_driver_sql(sql))


# -- PostgreSQL's blocks of output lines (revision 0007) -------------------------------------------


def check_output_blocks(conn: sa.Connection) -> list[tuple[int, int, int, int]]:
    """Assert that every output line is in exactly one block of its generation, that no block
    holds more than BLOCK_LINES lines or BLOCK_CHARS plus one line's characters, and that each
    block's lexemes include all of its lines'. Returns the blocks, as (connection, generation,
    first seq, last seq)."""
    lines: dict[tuple[int, int], list[int]] = {}
    for c, g, seq in conn.exec_driver_sql(
        "SELECT connection_id, generation, seq FROM output_lines ORDER BY connection_id, generation, seq"
    ):
        lines.setdefault((c, g), []).append(seq)
    blocks = [
        (int(c), int(g), int(first), int(last))
        for c, g, first, last in conn.exec_driver_sql(
            "SELECT connection_id, generation, first_seq, last_seq FROM output_blocks "
            "ORDER BY connection_id, generation, first_seq"
        )
    ]
    covered: dict[tuple[int, int], list[int]] = {}
    for c, g, first, last in blocks:
        assert first <= last, (c, g, first, last)
        covered.setdefault((c, g), []).extend(range(first, last + 1))
    # Exactly once: the blocks' ranges, in order, are the generation's seqs without gap or overlap.
    assert covered == lines
    sizes = conn.exec_driver_sql(
        f"SELECT count(*), sum(length(left(l.text, {MAX_INDEXED_CHARS}))) FROM output_blocks b "
        "JOIN output_lines l ON l.connection_id = b.connection_id AND l.generation = b.generation "
        "AND l.seq BETWEEN b.first_seq AND b.last_seq GROUP BY b.id"
    ).all()
    for count, chars in sizes:
        assert count <= BLOCK_LINES and chars <= BLOCK_CHARS + MAX_INDEXED_CHARS, (count, chars)
    block_words = {
        int(id_): set(words)
        for id_, words in conn.exec_driver_sql("SELECT id, tsvector_to_array(tsv) FROM output_blocks")
    }
    # (Compared here: PostgreSQL's array <@ compares every element with every other.)
    for block_id, words in conn.exec_driver_sql(
        "SELECT b.id, tsvector_to_array(l.tsv) FROM output_blocks b JOIN output_lines l "
        "ON l.connection_id = b.connection_id AND l.generation = b.generation "
        "AND l.seq BETWEEN b.first_seq AND b.last_seq"
    ):
        assert set(words) <= block_words[int(block_id)]
    return blocks


def _postgresql_only(index: Index) -> None:
    if index.engine.dialect.name != "postgresql":
        pytest.skip("output_blocks is PostgreSQL's (SQLite's FTS5 seeks by row id)")


def test_postgresql_blocks_of_output_lines_cover_each_live_line_once_within_their_bounds(
    index: Index,
) -> None:
    _postgresql_only(index)
    first, second = _open(index), _open(index, shell_id="shell-2")
    # Short lines (blocks of BLOCK_LINES), then rows of MAX_INDEXED_CHARS that only the
    # character bound cuts, and a line long enough to be stored as two rows.
    long_row = ("wörd " * MAX_INDEXED_CHARS)[:MAX_INDEXED_CHARS]
    lines = [Line(float(i), f"line {i} of 日本語 output") for i in range(45)]
    lines += [Line(50.0 + i, long_row) for i in range(8)] + [Line(60.0, "x" * (MAX_INDEXED_CHARS + 10))]
    for conn_id, batch_rows in ((first, 7), (second, 2000), (first, 2000)):
        writer = index.search_writer(conn_id, batch_rows=batch_rows)
        writer.add_lines(lines)
        writer.commit()
    abandoned = index.search_writer(second)
    abandoned.add_lines([Line(1.0, "never live")])
    abandoned.discard()
    with index.engine.connect() as conn:
        blocks = check_output_blocks(conn)
        live = set(conn.exec_driver_sql("SELECT connection_id, generation FROM indexed_recordings").all())
    # Only the live runs' blocks are left (the replaced and the discarded runs' went with their lines).
    assert {(c, g) for c, g, _, _ in blocks} == live and len(live) == 2
    # Not vacuous: 8 rows of MAX_INDEXED_CHARS in one run of BLOCK_LINES would break the bound.
    assert 8 * MAX_INDEXED_CHARS > BLOCK_CHARS + MAX_INDEXED_CHARS
    assert len(blocks) > 2 * -(-len(lines) // BLOCK_LINES)
    with index.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM connections WHERE id = :c"), {"c": first})
    assert _raw_count(index, "output_blocks", first) == 0 and _raw_count(index, "output_blocks", second) > 0


def test_postgresql_block_of_lines_with_the_most_distinct_words_still_fits_a_tsvector(
    index: Index,
) -> None:
    """Lines of distinct two-letter words of four-byte letters: BLOCK_LINES of them would make a
    tsvector over PostgreSQL's 1 MB, and the indexing run would fail; blocks cut by characters do not."""
    _postgresql_only(index)
    conn_id = _open(index)
    letters = [chr(c) for c in range(0x20000, 0x20000 + 400)]  # CJK Extension B: four bytes each
    words = (a + b for a, b in product(letters, repeat=2))
    per_line = MAX_INDEXED_CHARS // 3
    lines = [Line(float(i), " ".join(next(words) for _ in range(per_line))) for i in range(BLOCK_LINES)]
    with index.engine.connect() as conn:
        whole = "".join(line.text for line in lines).encode("utf-8")
        # One block of them all would not fit: PostgreSQL refuses it.
        with pytest.raises(sa.exc.DBAPIError, match="too long for tsvector"):
            conn.execute(sa.text("SELECT strip(to_tsvector('simple', :t))"), {"t": whole.decode()})
    index.replace_search_rows(conn_id, [], lines, [])
    with index.engine.connect() as conn:
        assert len(check_output_blocks(conn)) > 1
    hits = search(index, lines[-1].text.split()[-1], kinds=["output"])
    assert [h.offset for h in hits] == [float(BLOCK_LINES - 1)]

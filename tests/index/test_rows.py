"""Search rows written in generations: invisible until committed, replaced at once, idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from recorder.errors import UnknownConnection
from recorder.index.models import MAX_INDEXED_CHARS
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

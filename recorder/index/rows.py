"""Search rows of a connection (commands, output lines, typed input), written in generations.

An indexing run writes its rows under a new *generation* in short transactions (SQLite has a
single writer, and the proxy must not wait on a long one), then :meth:`SearchRowWriter.commit`
makes that generation the live one in one statement and deletes the older rows. Searches only
see the live generation, so a re-index replaces a connection's rows at once and is idempotent.
Generations are nanosecond clock readings: when two runs race, the one that started last wins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from recorder.errors import UnknownConnection
from recorder.index.models import (
    BLOCK_CHARS,
    BLOCK_LINES,
    MAX_INDEXED_CHARS,
    CommandEntry,
    Connection,
    IndexedRecording,
    InputLine,
    OutputLine,
    output_blocks,
)
from recorder.logfmt import get_logger

log = get_logger(__name__)

#: Rows written per transaction while indexing a recording.
WRITE_BATCH_ROWS = 2000
#: An exit code outside a 32-bit integer is not one (OSC 133 marks are program output): None.
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

Transaction = Callable[[], AbstractContextManager[Session]]


class CommandLike(Protocol):
    """What the store needs of a command (``recorder.replay.commands.Command`` has it)."""

    @property
    def offset(self) -> float: ...
    @property
    def text(self) -> str: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def output_preview(self) -> str: ...
    @property
    def end_offset(self) -> float | None: ...


class TextLike(Protocol):
    """What the store needs of an output or input line: when, and what."""

    @property
    def offset(self) -> float: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class CommandRow:
    """A command of a connection as the index holds it."""

    connection_id: int
    seq: int
    offset: float
    text: str
    exit_code: int | None
    output_preview: str
    end_offset: float | None


@dataclass(frozen=True, slots=True)
class IndexedRow:
    """The live indexing run of a connection: when, how many rows, what went wrong."""

    connection_id: int
    generation: int
    indexed_at: datetime
    command_count: int
    line_count: int
    input_count: int
    problem_count: int
    error: str | None


def split_text(text: str, limit: int = MAX_INDEXED_CHARS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut after a space where there is one."""
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")
    if len(text) <= limit:
        return [text]
    # Positions, not re-slicing the rest each time: a 100 MB line (a burst with no newline)
    # must cost one pass, not one copy of the remainder per piece.
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = start + limit if cut < 0 else cut + 1
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; nothing searchable is lost by replacing it.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _offset(value: float | None, field: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{field} must be a finite non-negative number of seconds, not {value}")
    return value


def _exit_code(value: int | None) -> int | None:
    if value is None or not _INT32_MIN <= value <= _INT32_MAX:
        return None
    return int(value)


def _exists(session: Session, conn_id: int) -> bool:
    """Whether connection ``conn_id`` exists (its id read, not the whole row as an ORM object)."""
    return session.execute(_CONNECTION_EXISTS, {"id": conn_id}).first() is not None


def _batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class SearchRowWriter:
    """One indexing run of one connection; rows stay invisible until :meth:`commit`."""

    def __init__(
        self,
        transaction: Transaction,
        dialect: str,
        conn_id: int,
        *,
        reading: Transaction,
        batch_rows: int = WRITE_BATCH_ROWS,
    ) -> None:
        """``reading`` opens a transaction that only reads (no write lock on SQLite), for the
        check that the connection exists."""
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be positive, not {batch_rows}")
        self._transaction = transaction
        self._dialect = dialect
        self.connection_id = conn_id
        self.batch_rows = batch_rows
        self.generation = time.time_ns()
        self.counts = {"commands": 0, "output_lines": 0, "input_lines": 0}
        self._seq = dict.fromkeys(self.counts, 0)
        self._staged: dict[str, list[tuple[Any, ...]]] = {name: [] for name in self.counts}
        self._insert_sql = {name: _insert_sql(table, dialect) for name, table in _TABLES.items()}
        #: Every table holding this run's rows (deleted together).
        self._tables = _SEARCH_TABLES + ((output_blocks,) if dialect == "postgresql" else ())
        self.done = False
        with reading() as session:
            if not _exists(session, conn_id):
                raise UnknownConnection(conn_id)

    def _write(self, table: sa.Table, rows: Iterable[tuple[Any, ...]]) -> int:
        written = 0
        for batch in _batches(rows, self.batch_rows):
            with self._transaction() as session:
                self._insert(session, table, batch)
            written += len(batch)
            # Counted per batch: rows written before a failing source stay in this run's counts.
            self.counts[table.name] += len(batch)
        return written

    def _insert(self, session: Session, table: sa.Table, batch: list[tuple[Any, ...]]) -> None:
        # Straight to the driver's executemany: SQLAlchemy's insert() builds and checks a dict per
        # row, which cost more than SQLite's own insert of it.
        session.connection().exec_driver_sql(self._insert_sql[table.name], batch)
        span = {
            "connection_id": self.connection_id,
            "generation": self.generation,
            "first": batch[0][_SEQ],
            "last": batch[-1][_SEQ],
        }
        if self._dialect == "sqlite":
            # The FTS5 index is fed here, in bulk (revision 0002 has no insert trigger).
            session.execute(_fts_insert(table.name), span)
        elif table.name == OutputLine.__tablename__:
            session.execute(_FILL_RUN_BLOCKS, span)

    # -- rows of every kind as they come (one pass over a recording) ----------------------------

    def stage(
        self,
        commands: Iterable[CommandLike] = (),
        lines: Iterable[TextLike] = (),
        inputs: Iterable[TextLike] = (),
    ) -> None:
        """Queue rows of any kind; once ``batch_rows`` are queued they are written in one transaction.

        For a single pass over a recording, where commands, output and input come interleaved.
        Per kind the order is kept; :meth:`commit` writes what is still queued.
        """
        staged = self._staged
        staged["commands"].extend(self._command_rows(commands))
        staged["output_lines"].extend(self._text_rows("output_lines", lines))
        staged["input_lines"].extend(self._text_rows("input_lines", inputs))
        if sum(len(rows) for rows in staged.values()) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """Write every queued row now, all kinds in one transaction."""
        if any(self._staged.values()):
            with self._transaction() as session:
                self._flush_into(session)

    def _flush_into(self, session: Session) -> None:
        tables = [(name, rows) for name, rows in self._staged.items() if rows]
        for name, rows in tables:
            self._insert(session, _TABLES[name], rows)
        for name, rows in tables:
            self.counts[name] += len(rows)
        self._staged = {name: [] for name in self.counts}

    def _command_rows(self, commands: Iterable[CommandLike]) -> Iterator[tuple[Any, ...]]:
        # Tuples in _COLUMNS order (the commands table's extra columns last).
        conn_id, generation = self.connection_id, self.generation
        seq = self._seq["commands"]
        for cmd in commands:
            yield (
                conn_id,
                generation,
                seq,
                _offset(cmd.offset, "offset"),
                _clean(cmd.text),
                _exit_code(cmd.exit_code),
                _clean(cmd.output_preview),
                _offset(cmd.end_offset, "end_offset"),
            )
            seq += 1
            self._seq["commands"] = seq

    def _text_rows(self, table: str, lines: Iterable[TextLike]) -> Iterator[tuple[Any, ...]]:
        conn_id, generation = self.connection_id, self.generation
        seq = self._seq[table]
        for line in lines:
            offset = _offset(line.offset, "offset")
            text = _clean(line.text)
            for piece in split_text(text) if len(text) > MAX_INDEXED_CHARS else (text,):
                yield (conn_id, generation, seq, offset, piece)
                seq += 1
                self._seq[table] = seq

    def add_commands(self, commands: Iterable[CommandLike]) -> int:
        """Write commands (in the order given); returns how many rows were written."""
        self.flush()
        return self._write(table_of(CommandEntry), self._command_rows(commands))

    def _add_text(self, table: sa.Table, lines: Iterable[TextLike]) -> int:
        self.flush()
        return self._write(table, self._text_rows(table.name, lines))

    def add_lines(self, lines: Iterable[TextLike]) -> int:
        """Write output lines; a line over MAX_INDEXED_CHARS becomes several rows at one offset."""
        return self._add_text(table_of(OutputLine), lines)

    def add_inputs(self, inputs: Iterable[TextLike]) -> int:
        """Write typed input lines, split like output lines."""
        return self._add_text(table_of(InputLine), inputs)

    def commit(self, *, problem_count: int = 0, error: str | None = None) -> IndexedRow | None:
        """Make this run the live one and delete older rows; None if a newer run is already live."""
        if self.done:
            raise RuntimeError("this indexing run is already committed or discarded")
        # One transaction writes the rows still queued, makes the run live and takes the first
        # pass of deletes (SQLite has one writer: fewer, fuller transactions wait on each other less).
        staged = {name: len(rows) for name, rows in self._staged.items()}
        values: dict[str, Any] = {
            "connection_id": self.connection_id,
            "generation": self.generation,
            "indexed_at": datetime.now(UTC),
            "command_count": self.counts["commands"] + staged["commands"],
            "line_count": self.counts["output_lines"] + staged["output_lines"],
            "input_count": self.counts["input_lines"] + staged["input_lines"],
            "problem_count": max(0, problem_count),
            "error": error,
        }
        table = table_of(IndexedRecording)
        with self._transaction() as session:
            if not _exists(session, self.connection_id):
                raise UnknownConnection(self.connection_id)
            self._flush_into(session)
            session.execute(_MAKE_LIVE, values)
            live = session.execute(
                sa.select(table.c.generation).where(table.c.connection_id == self.connection_id)
            ).scalar_one()
            left = self._delete_batch(session, self._older(live), self._tables)
        self.done = True
        self._delete_where(self._older(live), left)
        if live != self.generation:
            log.info("index.run_superseded", id=self.connection_id, generation=self.generation)
            return None
        row = IndexedRow(**values)
        log.debug(
            "index.search_rows",
            id=self.connection_id,
            commands=row.command_count,
            lines=row.line_count,
            inputs=row.input_count,
        )
        return row

    def discard(self) -> None:
        """Delete this run's rows (after a failure); the live generation stays as it was."""
        if self.done:
            return
        self.done = True
        self._staged = {name: [] for name in self.counts}
        self._delete_where(lambda t: t.c.generation == self.generation)

    def _older(self, live: int) -> Callable[[sa.Table], sa.ColumnElement[bool]]:
        """Rows to delete once ``live`` is the live generation."""
        if live == self.generation:
            return lambda t: t.c.generation < live
        # This run lost to a newer one: its own rows go too.
        return lambda t: sa.or_(t.c.generation < live, t.c.generation == self.generation)

    def _delete_batch(
        self,
        session: Session,
        condition: Callable[[sa.Table], sa.ColumnElement[bool]],
        tables: tuple[sa.Table, ...],
    ) -> tuple[sa.Table, ...]:
        """Delete up to batch_rows matching rows per table; returns the tables that may have more."""
        more = []
        for table in tables:
            doomed = (
                sa.select(table.c.id)
                .where(table.c.connection_id == self.connection_id, condition(table))
                .limit(self.batch_rows)
                .scalar_subquery()
            )
            result = session.execute(sa.delete(table).where(table.c.id.in_(doomed)))
            if cast(sa.CursorResult[Any], result).rowcount:
                more.append(table)
        return tuple(more)

    def _delete_where(
        self,
        condition: Callable[[sa.Table], sa.ColumnElement[bool]],
        tables: tuple[sa.Table, ...] | None = None,
    ) -> None:
        """Delete matching rows of this connection, a batch per transaction, until none are left."""
        left = self._tables if tables is None else tables
        while left:
            with self._transaction() as session:
                left = self._delete_batch(session, condition, left)


#: The columns every search row has, in the order rows are built; then the commands table's own.
_COLUMNS = ("connection_id", "generation", "seq", "offset", "text")
_COMMAND_COLUMNS = ("exit_code", "output_preview", "end_offset")
_SEQ = _COLUMNS.index("seq")


def _insert_sql(table: sa.Table, dialect: str) -> str:
    """The driver-level INSERT of one row of ``table`` in _COLUMNS order, in the driver's paramstyle."""
    columns = _COLUMNS + (_COMMAND_COLUMNS if table.name == "commands" else ())
    marker = "?" if dialect == "sqlite" else "%s"
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {table.name} ({names}) VALUES ({', '.join(marker for _ in columns)})"


def upsert_sql(
    table: sa.Table,
    columns: Sequence[str],
    key: Sequence[str],
    updates: str,
    *,
    where: str = "",
    returning: str = "",
) -> sa.TextClause:
    """``INSERT ... ON CONFLICT (key) DO UPDATE SET updates [WHERE where] [RETURNING returning]``
    of ``columns`` of ``table``, each value a parameter of its column's type.

    The same SQL runs on SQLite and PostgreSQL. SQLAlchemy's ``on_conflict_do_update`` has no
    cache key, so a statement built with it was compiled anew on every run (about 1 ms, a tenth
    of a small recording's import and of opening a proxied connection); a text statement is
    compiled once.
    """
    names = list(columns)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )
    sql += f" WHERE {where}" if where else ""
    sql += f" RETURNING {returning}" if returning else ""
    return sa.text(sql).bindparams(*(sa.bindparam(n, type_=table.c[n].type) for n in names))


def _fts_insert(table: str) -> sa.TextClause:
    """Add a batch of a run's rows (by seq range) to the table's FTS5 index, first characters only."""
    return sa.text(
        f"INSERT INTO {table}_fts(rowid, text) "
        f"SELECT id, substr(text, 1, {MAX_INDEXED_CHARS}) FROM {table} "
        "WHERE connection_id = :connection_id AND generation = :generation AND seq BETWEEN :first AND :last"
    )


def _fill_blocks_sql(where: str) -> str:
    """Add blocks (PostgreSQL's ``output_blocks``) for the output lines ``where`` selects.

    Consecutive lines of a generation, grouped by ``seq / BLOCK_LINES`` and by BLOCK_CHARS steps
    of their running length, so a block holds at most BLOCK_LINES lines and BLOCK_CHARS plus one
    line's characters: its tsvector stays far below PostgreSQL's 1 MB, whatever the lines hold.
    Each line's first MAX_INDEXED_CHARS characters, non-alphanumerics as spaces, as ``tsv`` reads
    it, so a block's lexemes are its lines' lexemes; ``strip`` drops positions (see search).
    Revision 0007 holds a frozen copy of this statement.
    """
    return (
        "INSERT INTO output_blocks (connection_id, generation, first_seq, last_seq, tsv) "
        "SELECT connection_id, generation, min(seq), max(seq), strip(to_tsvector('simple'::regconfig, "
        "regexp_replace(string_agg(piece, ' ' ORDER BY seq), '[^[:alnum:]]+', ' ', 'g'))) "
        f"FROM (SELECT connection_id, generation, seq, left(text, {MAX_INDEXED_CHARS}) AS piece, "
        f"sum(length(left(text, {MAX_INDEXED_CHARS}))) OVER (PARTITION BY connection_id, generation "
        f"ORDER BY seq) AS upto FROM output_lines{where}) AS lines "
        f"GROUP BY connection_id, generation, seq / {BLOCK_LINES}, upto / {BLOCK_CHARS}"
    )


#: The blocks of a batch of a run's output lines (by seq range), as the batch is written.
_FILL_RUN_BLOCKS = sa.text(
    _fill_blocks_sql(
        " WHERE connection_id = :connection_id AND generation = :generation AND seq BETWEEN :first AND :last"
    )
)


def fill_output_blocks(connection: sa.Connection, first_id: int, last_id: int) -> int:
    """Build PostgreSQL's ``output_blocks`` for the output lines of connections ``first_id`` to
    ``last_id``, which must have none yet (rows copied in from outside the store, say). Returns
    the blocks added."""
    sql = _fill_blocks_sql(" WHERE connection_id BETWEEN :first_id AND :last_id")
    result = connection.execute(sa.text(sql), {"first_id": first_id, "last_id": last_id})
    return int(result.rowcount)


def table_of(model: type[Any]) -> sa.Table:
    """The table of a declarative model."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


_SEARCH_TABLES = (table_of(CommandEntry), table_of(OutputLine), table_of(InputLine))

#: The search tables by name (the keys of SearchRowWriter.counts).
_TABLES = {table.name: table for table in _SEARCH_TABLES}
_CONNECTION_ID = table_of(Connection).c.id
_CONNECTION_EXISTS = sa.select(_CONNECTION_ID).where(_CONNECTION_ID == sa.bindparam("id", type_=sa.Integer))
_LIVE_COLUMNS = [c.name for c in table_of(IndexedRecording).c if c.name != "connection_id"]
#: Make a run live unless a newer one already is.
_MAKE_LIVE = upsert_sql(
    table_of(IndexedRecording),
    ["connection_id", *_LIVE_COLUMNS],
    ["connection_id"],
    ", ".join(f"{name} = excluded.{name}" for name in _LIVE_COLUMNS),
    where="indexed_recordings.generation < excluded.generation",
)

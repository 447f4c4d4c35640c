"""Full-text search over commands, output lines and typed input, on SQLite (FTS5) and PostgreSQL.

One query interface for both databases: the query is parsed once (``recorder.index.query``),
rendered to FTS5 MATCH or ``to_tsquery('simple', ...)``, and run against the live generation of
each connection's rows, with the same connection filters as ``Index.list_connections``. Hits come
newest connection first, then in time order within a connection (ties: commands, output, input,
then row order), so both databases return the same list for the same data. Match spans are
computed here, from the hit text, so highlighting does not depend on the database either.

Speed: a search returns the first ``limit`` hits, newest connections first. A word in few rows
is read in one query. A word in many rows is read in windows of connections, newest first
(16, then 8x more each time), and a window's rows are found from its smallest row id up
(FTS5 seeks there; rows get ever-growing ids, and a proxy indexes recordings as they end, so
new connections hold the highest ids). Its older hits are never read, so a common word costs
about what a rare one does however many months are indexed. Recordings imported out of time
order only make the windows wider, never the result different.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from recorder.errors import ConfigError
from recorder.index.models import (
    CommandEntry,
    Connection,
    IndexedRecording,
    InputLine,
    OutputLine,
    Shell,
)
from recorder.index.query import Query, match_spans, parse_query, to_fts5, to_tsquery
from recorder.index.store import MAX_LIST_LIMIT, ConnectionFilter, Index, connection_conditions

#: What can be searched, in the order hits at the same moment are listed.
KINDS: tuple[str, ...] = ("command", "output", "input")
#: Hits returned unless told otherwise, and the most that may be asked for.
DEFAULT_SEARCH_LIMIT = 50
MAX_SEARCH_LIMIT = MAX_LIST_LIMIT

_MODELS: dict[str, type[Any]] = {"command": CommandEntry, "output": OutputLine, "input": InputLine}
#: The IndexedRecording column counting each kind's live rows.
_COUNTS = {"command": "command_count", "output": "line_count", "input": "input_count"}
#: Connections read in the first window of a search (newest first); each next window is
#: WINDOW_GROWTH times larger, so a search reads at most a few windows.
FIRST_WINDOW = 16
WINDOW_GROWTH = 8
#: A word matching fewer than this many rows per hit asked for is read in one query, without windows.
WINDOWED_FROM = 20
_RANK = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching row: where (connection, seconds from its start), what, and who."""

    connection_id: int
    kind: str
    offset: float
    text: str
    #: The command's exit code (commands only; None when unknown).
    exit_code: int | None
    principal: str | None
    shell_id: str
    runtime_arn: str
    started_at: datetime
    #: ``(start, end)`` character ranges of ``text`` that matched, sorted and merged.
    spans: tuple[tuple[int, int], ...]
    #: Order of the row within its connection and kind (a tie-breaker).
    seq: int

    def sort_key(self) -> tuple[float, int, float, int, int]:
        """Newest connection first, then time order, then kind, then row order."""
        return (-self.started_at.timestamp(), -self.connection_id, self.offset, _RANK[self.kind], self.seq)


def _kinds(kinds: Collection[str]) -> list[str]:
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ConfigError(f"unknown search kinds {sorted(unknown)}; use {', '.join(KINDS)}")
    if not kinds:
        raise ConfigError(f"give at least one kind to search: {', '.join(KINDS)}")
    return [k for k in KINDS if k in kinds]


def _match(
    kind: str, query: Query, dialect: str
) -> tuple[sa.FromClause, sa.ColumnElement[Any], sa.ColumnElement[bool]]:
    """Where ``query`` is matched for one kind: the table read, its row id column, the condition.

    SQLite: the kind's FTS5 table and its rowid; PostgreSQL: the kind's table, its id and ``tsv``.
    """
    table: sa.Table = _MODELS[kind].__table__
    if dialect == "sqlite":
        fts = sa.table(f"{table.name}_fts", sa.column("rowid"))
        match = sa.literal_column(fts.name).op("MATCH")(sa.bindparam("match", to_fts5(query)))
        return fts, fts.c.rowid, match
    tsquery = sa.func.to_tsquery(
        sa.literal_column("'simple'::regconfig"), sa.bindparam("tsquery", to_tsquery(query))
    )
    return table, table.c.id, sa.literal_column(f"{table.name}.tsv").op("@@")(tsquery)


def _statement(
    kind: str, query: Query, dialect: str, window: sa.ColumnElement[bool], lowest: int | None, limit: int
) -> sa.Select[Any]:
    """The ``limit`` first hits of one kind among the connections ``window`` selects."""
    model = _MODELS[kind]
    table: sa.Table = model.__table__
    exit_code = table.c.exit_code if kind == "command" else sa.null()
    stmt = sa.select(
        table.c.connection_id,
        table.c.offset,
        table.c.text,
        table.c.seq,
        exit_code.label("exit_code"),
        Connection.principal,
        Shell.shell_id,
        Shell.runtime_arn,
        Connection.started_at,
    )
    source, ids, matches = _match(kind, query, dialect)
    stmt = stmt.select_from(source)
    if source is not table:
        stmt = stmt.join(table, table.c.id == ids)
    if lowest is not None:
        # FTS5 seeks to this rowid: older rows of the word are not read at all.
        stmt = stmt.where(ids >= lowest)
    return (
        stmt.where(matches)
        .join(
            IndexedRecording,
            sa.and_(
                IndexedRecording.connection_id == table.c.connection_id,
                IndexedRecording.generation == table.c.generation,
            ),
        )
        .join(Connection, Connection.id == table.c.connection_id)
        .join(Shell, Shell.id == Connection.shell_pk)
        .where(window)
        .order_by(
            Connection.started_at.desc(),
            Connection.id.desc(),
            table.c.offset,
            table.c.seq,
        )
        .limit(limit)
    )


@dataclass(frozen=True, slots=True)
class _Bound:
    """A connection's place in the search order (newest first): its start time and id."""

    started_at: datetime
    id: int

    def after(self) -> sa.ColumnElement[bool]:
        """Connections that come after this one (older, or as old with a lower id)."""
        # The first term alone is a range on the started_at index: the database can use it.
        return sa.and_(
            Connection.started_at <= self.started_at,
            sa.or_(Connection.started_at < self.started_at, Connection.id < self.id),
        )

    def through(self) -> sa.ColumnElement[bool]:
        """Connections that come before this one, and this one."""
        return sa.and_(
            Connection.started_at >= self.started_at,
            sa.or_(Connection.started_at > self.started_at, Connection.id >= self.id),
        )


def _windows(
    session: Session, filters: ConnectionFilter, last: _Bound | None
) -> Iterator[sa.ColumnElement[bool]]:
    """Conditions selecting indexed connections in windows, newest first, each WINDOW_GROWTH x larger.

    Windows are consecutive ranges of the search order, bounded by (started_at, id), so a window's
    hits all sort before the next window's. ``last``, when given, is the last connection that can
    still hold a hit worth returning: later ones are not read.
    """
    scope = _scope(filters, last)
    ordered = (
        sa.select(Connection.started_at, Connection.id)
        .join(Shell, Shell.id == Connection.shell_pk)
        .join(IndexedRecording, IndexedRecording.connection_id == Connection.id)
        .where(*scope)
        .order_by(Connection.started_at.desc(), Connection.id.desc())
    )
    previous: _Bound | None = None
    size = FIRST_WINDOW
    while True:
        rest = ordered if previous is None else ordered.where(previous.after())
        end = session.execute(rest.offset(size - 1).limit(1)).first()
        conditions = list(scope)
        if previous is not None:
            conditions.append(previous.after())
        if end is None:
            # The rest of the connections (fewer than a window): the last one.
            yield sa.and_(sa.true(), *conditions)
            return
        bound = _Bound(end.started_at, end.id)
        yield sa.and_(bound.through(), *conditions)
        previous = bound
        size *= WINDOW_GROWTH


def _lowest_row(session: Session, kind: str, window: sa.ColumnElement[bool]) -> int | None:
    """The smallest row id of ``kind`` among the window's live rows, or None when unknown.

    Rows of a run are written in ``seq`` order with ever-growing ids, so each connection's
    smallest id is its row number 0; one index lookup per connection.
    """
    table: sa.Table = _MODELS[kind].__table__
    count = _COUNTS[kind]
    first = table.alias("first_row")
    stmt = (
        sa.select(
            sa.func.min(first.c.id),
            sa.func.count(IndexedRecording.connection_id),
            sa.func.count(first.c.id),
        )
        .select_from(Connection)
        .join(Shell, Shell.id == Connection.shell_pk)
        .join(IndexedRecording, IndexedRecording.connection_id == Connection.id)
        .outerjoin(
            first,
            sa.and_(
                first.c.connection_id == IndexedRecording.connection_id,
                first.c.generation == IndexedRecording.generation,
                first.c.seq == 0,
            ),
        )
        .where(window, getattr(IndexedRecording, count) > 0)
    )
    lowest, with_rows, found = session.execute(stmt).one()
    # Every connection with rows must have its row 0; if one does not, read without a bound.
    return lowest if with_rows == found else None


def _count_capped(session: Session, kind: str, query: Query, dialect: str, cap: int) -> int:
    """How many rows of ``kind`` match, counting no further than ``cap`` (all generations)."""
    _, ids, matches = _match(kind, query, dialect)
    inner = sa.select(ids).where(matches).limit(cap).subquery()
    return int(session.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


def _scope(filters: ConnectionFilter, last: _Bound | None) -> list[sa.ColumnElement[bool]]:
    """The connections a search reads: the filters', and none after ``last`` when given."""
    scope = list(connection_conditions(filters))
    if last is not None:
        scope.append(last.through())
    return scope


def _kind_hits(
    session: Session,
    kind: str,
    query: Query,
    dialect: str,
    filters: ConnectionFilter,
    limit: int,
    last: _Bound | None,
) -> list[Any]:
    """The first ``limit`` hits of one kind, reading the newest connections first.

    A word in few rows is read in one query. A word in many rows is read window by window,
    newest connections first, so its older hits are never read: windows come in the search
    order, and once ``limit`` hits are found no later window can hold one that sorts before them.
    """
    scope = _scope(filters, last)
    if _count_capped(session, kind, query, dialect, WINDOWED_FROM * limit) < WINDOWED_FROM * limit:
        return list(
            session.execute(_statement(kind, query, dialect, sa.and_(sa.true(), *scope), None, limit))
        )
    found: list[Any] = []
    for window in _windows(session, filters, last):
        lowest = _lowest_row(session, kind, window) if dialect == "sqlite" else None
        found.extend(session.execute(_statement(kind, query, dialect, window, lowest, limit)))
        if len(found) >= limit:
            break
    return found


def search(
    target: Index | Engine,
    query: str | Query,
    *,
    kinds: Collection[str] = KINDS,
    filters: ConnectionFilter | None = None,
    limit: int = DEFAULT_SEARCH_LIMIT,
) -> list[Hit]:
    """Rows matching ``query`` (text or parsed) in the given kinds and connections, at most ``limit``.

    ``filters.limit`` is not used here: ``limit`` counts hits, not connections.
    """
    if not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise ConfigError(f"limit must be between 1 and {MAX_SEARCH_LIMIT}, not {limit}")
    parsed = parse_query(query) if isinstance(query, str) else query
    index = target if isinstance(target, Index) else Index(target)
    f = filters or ConnectionFilter()
    hits: list[Hit] = []
    dialect = index.engine.dialect.name
    with index.session() as session:
        if dialect == "postgresql":
            # PostgreSQL guesses a rare word's rows from its statistics and, with a LIMIT in the
            # query, may read a whole table rather than the GIN index (22 ms against 0.1 ms on
            # 30,000 commands, measured). A search never wants to read a whole table.
            session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        for kind in _kinds(kinds):
            # Once ``limit`` hits are in hand, a connection after the last of them cannot add one.
            last = None
            if len(hits) >= limit:
                hits.sort(key=Hit.sort_key)
                del hits[limit:]
                last = _Bound(hits[-1].started_at, hits[-1].connection_id)
            for row in _kind_hits(session, kind, parsed, dialect, f, limit, last):
                hits.append(
                    Hit(
                        connection_id=row.connection_id,
                        kind=kind,
                        offset=row.offset,
                        text=row.text,
                        exit_code=row.exit_code,
                        principal=row.principal,
                        shell_id=row.shell_id,
                        runtime_arn=row.runtime_arn,
                        started_at=row.started_at,
                        spans=(),
                        seq=row.seq,
                    )
                )
    hits.sort(key=Hit.sort_key)
    # Match spans only for the hits returned (tokenizing every candidate's text costs more).
    return [replace(hit, spans=tuple(match_spans(hit.text, parsed))) for hit in hits[:limit]]

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
new connections hold the highest ids; on PostgreSQL, whose GIN index has no order, a window's
output lines are found by their blocks of up to 20, revision 0007). Its older hits are never
read, so a common word costs about what a rare one does however many months are indexed.
Recordings imported out of time order only make the windows wider, never the result different.
Which way a word is read is decided by a capped count of its rows; on PostgreSQL the planner's
estimate decides first for words its statistics list as common (see ``_few_rows``). Statements
are built once per shape and reused with every value as a parameter (``STATEMENT_CACHE``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from itertools import count
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recorder.errors import ConfigError
from recorder.index.hits import DEFAULT_SEARCH_LIMIT, KINDS, RANK, Hit
from recorder.index.models import (
    CommandEntry,
    Connection,
    IndexedRecording,
    InputLine,
    OutputLine,
    Shell,
    output_blocks,
)
from recorder.index.query import Query, match_spans, parse_query, to_fts5, to_loose_tsquery, to_tsquery
from recorder.index.reads import Reads
from recorder.index.store import (
    MAX_LIST_LIMIT,
    ConnectionFilter,
    Index,
    filter_conditions,
    filter_params,
    filter_values,
)

#: The most hits that may be asked for.
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


#: Where each column of a hit statement's rows is (``_hit_columns``). Rows are read by position:
#: by name (SQLAlchemy's rows, before ``recorder.index.reads``) they cost five times as much to
#: order and twice as much to make hits of (0.49 against 0.09 ms, and 0.78 against 0.36, for the
#: 127 rows of a search on the benchmark's archive), a tenth of a PostgreSQL search.
_CONNECTION_ID, _OFFSET, _TEXT, _SEQ, _EXIT_CODE, _PRINCIPAL, _SHELL_ID, _RUNTIME_ARN, _STARTED_AT = range(9)


def _order(kind: str, row: Any) -> tuple[float, int, float, int, int]:
    """The search order of a row of a hit statement of ``kind``: as ``Hit.sort_key``."""
    return (-row[_STARTED_AT].timestamp(), -row[_CONNECTION_ID], row[_OFFSET], RANK[kind], row[_SEQ])


def _kinds(kinds: Collection[str]) -> list[str]:
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ConfigError(f"unknown search kinds {sorted(unknown)}; use {', '.join(KINDS)}")
    if not kinds:
        raise ConfigError(f"give at least one kind to search: {', '.join(KINDS)}")
    return [k for k in KINDS if k in kinds]


#: Statement shapes kept for reuse. SQLAlchemy builds a statement's SQL once per statement
#: object; building a new object for every query cost more than SQLite's own work for a search
#: (0.46 against 0.08 ms a query, measured), so statements take every value as a parameter and
#: each shape is built once per process.
STATEMENT_CACHE = 512


def _match(kind: str, dialect: str) -> tuple[sa.FromClause, sa.ColumnElement[Any], sa.ColumnElement[bool]]:
    """Where the query (parameter ``match`` or ``tsquery``) is matched for one kind: the table
    read, its row id column, the condition.

    SQLite: the kind's FTS5 table and its rowid; PostgreSQL: the kind's table, its id and ``tsv``.
    """
    table: sa.Table = _MODELS[kind].__table__
    if dialect == "sqlite":
        fts = sa.table(f"{table.name}_fts", sa.column("rowid"))
        match = sa.literal_column(fts.name).op("MATCH")(sa.bindparam("match", type_=sa.String()))
        return fts, fts.c.rowid, match
    return table, table.c.id, sa.literal_column(f"{table.name}.tsv").op("@@")(_to_tsquery("tsquery"))


def _to_tsquery(param: str) -> sa.ColumnElement[Any]:
    """PostgreSQL's ``to_tsquery('simple', ...)`` of the rendered query in parameter ``param``."""
    return sa.func.to_tsquery(
        sa.literal_column("'simple'::regconfig"), sa.bindparam(param, type_=sa.String())
    )


def _indexed_connections(stmt: sa.Select[Any]) -> sa.Select[Any]:
    """``stmt`` reading connections with their shells and live indexing runs (the connections a
    search finds rows in)."""
    return (
        stmt.select_from(Connection)
        .join(Shell, Shell.id == Connection.shell_pk)
        .join(IndexedRecording, IndexedRecording.connection_id == Connection.id)
    )


def _query_params(query: Query, dialect: str) -> dict[str, Any]:
    if dialect == "sqlite":
        return {"match": to_fts5(query)}
    return {"tsquery": to_tsquery(query), "loose": to_loose_tsquery(query)}


@dataclass(frozen=True, slots=True)
class _Bound:
    """A connection's place in the search order (newest first): its start time and id."""

    started_at: datetime
    id: int

    def newer_than(self, other: _Bound) -> bool:
        """Whether this connection comes before ``other`` in the search order."""
        return (self.started_at, self.id) > (other.started_at, other.id)

    def params(self, name: str) -> dict[str, Any]:
        """The values of the parameters of ``_after(name)`` and ``_through(name)``."""
        return {f"{name}_started_at": self.started_at, f"{name}_id": self.id}


def _after(name: str) -> sa.ColumnElement[bool]:
    """Connections that come after bound ``name`` (older, or as old with a lower id)."""
    started_at: sa.BindParameter[Any] = sa.bindparam(f"{name}_started_at")
    id_: sa.BindParameter[Any] = sa.bindparam(f"{name}_id")
    # The first term alone is a range on the started_at index: the database can use it.
    return sa.and_(
        Connection.started_at <= started_at,
        sa.or_(Connection.started_at < started_at, Connection.id < id_),
    )


def _through(name: str) -> sa.ColumnElement[bool]:
    """Connections that come before bound ``name``, and that one."""
    started_at: sa.BindParameter[Any] = sa.bindparam(f"{name}_started_at")
    id_: sa.BindParameter[Any] = sa.bindparam(f"{name}_id")
    return sa.and_(
        Connection.started_at >= started_at,
        sa.or_(Connection.started_at > started_at, Connection.id >= id_),
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a search statement's SQL depends on; every value it compares with is a parameter."""

    #: The filter fields set (``recorder.index.store.filter_values``), sorted.
    filters: tuple[str, ...]
    #: Only connections up to the bound ``last`` (a search that already has ``limit`` hits).
    last: bool = False
    #: Only connections after the bound ``previous`` (a window after the first).
    previous: bool = False
    #: Only connections up to the bound ``bound`` (a window before the last).
    bound: bool = False

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """The connections read: the filters', then the bounds'."""
        conditions = filter_conditions(dict.fromkeys(self.filters), bound=False)
        if self.last:
            conditions.append(_through("last"))
        if self.previous:
            conditions.append(_after("previous"))
        if self.bound:
            conditions.append(_through("bound"))
        return conditions


def _hit_columns(rows: sa.FromClause, kind: str) -> sa.Select[Any]:
    """The columns of a hit: the row's from ``rows`` (a kind's table, or lines of it), the rest
    from its connection and shell, in the order of ``_CONNECTION_ID`` to ``_STARTED_AT``."""
    exit_code = rows.c.exit_code if kind == "command" else sa.null()
    return sa.select(
        rows.c.connection_id,
        rows.c.offset,
        rows.c.text,
        rows.c.seq,
        exit_code.label("exit_code"),
        Connection.principal,
        Shell.shell_id,
        Shell.runtime_arn,
        Connection.started_at,
    )


@lru_cache(maxsize=STATEMENT_CACHE)
def _hits_statement(kind: str, dialect: str, shape: _Shape, lowest: bool) -> sa.Select[Any]:
    """The first ``limit`` (a parameter) hits of one kind among the connections ``shape`` selects."""
    model = _MODELS[kind]
    table: sa.Table = model.__table__
    stmt = _hit_columns(table, kind)
    source, ids, matches = _match(kind, dialect)
    stmt = stmt.select_from(source)
    if source is not table:
        stmt = stmt.join(table, table.c.id == ids)
    if lowest:
        # FTS5 seeks to this rowid: older rows of the word are not read at all.
        stmt = stmt.where(ids >= _lowest_row(kind, shape))
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
        .where(*shape.conditions())
        .order_by(
            Connection.started_at.desc(),
            Connection.id.desc(),
            table.c.offset,
            table.c.seq,
        )
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


@lru_cache(maxsize=STATEMENT_CACHE)
def _block_hits_statement(shape: _Shape) -> sa.Select[Any]:
    """The first ``limit`` output lines among the connections ``shape`` selects, by blocks
    (PostgreSQL, revision 0007): each live block of those connections is checked against the
    query loosened to its words (parameter ``loose``), and only the lines of the blocks that hold
    them are checked against the query itself (``tsquery``). A window of connections costs about
    a row per BLOCK_LINES lines, plus the lines of the blocks that match, instead of every line.
    The lines are a LATERAL subquery with an OFFSET, which PostgreSQL neither pulls up nor
    reorders: on its own it read every line of the window first and joined the blocks to them.
    """
    table: sa.Table = _MODELS["output"].__table__
    blocks = output_blocks
    _, _, matches = _match("output", "postgresql")
    lines = (
        sa.select(table.c.connection_id, table.c.offset, table.c.text, table.c.seq)
        .where(
            table.c.connection_id == blocks.c.connection_id,
            table.c.generation == blocks.c.generation,
            table.c.seq.between(blocks.c.first_seq, blocks.c.last_seq),
            matches,
        )
        .offset(0)
        .lateral("block_lines")
    )
    return (
        _indexed_connections(_hit_columns(lines, "output"))
        .join(
            blocks,
            sa.and_(
                blocks.c.connection_id == IndexedRecording.connection_id,
                blocks.c.generation == IndexedRecording.generation,
            ),
        )
        .join(lines, sa.true())
        .where(sa.literal_column(f"{blocks.name}.tsv").op("@@")(_to_tsquery("loose")), *shape.conditions())
        .order_by(Connection.started_at.desc(), Connection.id.desc(), lines.c.offset, lines.c.seq)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


def _lowest_row(kind: str, shape: _Shape) -> sa.ScalarSelect[Any]:
    """The smallest row id of ``kind`` among the window's live rows, or 0 (no bound) when unknown.

    Rows of a run are written in ``seq`` order with ever-growing ids, so each connection's
    smallest id is its row number 0; one index lookup per connection. A scalar subquery of the
    hit query: SQLite runs it once and hands its value to FTS5 as the rowid to seek to.
    """
    table: sa.Table = _MODELS[kind].__table__
    first = table.alias("first_row")
    with_rows = sa.func.count(IndexedRecording.connection_id)
    # Every connection with rows must have its row 0; if one does not, read from the start.
    lowest = sa.case(
        (with_rows == sa.func.count(first.c.id), sa.func.coalesce(sa.func.min(first.c.id), 0)), else_=0
    )
    return (
        _indexed_connections(sa.select(lowest))
        .outerjoin(
            first,
            sa.and_(
                first.c.connection_id == IndexedRecording.connection_id,
                first.c.generation == IndexedRecording.generation,
                first.c.seq == 0,
            ),
        )
        .where(*shape.conditions(), getattr(IndexedRecording, _COUNTS[kind]) > 0)
        .scalar_subquery()
    )


@lru_cache(maxsize=STATEMENT_CACHE)
def _bound_statement(shape: _Shape) -> sa.Select[Any]:
    """The connection ``offset`` (a parameter) places on from the first that ``shape`` selects."""
    return (
        _indexed_connections(sa.select(Connection.started_at, Connection.id))
        .where(*shape.conditions())
        .order_by(Connection.started_at.desc(), Connection.id.desc())
        .offset(sa.bindparam("offset", type_=sa.Integer()))
        .limit(1)
    )


@lru_cache(maxsize=STATEMENT_CACHE)
def _count_statement(kind: str, dialect: str) -> sa.Select[Any]:
    """How many rows of ``kind`` match, counting no further than ``cap`` (all generations)."""
    _, ids, matches = _match(kind, dialect)
    inner = sa.select(ids).where(matches).limit(sa.bindparam("cap", type_=sa.Integer())).subquery()
    return sa.select(sa.func.count()).select_from(inner)


#: A word no recording holds: PostgreSQL's estimate for it is what the planner guesses for any
#: word its statistics do not list as common (half the rarest listed word's share of the rows).
_UNLISTED_WORD = "recorderunlistedword"
#: A word's estimate must exceed the unlisted word's by this factor to count as known (a listed
#: word's share is at least twice the unlisted guess).
_KNOWN_FACTOR = 1.5


@lru_cache(maxsize=2 ** len(KINDS))
def _estimate_statement(kinds: tuple[str, ...]) -> sa.TextClause:
    """PostgreSQL's estimates (a plan, not a count) of the rows of each kind matching the tsquery,
    and matching a word no statistics list: one ``EXPLAIN`` of a UNION ALL, two branches a kind.

    One statement instead of two a kind: each was a round trip with its own planning, and the six
    of a three-kind search cost a third of a common word's search on the benchmark's archive.
    """
    branches = [
        f"SELECT id FROM {_MODELS[kind].__table__.name} WHERE tsv @@ to_tsquery('simple'::regconfig, {word})"
        for kind in kinds
        for word in ("CAST(:tsquery AS VARCHAR)", f"'{_UNLISTED_WORD}'")
    ]
    return sa.text("EXPLAIN (FORMAT JSON) " + " UNION ALL ".join(branches))


def _estimates(plan: Any, kinds: list[str]) -> dict[str, tuple[float, float]]:
    """Per kind, the planner's row estimate for the query and for an unlisted word (PostgreSQL),
    from the ``plan`` of ``_estimate_statement(kinds)``.

    A plan of another shape than one branch per SELECT gives no estimates: every kind is counted.
    """
    try:
        top = plan[0]["Plan"]
        branches = top["Plans"] if top["Node Type"] == "Append" else [top]
        rows = [float(branch["Plan Rows"]) for branch in branches]
    except (LookupError, TypeError, ValueError):
        return {}
    if len(rows) != 2 * len(kinds):
        return {}
    return {kind: (rows[2 * i], rows[2 * i + 1]) for i, kind in enumerate(kinds)}


def _few_rows(
    reads: Reads,
    kinds: list[str],
    dialect: str,
    params: dict[str, Any],
    cap: int,
    estimates: dict[str, tuple[float, float]],
) -> dict[str, bool]:
    """Per kind, whether fewer than ``cap`` of its rows match: read them in one query, not in windows.

    The kinds that need counting are counted together (on PostgreSQL, in one round trip). On
    PostgreSQL the planner's ``estimates`` (for the query, for an unlisted word) answer first
    when its statistics know the query's words as common: counting even ``cap`` rows of a common
    word builds the bitmap of all its rows first (the GIN index has no order), which cost most of
    such a search on the benchmark's archive. An estimate is trusted only when it is at least
    ``cap`` and well above the planner's guess for a word it does not list (on a large table that
    guess alone can pass ``cap``, and a rare word read in windows cost 20 times its count).
    Otherwise the count decides. Either answer gives the same hits, only the number of queries
    differs.
    """
    few = dict.fromkeys(kinds, False)
    counted = [kind for kind in kinds if not _known_common(estimates.get(kind), cap)]
    counts = reads.batch([(_count_statement(kind, dialect), {**params, "cap": cap}) for kind in counted])
    for kind, rows in zip(counted, counts, strict=True):
        few[kind] = rows[0][0] < cap
    return few


def _known_common(estimate: tuple[float, float] | None, cap: int) -> bool:
    """Whether the planner's estimate (for the query, for an unlisted word) says at least ``cap``
    rows, and the query's words are ones its statistics list (see ``_few_rows``)."""
    return estimate is not None and estimate[0] >= cap and estimate[0] > _KNOWN_FACTOR * estimate[1]


class _Windows:
    """One search's connection windows, newest first, each WINDOW_GROWTH x larger than the last.

    Windows are consecutive ranges of the search order, bounded by (started_at, id), so a window's
    hits all sort before the next window's. A window's bound (its last connection) is looked up
    once per search and shared by every kind searched: the kinds read the same windows.
    """

    def __init__(self, reads: Reads, filters: tuple[str, ...], params: dict[str, Any]) -> None:
        self._reads = reads
        self.filters = filters
        #: The search's filter and query parameter values (every statement of the search takes them).
        self.params = params
        #: Window n's last connection; None once a window takes all the connections left.
        self._bounds: list[_Bound | None] = []

    def _bound(self, n: int) -> _Bound | None:
        while len(self._bounds) <= n:
            previous = self._bounds[-1] if self._bounds else None
            if self._bounds and previous is None:
                return None
            size = FIRST_WINDOW * WINDOW_GROWTH ** len(self._bounds)
            params = {**self.params, "offset": size - 1}
            if previous is not None:
                params.update(previous.params("previous"))
            shape = _Shape(self.filters, previous=previous is not None)
            ends = self._reads.rows(_bound_statement(shape), params)
            self._bounds.append(_Bound(*ends[0]) if ends else None)
        return self._bounds[n]

    def each(self, last: _Bound | None) -> Iterator[tuple[_Shape, dict[str, Any]]]:
        """Each window in turn: its shape and the parameters of its bounds. ``last``, when given,
        is the last connection that can still hold a hit worth returning: later ones are not read."""
        params = dict(self.params)
        if last is not None:
            params.update(last.params("last"))
        previous: _Bound | None = None
        for n in count():
            bound = self._bound(n)
            window = dict(params)
            if previous is not None:
                window.update(previous.params("previous"))
            shape = _Shape(self.filters, last=last is not None, previous=previous is not None)
            if bound is None or (last is not None and not bound.newer_than(last)):
                # The rest of the connections (up to ``last``): the last window.
                yield shape, window
                return
            window.update(bound.params("bound"))
            yield replace(shape, bound=True), window
            previous = bound


def _kind_hits(
    reads: Reads,
    kind: str,
    dialect: str,
    windows: _Windows,
    limit: int,
    last: _Bound | None,
    few: bool,
) -> list[Any]:
    """The first ``limit`` hits of one kind, reading the newest connections first.

    A word in ``few`` rows is read in one query. A word in many rows is read window by window,
    newest connections first, so its older hits are never read: windows come in the search
    order, and once ``limit`` hits are found no later window can hold one that sorts before them.
    """
    if few:
        whole = dict(windows.params, limit=limit)
        if last is not None:
            whole.update(last.params("last"))
        shape = _Shape(windows.filters, last=last is not None)
        return reads.rows(_hits_statement(kind, dialect, shape, False), whole)
    found: list[Any] = []
    for shape, window in windows.each(last):
        if dialect == "postgresql" and kind == "output":
            statement = _block_hits_statement(shape)
        else:
            statement = _hits_statement(kind, dialect, shape, dialect == "sqlite")
        found.extend(reads.rows(statement, {**window, "limit": limit}))
        if len(found) >= limit:
            break
    return found


#: For the rest of a search's transaction on PostgreSQL: no sequential scans, no hash or merge
#: joins. Every statement of a search reads a bounded set of rows (a few rows, a window of
#: connections, or the connections up to the last hit) and should reach the rest by index
#: lookups. The planner guesses a rare word's rows from its statistics and with a LIMIT in the
#: query may read a whole table rather than the GIN index (22 ms against 0.1 ms on 30,000
#: commands, measured); and overestimating them, it hashed every indexed recording to join 82
#: rows to (3 of the 3.4 ms of that statement on the benchmark's 10,000 recordings, and growing
#: with the archive). And no JIT compilation: the planner's cost of a common word's rows (and any
#: plan costed with a disabled node) passes ``jit_above_cost``, so the server compiled each such
#: statement, even the estimates' ``EXPLAIN``, for a few rows read: 0.6 ms of the 0.9 ms that
#: ``EXPLAIN`` took for ``kube*`` on the benchmark's archive. One statement, one round trip;
#: ``set_config(..., true)`` is SET LOCAL.
_PG_PLANNER_SETTINGS = sa.text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true), "
    "set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)"
)


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
    # Rows with their kind, in no order yet: hits are built only for the ``limit`` returned.
    found: list[tuple[tuple[float, int, float, int, int], str, Any]] = []
    dialect = index.engine.dialect.name
    with index.reading() as session:
        # Neither the ORM nor SQLAlchemy's rows: these are plain SELECTs of columns, read from
        # the driver (``recorder.index.reads``); the ORM's result handling cost more client CPU
        # per search than building the hits, and Core's about a fifth of a PostgreSQL search.
        reads = Reads(session.connection())
        values = filter_values(f)
        params = {**filter_params(values), **_query_params(parsed, dialect)}
        windows = _Windows(reads, tuple(sorted(values)), params)
        searched = _kinds(kinds)
        estimates = {}
        if dialect == "postgresql":
            # The settings, then the estimates under them: one round trip.
            estimate = _estimate_statement(tuple(searched))
            _, plan = reads.batch([(_PG_PLANNER_SETTINGS, {}), (estimate, params)])
            estimates = _estimates(plan[0][0], searched)
        few = _few_rows(reads, searched, dialect, params, WINDOWED_FROM * limit, estimates)
        for kind in searched:
            # Once ``limit`` hits are in hand, a connection after the last of them cannot add one.
            last = None
            if len(found) >= limit:
                found.sort(key=itemgetter(0))
                del found[limit:]
                row = found[-1][2]
                last = _Bound(row[_STARTED_AT], row[_CONNECTION_ID])
            found.extend(
                (_order(kind, row), kind, row)
                for row in _kind_hits(reads, kind, dialect, windows, limit, last, few[kind])
            )
    found.sort(key=itemgetter(0))
    # Match spans only for the hits returned (tokenizing every candidate's text costs more).
    return [
        Hit(
            connection_id=row[_CONNECTION_ID],
            kind=kind,
            offset=row[_OFFSET],
            text=row[_TEXT],
            exit_code=row[_EXIT_CODE],
            principal=row[_PRINCIPAL],
            shell_id=row[_SHELL_ID],
            runtime_arn=row[_RUNTIME_ARN],
            started_at=row[_STARTED_AT],
            spans=tuple(match_spans(row[_TEXT], parsed)),
            seq=row[_SEQ],
        )
        for _, kind, row in found[:limit]
    ]

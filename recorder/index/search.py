"""Full-text search over commands, output lines and typed input, on SQLite (FTS5) and PostgreSQL.

One query interface for both databases: the query is parsed once (``recorder.index.query``),
rendered to FTS5 MATCH or ``to_tsquery('simple', ...)``, and run against the live generation of
each connection's rows, with the same connection filters as ``Index.list_connections``. Hits come
newest connection first, then in time order within a connection (ties: commands, output, input,
then row order), so both databases return the same list for the same data. Match spans are
computed here, from the hit text, so highlighting does not depend on the database either.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

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


def _statement(
    kind: str, query: Query, dialect: str, filters: ConnectionFilter, limit: int
) -> sa.Select[Any]:
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
    if dialect == "sqlite":
        fts = sa.table(f"{table.name}_fts", sa.column("rowid"))
        stmt = stmt.select_from(fts).join(table, table.c.id == fts.c.rowid)
        stmt = stmt.where(sa.literal_column(fts.name).op("MATCH")(sa.bindparam("match", to_fts5(query))))
    else:
        tsquery = sa.func.to_tsquery(
            sa.literal_column("'simple'::regconfig"), sa.bindparam("tsquery", to_tsquery(query))
        )
        stmt = stmt.select_from(table).where(sa.literal_column(f"{table.name}.tsv").op("@@")(tsquery))
    stmt = (
        stmt.join(
            IndexedRecording,
            sa.and_(
                IndexedRecording.connection_id == table.c.connection_id,
                IndexedRecording.generation == table.c.generation,
            ),
        )
        .join(Connection, Connection.id == table.c.connection_id)
        .join(Shell, Shell.id == Connection.shell_pk)
        .where(*connection_conditions(filters))
        .order_by(
            Connection.started_at.desc(),
            Connection.id.desc(),
            table.c.offset,
            table.c.seq,
        )
        .limit(limit)
    )
    return stmt


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
    with index.session() as session:
        for kind in _kinds(kinds):
            stmt = _statement(kind, parsed, index.engine.dialect.name, f, limit)
            for row in session.execute(stmt):
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
                        spans=tuple(match_spans(row.text, parsed)),
                        seq=row.seq,
                    )
                )
    hits.sort(key=Hit.sort_key)
    return hits[:limit]

"""The index store: short synchronous transactions, safe to call from worker threads.

The proxy is asyncio and calls these through ``asyncio.to_thread``; every method opens its own
Session (one transaction) and returns plain frozen dataclasses, never ORM objects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from recorder.errors import (
    ConfigError,
    ConnectionNotActive,
    IndexStoreError,
    IndexValueTooLong,
    UnknownConnection,
)
from recorder.index.db import READ_ONLY, describe, writer_lock, writers_turn
from recorder.index.models import (
    CAST_VERSIONS,
    COUNTER_NAMES,
    MAX_ARN,
    MAX_CLIENT_ADDRESS,
    MAX_PRINCIPAL,
    MAX_QUALIFIER,
    MAX_REASON,
    MAX_RECORDING_PATH,
    MAX_SESSION_ID,
    MAX_SHELL_ID,
    MAX_SOURCE_NAME,
    MAX_UPSTREAM,
    CommandEntry,
    Connection,
    ConnectionStatus,
    EndReason,
    Import,
    IndexedRecording,
    RefusedAttempt,
    Shell,
)
from recorder.index.rows import (
    WRITE_BATCH_ROWS,
    CommandLike,
    CommandRow,
    IndexedRow,
    SearchRowWriter,
    TextLike,
    table_of,
    upsert_sql,
)
from recorder.index.vocab import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from recorder.logfmt import get_logger
from recorder.protocol.ids import DEFAULT_QUALIFIER

log = get_logger(__name__)

#: Escape character in the LIKE patterns built from globs.
LIKE_ESCAPE = "\\"
#: Marks a refused attempt's value that was cut to fit its column.
CLIPPED_MARK = "…"

#: ``upstream`` and ``client_address`` of a connection made by ``recorder import``.
IMPORT_UPSTREAM = "import"
IMPORT_CLIENT_ADDRESS = "import"

_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
_SUPPORTED_DIALECTS = frozenset({"sqlite", "postgresql"})
_SHELL_KEY = ("runtime_arn", "qualifier", "session_id", "shell_id")
_CONNECTIONS = table_of(Connection)
_IMPORTS = table_of(Import)
_SHELLS = table_of(Shell)


def _refresh_shell_statements() -> tuple[sa.Delete, sa.Update]:
    """Drop a shell with no connection left; set a shell's times and last exit code from its
    connections, read by the database itself (two statements, built once, whatever it holds)."""
    conns = _CONNECTIONS
    shell_pk = sa.bindparam("shell_pk", type_=sa.Integer)
    own = conns.c.shell_pk == shell_pk
    drop = sa.delete(_SHELLS).where(_SHELLS.c.id == shell_pk, ~sa.exists().where(own))
    first = sa.select(sa.func.min(conns.c.started_at)).where(own)
    last = sa.select(sa.func.max(sa.func.coalesce(conns.c.ended_at, conns.c.started_at))).where(own)
    exit_code = (
        sa.select(conns.c.exit_code)
        .where(own, conns.c.exit_code.is_not(None))
        .order_by(conns.c.started_at.desc(), conns.c.id.desc())
        .limit(1)
    )
    refresh = (
        sa.update(_SHELLS)
        .where(_SHELLS.c.id == shell_pk)
        .values(
            first_seen=first.scalar_subquery(),
            last_seen=last.scalar_subquery(),
            last_exit_code=exit_code.scalar_subquery(),
        )
    )
    return drop, refresh


_DROP_EMPTY_SHELL, _REFRESH_SHELL = _refresh_shell_statements()
#: Insert a shell, or move its last_seen forward (never back).
_UPSERT_SHELL = upsert_sql(
    _SHELLS,
    [*_SHELL_KEY, "first_seen", "last_seen"],
    _SHELL_KEY,
    "last_seen = CASE WHEN shells.last_seen < excluded.last_seen "
    "THEN excluded.last_seen ELSE shells.last_seen END",
    returning="id",
)


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    """One connection with its shell's identity, as the index holds it."""

    id: int
    shell_pk: int
    runtime_arn: str
    qualifier: str
    session_id: str
    shell_id: str
    principal: str | None
    client_address: str
    upstream: str
    started_at: datetime
    ended_at: datetime | None
    status: ConnectionStatus
    end_reason: EndReason | None
    close_code: int | None
    exit_code: int | None
    #: ``bytes_<channel>`` and ``frames_<channel>`` for every channel in models.CHANNELS (read-only;
    #: left out of the hash, which a mapping cannot join).
    counters: Mapping[str, int] = field(hash=False)
    invalid_utf8: int
    recording_path: str
    recording_size: int | None
    sha256: str | None
    cast_version: int
    cols: int
    rows: int
    reconnected: bool
    bytes_dropped: int

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or None while the connection is active."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class ShellRow:
    """One shell (a PTY named by shellId on a runtime session) across its connections."""

    id: int
    runtime_arn: str
    qualifier: str
    session_id: str
    shell_id: str
    first_seen: datetime
    last_seen: datetime
    last_exit_code: int | None


@dataclass(frozen=True, slots=True)
class RefusalRow:
    """One refused upgrade request."""

    id: int
    at: datetime
    principal: str | None
    client_address: str
    runtime_arn: str | None
    qualifier: str | None
    shell_id: str | None
    session_id: str | None
    http_status: int
    reason: str


@dataclass(frozen=True, slots=True)
class ImportRow:
    """Where an imported connection came from."""

    id: int
    connection_id: int
    source_name: str
    sha256: str
    imported_at: datetime
    skipped_lines: int
    adjusted_lines: int


@dataclass(frozen=True, slots=True)
class ConnectionFilter:
    """What an auditor asks for; every field narrows the listing, newest first.

    ``runtime`` is a glob over the runtime ARN (``*`` any run, ``?`` one character; matched
    case-insensitively). ``failed`` keeps connections whose shell exited non-zero, that ended in
    an error or a recording failure, or that a crash interrupted; a connection that ended without
    an exit code (closed, dropped, kicked) left its shell alive and is not a failure.
    ``since`` is inclusive and ``until`` exclusive, both on ``started_at``.
    """

    principal: str | None = None
    runtime: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    exit_code: int | None = None
    failed: bool = False
    status: ConnectionStatus | None = None
    shell_id: str | None = None
    session_id: str | None = None
    limit: int = DEFAULT_LIST_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIST_LIMIT:
            raise ConfigError(f"limit must be between 1 and {MAX_LIST_LIMIT}, not {self.limit}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ConfigError(f"{name} must carry a timezone, e.g. 2025-01-31T00:00:00Z")


def glob_to_like(glob: str) -> str:
    """Translate a ``*``/``?`` glob into a LIKE pattern, escaping ``%``, ``_`` and the escape itself."""
    out: list[str] = []
    for char in glob:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in ("%", "_", LIKE_ESCAPE):
            out.append(LIKE_ESCAPE + char)
        else:
            out.append(char)
    return "".join(out)


#: Prefix of a filter's parameter names in a statement built by :func:`filter_conditions`.
FILTER_PARAM = "filter_"


def filter_values(f: ConnectionFilter) -> dict[str, Any]:
    """The filter's fields that narrow a listing, by name, as the database compares them.

    ``failed`` has no value of its own (it adds a fixed condition); it is present when set.
    """
    values: dict[str, Any] = {}
    for name in ("principal", "since", "until", "exit_code", "status", "shell_id", "session_id"):
        value = getattr(f, name)
        if value is not None:
            values[name] = value
    if f.runtime is not None:
        values["runtime"] = glob_to_like(f.runtime)
    if f.failed:
        values["failed"] = True
    return values


def filter_conditions(values: Mapping[str, Any], *, bound: bool = True) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions of :func:`filter_values`, over ``Connection`` joined with its ``Shell``.

    With ``bound`` the values are in the conditions; without, only the names of ``values`` count
    and each value is a parameter named ``FILTER_PARAM + name``, given at execution: one statement
    serves every filter that sets the same fields (SQLAlchemy then builds and caches it once).
    """

    def param(name: str) -> sa.BindParameter[Any]:
        return sa.bindparam(FILTER_PARAM + name, values[name] if bound else None)

    conditions: list[sa.ColumnElement[bool]] = []
    if "principal" in values:
        conditions.append(Connection.principal == param("principal"))
    if "runtime" in values:
        conditions.append(Shell.runtime_arn.ilike(param("runtime"), escape=LIKE_ESCAPE))
    if "since" in values:
        conditions.append(Connection.started_at >= param("since"))
    if "until" in values:
        conditions.append(Connection.started_at < param("until"))
    if "exit_code" in values:
        conditions.append(Connection.exit_code == param("exit_code"))
    if "failed" in values:
        conditions.append(
            sa.or_(
                Connection.exit_code != 0,  # NULL != 0 is not true: no exit code is no failure
                Connection.status == ConnectionStatus.INTERRUPTED,
                # Not IN (...): an IN list is filled in by SQLAlchemy at each execution, and
                # search runs its statements on the driver (recorder.index.reads).
                Connection.end_reason == EndReason.ERROR,
                Connection.end_reason == EndReason.RECORD_FAILURE,
            )
        )
    if "status" in values:
        conditions.append(Connection.status == param("status"))
    if "shell_id" in values:
        conditions.append(Shell.shell_id == param("shell_id"))
    if "session_id" in values:
        conditions.append(Shell.session_id == param("session_id"))
    return conditions


def filter_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """The execution parameters of conditions built by ``filter_conditions(values, bound=False)``."""
    return {FILTER_PARAM + name: value for name, value in values.items() if name != "failed"}


def connection_conditions(f: ConnectionFilter) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions of a filter, over ``Connection`` joined with its ``Shell`` (limit aside)."""
    return filter_conditions(filter_values(f))


def _check_length(field: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise IndexValueTooLong(field, len(value), limit)
    return value


def _check_key_part(field: str, value: str, limit: int) -> str:
    if not value:
        raise ValueError(f"{field} must not be empty")
    return _check_length(field, value, limit)


def _clip(value: str | None, limit: int) -> str | None:
    """Cut a value sent by a refused client to its column, marking the cut (refusals are never lost)."""
    if value is None or len(value) <= limit:
        return value
    return value[: limit - len(CLIPPED_MARK)] + CLIPPED_MARK


def _aware(field: str, value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware")
    return value


def _counter_values(counters: Mapping[str, int]) -> dict[str, int]:
    unknown = set(counters) - set(COUNTER_NAMES)
    if unknown:
        raise ValueError(f"unknown counters {sorted(unknown)}; expected names from {COUNTER_NAMES}")
    for name, value in counters.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"counter {name} must be a non-negative integer, not {value!r}")
    return dict(counters)


def _check_size(cols: int, rows: int) -> None:
    if cols <= 0 or rows <= 0:
        raise ValueError(f"terminal size must be positive, not {cols}x{rows}")


def _check_sha256(value: str | None) -> str | None:
    if value is not None and not _SHA256_RE.match(value):
        raise ValueError(f"sha256 must be 64 lowercase hex digits, not {value!r}")
    return value


def _non_negative(field: str, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise ValueError(f"{field} must not be negative")
    return value


def _row(conn: Connection, shell: Shell) -> ConnectionRow:
    return ConnectionRow(
        id=conn.id,
        shell_pk=shell.id,
        runtime_arn=shell.runtime_arn,
        qualifier=shell.qualifier,
        session_id=shell.session_id,
        shell_id=shell.shell_id,
        principal=conn.principal,
        client_address=conn.client_address,
        upstream=conn.upstream,
        started_at=conn.started_at,
        ended_at=conn.ended_at,
        status=conn.status,
        end_reason=conn.end_reason,
        close_code=conn.close_code,
        exit_code=conn.exit_code,
        counters=MappingProxyType({name: getattr(conn, name) for name in COUNTER_NAMES}),
        invalid_utf8=conn.invalid_utf8,
        recording_path=conn.recording_path,
        recording_size=conn.recording_size,
        sha256=conn.sha256,
        cast_version=conn.cast_version,
        cols=conn.cols,
        rows=conn.rows,
        reconnected=conn.reconnected,
        bytes_dropped=conn.bytes_dropped,
    )


def _shell_row(shell: Shell) -> ShellRow:
    return ShellRow(
        id=shell.id,
        runtime_arn=shell.runtime_arn,
        qualifier=shell.qualifier,
        session_id=shell.session_id,
        shell_id=shell.shell_id,
        first_seen=shell.first_seen,
        last_seen=shell.last_seen,
        last_exit_code=shell.last_exit_code,
    )


def _refusal_row(row: RefusedAttempt) -> RefusalRow:
    return RefusalRow(
        id=row.id,
        at=row.at,
        principal=row.principal,
        client_address=row.client_address,
        runtime_arn=row.runtime_arn,
        qualifier=row.qualifier,
        shell_id=row.shell_id,
        session_id=row.session_id,
        http_status=row.http_status,
        reason=row.reason,
    )


class Index:
    """Read and write the index; each method is one short transaction on its own Session."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in _SUPPORTED_DIALECTS:
            raise IndexStoreError(f"unsupported index database {engine.dialect.name!r}")
        self._engine = engine
        self._dialect = engine.dialect.name
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        reader = engine.execution_options(**{READ_ONLY: True})
        self._read_sessions = sessionmaker(reader, expire_on_commit=False)
        #: Writers to a SQLite file take turns here first (see WriterLock); None otherwise.
        self._writer_lock = writer_lock(engine)

    @property
    def engine(self) -> Engine:
        """The engine this index writes to."""
        return self._engine

    def session(self) -> AbstractContextManager[Session]:
        """One transaction for statements built outside the store; errors become IndexStoreError."""
        return self._transaction()

    def reading(self) -> AbstractContextManager[Session]:
        """One transaction that only reads (search): on SQLite it waits for no writer."""
        return self._transaction(read_only=True)

    @contextmanager
    def _transaction(self, *, read_only: bool = False) -> Iterator[Session]:
        sessions = self._read_sessions if read_only else self._sessions
        try:
            with writers_turn(None if read_only else self._writer_lock), sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            message = describe(exc)
            if "no such table" in message or "does not exist" in message:
                message += " (run `recorder db upgrade`)"
            raise IndexStoreError(f"index database error: {message}") from None

    # -- writes from the proxy -------------------------------------------------------------

    def open_connection(
        self,
        *,
        runtime_arn: str,
        qualifier: str | None,
        session_id: str,
        shell_id: str,
        principal: str | None,
        client_address: str,
        upstream: str,
        started_at: datetime,
        recording_path: str,
        cast_version: int,
        cols: int,
        rows: int,
    ) -> int:
        """Record a new active connection (creating or touching its shell) and return its id.

        ``qualifier`` None means the protocol's default endpoint; ``principal`` None means the
        proxy runs without authentication.
        """
        key = {
            "runtime_arn": _check_key_part("runtime_arn", runtime_arn, MAX_ARN),
            "qualifier": _check_key_part("qualifier", qualifier or DEFAULT_QUALIFIER, MAX_QUALIFIER),
            "session_id": _check_key_part("session_id", session_id, MAX_SESSION_ID),
            "shell_id": _check_key_part("shell_id", shell_id, MAX_SHELL_ID),
        }
        if cast_version not in CAST_VERSIONS:
            raise ValueError(f"cast_version must be one of {CAST_VERSIONS}, not {cast_version}")
        _check_size(cols, rows)
        conn = Connection(
            principal=None if principal is None else _check_length("principal", principal, MAX_PRINCIPAL),
            client_address=_check_length("client_address", client_address, MAX_CLIENT_ADDRESS),
            upstream=_check_length("upstream", upstream, MAX_UPSTREAM),
            started_at=_aware("started_at", started_at),
            status=ConnectionStatus.ACTIVE,
            recording_path=_check_length("recording_path", recording_path, MAX_RECORDING_PATH),
            cast_version=cast_version,
            cols=cols,
            rows=rows,
        )
        with self._transaction() as session:
            conn.shell_pk = self._upsert_shell(session, key, started_at)
            session.add(conn)
            session.flush()
            conn_id = conn.id
        log.debug("index.connection_opened", id=conn_id, principal=principal, shell_id=shell_id)
        return conn_id

    def update_connection_ids(self, conn_id: int, session_id: str, shell_id: str) -> None:
        """Move a connection to the shell the upstream named (its 101 ids), merging shell rows."""
        _check_key_part("session_id", session_id, MAX_SESSION_ID)
        _check_key_part("shell_id", shell_id, MAX_SHELL_ID)
        with self._transaction() as session:
            conn, shell = self._load(session, conn_id)
            if (shell.session_id, shell.shell_id) == (session_id, shell_id):
                return
            key = {
                "runtime_arn": shell.runtime_arn,
                "qualifier": shell.qualifier,
                "session_id": session_id,
                "shell_id": shell_id,
            }
            old_pk = shell.id
            new_pk = self._upsert_shell(session, key, conn.started_at)
            session.execute(sa.update(Connection).where(Connection.id == conn_id).values(shell_pk=new_pk))
            self._refresh_shell(session, new_pk)
            self._refresh_shell(session, old_pk)
        log.debug("index.connection_moved", id=conn_id, session_id=session_id, shell_id=shell_id)

    def finish_connection(
        self,
        conn_id: int,
        *,
        ended_at: datetime,
        status: ConnectionStatus,
        end_reason: EndReason,
        close_code: int | None,
        exit_code: int | None,
        counters: Mapping[str, int],
        invalid_utf8: int,
        recording_size: int | None,
        sha256: str | None,
        reconnected: bool,
        bytes_dropped: int,
        cols: int | None = None,
        rows: int | None = None,
    ) -> None:
        """Record how an active connection ended; the shell's last_seen and last exit code follow.

        ``cols``/``rows``, when given, replace the start size recorded at open (the proxy may learn
        it only from the client's first resize).
        """
        status = ConnectionStatus(status)
        if status is ConnectionStatus.ACTIVE:
            raise ValueError("a finished connection cannot be active")
        values: dict[str, Any] = {
            **_counter_values(counters),
            "status": status,
            "end_reason": EndReason(end_reason),
            "close_code": close_code,
            "exit_code": exit_code,
            "invalid_utf8": _non_negative("invalid_utf8", invalid_utf8),
            "recording_size": _non_negative("recording_size", recording_size),
            "sha256": _check_sha256(sha256),
            "reconnected": bool(reconnected),
            "bytes_dropped": _non_negative("bytes_dropped", bytes_dropped),
        }
        if (cols is None) != (rows is None):
            raise ValueError("give both cols and rows, or neither")
        if cols is not None and rows is not None:
            _check_size(cols, rows)
            values.update(cols=cols, rows=rows)
        self._end(conn_id, _aware("ended_at", ended_at), None, values)
        log.debug("index.connection_finished", id=conn_id, status=status.value, exit_code=exit_code)

    def active_connections(self) -> list[ConnectionRow]:
        """Connections still marked active (after a crash: the ones to recover), oldest first."""
        query = self._select().where(Connection.status == ConnectionStatus.ACTIVE).order_by(Connection.id)
        with self._transaction(read_only=True) as session:
            return [_row(conn, shell) for conn, shell in session.execute(query).tuples()]

    def unindexed_connections(self) -> list[int]:
        """Ids of connections that ended but were never indexed for search, oldest first.

        A proxy stopped while indexing (or killed) leaves some; the next one indexes them.
        """
        query = (
            sa.select(Connection.id)
            .outerjoin(IndexedRecording, IndexedRecording.connection_id == Connection.id)
            .where(Connection.status != ConnectionStatus.ACTIVE, IndexedRecording.connection_id.is_(None))
            .order_by(Connection.id)
        )
        with self._transaction(read_only=True) as session:
            return list(session.scalars(query))

    def mark_interrupted(
        self,
        conn_id: int,
        *,
        ended_at: datetime | None = None,
        duration: float | None = None,
        recording_size: int | None = None,
        sha256: str | None = None,
        counters: Mapping[str, int] | None = None,
        end_reason: EndReason | None = None,
    ) -> None:
        """Close an active connection found after a crash; give ``ended_at`` or ``duration`` (seconds)."""
        if (ended_at is None) == (duration is None):
            raise ValueError("give exactly one of ended_at and duration")
        if duration is not None and not (math.isfinite(duration) and duration >= 0):
            raise ValueError(f"duration must be a finite non-negative number, not {duration}")
        values: dict[str, Any] = {
            **_counter_values(counters or {}),
            "status": ConnectionStatus.INTERRUPTED,
            "end_reason": None if end_reason is None else EndReason(end_reason),
            "recording_size": _non_negative("recording_size", recording_size),
            "sha256": _check_sha256(sha256),
        }
        end = None if ended_at is None else _aware("ended_at", ended_at)
        self._end(conn_id, end, duration, values)
        log.info("index.connection_interrupted", id=conn_id)

    def record_refusal(
        self,
        *,
        at: datetime,
        principal: str | None,
        client_address: str,
        runtime_arn: str | None,
        qualifier: str | None,
        shell_id: str | None,
        session_id: str | None,
        http_status: int,
        reason: str,
    ) -> int:
        """Record a refused upgrade request; over-long client values are clipped, never refused."""
        if not 400 <= http_status <= 599:
            raise ValueError(f"a refusal has a 4xx or 5xx status, not {http_status}")
        row = RefusedAttempt(
            at=_aware("at", at),
            principal=_clip(principal, MAX_PRINCIPAL),
            client_address=_clip(client_address, MAX_CLIENT_ADDRESS),
            runtime_arn=_clip(runtime_arn, MAX_ARN),
            qualifier=_clip(qualifier, MAX_QUALIFIER),
            shell_id=_clip(shell_id, MAX_SHELL_ID),
            session_id=_clip(session_id, MAX_SESSION_ID),
            http_status=http_status,
            reason=_clip(reason, MAX_REASON),
        )
        with self._transaction() as session:
            session.add(row)
            session.flush()
            return row.id

    # -- reads for the auditor tools -------------------------------------------------------

    def get_connection(self, conn_id: int) -> ConnectionRow | None:
        """One connection by id, or None."""
        with self._transaction(read_only=True) as session:
            found = session.execute(self._select().where(Connection.id == conn_id)).tuples().first()
            return None if found is None else _row(*found)

    def get_shell(self, shell_pk: int) -> ShellRow | None:
        """One shell by its row id (``ConnectionRow.shell_pk``), or None."""
        with self._transaction(read_only=True) as session:
            shell = session.get(Shell, shell_pk)
            return None if shell is None else _shell_row(shell)

    def shell_connections(self, shell_pk: int) -> list[ConnectionRow]:
        """A shell's connections in the order they started (the order a shell replays in)."""
        query = (
            self._select()
            .where(Connection.shell_pk == shell_pk)
            .order_by(Connection.started_at, Connection.id)
        )
        with self._transaction(read_only=True) as session:
            return [_row(conn, shell) for conn, shell in session.execute(query).tuples()]

    def list_connections(self, filters: ConnectionFilter | None = None) -> list[ConnectionRow]:
        """Connections matching ``filters``, newest first, at most ``filters.limit``."""
        f = filters or ConnectionFilter()
        query = self._select().where(*connection_conditions(f))
        query = query.order_by(Connection.started_at.desc(), Connection.id.desc()).limit(f.limit)
        with self._transaction(read_only=True) as session:
            return [_row(conn, shell) for conn, shell in session.execute(query).tuples()]

    def list_refusals(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        principal: str | None = None,
        runtime: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> list[RefusalRow]:
        """Refused attempts, newest first (``since`` inclusive, ``until`` exclusive, ``runtime`` a glob)."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ConfigError(f"limit must be between 1 and {MAX_LIST_LIMIT}, not {limit}")
        query = sa.select(RefusedAttempt)
        if principal is not None:
            query = query.where(RefusedAttempt.principal == principal)
        if runtime is not None:
            query = query.where(RefusedAttempt.runtime_arn.ilike(glob_to_like(runtime), escape=LIKE_ESCAPE))
        if since is not None:
            query = query.where(RefusedAttempt.at >= _aware("since", since))
        if until is not None:
            query = query.where(RefusedAttempt.at < _aware("until", until))
        query = query.order_by(RefusedAttempt.at.desc(), RefusedAttempt.id.desc()).limit(limit)
        with self._transaction(read_only=True) as session:
            return [_refusal_row(row) for row in session.scalars(query)]

    # -- search rows and imports -----------------------------------------------------------

    def search_writer(self, conn_id: int, *, batch_rows: int = WRITE_BATCH_ROWS) -> SearchRowWriter:
        """Start an indexing run of a connection: add rows, then commit (see ``recorder.index.rows``)."""
        return SearchRowWriter(
            self._transaction, self._dialect, conn_id, batch_rows=batch_rows, reading=self.reading
        )

    def replace_search_rows(
        self,
        conn_id: int,
        commands: Iterable[CommandLike],
        lines: Iterable[TextLike],
        inputs: Iterable[TextLike],
        *,
        problem_count: int = 0,
        error: str | None = None,
    ) -> IndexedRow | None:
        """Replace a connection's commands, output lines and typed input at once (idempotent).

        Returns the live run, or None when a run that started later committed first.
        """
        writer = self.search_writer(conn_id)
        try:
            writer.add_commands(commands)
            writer.add_lines(lines)
            writer.add_inputs(inputs)
        except BaseException:
            writer.discard()
            raise
        return writer.commit(problem_count=problem_count, error=error)

    def indexed(self, conn_id: int) -> IndexedRow | None:
        """The live indexing run of a connection, or None if it was never indexed for search."""
        with self._transaction(read_only=True) as session:
            row = session.get(IndexedRecording, conn_id)
            if row is None:
                return None
            return IndexedRow(
                connection_id=row.connection_id,
                generation=row.generation,
                indexed_at=row.indexed_at,
                command_count=row.command_count,
                line_count=row.line_count,
                input_count=row.input_count,
                problem_count=row.problem_count,
                error=row.error,
            )

    def connection_commands(self, conn_id: int) -> list[CommandRow]:
        """The commands of a connection's live indexing run, in the order they were typed."""
        query = (
            sa.select(CommandEntry)
            .join(
                IndexedRecording,
                sa.and_(
                    IndexedRecording.connection_id == CommandEntry.connection_id,
                    IndexedRecording.generation == CommandEntry.generation,
                ),
            )
            .where(CommandEntry.connection_id == conn_id)
            .order_by(CommandEntry.seq)
        )
        with self._transaction(read_only=True) as session:
            return [
                CommandRow(
                    connection_id=c.connection_id,
                    seq=c.seq,
                    offset=c.offset,
                    text=c.text,
                    exit_code=c.exit_code,
                    output_preview=c.output_preview,
                    end_offset=c.end_offset,
                )
                for c in session.scalars(query)
            ]

    def find_recording(self, sha256: str) -> int | None:
        """The connection whose recording has this SHA-256 (imported or recorded here), or None."""
        _check_sha256(sha256)
        with self._transaction(read_only=True) as session:
            imported = session.execute(
                sa.select(Import.connection_id).where(Import.sha256 == sha256)
            ).scalar()
            if imported is not None:
                return int(imported)
            recorded = session.execute(
                sa.select(Connection.id).where(Connection.sha256 == sha256).order_by(Connection.id).limit(1)
            ).scalar()
            return None if recorded is None else int(recorded)

    def get_import(self, conn_id: int) -> ImportRow | None:
        """Where an imported connection came from, or None if it was not imported."""
        with self._transaction(read_only=True) as session:
            row = session.execute(sa.select(Import).where(Import.connection_id == conn_id)).scalar()
            if row is None:
                return None
            return ImportRow(
                id=row.id,
                connection_id=row.connection_id,
                source_name=row.source_name,
                sha256=row.sha256,
                imported_at=row.imported_at,
                skipped_lines=row.skipped_lines,
                adjusted_lines=row.adjusted_lines,
            )

    def import_connection(
        self,
        *,
        source_name: str,
        sha256: str,
        recording_path: str,
        recording_size: int,
        cast_version: int,
        cols: int,
        rows: int,
        started_at: datetime,
        ended_at: datetime,
        exit_code: int | None,
        principal: str | None,
        runtime_arn: str,
        qualifier: str | None,
        session_id: str,
        shell_id: str,
        counters: Mapping[str, int],
        skipped_lines: int,
        adjusted_lines: int,
    ) -> int:
        """Record a recording made elsewhere as an ended connection (upstream "import"); returns its id."""
        key = {
            "runtime_arn": _check_key_part("runtime_arn", runtime_arn, MAX_ARN),
            "qualifier": _check_key_part("qualifier", qualifier or DEFAULT_QUALIFIER, MAX_QUALIFIER),
            "session_id": _check_key_part("session_id", session_id, MAX_SESSION_ID),
            "shell_id": _check_key_part("shell_id", shell_id, MAX_SHELL_ID),
        }
        if cast_version not in CAST_VERSIONS:
            raise ValueError(f"cast_version must be one of {CAST_VERSIONS}, not {cast_version}")
        _check_size(cols, rows)
        started_at = _aware("started_at", started_at)
        ended_at = _aware("ended_at", ended_at)
        if ended_at < started_at:
            raise ValueError("ended_at must not be before started_at")
        conn = {
            "principal": None if principal is None else _check_length("principal", principal, MAX_PRINCIPAL),
            "client_address": IMPORT_CLIENT_ADDRESS,
            "upstream": IMPORT_UPSTREAM,
            "started_at": started_at,
            "ended_at": ended_at,
            "status": ConnectionStatus.ENDED,
            "end_reason": None if exit_code is None else EndReason.EXIT,
            "exit_code": exit_code,
            "recording_path": _check_length("recording_path", recording_path, MAX_RECORDING_PATH),
            "recording_size": _non_negative("recording_size", recording_size),
            "sha256": _check_sha256(sha256),
            "cast_version": cast_version,
            "cols": cols,
            "rows": rows,
            **_counter_values(counters),
        }
        imported = {
            "source_name": _clip(source_name, MAX_SOURCE_NAME) or "",
            "sha256": sha256,
            "imported_at": datetime.now(UTC),
            "skipped_lines": _non_negative("skipped_lines", skipped_lines) or 0,
            "adjusted_lines": _non_negative("adjusted_lines", adjusted_lines) or 0,
        }
        # Core inserts, not ORM objects: an import is one of thousands in a batch, and the unit of
        # work's flush of a 40-column Connection cost more than the rest of its transaction.
        with self._transaction() as session:
            shell_pk = self._upsert_shell(session, key, started_at)
            db = session.connection()
            inserted = sa.insert(_CONNECTIONS).returning(_CONNECTIONS.c.id)
            conn_id = int(db.execute(inserted, {**conn, "shell_pk": shell_pk}).scalar_one())
            db.execute(sa.insert(_IMPORTS), {**imported, "connection_id": conn_id})
            self._refresh_shell(session, shell_pk)
        log.info("index.imported", id=conn_id, source=source_name)
        return conn_id

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _select() -> sa.Select[tuple[Connection, Shell]]:
        return sa.select(Connection, Shell).join(Shell, Connection.shell_pk == Shell.id)

    def _load(self, session: Session, conn_id: int) -> tuple[Connection, Shell]:
        # FOR UPDATE locks both rows on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers.
        found = session.execute(self._select().where(Connection.id == conn_id).with_for_update()).tuples()
        row = found.first()
        if row is None:
            raise UnknownConnection(conn_id)
        return row

    def _upsert_shell(self, session: Session, key: Mapping[str, str], seen: datetime) -> int:
        """Insert the shell or touch its last_seen; one statement, so concurrent callers agree."""
        shell_pk: int = session.execute(
            _UPSERT_SHELL, {**key, "first_seen": seen, "last_seen": seen}
        ).scalar_one()
        return shell_pk

    def _refresh_shell(self, session: Session, shell_pk: int) -> None:
        """Recompute a shell's first/last seen and last exit code from its connections; drop it if none."""
        session.execute(_DROP_EMPTY_SHELL, {"shell_pk": shell_pk})
        session.execute(_REFRESH_SHELL, {"shell_pk": shell_pk})

    def _end(
        self, conn_id: int, ended_at: datetime | None, duration: float | None, values: dict[str, Any]
    ) -> None:
        with self._transaction() as session:
            conn, shell = self._load(session, conn_id)
            if conn.status is not ConnectionStatus.ACTIVE:
                raise ConnectionNotActive(conn_id, conn.status.value)
            if ended_at is None:
                ended_at = conn.started_at + timedelta(seconds=duration or 0.0)
            session.execute(
                sa.update(Connection).where(Connection.id == conn_id).values(ended_at=ended_at, **values)
            )
            shell_values: dict[str, Any] = {"last_seen": max(shell.last_seen, ended_at)}
            if values.get("exit_code") is not None:
                shell_values["last_exit_code"] = values["exit_code"]
            session.execute(sa.update(Shell).where(Shell.id == shell.id).values(**shell_values))

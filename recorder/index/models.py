"""SQLAlchemy models of the index: shells, connections (attachments), refused attempts, the
search rows of each connection (commands, output lines, typed input) with import bookkeeping,
and the proxy's access tokens and the auditor commands' audit log.

The schema itself is created by the Alembic revisions under ``migrations/``; these models must
match it (a test compares them). Enums are short strings with CHECK constraints, not native
database enums, so the same revisions run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from recorder.index.vocab import ConnectionStatus, EndReason

#: Constraint and index names, stable across databases and migrations.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column limits. The protocol validators keep ids inside these; the store checks them again
# because PostgreSQL enforces VARCHAR lengths and SQLite does not.
MAX_ARN = 2048
MAX_QUALIFIER = 100
MAX_SESSION_ID = 256
MAX_SHELL_ID = 128
MAX_PRINCIPAL = 256
MAX_CLIENT_ADDRESS = 256
MAX_UPSTREAM = 2048
MAX_RECORDING_PATH = 1024
MAX_REASON = 1024
SHA256_HEX_LENGTH = 64
ENUM_LENGTH = 16

#: Channels with their own byte and frame counters, in wire order; ``unknown`` counts channel
#: bytes the protocol does not define (they are forwarded, never dropped).
CHANNELS: tuple[str, ...] = ("stdin", "stdout", "stderr", "status", "resize", "heartbeat", "close", "unknown")
#: Counter column names: ``bytes_<channel>`` and ``frames_<channel>``.
COUNTER_NAMES: tuple[str, ...] = tuple(f"{kind}_{ch}" for ch in CHANNELS for kind in ("bytes", "frames"))

#: asciicast versions a recording may be written in.
CAST_VERSIONS: tuple[int, ...] = (1, 2, 3)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC; naive values are refused, results are always UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the index: pass an aware one")
        value = value.astimezone(UTC)
        # SQLite keeps DATETIME as text without an offset; storing UTC keeps text order == time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _enum(cls: type[StrEnum], name: str) -> sa.Enum:
    """A portable enum: VARCHAR plus a CHECK constraint holding the values (not the member names)."""
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UtcDateTime()}


class Shell(Base):
    """A PTY on a runtime session, named by its shellId; it lives across reconnects."""

    __tablename__ = "shells"
    __table_args__ = (sa.UniqueConstraint("runtime_arn", "qualifier", "session_id", "shell_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    runtime_arn: Mapped[str] = mapped_column(sa.String(MAX_ARN))
    qualifier: Mapped[str] = mapped_column(sa.String(MAX_QUALIFIER))
    session_id: Mapped[str] = mapped_column(sa.String(MAX_SESSION_ID))
    shell_id: Mapped[str] = mapped_column(sa.String(MAX_SHELL_ID), index=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    last_exit_code: Mapped[int | None]

    connections: Mapped[list[Connection]] = relationship(back_populates="shell")


def _counter(big: bool) -> Mapped[int]:
    return mapped_column(sa.BigInteger if big else sa.Integer, server_default=sa.text("0"), default=0)


class Connection(Base):
    """One WebSocket from one client to one shell; one recording file."""

    __tablename__ = "connections"
    __table_args__ = (
        sa.CheckConstraint(f"cast_version IN {CAST_VERSIONS}", name="cast_version"),
        # Ids are typed by users (`recorder play 42`): never reuse one, even after deletes.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shell_pk: Mapped[int] = mapped_column(sa.ForeignKey("shells.id"), index=True)
    #: None when the proxy runs without authentication.
    principal: Mapped[str | None] = mapped_column(sa.String(MAX_PRINCIPAL), index=True)
    client_address: Mapped[str] = mapped_column(sa.String(MAX_CLIENT_ADDRESS))
    upstream: Mapped[str] = mapped_column(sa.String(MAX_UPSTREAM))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    status: Mapped[ConnectionStatus] = mapped_column(_enum(ConnectionStatus, "status"), index=True)
    end_reason: Mapped[EndReason | None] = mapped_column(_enum(EndReason, "end_reason"))
    close_code: Mapped[int | None]
    exit_code: Mapped[int | None] = mapped_column(index=True)

    bytes_stdin: Mapped[int] = _counter(big=True)
    frames_stdin: Mapped[int] = _counter(big=False)
    bytes_stdout: Mapped[int] = _counter(big=True)
    frames_stdout: Mapped[int] = _counter(big=False)
    bytes_stderr: Mapped[int] = _counter(big=True)
    frames_stderr: Mapped[int] = _counter(big=False)
    bytes_status: Mapped[int] = _counter(big=True)
    frames_status: Mapped[int] = _counter(big=False)
    bytes_resize: Mapped[int] = _counter(big=True)
    frames_resize: Mapped[int] = _counter(big=False)
    bytes_heartbeat: Mapped[int] = _counter(big=True)
    frames_heartbeat: Mapped[int] = _counter(big=False)
    bytes_close: Mapped[int] = _counter(big=True)
    frames_close: Mapped[int] = _counter(big=False)
    bytes_unknown: Mapped[int] = _counter(big=True)
    frames_unknown: Mapped[int] = _counter(big=False)
    invalid_utf8: Mapped[int] = _counter(big=False)

    recording_path: Mapped[str] = mapped_column(sa.String(MAX_RECORDING_PATH))
    recording_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: Indexed (revision 0008): an import looks a file's bytes up among recorded connections.
    sha256: Mapped[str | None] = mapped_column(sa.String(SHA256_HEX_LENGTH), index=True)
    cast_version: Mapped[int]
    cols: Mapped[int]
    rows: Mapped[int]
    reconnected: Mapped[bool] = mapped_column(server_default=sa.false(), default=False)
    bytes_dropped: Mapped[int] = _counter(big=True)

    shell: Mapped[Shell] = relationship(back_populates="connections")


class RefusedAttempt(Base):
    """An upgrade request the proxy refused (401/403/429/400/502) before any shell was reached."""

    __tablename__ = "refused_attempts"
    __table_args__ = (
        sa.CheckConstraint("http_status >= 400 AND http_status <= 599", name="http_status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    principal: Mapped[str | None] = mapped_column(sa.String(MAX_PRINCIPAL), index=True)
    client_address: Mapped[str] = mapped_column(sa.String(MAX_CLIENT_ADDRESS))
    runtime_arn: Mapped[str | None] = mapped_column(sa.String(MAX_ARN))
    qualifier: Mapped[str | None] = mapped_column(sa.String(MAX_QUALIFIER))
    shell_id: Mapped[str | None] = mapped_column(sa.String(MAX_SHELL_ID))
    session_id: Mapped[str | None] = mapped_column(sa.String(MAX_SESSION_ID))
    http_status: Mapped[int]
    reason: Mapped[str] = mapped_column(sa.String(MAX_REASON))


# -- search (revision 0002) ----------------------------------------------------------------------

#: Characters of a row's text the full-text index covers (the 0002 revision freezes this value).
#: Output and input lines longer than this are stored as several rows; a longer command is stored
#: whole but searchable by its first MAX_INDEXED_CHARS characters. It also keeps a row under
#: PostgreSQL's 16383 lexeme positions per tsvector, so phrases match anywhere in a row.
MAX_INDEXED_CHARS = 16_384
MAX_SOURCE_NAME = 1024
#: Tables whose ``text`` has a full-text index.
SEARCH_TABLES: tuple[str, ...] = ("commands", "output_lines", "input_lines")
#: Objects the revisions create outside this metadata, per database: FTS5 virtual tables (and the
#: shadow tables SQLite makes for them), PostgreSQL's generated ``tsv`` columns and their GIN
#: indexes, and PostgreSQL's ``output_blocks`` (below). Schema comparisons skip them (see
#: :func:`include_object`).
FTS_TABLE_SUFFIX = "_fts"
TSV_COLUMN = "tsv"
#: PostgreSQL only (revision 0007): the lexemes of up to BLOCK_LINES consecutive output lines of a
#: generation (about BLOCK_CHARS characters at most) in one stripped tsvector, so a search window
#: checks a block of lines at once (``recorder.index.rows.fill_output_blocks``).
OUTPUT_BLOCKS = "output_blocks"
BLOCK_LINES = 20
BLOCK_CHARS = 65_536
#: SQLite's tokenizer: letters and decimal digits make words, everything else separates them, no
#: stemming and no accent folding. PostgreSQL's 'simple' parser is fed the same words (0002).
FTS5_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* Nd'"


def _connection_fk() -> Mapped[int]:
    return mapped_column(sa.ForeignKey("connections.id", ondelete="CASCADE"))


class IndexedRecording(Base):
    """A connection whose recording was indexed for search, and which generation of rows is live."""

    __tablename__ = "indexed_recordings"

    connection_id: Mapped[int] = mapped_column(
        sa.ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    #: Rows of other generations are leftovers of an earlier or interrupted indexing run.
    generation: Mapped[int] = mapped_column(sa.BigInteger)
    indexed_at: Mapped[datetime]
    command_count: Mapped[int]
    line_count: Mapped[int]
    input_count: Mapped[int]
    #: Lines the cast reader skipped or adjusted while indexing.
    problem_count: Mapped[int]
    #: Why part of the recording could not be indexed (e.g. the emulator refused it), or None.
    error: Mapped[str | None] = mapped_column(sa.Text)


class _SearchRow:
    """Columns every searchable row has: its connection, generation, order, time and text."""

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    generation: Mapped[int] = mapped_column(sa.BigInteger)
    seq: Mapped[int]
    #: Seconds from the start of the recording.
    offset: Mapped[float]
    text: Mapped[str] = mapped_column(sa.Text)


def _search_table_args(table: str) -> tuple[Any, ...]:
    return (
        sa.Index(f"ix_{table}_connection_id", "connection_id", "generation", "seq", unique=True),
        {"sqlite_autoincrement": True},
    )


class CommandEntry(_SearchRow, Base):
    """A command typed in a connection: when Enter was sent, its text, exit code and first output."""

    __tablename__ = "commands"
    __table_args__ = _search_table_args("commands")

    exit_code: Mapped[int | None]
    output_preview: Mapped[str] = mapped_column(sa.Text)
    end_offset: Mapped[float | None]


class OutputLine(_SearchRow, Base):
    """A line of rendered terminal output and when it last changed."""

    __tablename__ = "output_lines"
    __table_args__ = _search_table_args("output_lines")


class InputLine(_SearchRow, Base):
    """A line of typed input (keys up to Enter, with simple line editing applied)."""

    __tablename__ = "input_lines"
    __table_args__ = _search_table_args("input_lines")


#: PostgreSQL's blocks of output lines (revision 0007), for statements only: the table exists on
#: PostgreSQL alone, so it is not in ``Base.metadata`` (which both databases' schemas must match).
output_blocks = sa.Table(
    OUTPUT_BLOCKS,
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("connection_id", sa.Integer, nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
    #: The block holds the lines of seq first_seq to last_seq, both included.
    sa.Column("first_seq", sa.Integer, nullable=False),
    sa.Column("last_seq", sa.Integer, nullable=False),
)


class Import(Base):
    """A recording written by another tool and imported with ``recorder import``."""

    __tablename__ = "imports"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        sa.ForeignKey("connections.id", ondelete="CASCADE"), unique=True
    )
    source_name: Mapped[str] = mapped_column(sa.String(MAX_SOURCE_NAME))
    sha256: Mapped[str] = mapped_column(sa.String(SHA256_HEX_LENGTH), unique=True)
    imported_at: Mapped[datetime]
    skipped_lines: Mapped[int]
    adjusted_lines: Mapped[int]


# -- access and audit (revision 0003) -------------------------------------------------------------

#: Length of a token's public id (hex), the part a token is looked up by; not secret.
TOKEN_ID_LENGTH = 12
MAX_GROUPS_TEXT = 4096
MAX_AUDIT_COMMAND = 64
MAX_AUDIT_TEXT = 16_384


class AccessToken(Base):
    """A bearer token for the proxy: who it names and a SHA-256 of it (the token itself is never kept)."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(sa.String(TOKEN_ID_LENGTH), primary_key=True)
    principal: Mapped[str] = mapped_column(sa.String(MAX_PRINCIPAL), index=True)
    #: JSON array of group names.
    groups: Mapped[str] = mapped_column(sa.String(MAX_GROUPS_TEXT))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    sha256: Mapped[str] = mapped_column(sa.String(SHA256_HEX_LENGTH), unique=True)


class AuditEntry(Base):
    """One auditor command run: who (OS user), when, which command with which arguments and targets."""

    __tablename__ = "audit_log"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(sa.String(MAX_PRINCIPAL), index=True)
    command: Mapped[str] = mapped_column(sa.String(MAX_AUDIT_COMMAND))
    #: JSON object of the arguments given.
    arguments: Mapped[str] = mapped_column(sa.Text)
    #: JSON array of what the command looked at (connection ids, shell:<pk>, file paths).
    targets: Mapped[str] = mapped_column(sa.Text)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic hook: leave out the full-text objects that exist only in one database."""
    if not reflected or compare_to is not None or name is None:
        return True
    if type_ == "table":
        # commands_fts and its shadow tables commands_fts_data, _idx, _docsize, _config.
        return name != OUTPUT_BLOCKS and not any(
            name == t + FTS_TABLE_SUFFIX or name.startswith(t + FTS_TABLE_SUFFIX + "_") for t in SEARCH_TABLES
        )
    if type_ == "column":
        return name != TSV_COLUMN
    if type_ == "index":
        return not any(name == f"ix_{t}_{TSV_COLUMN}" for t in SEARCH_TABLES)
    return True

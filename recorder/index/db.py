"""Engines and the migration runner: the same Alembic revisions on SQLite and PostgreSQL."""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from recorder.errors import IndexStoreError
from recorder.logfmt import get_logger

if TYPE_CHECKING:
    from alembic.config import Config

log = get_logger(__name__)

#: Execution option of a transaction that only reads (``Index.reading``): on SQLite it begins
#: deferred instead of taking the write lock.
READ_ONLY = "recorder_read_only"
#: How long a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000
#: Suffix of the file beside a SQLite index that its writers take turns on (:class:`WriterLock`).
WRITER_LOCK_SUFFIX = "-writelock"
#: How often a writer waiting for :class:`WriterLock` tries again.
WRITER_LOCK_POLL_S = 0.0005
#: How long a writer waits for :class:`WriterLock` before going on to SQLite's own busy wait
#: (:data:`SQLITE_BUSY_TIMEOUT_MS`): a small part of it, so the worst wait grows by this much.
WRITER_LOCK_TIMEOUT_S = 1.0
#: How long to wait for a PostgreSQL server to accept the connection.
PG_CONNECT_TIMEOUT_S = 10
#: PostgreSQL advisory lock held while migrating, so replicas starting together migrate one at a time.
PG_MIGRATION_LOCK_KEY = 0x7265636F7264  # "record"
#: The newest revision in ``migrations/versions`` (a test holds it to Alembic's own head). Reading
#: commands compare the index against it without importing Alembic and loading every revision
#: script, which was a fifth of a ``recorder search``'s start-up.
HEAD_REVISION = "0008"
#: Alembic's table of the index's revision.
VERSION_TABLE = "alembic_version"

_SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
_PG_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
_PG_DRIVER = "postgresql+psycopg"

Target = str | Engine


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, without the SQL or the driver's multi-line hints."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparsable URL>"
    return parsed.render_as_string(hide_password=True)


def normalise_url(url: str) -> URL:
    """Parse ``url``; postgresql:// and postgres:// become postgresql+psycopg://."""
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise IndexStoreError(
            f"invalid database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    if parsed.drivername in _PG_DRIVERS:
        return parsed.set(drivername=_PG_DRIVER)
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed
    raise IndexStoreError(
        f"unsupported database {parsed.drivername!r} in {safe_url(parsed)}: "
        "use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """An engine for the index: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL (psycopg 3).

    ``durable=False`` is for writers of rows that can be made again from the recordings (search
    rows, imports): on SQLite each commit then skips its fsync (``synchronous = NORMAL``, WAL's
    usual setting: never corrupt, but a power cut may undo the last commits, which the next
    indexing pass or import redoes). The proxy's own writes (connections, tokens, the audit log)
    keep the default, an fsync per commit.
    """
    parsed = normalise_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, durable=durable)
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        # No server-side prepared statements: psycopg prepares a query run 5 times, and PostgreSQL
        # may then plan it once for any parameters. A search's best plan depends on its words (a
        # rare word: its GIN matches first; a common one: the newest connections first); a
        # generic plan walked every row for a rare word (1.2 s against 3 ms planned for the word).
        connect_args["prepare_threshold"] = None
        # pre-ping: the proxy holds the pool for days; a restarted server must not fail a write.
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (ArgumentError, NoSuchModuleError, ImportError, TypeError) as exc:
        raise IndexStoreError(f"cannot use database URL {safe_url(parsed)}: {describe(exc)}") from None


def _sqlite_engine(url: URL, *, durable: bool = True) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not url.query.get("uri"):
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexStoreError(f"cannot create the directory for {database}: {exc.strerror}") from None
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # We issue BEGIN ourselves (below), so the driver must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_MS)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            if not durable:
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # Only reads: a deferred transaction reads the last commit (WAL) and takes no write
            # lock, so it never waits behind an indexing batch and never holds up a writer.
            connection.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE takes the write lock up front (waiting up to the busy timeout): a deferred
        # transaction that reads and then writes fails at once when another writer got in between.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class WriterLock:
    """Writers to one SQLite file take turns on an advisory lock before SQLite's own write lock.

    SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps 1, 2,
    5, 10 ... up to 100 ms between tries whatever the holder does, so a writer often sleeps on
    long after the lock came free. With two indexing workers (each holding the lock for its
    rows' full-text inserts, about 40% of its work) a quarter of the two cores went idle. Here a
    waiting writer tries ``flock`` every :data:`WRITER_LOCK_POLL_S` instead, and goes on within
    that much of the holder's commit. Every write transaction of :class:`recorder.index.store.Index`
    and every migration takes it, in any process.

    It only orders writers: SQLite's lock stays the one that counts. When the file cannot be
    opened (another user's index, a read-only directory), cannot be locked at all (a file
    system without ``flock``: then this lock is not tried again), or the lock is not free
    within ``timeout`` (a writer that does not take turns here holds SQLite's lock, or holds
    this one that long), the writer goes on to ``BEGIN IMMEDIATE`` and SQLite's busy timeout
    as before.
    A thread already holding it takes it again at once (its nested write fails in SQLite as it
    always did, not after waiting on itself first).
    """

    def __init__(self, path: Path, *, timeout: float = WRITER_LOCK_TIMEOUT_S) -> None:
        self.path = path
        self.timeout = timeout
        self._held = threading.local()
        #: Set when flock itself failed (not "held by another"): every later write skips it.
        self.unusable = False

    @contextmanager
    def held(self) -> Iterator[bool]:
        """Hold the lock for the block; yields whether it was taken (False: going on without it)."""
        if getattr(self._held, "fd", None) is not None:
            yield True
            return
        if self.unusable:
            yield False
            return
        try:
            # Its creator's alone: flock needs only read access, so a lock file that other users
            # could open would let any of them hold every writer up to the timeout, again and
            # again. Another user's writer cannot open it and goes on to SQLite's lock (below).
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.debug("index.writer_lock_unavailable", path=str(self.path), error=exc.strerror)
            yield False
            return
        try:
            try:
                taken = _flock(fd, self.timeout)
            except OSError as exc:
                self.unusable = True
                log.info("index.writer_lock_unusable", path=str(self.path), error=exc.strerror)
                taken = False
            if not taken and not self.unusable:
                log.info("index.writer_lock_timeout", path=str(self.path), seconds=self.timeout)
            self._held.fd = fd
            try:
                yield taken
            finally:
                self._held.fd = None
        finally:
            os.close(fd)  # releases the lock with the file


def _flock(fd: int, timeout: float) -> bool:
    """Take the lock within ``timeout``: False when it stayed held; OSError when flock failed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            if time.monotonic() >= deadline:
                return False
        time.sleep(WRITER_LOCK_POLL_S)


def writer_lock(engine: Engine) -> WriterLock | None:
    """The :class:`WriterLock` of a SQLite index in a file; None for PostgreSQL or a memory database."""
    url = engine.url
    database = url.database or ""
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or url.query.get("uri"):
        return None
    return WriterLock(Path(database + WRITER_LOCK_SUFFIX).expanduser())


def writers_turn(lock: WriterLock | None) -> AbstractContextManager[bool]:
    """``lock.held()``; nothing to wait for where there is no lock (PostgreSQL, a memory database)."""
    return lock.held() if lock is not None else nullcontext(False)


def _raw_sqlite(connection: Connection, sql: str) -> None:
    """Run a statement on the driver connection, outside any SQLAlchemy transaction."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    driver.execute(sql)


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction for running migrations; commits when the block succeeds."""
    sqlite = engine.dialect.name == "sqlite"
    with writers_turn(writer_lock(engine)), engine.connect() as connection:
        if sqlite:
            # Batch migrations rebuild tables (copy, drop, rename); with foreign keys on, dropping a
            # referenced table fails. Off for the migration, checked before commit, on again after.
            _raw_sqlite(connection, "PRAGMA foreign_keys = OFF")
        try:
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    # SQLite's BEGIN IMMEDIATE already serialises; PostgreSQL needs an explicit lock.
                    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_MIGRATION_LOCK_KEY)))
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise IndexStoreError(
                            f"migration left {len(broken)} broken foreign keys; rolled back"
                        )
        finally:
            if sqlite:
                _raw_sqlite(connection, "PRAGMA foreign_keys = ON")


def migrations_dir() -> Path:
    """The Alembic script directory: inside the package when installed, at the repo root otherwise."""
    packaged = resources.files("recorder.index") / "migrations"
    if packaged.is_dir() and (packaged / "env.py").is_file():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[2] / "migrations"
    if (checkout / "env.py").is_file():
        return checkout
    raise IndexStoreError("the index migrations are missing from this installation; reinstall recorder")


def _config(connection: Connection | None = None) -> Config:
    # Alembic is imported only by what migrates or lists revisions (see HEAD_REVISION).
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolation: a '%' in the path must be doubled.
    config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this installation knows (:data:`HEAD_REVISION`)."""
    return HEAD_REVISION


def script_head() -> str:
    """The newest revision of the migration scripts themselves, as Alembic reads them."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise IndexStoreError("the index migrations have no revisions; reinstall recorder")
    return head


def known_revisions() -> list[str]:
    """All revision ids, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


@contextmanager
def _engine_for(target: Target) -> Iterator[Engine]:
    if isinstance(target, Engine):
        yield target
        return
    engine = make_engine(target)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn database and Alembic errors into one-line IndexStoreErrors."""
    try:
        yield
    except IndexStoreError:
        raise
    except (SQLAlchemyError, OSError) as exc:
        raise IndexStoreError(f"cannot {action}: {describe(exc)}") from None
    except Exception as exc:
        if not _is_alembic_error(exc):
            raise
        raise IndexStoreError(f"cannot {action}: {describe(exc)}") from None


def _is_alembic_error(exc: Exception) -> bool:
    # Only code that imported Alembic can raise its errors, so importing them here costs nothing.
    from alembic.script.revision import RevisionError
    from alembic.util.exc import CommandError

    return isinstance(exc, CommandError | RevisionError)


def upgrade(target: Target, revision: str = "head") -> None:
    """Migrate the index up to ``revision`` (default: the newest)."""
    with _engine_for(target) as engine, _translated(f"upgrade {safe_url(engine.url)} to {revision}"):
        with migration_connection(engine) as connection:
            from alembic import command

            command.upgrade(_config(connection), revision)
        log.info("index.upgraded", url=safe_url(engine.url), revision=revision)


def downgrade(target: Target, revision: str) -> None:
    """Migrate the index down to ``revision`` ("base" drops every table)."""
    with _engine_for(target) as engine, _translated(f"downgrade {safe_url(engine.url)} to {revision}"):
        with migration_connection(engine) as connection:
            from alembic import command

            command.downgrade(_config(connection), revision)
        log.info("index.downgraded", url=safe_url(engine.url), revision=revision)


def current_revision(target: Target) -> str | None:
    """The revision the index is at, or None when it was never migrated.

    Read straight from Alembic's version table, as Alembic reads it, without importing Alembic.
    """
    with _engine_for(target) as engine, _translated(f"read the revision of {safe_url(engine.url)}"):
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(VERSION_TABLE):
                return None
            versions = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(versions) > 1:
        raise IndexStoreError(f"the index at {safe_url(engine.url)} has {len(versions)} revisions at once")
    return str(versions[0]) if versions else None

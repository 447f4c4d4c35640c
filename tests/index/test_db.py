"""Engines and the migration runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import errno
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from recorder.errors import IndexStoreError
from recorder.index import db as db_module
from recorder.index.db import (
    HEAD_REVISION,
    SQLITE_BUSY_TIMEOUT_MS,
    WRITER_LOCK_SUFFIX,
    WRITER_LOCK_TIMEOUT_S,
    WriterLock,
    current_revision,
    downgrade,
    head_revision,
    known_revisions,
    make_engine,
    migration_connection,
    migrations_dir,
    script_head,
    upgrade,
    writer_lock,
)
from recorder.index.store import Index

REPO = Path(__file__).resolve().parents[2]
INDEX_TABLES = {"shells", "connections", "refused_attempts"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def _schema(engine: Engine) -> dict[str, Any]:
    """Tables, their columns and their indexes, to compare a schema before and after a step.

    On SQLite also every object's CREATE statement, which is where full-text table options live.
    """
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        schema: dict[str, Any] = {
            table: (
                [col["name"] for col in inspector.get_columns(table)],
                sorted(str(ix["name"]) for ix in inspector.get_indexes(table)),
            )
            for table in sorted(inspector.get_table_names())
            if table != "alembic_version"
        }
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master "
                "WHERE name NOT LIKE 'sqlite_%' AND tbl_name != 'alembic_version'"
            )
            schema["sqlite_master"] = sorted((str(name), str(sql)) for name, sql in rows)
            # FTS5 settings (automerge, ...) live in each full-text table's _config rows.
            configs = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master "
                "WHERE type = 'table' AND name LIKE '%\\_fts\\_config' ESCAPE '\\'"
            ).scalars()
            for table in sorted(configs):
                settings = conn.exec_driver_sql(f"SELECT k, v FROM {table} WHERE k != 'version'")
                schema[table] = sorted((str(k), str(v)) for k, v in settings)
        return schema


#: Revisions that change only SQLite (on PostgreSQL they rightly do nothing).
SQLITE_ONLY_REVISIONS = {"0004", "0005", "0006"}
#: Revisions that change only PostgreSQL's schema (0007: its blocks of output lines).
POSTGRESQL_ONLY_REVISIONS = {"0007"}


# -- engines ---------------------------------------------------------------------------------


def test_sqlite_engine_uses_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    finally:
        engine.dispose()


@pytest.mark.parametrize(("durable", "synchronous"), [(True, 2), (False, 1)])
def test_sqlite_engine_fsyncs_each_commit_unless_told_the_rows_can_be_made_again(
    tmp_path: Path, durable: bool, synchronous: int
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}", durable=durable)
    try:
        with engine.connect() as conn:
            # 2 is FULL (an fsync per commit), 1 NORMAL (WAL: never corrupt, last commits may go).
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == synchronous
    finally:
        engine.dispose()


def test_sqlite_engine_creates_the_parent_directory(tmp_path: Path) -> None:
    parent = tmp_path / "not" / "yet"
    engine = make_engine(f"sqlite:///{parent / 'index.sqlite3'}")
    engine.dispose()
    assert parent.is_dir()


def test_sqlite_directory_that_cannot_be_created_is_an_index_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(IndexStoreError, match="cannot create the directory"):
        make_engine(f"sqlite:///{blocker / 'sub' / 'index.sqlite3'}")


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1/db", "postgres://u@127.0.0.1/db"])
def test_postgresql_urls_are_normalised_to_psycopg3(url: str) -> None:
    engine = make_engine(url)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://u@127.0.0.1/db", "postgresql+psycopg2://u@127.0.0.1/db", "bogus://x"]
)
def test_bad_url_is_a_one_line_index_error(url: str) -> None:
    with pytest.raises(IndexStoreError) as info:
        make_engine(url)
    assert "\n" not in str(info.value)
    assert "sqlite:///" in str(info.value)  # says what to use instead


def test_unreachable_postgresql_is_a_one_line_error_without_the_password() -> None:
    url = f"postgresql://auditor:hunter2@127.0.0.1:{_closed_port()}/index"
    with pytest.raises(IndexStoreError) as info:
        current_revision(url)
    message = str(info.value)
    assert "\n" not in message
    assert "hunter2" not in message
    assert "127.0.0.1" in message


# -- migrations ------------------------------------------------------------------------------


def test_upgrade_downgrade_upgrade_round_trip(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert INDEX_TABLES <= _tables(engine)
    migrated = _schema(engine)

    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert _tables(engine) <= {"alembic_version"}

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _schema(engine) == migrated


def test_every_revision_downgrades_to_the_schema_before_it(engine: Engine) -> None:
    previous = "base"
    for revision in known_revisions():
        before = _schema(engine)
        upgrade(engine, revision)
        after = _schema(engine)
        only = SQLITE_ONLY_REVISIONS if engine.dialect.name == "postgresql" else POSTGRESQL_ONLY_REVISIONS
        if revision not in only:
            assert after != before, f"revision {revision} changed nothing"
        else:
            assert after == before, f"revision {revision} changed the other database's schema"
        downgrade(engine, previous)
        assert _schema(engine) == before, f"downgrade of {revision} did not restore the schema"
        upgrade(engine, revision)
        assert _schema(engine) == after
        previous = revision


def test_the_head_revision_constant_is_the_newest_migration_script() -> None:
    assert HEAD_REVISION == script_head() == known_revisions()[-1]
    assert head_revision() == HEAD_REVISION


def _alembic_reads(engine: Engine) -> str | None:
    with engine.connect() as conn:
        revision: str | None = MigrationContext.configure(conn).get_current_revision()
        return revision


def test_current_revision_reads_what_alembic_reads_at_every_revision(engine: Engine) -> None:
    assert current_revision(engine) is None is _alembic_reads(engine)
    for revision in known_revisions():
        upgrade(engine, revision)
        assert current_revision(engine) == revision == _alembic_reads(engine)
    downgrade(engine, "base")
    assert current_revision(engine) is None is _alembic_reads(engine)


def test_an_index_with_two_revisions_at_once_is_a_one_line_error(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES ('0001')")
    with pytest.raises(IndexStoreError, match="2 revisions at once") as info:
        current_revision(engine)
    assert "\n" not in str(info.value)


def test_reading_the_revision_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    upgrade(url)
    code = (
        "import sys; from recorder.index.db import current_revision, head_revision; "
        f"assert current_revision({url!r}) == head_revision(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_revision_is_a_one_line_index_error(engine: Engine) -> None:
    with pytest.raises(IndexStoreError, match="zzzz") as info:
        upgrade(engine, "zzzz")
    assert "\n" not in str(info.value)
    assert current_revision(engine) is None


def test_database_at_a_revision_this_code_does_not_know_is_an_index_error(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(IndexStoreError, match="9999"):
        upgrade(engine)


def test_revision_files_are_numbered_and_chain_in_order() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    script = ScriptDirectory.from_config(config)
    revisions = list(reversed(list(script.walk_revisions())))
    assert revisions, "no revisions"
    previous = None
    for number, rev in enumerate(revisions, start=1):
        assert rev.revision == f"{number:04d}"
        assert rev.down_revision == previous
        assert rev.path is not None
        assert Path(rev.path).name.startswith(f"{rev.revision}_")
        assert re.fullmatch(r"\d{4}_[a-z0-9_]+\.py", Path(rev.path).name)
        previous = rev.revision


def test_migrations_are_shipped_inside_the_package() -> None:
    packaged = resources.files("recorder.index") / "migrations"
    assert (packaged / "env.py").is_file()
    assert Path(str(packaged)) == migrations_dir()
    shipped = sorted(p.name for p in (packaged / "versions").iterdir() if p.name.endswith(".py"))
    at_root = sorted(p.name for p in (REPO / "migrations" / "versions").glob("*.py"))
    assert shipped == at_root


def test_alembic_command_line_reads_the_url_from_x_argument(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if k != "RECORDER_DB_URL"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(REPO / "alembic.ini"),
            "-x",
            f"url={url}",
            "upgrade",
            "head",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert current_revision(url) == head_revision()


def test_alembic_command_line_without_a_url_says_how_to_give_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RECORDER_DB_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "upgrade", "head"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "RECORDER_DB_URL" in done.stderr


def test_concurrent_upgrades_from_several_processes_all_succeed(db_url: str) -> None:
    # Proxy replicas starting together each run upgrade(); they must not trip over each other.
    code = "import sys; from recorder.index.db import upgrade; upgrade(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [proc.communicate(timeout=60)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], errors
    assert current_revision(db_url) == head_revision()


def test_sqlite_full_text_tables_merge_segments_at_16_and_all_at_once_only_at_64(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            for table in ("commands", "output_lines", "input_lines"):
                settings = dict(
                    conn.exec_driver_sql(
                        f"SELECT k, v FROM {table}_fts_config WHERE k IN ('automerge', 'crisismerge')"
                    ).all()
                )
                assert settings == {"automerge": 16, "crisismerge": 64}
    finally:
        engine.dispose()


def test_revision_0007_builds_the_blocks_the_store_writes_for_lines_already_indexed(pg_url: str) -> None:
    """PostgreSQL's blocks of output lines for rows indexed before the revision: the same blocks
    the store writes with a run's rows, for live and leftover generations, and the same hits."""
    from recorder.index.search import search
    from recorder.index.store import Index
    from tests.index.test_rows import Line, _open, check_output_blocks

    engine = make_engine(pg_url)
    try:
        upgrade(engine)
        index = Index(engine)
        long_row = ("port 22 refused " * 2000)[:16384]
        lines = [Line(float(i), f"connection {i} refused by kube-proxy") for i in range(70)]
        lines += [Line(80.0 + i, long_row) for i in range(6)]
        first, second = _open(index), _open(index, shell_id="shell-2")
        index.replace_search_rows(first, [], lines, [])
        index.replace_search_rows(second, [], lines[:33], [])
        interrupted = index.search_writer(second)  # never committed: a leftover generation
        interrupted.add_lines(lines[:5])
        with engine.connect() as conn:
            written = check_output_blocks(conn)
        assert len({(c, g) for c, g, _, _ in written}) == 3
        hits = [search(index, q, limit=100) for q in ("refused", "kube*", '"refused by"')]

        downgrade(engine, "0006")
        assert "output_blocks" not in _tables(engine)
        upgrade(engine)
        with engine.connect() as conn:
            assert check_output_blocks(conn) == written
        assert [search(index, q, limit=100) for q in ("refused", "kube*", '"refused by"')] == hits
    finally:
        engine.dispose()


# -- the writers' lock on a SQLite file ----------------------------------------------------------

# Run in another process: whether the writer lock at argv[1] is free right now (flock is per open
# file, so only another process, or another open of the file, sees it held).
_PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("held")
"""

# Run in another process: take the writer lock at argv[1], say so, hold it until stdin closes.
_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def _probe(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


@pytest.fixture
def sqlite_index(sqlite_url: str) -> Iterator[tuple[Index, Path]]:
    """A migrated SQLite index in a file and where its writers' lock is."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    try:
        yield Index(engine), Path(str(engine.url.database) + WRITER_LOCK_SUFFIX)
    finally:
        engine.dispose()


def test_only_a_sqlite_file_has_a_writer_lock(tmp_path: Path, pg_url: str) -> None:
    file_engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    memory_engine = make_engine("sqlite://")
    pg_engine = make_engine(pg_url)
    try:
        lock = writer_lock(file_engine)
        assert lock is not None
        assert lock.path == tmp_path / f"index.sqlite3{WRITER_LOCK_SUFFIX}"
        assert writer_lock(memory_engine) is None
        assert writer_lock(pg_engine) is None
    finally:
        for engine in (file_engine, memory_engine, pg_engine):
            engine.dispose()


def test_a_write_holds_the_writer_lock_until_it_commits_and_a_read_takes_none(
    sqlite_index: tuple[Index, Path],
) -> None:
    index, lock_path = sqlite_index
    with index.reading() as session:
        session.execute(sa.text("SELECT count(*) FROM connections"))
        assert _probe(lock_path) == "free"
    with index.session() as session:
        session.execute(sa.text("SELECT count(*) FROM connections"))
        assert _probe(lock_path) == "held"
    assert _probe(lock_path) == "free"
    with pytest.raises(RuntimeError), index.session():
        assert _probe(lock_path) == "held"
        raise RuntimeError("rolled back")
    assert _probe(lock_path) == "free"


def test_a_migration_holds_the_writer_lock(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with migration_connection(engine):
            assert _probe(Path(str(engine.url.database) + WRITER_LOCK_SUFFIX)) == "held"
    finally:
        engine.dispose()


def test_a_writer_waits_for_the_lock_before_taking_sqlites_own_then_writes(
    sqlite_index: tuple[Index, Path],
) -> None:
    index, lock_path = sqlite_index
    holder = _holder(lock_path)
    done: list[BaseException | None] = []

    def write() -> None:
        try:
            with index.session() as session:
                session.execute(sa.text("CREATE TABLE waited (x INTEGER)"))
            done.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            done.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        writer.join(0.5)
        assert writer.is_alive() and not done
        # It waits outside SQLite: SQLite's own write lock is free meanwhile.
        other = sqlite3.connect(str(index.engine.url.database), isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
    finally:
        _release(holder)
        writer.join(30)
    assert done == [None]
    with index.reading() as session:
        assert session.execute(sa.text("SELECT count(*) FROM waited")).scalar_one() == 0


def test_a_lock_not_released_within_the_timeout_is_passed_by(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "index.sqlite3-writelock", timeout=0.2)
    holder = _holder(lock.path)
    try:
        with lock.held() as taken:
            assert taken is False
    finally:
        _release(holder)
    with lock.held() as taken:
        assert taken is True


def test_a_thread_holding_the_lock_takes_it_again_at_once(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "index.sqlite3-writelock", timeout=0.2)
    with lock.held() as outer:
        with lock.held() as inner:
            assert (outer, inner) == (True, True)
        assert _probe(lock.path) == "held"  # the inner block did not release the outer's lock
    assert _probe(lock.path) == "free"


def test_a_lock_file_that_cannot_be_opened_leaves_the_writes_to_sqlite(
    sqlite_index: tuple[Index, Path],
) -> None:
    index, lock_path = sqlite_index
    lock_path.unlink()  # made by the migration
    lock_path.mkdir()  # a directory where the lock file goes: open() fails
    with index.session() as session:
        session.execute(sa.text("CREATE TABLE unlocked (x INTEGER)"))
    with index.reading() as session:
        assert session.execute(sa.text("SELECT count(*) FROM unlocked")).scalar_one() == 0
    lock = WriterLock(lock_path)
    with lock.held() as taken:
        assert taken is False


def test_a_file_system_without_flock_is_tried_once_then_left_to_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some network and FUSE file systems refuse flock outright (ENOLCK): that is not a lock held
    # by another writer, so nothing waits for it, and later writes do not try it again.
    calls: list[int] = []

    def refuse(fd: int, operation: int) -> None:
        calls.append(operation)
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(db_module.fcntl, "flock", refuse)
    lock = WriterLock(tmp_path / "index.sqlite3-writelock")
    for _ in range(3):
        with lock.held() as taken:
            assert taken is False
    assert lock.unusable and len(calls) == 1


def test_a_writer_waits_for_the_lock_a_small_part_of_sqlites_own_busy_timeout() -> None:
    assert 0 < WRITER_LOCK_TIMEOUT_S * 1000 <= SQLITE_BUSY_TIMEOUT_MS / 4
    assert WriterLock(Path("x")).timeout == WRITER_LOCK_TIMEOUT_S

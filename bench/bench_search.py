"""Search benchmark: N generated shell recordings (the issue's set: 10,000 of about 100 kB, 1 GB),
imported and indexed in parallel, then searched on SQLite and PostgreSQL; ripgrep (``rg``) over
the same files in the same run for comparison. Prints a table of latencies (median, p99).

    .venv/bin/python -m bench.bench_search [--recordings 10000] [--kb 100] [--reps 30]

PostgreSQL is measured too when RECORDER_TEST_PG_URL is set, in schemas made for the run and
dropped after. Indexing 1 GB twice through the pipeline does not fit the bench's time on two
cores, so on PostgreSQL the pipeline's indexing rate is measured on the first
``--pg-index-recordings`` recordings (default 300), and the search index over the whole corpus
is built by copying the SQLite index's rows (the same rows the pipeline writes) table by table;
PostgreSQL computes its own ``tsv`` columns and GIN indexes as they arrive. Every probe's hits
on the copy must equal SQLite's (the run fails on the first difference).

When ``rg`` is not installed, GNU ``grep -r`` stands in and the figures are named
``grep_...`` instead of ``rg_...`` (the issue's target is against ripgrep, so they carry none).
``run(...)`` returns the figures as a flat dict for ``python -m bench``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.util
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from bench.procs import recorder_started
from recorder.cli.pipeline import import_casts
from recorder.errors import IndexStoreError
from recorder.index.db import describe, make_engine, normalise_url, upgrade
from recorder.index.hits import Hit
from recorder.index.models import Base, output_blocks
from recorder.index.rows import fill_output_blocks
from recorder.index.search import search
from recorder.index.store import Index

PG_ENV = "RECORDER_TEST_PG_URL"
#: The issue's corpus: 10,000 recordings of about 100 kB (1 GB).
DEFAULT_RECORDINGS = 10_000
DEFAULT_KB = 100
#: A word that only a few recordings contain (one in RARE_EVERY).
RARE_WORD = "quetzalcoatl"
RARE_EVERY = 200
#: The backends measured, in table order.
BACKENDS = ("sqlite", "postgresql")
#: Recordings indexed through the pipeline on PostgreSQL (its indexing rate); search runs on a copy.
DEFAULT_PG_INDEX_RECORDINGS = 300
#: How rows are copied from the SQLite index to PostgreSQL: COPY FROM STDIN, or INSERT statements.
COPY_METHODS = ("copy", "insert")
#: Rows read from SQLite (keyset pages, in primary key order) and written to PostgreSQL at a time.
COPY_BATCH_ROWS = 5_000
#: Worker processes are spawned, not forked: the caller (``python -m bench``) may have threads.
_MP = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Probe:
    """One measured query: what it is, how it is written for us and for rg (fixed string or regex)."""

    name: str
    query: str
    kinds: tuple[str, ...]
    pattern: str
    regex: bool = False

    @property
    def key(self) -> str:
        """The probe's part of a figure's name: ``word_common``, ``phrase``, ..."""
        return self.name.replace(", ", "_").replace(" ", "_")


ALL_KINDS = ("command", "output", "input")
PROBES = (
    Probe("word, common", "refused", ALL_KINDS, "refused"),
    Probe("word, rare", RARE_WORD, ALL_KINDS, RARE_WORD),
    Probe("phrase", '"permission denied"', ALL_KINDS, "permission denied"),
    Probe("prefix", "kube*", ALL_KINDS, r"\bkube", regex=True),
    Probe("command", "git log", ("command",), r"git.{0,40}log", regex=True),
    Probe("command, failed", "nonexistent", ("command",), "nonexistent"),
)
#: Probes also timed as a whole ``recorder search`` process, as an auditor runs it: interpreter
#: start-up, imports, the audit log's entry and the printed hits included (what rg's times include);
#: on the local index, and through a proxy that holds it (``--server``).
CLI_PROBES = ("word_rare", "prefix")
#: The two ways ``recorder search`` is timed as a process (figures ``sqlite_<way>_<probe>_...``).
CLI_WAYS = ("cli", "cli_server")
#: The principal the benchmark's proxy names as its auditor.
CLI_AUDITOR = "bench-auditor"


def progress(phase: str, started: float, message: str) -> None:
    """One progress line on stderr: seconds since ``started`` (a perf_counter), phase, message."""
    print(
        f"bench search [{time.perf_counter() - started:7.1f} s] {phase}: {message}",
        file=sys.stderr,
        flush=True,
    )


# -- generation ------------------------------------------------------------------------------------

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu request response timeout "
    "session upstream database cache worker queue retry backoff latency token user admin deploy "
    "release build artifact config service endpoint handler router socket buffer stream"
).split()
SERVICES = ("api", "web", "billing", "auth", "search", "ingest", "mailer", "scheduler")


def _prompt(rnd: random.Random, cwd: str) -> str:
    return f"\x1b]133;A\x07\x1b[32mops@host-{rnd.randint(1, 9)}\x1b[0m:{cwd}$ \x1b]133;B\x07"


def _log_lines(rnd: random.Random, count: int, rare: bool) -> list[str]:
    lines = []
    for i in range(count):
        level = rnd.choice(("INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"))
        words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 10)))
        extra = ""
        if level == "ERROR":
            extra = rnd.choice(
                (" connection refused by 10.0.3.7:5432", " permission denied for relation orders", "")
            )
        if rare and i == count // 2:
            extra += f" {RARE_WORD} anomaly detected"
        lines.append(
            f"2025-03-01T09:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}Z {level} "
            f"service={rnd.choice(SERVICES)} request_id={rnd.getrandbits(48):012x} msg={words}{extra}"
        )
    return lines


def _command(rnd: random.Random, rare: bool) -> tuple[str, list[str], int]:
    """A command line, its output lines and its exit status."""
    kind = rnd.randrange(9)
    if kind == 0:
        return (
            "ls -la /var/log",
            [
                f"-rw-r----- 1 root adm {rnd.randint(100, 99999):6d} Mar  1 09:{rnd.randint(0, 59):02d} "
                f"{rnd.choice(SERVICES)}.log.{n}"
                for n in range(rnd.randint(5, 30))
            ],
            0,
        )
    if kind == 1:
        service = rnd.choice(SERVICES)
        return f"tail -n 200 /var/log/{service}.log", _log_lines(rnd, rnd.randint(50, 200), rare), 0
    if kind == 2:
        return (
            "git log --oneline -n 20",
            [
                f"{rnd.getrandbits(28):07x} {rnd.choice(('fix', 'add', 'refactor', 'bump'))} "
                + " ".join(rnd.choice(WORDS) for _ in range(5))
                for _ in range(20)
            ],
            0,
        )
    if kind == 3:
        return (
            "kubectl get pods -n prod",
            [
                "NAME                                READY   STATUS    RESTARTS   AGE",
                *(
                    f"{rnd.choice(SERVICES)}-{rnd.getrandbits(32):08x}-{rnd.getrandbits(20):05x}   1/1     "
                    f"{rnd.choice(('Running', 'Running', 'CrashLoopBackOff'))}   "
                    f"{rnd.randint(0, 9)}   {rnd.randint(1, 90)}d"
                    for _ in range(rnd.randint(5, 25))
                ),
            ],
            0,
        )
    if kind == 4:
        return "ls /nonexistent", ["ls: cannot access '/nonexistent': No such file or directory"], 2
    if kind == 5:
        return (
            "curl -sS http://10.0.3.7:8080/health",
            ["curl: (7) Failed to connect to 10.0.3.7 port 8080: Connection refused"],
            7,
        )
    if kind == 6:
        return (
            "ps aux --sort=-%cpu | head -20",
            [
                f"root {rnd.randint(1, 40000):6d} {rnd.random() * 50:4.1f} {rnd.random() * 10:4.1f} "
                f"/usr/bin/{rnd.choice(SERVICES)} --{rnd.choice(WORDS)}={rnd.choice(WORDS)}"
                for _ in range(20)
            ],
            0,
        )
    if kind == 7:
        return (
            "cat /etc/passwd",
            [
                f"{rnd.choice(WORDS)}:x:{1000 + n}:{1000 + n}::/home/{rnd.choice(WORDS)}:/bin/bash"
                for n in range(rnd.randint(5, 20))
            ],
            0,
        )
    return "psql -c 'select count(*) from orders'", ["ERROR:  permission denied for table orders"], 1


#: The C string encoder json.dumps uses (ensure_ascii): quotes and escapes a str.
_json_str = json.encoder.encode_basestring_ascii


def event_line(t: float, code: str, data: str) -> str:
    """One event line: exactly ``json.dumps([round(t, 6), code, data])``, at a third of the cost
    (the generic encoder's dispatch dominates for the one-character events typing produces)."""
    return f"[{round(t, 6)!r}, {_json_str(code)}, {_json_str(data)}]"


#: When the generated archive starts, and the mean time between two recordings in it.
ARCHIVE_START = 1_740_000_000
ARCHIVE_GAP_SECONDS = 900


def write_recording(path: Path, rnd: random.Random, size: int, rare: bool, number: int = 0) -> int:
    """Write one asciicast v2 recording of about ``size`` bytes; returns the file size.

    Lines are JSON written directly (the content is ASCII, so characters are bytes): typed
    characters as an ``i`` event and its ``o`` echo, output in 4096-character chunks as a PTY
    delivers it, OSC 133 prompt/command/status marks around each command.
    """
    # An archive in time order (what a proxy writes: recording n starts after recording n-1),
    # with jitter so some neighbours swap places.
    started = ARCHIVE_START + number * ARCHIVE_GAP_SECONDS + rnd.randint(0, 2 * ARCHIVE_GAP_SECONDS)
    header = {"version": 2, "width": 160, "height": 48, "timestamp": started}
    lines = [json.dumps(header)]
    written = len(lines[0]) + 1

    def event(t: float, code: str, data: str) -> None:
        nonlocal written
        line = event_line(t, code, data)
        lines.append(line)
        written += len(line) + 1

    t = 0.0
    cwd = "~"
    event(t, "o", _prompt(rnd, cwd))
    while written < size:
        command, output, status = _command(rnd, rare and written > size // 2)
        for ch in command:
            t += rnd.uniform(0.03, 0.15)
            event(t, "i", ch)
            event(t + 0.002, "o", ch)
        t += 0.2
        event(t, "i", "\r")
        body = "\r\n\x1b]133;C\x07" + "".join(line + "\r\n" for line in output)
        for start in range(0, len(body), 4096):
            t += rnd.uniform(0.001, 0.02)
            event(t, "o", body[start : start + 4096])
        t += rnd.uniform(0.5, 5.0)
        event(t, "o", f"\x1b]133;D;{status}\x07" + _prompt(rnd, cwd))
    event(t + 0.5, "i", "exit\r")
    event(t + 0.6, "x", "0")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(data)
    return len(data)


def _write_one(task: tuple[str, int, int, int]) -> int:
    """Worker: recording number ``index``, from its own seed (the corpus does not depend on workers)."""
    directory, index, size, seed = task
    rnd = random.Random(f"{seed}:{index}")
    return write_recording(
        Path(directory) / f"session-{index:05d}.cast", rnd, size, rare=index % RARE_EVERY == 0, number=index
    )


def generate(
    directory: Path,
    count: int,
    size: int,
    seed: int = 7,
    workers: int | None = None,
    started: float | None = None,
) -> int:
    """Write ``count`` recordings into ``directory`` on all cores; returns their total size in bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter() if started is None else started
    workers = workers or os.cpu_count() or 1
    tasks = [(str(directory), i, size, seed) for i in range(count)]
    step = max(1, count // 10)
    total = done = 0
    with _MP.Pool(workers) as pool:
        for written in pool.imap_unordered(
            _write_one, tasks, chunksize=max(1, min(50, count // (workers * 20)))
        ):
            total += written
            done += 1
            if done % step == 0 or done == count:
                progress("generate", started, f"{done}/{count} recordings, {total / 1e6:.0f} MB")
    return total


# -- indexing --------------------------------------------------------------------------------------

_worker_index: Index | None = None


def _init_import_worker(url: str) -> None:
    """Worker start: its own engine and Index for the whole run, disposed when the worker exits."""
    global _worker_index
    engine = make_engine(url, durable=False)  # as `recorder import` makes it
    multiprocessing.util.Finalize(engine, engine.dispose, exitpriority=10)
    _worker_index = Index(engine)


def _import_batch(task: tuple[str, list[str]]) -> tuple[float, float, list[str]]:
    """Worker: import a batch of files; returns (wall start, wall end, one line per file that failed)."""
    data_dir, files = task
    assert _worker_index is not None
    begun = time.time()
    report = import_casts(_worker_index, Path(data_dir), [Path(f) for f in files])
    ended = time.time()
    # A file imported but not (fully) indexed counts as failed too: search would not see all of it.
    return begun, ended, [f"{r.source.name}: {r.error}" for r in report.results if r.error or not r.imported]


def index_corpus(
    name: str, url: str, data: Path, files: list[Path], results: dict[str, Any], started: float
) -> None:
    """Import and index ``files`` with one worker process per core, each on its own engine.

    Wall time runs from the first worker starting its first batch to the last one finishing
    (process start-up is not indexing); per core = corpus MB / (wall seconds x workers).
    """
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    workers = os.cpu_count() or 1
    # Batches taken as workers free up: the load evens out, and progress shows as batches finish.
    per_batch = max(1, min(100, len(files) // (workers * 10)))
    batches = [
        (str(data), [str(f) for f in files[i : i + per_batch]]) for i in range(0, len(files), per_batch)
    ]
    step = max(1, len(batches) // 10)
    first, last = float("inf"), 0.0
    failed: list[str] = []
    progress(f"index {name}", started, f"{len(files)} recordings, {workers} workers")
    with _MP.Pool(workers, initializer=_init_import_worker, initargs=(url,)) as pool:
        for n, (begun, ended, errors) in enumerate(pool.imap_unordered(_import_batch, batches), 1):
            first, last = min(first, begun), max(last, ended)
            failed += errors
            if n % step == 0 or n == len(batches):
                progress(f"index {name}", started, f"{n}/{len(batches)} batches")
        pool.close()
        pool.join()
    if failed:
        raise RuntimeError(f"{len(failed)} recordings failed to import or index on {name}: {failed[0]}")
    total_mb = sum(f.stat().st_size for f in files) / 1e6
    seconds = last - first
    results[f"{name}_index_seconds"] = seconds
    results[f"{name}_index_workers"] = workers
    results[f"{name}_index_mb_s"] = total_mb / seconds
    results[f"{name}_index_mb_s_per_core"] = total_mb / (seconds * workers)
    progress(
        f"index {name}",
        started,
        f"done in {seconds:.1f} s wall: {total_mb / seconds:.1f} MB/s, "
        f"{total_mb / (seconds * workers):.1f} MB/s per core",
    )


# -- measuring -------------------------------------------------------------------------------------


def _latencies(fn: Callable[[], object], reps: int) -> list[float]:
    fn()  # warm caches
    samples = []
    for _ in range(reps):
        begun = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - begun) * 1000)
    return samples


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _pg_reachable(base: str) -> str | None:
    """None when PostgreSQL at ``base`` accepts a connection, else why not (one line)."""
    try:
        engine = make_engine(base)
    except IndexStoreError as exc:
        return str(exc)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return None
    except sa.exc.SQLAlchemyError as exc:
        return describe(exc)
    finally:
        engine.dispose()


@contextmanager
def _pg_schema(base: str) -> Iterator[str]:
    schema = f"recorder_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalise_url(base))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = normalise_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


# -- PostgreSQL copy of the SQLite index ---------------------------------------------------------


def _pages(conn: sa.Connection, table: sa.Table) -> Iterator[list[sa.Row[Any]]]:
    """The table's rows in primary key order, COPY_BATCH_ROWS at a time (keyset pagination).

    Values come as SQLAlchemy's types read them (aware datetimes, enums, bools), ready to write.
    """
    pk = list(table.primary_key.columns)
    positions = [list(table.columns).index(c) for c in pk]
    last: tuple[Any, ...] | None = None
    while True:
        stmt = sa.select(table).order_by(*pk).limit(COPY_BATCH_ROWS)
        if last is not None:
            stmt = stmt.where(sa.tuple_(*pk) > sa.tuple_(*last) if len(pk) > 1 else pk[0] > last[0])
        rows = list(conn.execute(stmt).all())
        if not rows:
            return
        yield rows
        last = tuple(rows[-1][i] for i in positions)


_Pages = queue.Queue[list[sa.Row[Any]] | None]


def _writer(engine: sa.Engine, table: sa.Table, method: str, pages: _Pages) -> None:
    """Writer thread: in a transaction of its own, write the pages it takes until a None; commit.

    With COPY, one ``COPY ... FROM STDIN`` per writer and table, rows sent as they come.
    """
    names = [c.name for c in table.columns]
    # begin(), not connect(): COPY goes through the driver, which SQLAlchemy's autobegin never sees.
    with engine.begin() as conn:
        if method == "insert":
            while (rows := pages.get()) is not None:
                conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])
        else:
            quote = conn.dialect.identifier_preparer.quote
            sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                while (rows := pages.get()) is not None:
                    for row in rows:
                        copy.write_row(row)


def _put(pages: _Pages, item: list[sa.Row[Any]] | None, writers: list[Future[None]]) -> None:
    """Queue ``item`` for the writers, raising a writer's error instead of waiting on it forever."""
    while True:
        try:
            pages.put(item, timeout=0.5)
            return
        except queue.Full:
            for writer in writers:
                if writer.done() and (error := writer.exception()) is not None:
                    raise error from None


def _copy_table(
    pages: Iterator[list[sa.Row[Any]]],
    target: sa.Engine,
    table: sa.Table,
    method: str,
    workers: int,
    started: float,
) -> int:
    """Write ``pages`` of ``table`` with ``workers`` writer threads, one connection each; rows written.

    PostgreSQL's work (the generated ``tsv`` column, the GIN and B-tree entries) dominates and runs
    in each connection's server process, so the writers spread it over the cores; this thread
    reads SQLite, one reader only (the SQLite engine takes its write lock on every BEGIN).
    """
    queued: _Pages = queue.Queue(maxsize=2 * workers)
    count = 0
    with ThreadPoolExecutor(workers, thread_name_prefix=f"copy-{table.name}") as pool:
        writers = [pool.submit(_writer, target, table, method, queued) for _ in range(workers)]
        try:
            for rows in pages:
                _put(queued, rows, writers)
                count += len(rows)
                if count % 1_000_000 < len(rows):
                    progress("copy postgresql", started, f"{table.name}: {count} rows read")
            for _ in writers:
                _put(queued, None, writers)
        except BaseException:
            # Let the writers still waiting stop: drop the pages not written, then one stop each.
            with suppress(queue.Empty):
                while True:
                    queued.get_nowait()
            for _ in writers:
                queued.put_nowait(None)
            raise
    for writer in writers:
        writer.result()
    return count


def _fill_blocks(target: sa.Engine, workers: int, started: float) -> None:
    """PostgreSQL's blocks of output lines for the copied rows, as the store writes them with its
    own (``recorder.index.rows``): one range of connections per worker, each in its own transaction."""
    begun = time.perf_counter()
    with target.connect() as conn:
        low, high = conn.execute(sa.text("SELECT min(id), max(id) FROM connections")).one()
    if low is None:
        return
    step = -(-(high - low + 1) // workers)
    ranges = [(first, min(high, first + step - 1)) for first in range(low, high + 1, step)]

    def fill(bounds: tuple[int, int]) -> int:
        with target.begin() as conn:
            return fill_output_blocks(conn, *bounds)

    with ThreadPoolExecutor(workers, thread_name_prefix="blocks") as pool:
        blocks = sum(pool.map(fill, ranges))
    progress(
        "copy postgresql", started, f"output_blocks: {blocks} rows in {time.perf_counter() - begun:.1f} s"
    )


def copy_index(
    source_url: str,
    target_url: str,
    method: str,
    results: dict[str, Any],
    started: float,
    workers: int | None = None,
) -> None:
    """Copy every table of the SQLite index into an upgraded, empty PostgreSQL schema.

    Generic over the models: tables in foreign-key order, each read in pages of COPY_BATCH_ROWS
    (keyset pagination on the primary key) and written with COPY (or INSERT) by one writer per
    core; empty tables and ``alembic_version`` (``upgrade`` wrote it) are skipped. Then each
    integer ``id`` sequence is moved past the copied ids and the tables are analysed. Rows per
    table go to ``results``.
    """
    workers = workers or os.cpu_count() or 1
    target = make_engine(target_url)
    source = make_engine(source_url)
    try:
        upgrade(target)
        progress("copy postgresql", started, f"tables in foreign-key order, by {method}, {workers} writers")
        begun = time.perf_counter()
        total = 0
        copied: list[sa.Table] = []
        with source.connect() as src:
            for table in Base.metadata.sorted_tables:
                if table.name == "alembic_version":
                    continue
                table_begun = time.perf_counter()
                pages = _pages(src, table)
                first = next(pages, None)
                if first is None:
                    continue
                count = _copy_table(chain([first], pages), target, table, method, workers, started)
                src.rollback()
                copied.append(table)
                results[f"postgresql_copy_{table.name}_rows"] = count
                total += count
                seconds = time.perf_counter() - table_begun
                progress(
                    "copy postgresql",
                    started,
                    f"{table.name}: {count} rows in {seconds:.1f} s ({count / seconds:,.0f} rows/s)",
                )
        copy_seconds = time.perf_counter() - begun
        _fill_blocks(target, workers, started)
        with target.connect() as dst:
            quote = dst.dialect.identifier_preparer.quote
            for table in copied:
                pk = list(table.primary_key.columns)
                if len(pk) == 1 and pk[0].name == "id" and isinstance(pk[0].type, sa.Integer):
                    dst.execute(
                        sa.text(
                            "SELECT setval(pg_get_serial_sequence(:table, 'id'), max(id)) FROM "
                            + quote(table.name)
                        ),
                        {"table": table.name},
                    )
            dst.commit()
        # VACUUM, not only ANALYZE: rows COPY'd in sit in each GIN index's pending list, which
        # every search reads in full until a vacuum merges it (autovacuum would, later); a bulk
        # load is followed by one, as a DBA would run it.
        with target.connect().execution_options(isolation_level="AUTOCOMMIT") as dst:
            quote = dst.dialect.identifier_preparer.quote
            for name in [table.name for table in copied] + [output_blocks.name]:
                dst.exec_driver_sql(f"VACUUM ANALYZE {quote(name)}")
        seconds = time.perf_counter() - begun
        results["postgresql_copy_method"] = method
        results["postgresql_copy_workers"] = workers
        results["postgresql_copy_rows"] = total
        results["postgresql_copy_seconds"] = seconds
        results["postgresql_copy_rows_s"] = total / copy_seconds
        progress(
            "copy postgresql",
            started,
            f"done: {total} rows in {copy_seconds:.1f} s ({total / copy_seconds:,.0f} rows/s), "
            f"{seconds:.1f} s with sequences and VACUUM ANALYZE",
        )
    finally:
        source.dispose()
        target.dispose()


def _hit_key(hit: Hit) -> tuple[int, str, float, str]:
    return (hit.connection_id, hit.kind, hit.offset, hit.text)


def cross_check(sqlite_url: str, pg_url: str, started: float) -> None:
    """Every probe must return the same hits, in the same order, on SQLite and on the PostgreSQL copy."""
    engines = [make_engine(sqlite_url), make_engine(pg_url)]
    try:
        indexes = [Index(e) for e in engines]
        for probe in PROBES:
            mine, theirs = (
                [_hit_key(h) for h in search(index, probe.query, kinds=probe.kinds, limit=50)]
                for index in indexes
            )
            if mine == theirs:
                continue
            for n, (a, b) in enumerate(zip(mine, theirs, strict=False)):
                if a != b:
                    raise RuntimeError(
                        f"probe {probe.name!r} ({probe.query}): hit {n} differs: "
                        f"sqlite {a!r}, postgresql {b!r}"
                    )
            raise RuntimeError(
                f"probe {probe.name!r} ({probe.query}): sqlite has {len(mine)} hits, postgresql {len(theirs)}"
            )
        progress("cross-check", started, f"{len(PROBES)} probes: same hits on sqlite and postgresql")
    finally:
        for engine in engines:
            engine.dispose()


def measure_queries(name: str, url: str, reps: int, results: dict[str, Any], started: float) -> None:
    """Median and p99 of each probe through ``recorder.index.search`` (50 hits, as the CLI asks)."""
    engine = make_engine(url)
    try:
        index = Index(engine)
        for probe in PROBES:
            hits = search(index, probe.query, kinds=probe.kinds, limit=50)
            samples = _latencies(lambda p=probe: search(index, p.query, kinds=p.kinds, limit=50), reps)
            results[f"{name}_{probe.key}_median_ms"] = statistics.median(samples)
            results[f"{name}_{probe.key}_p99_ms"] = _p99(samples)
            results[f"{name}_{probe.key}_hits"] = len(hits)
        progress(f"queries {name}", started, f"{len(PROBES)} probes x {reps} reps")
    finally:
        engine.dispose()


def measure_cli(url: str, data: Path, reps: int, results: dict[str, Any], started: float) -> None:
    """Median and p99 of ``recorder search`` as a process, for each of :data:`CLI_PROBES`: on the
    local index, and through a proxy holding that index (``--server``), the two in turns."""
    token = _token(url, data)
    with recorder_started(*_auditor_proxy_args(url, data)) as proxy:
        for probe in PROBES:
            if probe.key not in CLI_PROBES:
                continue
            if set(probe.kinds) != set(ALL_KINDS):
                raise ValueError(f"{probe.key}: the command is timed on probes of every kind only")
            argv = [sys.executable, "-m", "recorder", "search", probe.query, "--limit", "50"]
            ways = {
                "cli": [*argv, "--db", url, "--data-dir", str(data)],
                "cli_server": [*argv, "--server", proxy.url, "--token", token],
            }
            # Both ways print the same hits (and neither an error, which would time a refusal).
            printed = {way: _printed([*args, "--json"]) for way, args in ways.items()}
            if printed["cli"] != printed["cli_server"] or not printed["cli"]:
                raise RuntimeError(
                    f"{probe.key}: recorder search --server printed other hits than a local one"
                )
            samples = _latencies_in_turns(
                {way: (lambda a=args: _run_tool(a)) for way, args in ways.items()}, reps
            )
            for way, taken in samples.items():
                results[f"sqlite_{way}_{probe.key}_median_ms"] = statistics.median(taken)
                results[f"sqlite_{way}_{probe.key}_p99_ms"] = _p99(taken)
    progress("queries recorder search", started, f"{len(CLI_PROBES)} probes x {reps} processes x 2 ways")


def _token(url: str, data: Path) -> str:
    """A bearer token for the benchmark's auditor, made as an administrator would."""
    made = subprocess.run(
        [sys.executable, "-m", "recorder", "token", "create", "--principal", CLI_AUDITOR, "--db", url]
        + ["--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip().splitlines()[-1]


def _auditor_proxy_args(url: str, data: Path) -> list[str]:
    """A proxy on the benchmark's index that lets :data:`CLI_AUDITOR` search (no shell is opened)."""
    return [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(data),
        "--db",
        url,
        "--upstream",
        "local",
        "--auth",
        "token",
        "--auditor",
        CLI_AUDITOR,
        "--log-level",
        "WARNING",
    ]


def _printed(argv: list[str]) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:5])} ... failed ({done.returncode}): {done.stderr.strip()[:200]}"
        )
    return done.stdout.splitlines()


def _latencies_in_turns(ways: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Each way ``reps`` times, one after the other in turns (after one warm-up each)."""
    for fn in ways.values():
        fn()
    samples: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(reps):
        for way, fn in ways.items():
            begun = time.perf_counter()
            fn()
            samples[way].append((time.perf_counter() - begun) * 1000)
    return samples


def text_search_tool() -> tuple[str, str] | None:
    """(name, path) of ripgrep, or of GNU grep when rg is not installed; None when neither is."""
    for name in ("rg", "grep"):
        path = shutil.which(name)
        if path is not None:
            return name, path
    return None


def _tool_argv(tool: str, path: str, probe: Probe, directory: Path) -> list[str]:
    """How a user would search the files: ``rg -i -F word dir`` / ``rg -i -e regex dir``."""
    if tool == "rg":
        return [path, "-i", "-F" if not probe.regex else "-e", probe.pattern, str(directory)]
    return [path, "-r", "-i", "-E" if probe.regex else "-F", "-e", probe.pattern, str(directory)]


def _run_tool(argv: list[str]) -> None:
    # Output is read through a pipe, as a terminal or a script would take it, not sent to
    # /dev/null: GNU grep stops at the first match when it sees /dev/null, not the same work.
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while proc.stdout.read(1 << 20):
            pass
        err = proc.stderr.read() if proc.stderr is not None else b""
    if proc.returncode not in (0, 1):  # 1: nothing matched
        raise RuntimeError(
            f"{' '.join(argv)} failed ({proc.returncode}): {err.decode(errors='replace')[:200]}"
        )


def measure_tool(directory: Path, reps: int, results: dict[str, Any], started: float) -> str | None:
    """Median and p99 of rg (or grep) for each probe over the files; returns the tool's name."""
    found = text_search_tool()
    if found is None:
        progress("queries", started, "neither rg nor grep is installed: no comparison")
        return None
    tool, path = found
    if tool != "rg":
        progress("queries", started, "rg (Debian package ripgrep) is not installed: comparing with grep -r")
    for probe in PROBES:
        argv = _tool_argv(tool, path, probe, directory)
        samples = _latencies(lambda a=argv: _run_tool(a), reps)
        results[f"{tool}_{probe.key}_median_ms"] = statistics.median(samples)
        results[f"{tool}_{probe.key}_p99_ms"] = _p99(samples)
    progress(f"queries {tool}", started, f"{len(PROBES)} probes x {reps} reps")
    return tool


def run(
    recordings: int = DEFAULT_RECORDINGS,
    kb: int = DEFAULT_KB,
    reps: int = 30,
    tool_reps: int = 5,
    pg_url: str | None = None,
    workdir: Path | None = None,
    pg_index_recordings: int = DEFAULT_PG_INDEX_RECORDINGS,
    copy_method: str = "copy",
) -> dict[str, Any]:
    """Generate, import and index, then measure; returns flat figures (ms, seconds, MB/s, counts)."""
    if copy_method not in COPY_METHODS:
        raise ValueError(f"copy_method must be one of {COPY_METHODS}, not {copy_method!r}")
    started = time.perf_counter()
    pg_url = pg_url if pg_url is not None else os.environ.get(PG_ENV)
    if pg_url:
        why = _pg_reachable(pg_url)
        if why is not None:
            progress("postgresql", started, f"cannot connect ({why}): PostgreSQL is not measured")
            pg_url = None
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="bench-search-")) if workdir is None else workdir
    results: dict[str, Any] = {"recordings": recordings}
    try:
        source = root / "casts"
        total = generate(source, recordings, kb * 1000, started=started)
        results["corpus_mb"] = total / 1e6
        results["generate_seconds"] = time.perf_counter() - started
        files = sorted(source.glob("*.cast"))
        sqlite_url = f"sqlite:///{root / 'index.sqlite3'}"
        index_corpus("sqlite", sqlite_url, root / "data-sqlite", files, results, started)
        results["sqlite_db_mb"] = (root / "index.sqlite3").stat().st_size / 1e6
        measure_queries("sqlite", sqlite_url, reps, results, started)
        measure_cli(sqlite_url, root / "data-sqlite", tool_reps, results, started)
        if pg_url:
            # The pipeline's rate on PostgreSQL, on a subset, in a schema of its own (then dropped).
            subset = files[: max(1, pg_index_recordings)]
            with _pg_schema(pg_url) as url:
                index_corpus("postgresql", url, root / "data-pg", subset, results, started)
            results["postgresql_index_recordings"] = len(subset)
            results["postgresql_index_corpus_mb"] = sum(f.stat().st_size for f in subset) / 1e6
            # Search over the whole corpus: the SQLite index's rows, copied.
            with _pg_schema(pg_url) as url:
                copy_index(sqlite_url, url, copy_method, results, started)
                cross_check(sqlite_url, url, started)
                measure_queries("postgresql", url, reps, results, started)
        tool = measure_tool(source, tool_reps, results, started)
        if tool is not None:
            results["text_search_tool"] = tool
            for backend in BACKENDS:
                for probe in PROBES:
                    ours = results.get(f"{backend}_{probe.key}_median_ms")
                    if ours:
                        results[f"{tool}_over_{backend}_{probe.key}"] = (
                            results[f"{tool}_{probe.key}_median_ms"] / ours
                        )
            for key in CLI_PROBES:
                for way in CLI_WAYS:
                    if f"sqlite_{way}_{key}_median_ms" in results:
                        results[f"{tool}_over_sqlite_{way}_{key}"] = (
                            results[f"{tool}_{key}_median_ms"] / results[f"sqlite_{way}_{key}_median_ms"]
                        )
        progress("done", started, f"{results['corpus_mb']:.0f} MB corpus")
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    return results


def print_table(results: dict[str, Any], console: Console | None = None) -> None:
    """The figures side by side: one row per query; sqlite, postgresql and rg columns; the ratios."""
    tool = results.get("text_search_tool")
    backends = [b for b in BACKENDS if f"{b}_{PROBES[0].key}_median_ms" in results]
    table = Table(
        title=f"search over {results['recordings']} recordings, {results['corpus_mb']:.0f} MB "
        "(median / p99 ms; hits capped at 50)"
    )
    table.add_column("query")
    for backend in backends:
        table.add_column(backend, justify="right")
    if tool:
        table.add_column(tool if tool == "rg" else f"{tool} (no rg)", justify="right")
        for backend in backends:
            table.add_column(f"{tool}/{backend}", justify="right")
    table.add_column("hits", justify="right")
    for probe in PROBES:
        key = probe.key
        names = backends + ([tool] if tool else [])
        cells = [f"{results[f'{b}_{key}_median_ms']:.1f} / {results[f'{b}_{key}_p99_ms']:.1f}" for b in names]
        if tool:
            cells += [f"{results[f'{tool}_over_{b}_{key}']:.1f}x" for b in backends]
        table.add_row(f"{probe.name}: {probe.query}", *cells, str(results.get(f"sqlite_{key}_hits", "")))
    # Piped or captured, rich would fold the table to 80 columns; it needs about 110.
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    for backend in backends:
        corpus = f" ({results['postgresql_index_recordings']} recordings)" if backend == "postgresql" else ""
        console.print(
            f"{backend}{corpus}: imported and indexed in {results[f'{backend}_index_seconds']:.1f} s wall by "
            f"{results[f'{backend}_index_workers']} workers: {results[f'{backend}_index_mb_s']:.1f} MB/s, "
            f"{results[f'{backend}_index_mb_s_per_core']:.1f} MB/s per core"
        )
    for probe in PROBES:
        key = probe.key
        for way, how in zip(CLI_WAYS, ("", " --server"), strict=True):
            if f"sqlite_{way}_{key}_median_ms" in results:
                versus = f", {tool}/CLI {results[f'{tool}_over_sqlite_{way}_{key}']:.3g}x" if tool else ""
                console.print(
                    f"`recorder search{how}` as a process (start-up included), sqlite, {probe.name}: "
                    f"{results[f'sqlite_{way}_{key}_median_ms']:.0f} / "
                    f"{results[f'sqlite_{way}_{key}_p99_ms']:.0f} ms{versus}"
                )
    console.print(f"sqlite index file: {results['sqlite_db_mb']:.0f} MB")
    if "postgresql_copy_seconds" in results:
        console.print(
            "postgresql: search index built by copying the SQLite index's rows (same rows the pipeline "
            f"writes): {results['postgresql_copy_rows']} rows in {results['postgresql_copy_seconds']:.1f} s "
            f"by {results['postgresql_copy_method']}; the PostgreSQL indexing pipeline was measured on "
            f"{results['postgresql_index_recordings']} recordings "
            f"({results['postgresql_index_corpus_mb']:.0f} MB); hits identical to sqlite on every query"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_search")
    parser.add_argument("--recordings", type=int, default=DEFAULT_RECORDINGS)
    parser.add_argument("--kb", type=int, default=DEFAULT_KB, help="size of each recording, in kB")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--tool-reps", type=int, default=5, help="repetitions of each rg (or grep) run")
    parser.add_argument(
        "--pg-index-recordings",
        type=int,
        default=DEFAULT_PG_INDEX_RECORDINGS,
        help="recordings indexed through the pipeline on PostgreSQL (search there runs on a copy of all)",
    )
    parser.add_argument(
        "--pg-copy", choices=COPY_METHODS, default="copy", help="how the SQLite index is copied to PostgreSQL"
    )
    args = parser.parse_args()
    print_table(
        run(
            args.recordings,
            args.kb,
            args.reps,
            args.tool_reps,
            pg_index_recordings=args.pg_index_recordings,
            copy_method=args.pg_copy,
        )
    )


if __name__ == "__main__":
    main()

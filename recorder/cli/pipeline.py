"""Work that needs both the replay core and the index: index a recording for search, import casts.

It lives in the CLI layer because it wires two packages that must not import each other: the
index knows nothing of terminal emulation, and replay nothing of SQL.

A recording is indexed in one pass (nothing is held whole, see :func:`extract_rows`): typed
input lines come off the input events, and one emulator serves both the commands (read off the
screen) and the rendered output lines; rows are written to the index in batches as they come.
If the emulator gives up part way (a damaged recording), what the screen showed up to there and
all typed input are indexed, and the reason is stored with the run (``Index.indexed(id).error``).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.util
import os
import re
import socket
import tempfile
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection as MpConnection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Protocol

from recorder.cast.model import EXIT, INPUT, OUTPUT, RESIZE, Event, Header, Problem, ProblemKind
from recorder.cast.reader import open_cast
from recorder.errors import CastError, IndexStoreError, RecorderError, ReplayError, UnknownConnection
from recorder.index.db import make_engine
from recorder.index.models import (
    COUNTER_NAMES,
    MAX_ARN,
    MAX_PRINCIPAL,
    MAX_QUALIFIER,
    MAX_SESSION_ID,
    MAX_SHELL_ID,
)
from recorder.index.rows import CommandLike, IndexedRow, TextLike
from recorder.index.store import Index
from recorder.index.typed import TypedLines
from recorder.logfmt import configure as configure_logging
from recorder.logfmt import get_logger
from recorder.replay.commands import CommandTracker
from recorder.replay.driver import run
from recorder.replay.screen import Screen
from recorder.replay.text import LineTracker
from recorder.storage.local import RECORDINGS_DIR, LocalStorage

log = get_logger(__name__)

#: Where imported recordings are copied, relative to the data directory.
IMPORTED_DIR = f"{RECORDINGS_DIR}/imported"
#: Runtime ARN of an imported recording that does not name one (no recorder context).
IMPORT_RUNTIME_ARN = "import"
#: Terminal size given to a recording whose header says 0 columns or rows.
DEFAULT_COLS, DEFAULT_ROWS = 80, 24
#: Problems an import result lists one by one; the rest are only counted.
REPORTED_PROBLEMS = 5
#: Read size while copying and hashing an imported file.
COPY_CHUNK = 1024 * 1024

_EXIT_CODE = re.compile(r"-?\d{1,10}\Z")
_INT32 = range(-(2**31), 2**31)


#: Events between two hand-overs of rows from the trackers (bounds what they hold meanwhile).
TAKE_EVERY_EVENTS = 64


class RowSink(Protocol):
    """Where :func:`extract_rows` puts rows as they come (``SearchRowWriter.stage`` is one)."""

    def __call__(
        self,
        commands: Iterable[CommandLike] = (),
        lines: Iterable[TextLike] = (),
        inputs: Iterable[TextLike] = (),
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Extracted:
    """What :func:`extract_rows` found besides the rows: reader problems, why it stopped early."""

    problem_count: int
    error: str | None


def extract_rows(path: Path, stage: RowSink, conn_id: int | None = None) -> Extracted:
    """Read one recording and hand its commands, output lines and typed input lines to ``stage``.

    One pass over the file: typed input is read off the input events as they go by, and one
    emulator serves both command extraction and output text; rows are handed on as they are
    final, so memory stays bounded whatever the recording's length. If the emulator gives up
    part way (a damaged recording), what the screen showed up to there and all typed input are
    handed on, and the reason is returned.
    """
    error: str | None = None
    typed = TypedLines()
    with open_cast(path) as reader:
        header = reader.header
        if not header.width or not header.height:
            # A size of 0 means "unknown" (some tools write it): emulate the classic terminal.
            header = replace(header, width=header.width or DEFAULT_COLS, height=header.height or DEFAULT_ROWS)
        events = _tee_input(reader.events(), typed)
        screen: Screen | None = None
        commands = CommandTracker()
        lines: LineTracker | None = None
        last = 0.0
        try:
            screen = Screen(header.width, header.height, collect_scrolled=True)
            lines = LineTracker(screen)
            for n, moment in enumerate(run(screen, events, [commands, lines])):
                last = moment
                # Rows wait in the trackers for a few events (three hand-overs after every
                # event showed in the profile of typing-heavy recordings).
                if n % TAKE_EVERY_EVENTS == 0:
                    stage(commands.take(), lines.take(), typed.take())
        except ReplayError as exc:
            # A damaged recording: keep what was read, say why the rest is missing.
            error = str(exc)
            log.warning("index.replay_failed", id=conn_id, path=str(path), error=error)
            if screen is not None and lines is not None:
                # What the screen showed up to there is final: index it.
                commands.finish(screen, last)
                lines.finish(screen, last)
                stage(commands.take(), lines.take())
            # Typed input does not need the emulator: the rest of it is still indexed.
            for _ in events:
                if typed.pending:
                    stage(inputs=typed.take())
        typed.finish()
        stage(commands.take(), lines.take() if lines is not None else (), typed.take())
        return Extracted(reader.problem_count, error)


def index_recording(index: Index, conn_id: int, path: Path) -> IndexedRow | None:
    """Index one recording file as the search rows of connection ``conn_id`` (replacing earlier ones).

    Rows are written in batches as :func:`extract_rows` hands them on, and made live at once
    when the whole file is read (see ``recorder.index.rows``).
    """
    writer = index.search_writer(conn_id)
    try:
        found = extract_rows(path, writer.stage, conn_id)
    except BaseException:
        writer.discard()
        raise
    row = writer.commit(problem_count=found.problem_count, error=found.error)
    log.info(
        "index.recording_indexed",
        id=conn_id,
        commands=writer.counts["commands"],
        lines=writer.counts["output_lines"],
        inputs=writer.counts["input_lines"],
        problems=found.problem_count,
    )
    return row


class BackgroundIndexer:
    """Indexes finished recordings one at a time in a child process running at a lower priority.

    Not a thread of the proxy: Python code in a thread shares the proxy's interpreter lock with
    the relay and the recording writers, and indexing a large recording (a 100 MB burst is one
    very long line) held it long enough for a writer to stall past its limit and fail its
    session closed. A separate, niced process only takes CPU the proxy leaves over.

    :meth:`close` stops the child at once, even mid-recording: a run that does not commit leaves
    the live rows as they were, and the proxy indexes what was left at its next start.
    """

    def __init__(self, db_url: str, data_dir: Path, log_level: str = "INFO") -> None:
        self._db_url = db_url
        self._data_dir = data_dir
        self._log_level = log_level
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._process: SpawnProcess | None = None
        self._pipe: MpConnection | None = None
        self._closed = False

    def _child(self) -> MpConnection:
        if self._process is None or not self._process.is_alive() or self._pipe is None:
            self._reap()
            ours, theirs = self._context.Pipe()
            process = self._context.Process(
                target=_indexer_main,
                args=(theirs, self._db_url, self._log_level),
                name="recorder-indexer",
                daemon=True,
            )
            process.start()
            theirs.close()
            self._process, self._pipe = process, ours
        return self._pipe

    def _reap(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join(INDEXER_STOP_SECONDS)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._process = self._pipe = None

    def index(self, conn_id: int) -> None:
        """Index connection ``conn_id`` for search; blocks (without the GIL) until it is done.

        Raises what indexing raised, or IndexerStopped when the child died or was stopped.
        """
        with self._lock:
            if self._closed:
                raise IndexerStopped(conn_id)
            pipe = self._child()
            try:
                pipe.send((str(self._data_dir), conn_id))
                # Polled, so a close() that came while the child was starting still stops it.
                while not pipe.poll(INDEXER_POLL_SECONDS):
                    if self._closed:
                        raise EOFError("the indexer was closed")
                ok, outcome = pipe.recv()
            except (EOFError, OSError) as exc:
                # The child died (killed, out of memory) or close() stopped it.
                self._reap()
                raise IndexerStopped(conn_id) from exc
        if not ok:
            raise outcome

    def close(self) -> None:
        """Stop the child now (a job under way is cut short); later calls to index() raise."""
        self._closed = True
        # index() holds the lock while it waits on the child, and lets go within a poll interval.
        with self._lock:
            self._reap()


class IndexerStopped(RecorderError):
    """The indexer process stopped before it indexed a connection (it is indexed at next start)."""

    def __init__(self, conn_id: int) -> None:
        super().__init__(f"connection {conn_id} not indexed: the indexer process stopped")


#: How much lower than the proxy the indexer runs (added to its nice value).
INDEXER_NICENESS = 10
#: How long a stopped indexer may take to exit before it is killed.
INDEXER_STOP_SECONDS = 5.0
#: How often a caller waiting on the indexer checks whether it was closed.
INDEXER_POLL_SECONDS = 0.2


def _indexer_main(pipe: MpConnection, db_url: str, log_level: str) -> None:
    """The indexer process: lower priority, the proxy's log format, its own engine; one job at a time."""
    with suppress(OSError):
        os.nice(INDEXER_NICENESS)
    configure_logging(log_level)
    # Search rows only, made again from the recording if a power cut undoes them: no fsync per commit.
    index = Index(make_engine(db_url, durable=False))
    while True:
        try:
            data_dir, conn_id = pipe.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            index_connection(index, Path(data_dir), conn_id)
            pipe.send((True, None))
        except Exception as exc:  # noqa: BLE001 - sent back to the proxy, which logs it
            try:
                pipe.send((False, exc))
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                pipe.send((False, RecorderError(f"indexing connection {conn_id} failed: {exc!r}")))


def _tee_input(events: Iterable[Event], typed: TypedLines) -> Iterator[Event]:
    """``events`` unchanged, with every input event's keys fed to ``typed`` on the way."""
    for event in events:
        if event.code == INPUT:
            typed.feed(event.time, event.data)
        yield event


def index_connection(index: Index, data_dir: Path, conn_id: int) -> IndexedRow | None:
    """Index a connection's recording (found under ``data_dir``) for search; safe to run again."""
    row = index.get_connection(conn_id)
    if row is None:
        raise UnknownConnection(conn_id)
    return index_recording(index, conn_id, LocalStorage(data_dir).path(row.recording_path))


# -- import ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What happened to one file given to ``recorder import``."""

    source: Path
    #: The connection holding the recording, or None when the file could not be imported at all.
    connection_id: int | None
    #: Why the file could not be imported (or imported but not indexed), one line; None if all went well.
    error: str | None = None
    #: The same bytes were already in the index (as ``connection_id``); nothing was added.
    already: bool = False
    #: Lines the reader skipped (not used) and adjusted (used with a value changed).
    skipped: int = 0
    adjusted: int = 0
    #: The first REPORTED_PROBLEMS problems, with line numbers.
    problems: tuple[Problem, ...] = ()
    indexed: IndexedRow | None = None

    @property
    def imported(self) -> bool:
        """True when the recording is in the index (now or from before)."""
        return self.connection_id is not None


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Every file's result, in the order given."""

    results: tuple[ImportResult, ...]

    @property
    def failed(self) -> tuple[ImportResult, ...]:
        """Files that could not be imported at all."""
        return tuple(r for r in self.results if not r.imported)


@dataclass(slots=True)
class _Scan:
    header: Header
    version: int
    duration: float
    exit_code: int | None
    counters: dict[str, int]
    problems: tuple[Problem, ...]
    problem_count: int


def _scan(path: Path) -> _Scan:
    """One pass over a file: its header, length, exit code, channel counters and problems."""
    counters = dict.fromkeys(COUNTER_NAMES, 0)
    names = {OUTPUT: "stdout", INPUT: "stdin", RESIZE: "resize"}
    exit_code: int | None = None
    last = 0.0
    with open_cast(path) as reader:
        for event in reader.events():
            last = event.time
            channel = names.get(event.code)
            if channel is not None:
                counters[f"frames_{channel}"] += 1
                counters[f"bytes_{channel}"] += len(event.data.encode("utf-8"))
            elif event.code == EXIT and _EXIT_CODE.match(event.data.strip()):
                code = int(event.data.strip())
                exit_code = code if code in _INT32 else None
        return _Scan(
            header=reader.header,
            version=reader.version,
            duration=last,
            exit_code=exit_code,
            counters=counters,
            problems=tuple(reader.problems),
            problem_count=reader.problem_count,
        )


def _temp_prefix(pid: int) -> str:
    """Temporary copies are named by host and process, so that a copy left by a process that
    died (SIGKILL, out of memory: nothing could clean up) can be told from one under way."""
    return f".import-{socket.gethostname()}-{pid}-"


def sweep_stale_copies(directory: Path) -> int:
    """Remove temporary copies this host's dead processes left in ``directory``; returns how many.

    A copy whose process is alive here, or that another host made (a shared data directory),
    stays.
    """
    mine = _temp_prefix(0)[: -len("0-")]
    removed = 0
    try:
        candidates = [entry for entry in directory.iterdir() if entry.name.startswith(mine)]
    except OSError:
        return 0
    for entry in candidates:
        pid_text = entry.name[len(mine) :].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with suppress(OSError):
            entry.unlink()
            removed += 1
    if removed:
        log.info("import.stale_copies_removed", directory=str(directory), count=removed)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _copy_hashed(source: Path, directory: Path) -> tuple[Path, str, int]:
    """Copy ``source`` into ``directory`` under a temporary name; returns (temp path, sha256, size)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(os.getpid()), dir=directory)
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(COPY_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
            dst.flush()
            os.fsync(dst.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), digest.hexdigest(), size


def _context_str(context: dict[str, Any], key: str, limit: int) -> str | None:
    value = context.get(key)
    if isinstance(value, str) and 0 < len(value) <= limit:
        return value
    return None


def _started_at(header: Header, path: Path) -> datetime:
    timestamp = header.timestamp
    # Plausible epoch seconds only (a file may say anything); otherwise the file's own time.
    if timestamp is not None and 0 < timestamp < 2**33:
        return datetime.fromtimestamp(timestamp, UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _problem_counts(scan: _Scan) -> tuple[int, int]:
    listed_skipped = sum(1 for p in scan.problems if p.kind is not ProblemKind.ADJUSTED)
    adjusted = len(scan.problems) - listed_skipped
    # Problems past the reader's list were only counted: report them as skipped (the worse case).
    return listed_skipped + (scan.problem_count - len(scan.problems)), adjusted


def import_cast(index: Index, data_dir: Path, path: Path, *, since: datetime | None = None) -> ImportResult:
    """Import one asciicast v1/v2/v3 file: copy it into the data directory, record it, index it.

    ``since`` is when the run importing it began (default: now). A file whose bytes an earlier
    import recorded but never indexed (cut short) is indexed now; one recorded since is another
    worker's or process's, still being indexed there.
    """
    since = datetime.now(UTC) if since is None else since
    try:
        scan = _scan(path)
    except (CastError, OSError) as exc:
        return ImportResult(path, None, error=_one_line(exc))
    skipped, adjusted = _problem_counts(scan)
    shown = scan.problems[:REPORTED_PROBLEMS]
    storage_dir = data_dir / IMPORTED_DIR
    try:
        tmp, sha256, size = _copy_hashed(path, storage_dir)
    except OSError as exc:
        return ImportResult(path, None, error=f"cannot copy into {storage_dir}: {exc.strerror or exc}")
    try:
        existing = index.find_recording(sha256)
        if existing is not None:
            tmp.unlink(missing_ok=True)
        else:
            suffix = path.suffix if path.suffix in (".cast", ".json") else ".cast"
            rel = f"{IMPORTED_DIR}/{sha256}{suffix}"
            os.replace(tmp, data_dir / rel)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if existing is not None:
        found = ImportResult(path, existing, skipped=skipped, adjusted=adjusted, problems=shown)
        return _already(index, data_dir, found, since)
    context = scan.header.context
    fallback_id = f"import-{sha256[:16]}"
    started = _started_at(scan.header, path)
    try:
        conn_id = index.import_connection(
            source_name=str(path),
            sha256=sha256,
            recording_path=rel,
            recording_size=size,
            cast_version=scan.version,
            cols=scan.header.width or DEFAULT_COLS,
            rows=scan.header.height or DEFAULT_ROWS,
            started_at=started,
            ended_at=started + timedelta(seconds=scan.duration),
            exit_code=scan.exit_code,
            principal=_context_str(context, "principal", MAX_PRINCIPAL),
            runtime_arn=_context_str(context, "runtime_arn", MAX_ARN) or IMPORT_RUNTIME_ARN,
            qualifier=_context_str(context, "qualifier", MAX_QUALIFIER),
            session_id=_context_str(context, "runtime_session_id", MAX_SESSION_ID) or fallback_id,
            shell_id=_context_str(context, "shell_id", MAX_SHELL_ID) or fallback_id,
            counters=scan.counters,
            skipped_lines=skipped,
            adjusted_lines=adjusted,
        )
    except IndexStoreError:
        # The digest is unique in the index: another import of the same bytes (another process,
        # or another worker of this one) may have recorded them since the lookup above.
        existing = index.find_recording(sha256)
        if existing is None:
            raise
        winner = index.get_connection(existing)
        if winner is not None and winner.recording_path != rel:
            # The winner keeps its copy under its own name (another suffix): this one is no one's.
            (data_dir / rel).unlink(missing_ok=True)
        found = ImportResult(path, existing, skipped=skipped, adjusted=adjusted, problems=shown)
        return _already(index, data_dir, found, since)
    try:
        indexed = index_recording(index, conn_id, data_dir / rel)
    except RecorderError as exc:
        return ImportResult(
            path,
            conn_id,
            error=f"imported as connection {conn_id} but not indexed for search: {_one_line(exc)}",
            skipped=skipped,
            adjusted=adjusted,
            problems=shown,
        )
    error = None
    if indexed is not None and indexed.error:
        error = f"imported as connection {conn_id}; part of it is not searchable: {indexed.error}"
    return ImportResult(
        path, conn_id, error=error, skipped=skipped, adjusted=adjusted, problems=shown, indexed=indexed
    )


def _already(index: Index, data_dir: Path, result: ImportResult, since: datetime) -> ImportResult:
    """``result``'s bytes are in the index already. An import before ``since`` that was cut
    short after recording them (Ctrl-C, a crash, a killed worker) left them without search rows:
    they are indexed now, so that importing the same files again finishes the job. An import
    since then is still indexing them itself (another worker, another process), and a recorded
    connection is the proxy's to index."""
    conn_id = result.connection_id
    assert conn_id is not None
    result = replace(result, already=True)
    imported = index.get_import(conn_id)
    if imported is None or _utc(imported.imported_at) >= since or index.indexed(conn_id) is not None:
        return result
    try:
        indexed = index_connection(index, data_dir, conn_id)
    except (RecorderError, OSError) as exc:
        why = _one_line(exc)
        return replace(result, error=f"already in the index as connection {conn_id} but not indexed: {why}")
    error = None
    if indexed is not None and indexed.error:
        error = f"connection {conn_id}: part of it is not searchable: {indexed.error}"
    return replace(result, indexed=indexed, error=error)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def import_casts(index: Index, data_dir: Path, paths: Iterable[Path]) -> ImportReport:
    """Import several files; one failing file does not stop the others."""
    return ImportReport(tuple(import_cast(index, data_dir, Path(p)) for p in paths))


#: Most worker processes ``recorder import --jobs`` starts.
MAX_IMPORT_JOBS = 64


def import_each(
    db_url: str, data_dir: Path, paths: Sequence[Path], jobs: int = 1
) -> Generator[ImportResult, None, None]:
    """Import ``paths`` and yield each file's result as it is known, in the order given.

    With ``jobs`` > 1 that many worker processes import at once, each on its own engine: reading,
    terminal emulation and hashing run in parallel, and the writes take turns (one writer at a
    time on SQLite, see ``WriterLock``; row locks on PostgreSQL). The same bytes given twice are
    imported and indexed once, whichever worker gets there first. A database error stops the run
    as it does with one job, and so does a worker that dies (killed, out of memory), as a
    one-line RecorderError instead of a wait for a result that will never come. When the run
    stops early (an error, the caller stops reading) the files not yet handed to a worker are
    not imported and each worker finishes the one or two it has; on Ctrl-C the workers drop
    theirs too, removing their partial copies. Importing the same files again finishes the job.
    """
    if not 1 <= jobs <= MAX_IMPORT_JOBS:
        raise ValueError(f"jobs must be between 1 and {MAX_IMPORT_JOBS}, not {jobs}")
    since = datetime.now(UTC)
    sweep_stale_copies(data_dir / IMPORTED_DIR)
    jobs = min(jobs, len(paths)) or 1
    if jobs == 1:
        # Imports and their search rows are made again by importing again: no fsync per commit.
        index = Index(make_engine(db_url, durable=False))
        try:
            for path in paths:
                yield import_cast(index, data_dir, Path(path), since=since)
        finally:
            index.engine.dispose()
        return
    executor = ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_import_worker,
        initargs=(db_url, str(data_dir), since),
    )
    futures: list[Future[ImportResult]] = []
    try:
        # Every file is queued at once (a path each); a worker takes the next when it is free, so
        # one large file holds up only its own worker, and results are yielded in order.
        futures += (executor.submit(_import_in_worker, str(path)) for path in paths)
        for future in futures:
            try:
                result = future.result()
            except BrokenProcessPool:
                raise RecorderError(
                    "an import worker stopped before it finished (killed, or out of memory); "
                    "importing the same files again finishes the job"
                ) from None
            yield result
    finally:
        # Cancelled here, not by shutdown(cancel_futures=True): the executor's manager thread
        # cancels only while the executor object lives, and it goes with this generator's frame.
        for future in futures:
            future.cancel()  # False for the few already handed to a worker: they finish
        executor.shutdown(wait=False)


_worker: tuple[Index, Path, datetime] | None = None


def _init_import_worker(db_url: str, data_dir: str, since: datetime) -> None:
    global _worker
    index = Index(make_engine(db_url, durable=False))
    multiprocessing.util.Finalize(index, index.engine.dispose, exitpriority=10)
    _worker = (index, Path(data_dir), since)


def _import_in_worker(path: str) -> ImportResult:
    assert _worker is not None, "not an import worker"
    index, data_dir, since = _worker
    try:
        return import_cast(index, data_dir, Path(path), since=since)
    except RecorderError as exc:
        # Re-raised in the parent as the one-line error it is (its own class may not pickle).
        raise RecorderError(str(exc)) from None


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__

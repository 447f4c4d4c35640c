"""Indexing recordings for search and importing asciicast files from other tools (real files, real DB)."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from recorder.cast.model import Header
from recorder.cast.writer import CastWriter
from recorder.cli.pipeline import (
    IMPORT_RUNTIME_ARN,
    IMPORTED_DIR,
    INDEXER_NICENESS,
    MAX_IMPORT_JOBS,
    REPORTED_PROBLEMS,
    BackgroundIndexer,
    ImportResult,
    IndexerStopped,
    import_cast,
    import_casts,
    import_each,
    index_connection,
    sweep_stale_copies,
)
from recorder.errors import RecorderError, UnknownConnection
from recorder.index.db import make_engine, upgrade
from recorder.index.rows import SearchRowWriter
from recorder.index.search import search
from recorder.index.store import Index

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("RECORDER_CORPUS_DIR", REPO.parent / "shared" / "corpus" / "asciicast"))

#: A word each corpus file shows on screen, found by hand. The big file is base64: its last line.
CORPUS_WORDS = {
    "asciinema__demo-v2.cast": "asciinema",
    "asciinema__full-v1.json": "żółć",
    "asciinema__full-v2.cast": "żółć",
    "asciinema__full-v3.cast": "żółć",
    "asciinema__nulls-v2.cast": "hello",
    "docs__typing-v2.cast": "hello",
    "player__markers-v2.cast": "middle",
    "player__resizing-v3.cast": "world",
    "server__big-v3.cast": "CYUOspNuyPcSr79sFafEmCiC4sKKBxKt0e6suOSiYx3Bpj8I7xkpXnT1JF4kvUaAH4Sdh0m2iglt",
    "server__blank-lines-v2.cast": "jaźń",
    "server__full-v3.cast": "jaźń",
}
#: Files whose output holds no letters or digits at all (only block glyphs): nothing to search.
WORDLESS = {"player__theme-256-v3.cast": "█████████████"}


@pytest.fixture
def corpus() -> Path:
    """The asciicast corpus folder; skips when it is not beside the repository."""
    if not (CORPUS / "README.md").is_file():
        pytest.skip(f"asciicast corpus not found at {CORPUS} (set RECORDER_CORPUS_DIR or add ../shared)")
    return CORPUS


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    upgrade(engine)
    try:
        yield Index(engine)
    finally:
        engine.dispose()


def _cast(path: Path, *events: tuple[float, str, str], width: int = 80, **extra: object) -> Path:
    buf = io.BytesIO()
    writer = CastWriter(
        buf, Header(version=2, width=width, height=24, timestamp=1_700_000_000, extra=dict(extra))
    )
    writer.write_header()
    for t, code, data in events:
        writer.write_event(t, code, data)
    path.write_bytes(buf.getvalue())
    return path


def _output_rows(index: Index, conn_id: int) -> list[str]:
    with index.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT text FROM output_lines WHERE connection_id = :c ORDER BY seq"), {"c": conn_id}
        )
        return [r[0] for r in rows]


# -- the corpus ----------------------------------------------------------------------------------


def test_every_corpus_file_imports_and_is_searchable(corpus: Path, index: Index, tmp_path: Path) -> None:
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".cast", ".json"))
    assert {p.name for p in files} == set(CORPUS_WORDS) | set(WORDLESS), "a corpus file has no test word"
    report = import_casts(index, tmp_path / "data", files)
    assert report.failed == ()
    for result in report.results:
        assert result.connection_id is not None and result.error is None, result
        name = result.source.name
        if name in WORDLESS:
            assert _output_rows(index, result.connection_id) == [WORDLESS[name]]
            continue
        hits = search(index, CORPUS_WORDS[name], kinds={"output"}, limit=1000)
        assert result.connection_id in {h.connection_id for h in hits}, name


def test_big_corpus_file_imports_whole(corpus: Path, index: Index, tmp_path: Path) -> None:
    started = time.perf_counter()
    result = import_cast(index, tmp_path / "data", corpus / "server__big-v3.cast")
    elapsed = time.perf_counter() - started
    print(f"\nserver__big-v3.cast imported and indexed in {elapsed:.2f} s")  # reported, not asserted
    assert result.indexed is not None and result.indexed.line_count > 10_000
    first_line = json.loads((corpus / "server__big-v3.cast").read_text().splitlines()[1])[2].split("\r\n")[0]
    assert first_line in {h.text for h in search(index, first_line.split("+")[0].split("/")[0])}


def test_skipped_lines_are_counted_and_listed_with_line_numbers(
    corpus: Path, index: Index, tmp_path: Path
) -> None:
    result = import_cast(index, tmp_path / "data", corpus / "server__blank-lines-v2.cast")
    assert result.connection_id is not None
    assert result.skipped == 5 and result.adjusted == 0
    assert [p.line for p in result.problems] == [4, 6, 7, 8, 9][:REPORTED_PROBLEMS]
    assert {p.reason.value for p in result.problems} == {"blank_line"}
    imported = index.get_import(result.connection_id)
    assert imported is not None and imported.skipped_lines == 5


# -- import details ------------------------------------------------------------------------------


def test_imported_file_is_copied_with_its_digest(index: Index, tmp_path: Path) -> None:
    source = _cast(tmp_path / "s.cast", (0.5, "o", "hello there\r\n"), (1.0, "x", "3"))
    data = tmp_path / "data"
    result = import_cast(index, data, source)
    assert result.connection_id is not None
    row = index.get_connection(result.connection_id)
    assert row is not None
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert row.sha256 == digest and row.recording_path == f"{IMPORTED_DIR}/{digest}.cast"
    assert (data / row.recording_path).read_bytes() == source.read_bytes()
    assert row.recording_size == source.stat().st_size
    assert (row.exit_code, row.runtime_arn, row.principal) == (3, IMPORT_RUNTIME_ARN, None)
    assert row.counters["frames_stdout"] == 1 and row.counters["bytes_stdout"] == len("hello there\r\n")
    assert row.started_at.timestamp() == 1_700_000_000
    assert [f.name for f in (data / IMPORTED_DIR).iterdir()] == [f"{digest}.cast"]


def test_importing_the_same_bytes_again_adds_nothing(index: Index, tmp_path: Path) -> None:
    source = _cast(tmp_path / "s.cast", (0.5, "o", "once\r\n"))
    first = import_cast(index, tmp_path / "data", source)
    again = import_cast(index, tmp_path / "data", source)
    assert again.already and again.connection_id == first.connection_id
    assert len(index.list_connections()) == 1
    assert len(list((tmp_path / "data" / IMPORTED_DIR).iterdir())) == 1


class _LateIndex(Index):
    """An index whose first digest lookup misses, as when another import of the same bytes
    commits between this import's lookup and its own insert (the race two jobs can run)."""

    missed = False

    def find_recording(self, sha256: str) -> int | None:
        if not self.missed:
            self.missed = True
            return None
        return super().find_recording(sha256)


def test_losing_the_race_to_import_the_same_bytes_says_already(index: Index, tmp_path: Path) -> None:
    source = _cast(tmp_path / "s.cast", (0.5, "o", "raced\r\n"))
    first = import_cast(index, tmp_path / "data", source)
    late = _LateIndex(index.engine)
    second = import_cast(late, tmp_path / "data", source)
    assert late.missed
    assert second.already and second.error is None and second.connection_id == first.connection_id
    assert len(index.list_connections()) == 1
    assert len(list((tmp_path / "data" / IMPORTED_DIR).iterdir())) == 1


class _CutShort(Index):
    """An index whose indexing runs are interrupted as they start, as Ctrl-C would."""

    def search_writer(self, conn_id: int, *, batch_rows: int = 2000) -> SearchRowWriter:
        raise KeyboardInterrupt


def test_importing_again_indexes_what_an_import_cut_short_left_unindexed(
    index: Index, tmp_path: Path
) -> None:
    source = _cast(tmp_path / "s.cast", (0.5, "o", "resumed\r\n"))
    with pytest.raises(KeyboardInterrupt):
        import_cast(_CutShort(index.engine), tmp_path / "data", source)
    (row,) = index.list_connections()
    assert index.indexed(row.id) is None
    assert search(index, "resumed", kinds={"output"}) == []
    again = import_cast(index, tmp_path / "data", source)
    assert again.already and again.connection_id == row.id and again.error is None
    assert again.indexed is not None and again.indexed.line_count == 1
    assert [h.connection_id for h in search(index, "resumed", kinds={"output"})] == [row.id]
    third = import_cast(index, tmp_path / "data", source)
    assert third.already and third.indexed is None  # nothing left to do
    assert len(index.list_connections()) == 1


def test_losing_the_race_under_another_name_leaves_no_stray_copy(index: Index, tmp_path: Path) -> None:
    source = _cast(tmp_path / "s.cast", (0.5, "o", "raced\r\n"))
    first = import_cast(index, tmp_path / "data", source)
    twin = tmp_path / "s.json"  # the same bytes, stored under another suffix
    twin.write_bytes(source.read_bytes())
    second = import_cast(_LateIndex(index.engine), tmp_path / "data", twin)
    assert second.already and second.connection_id == first.connection_id
    stored = [p.name for p in (tmp_path / "data" / IMPORTED_DIR).iterdir()]
    assert stored == [f"{hashlib.sha256(source.read_bytes()).hexdigest()}.cast"]


def test_the_same_bytes_twice_in_one_run_are_indexed_once(tmp_path: Path) -> None:
    source = _cast(tmp_path / "s.cast", *[(0.1 * i, "o", f"line {i}\r\n") for i in range(500)])
    for jobs in (1, 2):
        url = f"sqlite:///{tmp_path / f'index{jobs}.sqlite3'}"
        upgrade(url)
        first, second = import_each(url, tmp_path / f"data{jobs}", [source, source], jobs)
        assert [r.already for r in (first, second)].count(True) == 1
        indexed = [r.indexed for r in (first, second) if r.indexed is not None]
        # Only the import that recorded the bytes indexed them; the other did not do it again.
        assert len(indexed) == 1 and indexed[0].line_count == 500


def test_an_import_made_since_the_run_began_is_left_to_whoever_is_indexing_it(
    index: Index, tmp_path: Path
) -> None:
    source = _cast(tmp_path / "s.cast", (0.5, "o", "busy\r\n"))
    run_began = datetime.now(UTC)
    # Another worker of the same run recorded the bytes and is still indexing them.
    with pytest.raises(KeyboardInterrupt):
        import_cast(_CutShort(index.engine), tmp_path / "data", source)
    same_run = import_cast(index, tmp_path / "data", source, since=run_began)
    assert same_run.already and same_run.indexed is None and same_run.error is None
    assert search(index, "busy", kinds={"output"}) == []
    later_run = import_cast(index, tmp_path / "data", source, since=datetime.now(UTC))
    assert later_run.already and later_run.indexed is not None
    assert len(search(index, "busy", kinds={"output"})) == 1


def _connections(url: str) -> int:
    engine = make_engine(url)
    try:
        return len(Index(engine).list_connections())
    finally:
        engine.dispose()


def _many(tmp_path: Path, count: int, lines: int) -> tuple[list[Path], str]:
    """``count`` recordings of ``lines`` output lines each, and a migrated SQLite index's URL."""
    files = [
        _cast(tmp_path / f"f{n}.cast", *[(0.01 * i, "o", f"file {n} line {i}\r\n") for i in range(lines)])
        for n in range(count)
    ]
    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    upgrade(url)
    return files, url


def test_a_run_stopped_early_imports_no_file_it_had_not_begun(tmp_path: Path) -> None:
    files, url = _many(tmp_path, 40, 500)
    jobs = 2
    with closing(import_each(url, tmp_path / "data", files, jobs)) as results:
        for n, _ in enumerate(results, 1):
            if n == 5:
                break  # the caller stops reading (as on Ctrl-C): the rest is cancelled
    # The workers finish what they had begun (at most two files each and one queued), then stop.
    counts = [_connections(url)]
    while len(counts) < 4 or counts[-4:] != [counts[-1]] * 4:
        time.sleep(0.25)
        counts.append(_connections(url))
        assert len(counts) < 200, counts
    assert 5 <= counts[-1] <= 5 + 2 * jobs + 2 < len(files)


def test_an_import_removes_the_copies_dead_processes_of_this_host_left(tmp_path: Path) -> None:
    imported = tmp_path / "data" / IMPORTED_DIR
    imported.mkdir(parents=True)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(finished.stdout)  # reaped: no process has this pid now (barring reuse)
    host = socket.gethostname()
    stale = imported / f".import-{host}-{dead}-abc123"
    live = imported / f".import-{host}-{os.getpid()}-def456"  # an import under way here
    elsewhere = imported / f".import-otherhost-{dead}-ghi789"  # a shared directory's other host
    for path in (stale, live, elsewhere):
        path.write_bytes(b"half a copy")
    source = _cast(tmp_path / "s.cast", (0.5, "o", "fresh\r\n"))
    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    upgrade(url)
    (result,) = import_each(url, tmp_path / "data", [source])
    assert result.imported and result.error is None
    assert not stale.exists() and live.exists() and elsewhere.exists()
    assert sweep_stale_copies(tmp_path / "nowhere") == 0


def _children() -> list[int]:
    return [child.pid for child in multiprocessing.active_children() if child.pid is not None]


def test_a_worker_that_dies_stops_the_run_with_one_line_instead_of_hanging(tmp_path: Path) -> None:
    files, url = _many(tmp_path, 30, 2000)
    before = set(_children())
    results = import_each(url, tmp_path / "data", files, jobs=2)
    assert next(results).imported
    workers = set(_children()) - before
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
    with pytest.raises(RecorderError, match="an import worker stopped before it finished"):
        for _ in results:
            pass
    # What was imported stays; importing again finishes the job.
    again = list(import_each(url, tmp_path / "data", files, jobs=2))
    assert all(r.imported and r.error is None for r in again)
    engine = make_engine(url)
    try:
        index = Index(engine)
        assert len(index.list_connections()) == len(files)
        assert all(index.indexed(row.id) is not None for row in index.list_connections())
    finally:
        engine.dispose()


def _outcome(index: Index, result: ImportResult) -> tuple[object, ...]:
    """What an import made of a file, without the connection id (which depends on the order)."""
    assert result.connection_id is not None, result.error
    row = index.get_connection(result.connection_id)
    assert row is not None
    with index.engine.connect() as conn:
        texts = []
        for table in ("commands", "output_lines", "input_lines"):
            rows = conn.execute(
                sa.text(f"SELECT text FROM {table} WHERE connection_id = :c ORDER BY seq"), {"c": row.id}
            )
            texts.append(tuple(text for (text,) in rows))
    return (result.source.name, result.error, result.skipped, result.adjusted, row.sha256, *texts)


def test_several_jobs_import_what_one_job_imports_and_report_in_the_order_given(
    corpus: Path, tmp_path: Path
) -> None:
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".cast", ".json"))
    files.insert(3, files[0])  # the same bytes twice: imported once
    outcomes = {}
    for jobs in (1, 3):
        url = f"sqlite:///{tmp_path / f'j{jobs}' / 'index.sqlite3'}"
        upgrade(url)
        results = list(import_each(url, tmp_path / f"j{jobs}", files, jobs))
        assert [r.source for r in results] == files
        assert [r.imported for r in results] == [True] * len(files)
        # Exactly one of the two copies was imported; the other names the same connection.
        twins = (results[0], results[3])
        assert sorted(r.already for r in twins) == [False, True]
        assert twins[0].connection_id == twins[1].connection_id
        engine = make_engine(url)
        try:
            index = Index(engine)
            assert len(index.list_connections()) == len(files) - 1
            outcomes[jobs] = [_outcome(index, r) for r in results if not r.already]
        finally:
            engine.dispose()
    assert sorted(outcomes[3]) == sorted(outcomes[1])


def test_a_file_that_fails_in_a_worker_is_reported_and_the_others_import(tmp_path: Path) -> None:
    good = [_cast(tmp_path / f"g{i}.cast", (0.1, "o", f"fine{i}\r\n")) for i in range(3)]
    bad = tmp_path / "bad.cast"
    bad.write_text("not a recording\n")
    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    upgrade(url)
    results = list(import_each(url, tmp_path / "data", [good[0], bad, *good[1:]], jobs=2))
    assert [r.imported for r in results] == [True, False, True, True]
    assert results[1].error is not None and "not a JSON object" in results[1].error


@pytest.mark.parametrize("jobs", [0, -1, MAX_IMPORT_JOBS + 1])
def test_a_number_of_jobs_out_of_range_is_refused(tmp_path: Path, jobs: int) -> None:
    with pytest.raises(ValueError, match="jobs must be between 1 and"):
        next(import_each(f"sqlite:///{tmp_path / 'index.sqlite3'}", tmp_path, [], jobs))


def test_recorder_context_in_the_header_names_principal_and_runtime(index: Index, tmp_path: Path) -> None:
    arn = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/elsewhere"
    context = {"principal": "dave", "runtime_arn": arn, "shell_id": "sh-9", "runtime_session_id": "s-9"}
    source = _cast(tmp_path / "ctx.cast", (0.1, "o", "x\r\n"), recorder=context)
    result = import_cast(index, tmp_path / "data", source)
    assert result.connection_id is not None
    row = index.get_connection(result.connection_id)
    assert row is not None
    assert (row.principal, row.runtime_arn, row.shell_id, row.session_id) == ("dave", arn, "sh-9", "s-9")


def test_bad_context_values_fall_back_instead_of_failing(index: Index, tmp_path: Path) -> None:
    context = {"principal": ["not", "text"], "runtime_arn": "x" * 5000, "shell_id": ""}
    source = _cast(tmp_path / "ctx.cast", (0.1, "o", "x\r\n"), recorder=context)
    result = import_cast(index, tmp_path / "data", source)
    row = index.get_connection(result.connection_id or 0)
    assert row is not None and row.principal is None and row.runtime_arn == IMPORT_RUNTIME_ARN


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"just some text\n", "not a JSON object"),
        (b'{"version": 7}\n', "unsupported asciicast version"),
    ],
)
def test_a_file_that_is_not_a_recording_is_not_imported(
    index: Index, tmp_path: Path, content: bytes, message: str
) -> None:
    source = tmp_path / "bad.cast"
    source.write_bytes(content)
    report = import_casts(index, tmp_path / "data", [source])
    (failed,) = report.failed
    assert failed.connection_id is None and failed.error is not None
    assert message in failed.error and "\n" not in failed.error
    assert index.list_connections() == []


def test_a_missing_file_is_reported_and_the_others_still_import(index: Index, tmp_path: Path) -> None:
    good = _cast(tmp_path / "good.cast", (0.1, "o", "fine\r\n"))
    report = import_casts(index, tmp_path / "data", [tmp_path / "missing.cast", good])
    assert [r.imported for r in report.results] == [False, True]
    assert "No such file" in (report.results[0].error or "")


def test_damaged_recording_keeps_what_could_be_indexed(index: Index, tmp_path: Path) -> None:
    # The resize is beyond what the emulator accepts: typed input is still indexed, and the
    # reason the rest is missing is kept with the run.
    # Input typed after the point where the emulator gave up is indexed too (one pass reads both).
    source = _cast(
        tmp_path / "d.cast",
        (0.1, "i", "whoami\r"),
        (0.2, "o", "root\r\n"),
        (0.3, "r", "99999x5"),
        (0.4, "o", "lost output\r\n"),
        (0.5, "i", "hostname\r"),
    )
    result = import_cast(index, tmp_path / "data", source)
    assert result.connection_id is not None and result.indexed is not None
    assert result.error is not None and "not searchable" in result.error
    assert result.indexed.error
    assert [h.text for h in search(index, "whoami", kinds={"input"})] == ["whoami"]
    assert [h.text for h in search(index, "hostname", kinds={"input"})] == ["hostname"]
    assert [h.text for h in search(index, "root", kinds={"output"})] == ["root"]
    assert search(index, "lost", kinds={"output"}) == []


def test_recording_with_an_unknown_size_is_emulated_at_80x24(index: Index, tmp_path: Path) -> None:
    source = _cast(tmp_path / "z.cast", (0.1, "o", "sizeless output\r\n"), width=0)
    result = import_cast(index, tmp_path / "data", source)
    assert result.error is None and result.indexed is not None and result.indexed.error is None
    row = index.get_connection(result.connection_id or 0)
    assert row is not None and (row.cols, row.rows) == (80, 24)
    assert [h.text for h in search(index, "sizeless")] == ["sizeless output"]


# -- indexing recorded connections -----------------------------------------------------------------


def test_index_connection_is_idempotent(index: Index, tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = _cast(
        tmp_path / "r.cast",
        (0.1, "o", "$ "),
        (1.0, "i", "echo hi\r"),
        (1.1, "o", "echo hi\r\nhi\r\n$ "),
    )
    result = import_cast(index, data, source)
    assert result.connection_id is not None
    first = index_connection(index, data, result.connection_id)
    second = index_connection(index, data, result.connection_id)
    assert first is not None and second is not None
    assert (first.command_count, first.line_count, first.input_count) == (
        second.command_count,
        second.line_count,
        second.input_count,
    )
    assert second.generation > first.generation
    assert [h.kind for h in search(index, "echo")] == ["command", "input", "output"]


def test_index_connection_of_an_unknown_id_is_refused(index: Index, tmp_path: Path) -> None:
    with pytest.raises(UnknownConnection):
        index_connection(index, tmp_path, 4242)


# -- the proxy's indexer: a child process -----------------------------------------------------------


def test_background_indexer_indexes_in_a_lower_priority_child_and_survives_its_death(
    tmp_path: Path,
) -> None:
    import multiprocessing
    import signal

    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    index = Index(engine)
    data = tmp_path / "data"
    result = import_cast(index, data, _cast(tmp_path / "a.cast", (0.1, "o", "first run\r\n")))
    assert result.connection_id is not None and result.indexed is not None
    conn_id = result.connection_id
    indexer = BackgroundIndexer(url, data, "WARNING")
    try:
        indexer.index(conn_id)
        again = index.indexed(conn_id)
        assert again is not None and again.generation > result.indexed.generation
        assert [h.text for h in search(index, "first")] == ["first run"]

        (child,) = multiprocessing.active_children()
        assert child.pid is not None and child.pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, child.pid) >= min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + INDEXER_NICENESS
        )
        # Errors come back from the child as themselves.
        with pytest.raises(UnknownConnection):
            indexer.index(conn_id + 1000)

        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        indexer.index(conn_id)  # a new child takes over
        latest = index.indexed(conn_id)
        assert latest is not None and latest.generation > again.generation
        (second,) = multiprocessing.active_children()
        assert second.pid != child.pid
    finally:
        indexer.close()
        engine.dispose()
    assert multiprocessing.active_children() == []
    with pytest.raises(IndexerStopped):
        indexer.index(conn_id)


def test_closing_the_background_indexer_cuts_a_long_job_short(tmp_path: Path) -> None:
    import threading

    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    index = Index(engine)
    data = tmp_path / "data"
    # Long enough to index that close() lands while the child is at it.
    lines = [(i * 0.001, "o", f"line {i} of a long burst\r\n") for i in range(200_000)]
    result = import_cast(index, data, _cast(tmp_path / "long.cast", *lines))
    assert result.connection_id is not None and result.indexed is not None
    indexer = BackgroundIndexer(url, data, "WARNING")
    outcome: list[BaseException | None] = []

    def job() -> None:
        try:
            indexer.index(result.connection_id or 0)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome.append(exc)

    worker = threading.Thread(target=job)
    worker.start()
    time.sleep(1.0)
    started = time.monotonic()
    indexer.close()
    worker.join(30)
    try:
        assert not worker.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], IndexerStopped)
        assert time.monotonic() - started < 10
        # The cut-short run changed nothing searches see: the import's run is still the live one.
        live = index.indexed(result.connection_id)
        assert live is not None and live.generation == result.indexed.generation
        assert len(search(index, '"line 199999"')) == 1
    finally:
        engine.dispose()

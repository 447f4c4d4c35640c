"""Where indexing's time goes: each stage of the pipeline alone, on the same sample, in one run.

Stages, each in this one process and timed in CPU seconds (SQLite runs in-process, so its work
counts; the other core's load counts much less than in wall time):

- read: the cast reader's events, nothing else;
- emulate: read + the replay driver feeding the screen (the avt emulator, mark scanning, plain
  output held) with no observer: no commands, no lines, no rows. The floor of an indexer built
  on this driver, whatever its observers do;
- emulate_rows: emulate + the text of every row the emulator says changed, read after each
  feed (the least a line extractor that times each line by its last change must do);
- extract: read + emulator + command, output-line and typed-input extraction, rows kept in lists
  (``recorder.cli.pipeline.extract_rows``, what indexing runs);
- write: those same rows written by the store's ``SearchRowWriter`` into a fresh SQLite index at
  the head revision (FTS5 with prefix indexes '2 3 4', automerge 16), then at revision 0003
  (FTS5 without prefix indexes, automerge 4), connection rows made beforehand and not timed;
- fts_lines: only the full-text part of that write: the same rows' text into a bare in-memory
  FTS5 table with the index's tokenizer and prefix indexes, one document a row as the index
  keeps them, nothing else (no row tables, no b-tree indexes, no commits). The floor of any
  indexer that keeps a full-text document per line with prefix indexes, in any language;
- fts_blocks: the same text in documents of :data:`BLOCK_LINES` rows each (what a design with
  fewer, larger documents would pay for the same text);
- import: ``recorder import``'s whole path (scan, copy and hash, connection row, index) into a
  fresh index.

Each figure is MB of recording per CPU second. A stage's rate bounds the whole: the pipeline can
never beat ``1 / (1/extract + 1/write)``, and extraction never beats emulate_rows.

    .venv/bin/python -m bench.index_stages [--recordings 100]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_search import DEFAULT_KB, write_recording
from recorder.cast.reader import open_cast
from recorder.cli.pipeline import ImportReport, extract_rows, import_casts
from recorder.index.db import make_engine, upgrade
from recorder.index.models import COUNTER_NAMES, FTS5_TOKENIZER
from recorder.index.rows import CommandLike, TextLike
from recorder.index.store import Index
from recorder.replay import driver
from recorder.replay.screen import Screen

#: Recordings in the sample (of the search corpus's kind and size).
DEFAULT_SAMPLE = 100
#: The last revision whose full-text tables have no prefix indexes.
NO_PREFIX_REVISION = "0003"
#: Rows per document in the fts_blocks stage.
BLOCK_LINES = 20
#: The head revision's full-text options (revisions 0002 and 0004).
FTS_OPTIONS = f"tokenize=\"{FTS5_TOKENIZER}\", prefix='2 3 4'"

Rows = tuple[list[CommandLike], list[TextLike], list[TextLike]]


def _cpu(fn: Callable[[], object]) -> float:
    begun = time.process_time()
    fn()
    return time.process_time() - begun


def _read(files: list[Path]) -> None:
    for path in files:
        with open_cast(path) as reader:
            for _ in reader.events():
                pass


class _RowReader(driver.Observer):
    """Reads the text of every row the emulator says changed, after each feed, and nothing else."""

    def on_output(self, screen: Screen, time: float) -> None:
        changed, _scrolled = screen.drain_changes()
        for row in changed:
            screen.row_text(row)


def _emulate(files: list[Path], *, rows: bool) -> int:
    """Run the replay driver over each recording with no observer that extracts anything; with
    ``rows``, one that reads each changed row's text after each feed.

    Returns the number of events (so that the work cannot be optimised away, and for the table).
    """
    events = 0
    for path in files:
        with open_cast(path) as reader:
            header = reader.header
            screen = Screen(header.width or 80, header.height or 24, collect_scrolled=rows)
            # run() yields once per event, then once more at the end.
            replay = driver.run(screen, reader.events(), [_RowReader()] if rows else [])
            events += sum(1 for _ in replay) - 1
    return events


def _extract(files: list[Path]) -> list[Rows]:
    out: list[Rows] = []
    for path in files:
        rows: Rows = ([], [], [])

        def stage(
            commands: Iterable[CommandLike] = (),
            lines: Iterable[TextLike] = (),
            inputs: Iterable[TextLike] = (),
            rows: Rows = rows,
        ) -> None:
            rows[0].extend(commands)
            rows[1].extend(lines)
            rows[2].extend(inputs)

        extract_rows(path, stage)
        out.append(rows)
    return out


def _fts_seconds(extracted: list[Rows], block: int) -> float:
    """CPU seconds to put the rows' text into a bare FTS5 table, ``block`` rows a document."""
    texts = [row.text for rows in extracted for kind in rows for row in kind]
    documents = ["\n".join(texts[i : i + block]) for i in range(0, len(texts), block)]
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(text, {FTS_OPTIONS})")
        return _cpu(lambda: db.executemany("INSERT INTO t(text) VALUES (?)", ((d,) for d in documents)))
    finally:
        db.close()


def _bare_connection(index: Index, n: int) -> int:
    """A connection row to hang search rows on (what an import would make, minus the scan)."""
    now = datetime.now(UTC)
    return index.import_connection(
        source_name=f"stage-{n}.cast",
        sha256=f"{n:064x}",
        recording_path=f"stage-{n}.cast",
        recording_size=0,
        cast_version=2,
        cols=160,
        rows=48,
        started_at=now,
        ended_at=now,
        exit_code=0,
        principal=None,
        runtime_arn="import",
        qualifier=None,
        session_id=f"stage-{n}",
        shell_id=f"stage-{n}",
        counters=dict.fromkeys(COUNTER_NAMES, 0),
        skipped_lines=0,
        adjusted_lines=0,
    )


def _write_seconds(url: str, revision: str, extracted: list[Rows]) -> float:
    engine = make_engine(url, durable=False)  # as the indexer process makes it
    try:
        upgrade(engine, revision)
        index = Index(engine)
        ids = [_bare_connection(index, n) for n in range(len(extracted))]

        def write() -> None:
            for conn_id, (commands, lines, inputs) in zip(ids, extracted, strict=True):
                writer = index.search_writer(conn_id)
                writer.stage(commands, lines, inputs)
                writer.commit()

        return _cpu(write)
    finally:
        engine.dispose()


def run(files: list[Path], work: Path) -> dict[str, Any]:
    """Each stage's rate on ``files`` (MB of recording per CPU second); ``work`` holds the indexes."""
    mb = sum(f.stat().st_size for f in files) / 1e6
    results: dict[str, Any] = {"index_stage_sample_mb": mb}
    results["index_stage_read_mb_s"] = mb / _cpu(lambda: _read(files))
    counted: list[int] = []
    results["index_stage_emulate_mb_s"] = mb / _cpu(lambda: counted.append(_emulate(files, rows=False)))
    results["index_stage_emulate_rows_mb_s"] = mb / _cpu(lambda: counted.append(_emulate(files, rows=True)))
    results["index_stage_events_per_mb"] = counted[0] / mb
    extracted: list[Rows] = []
    results["index_stage_extract_mb_s"] = mb / _cpu(lambda: extracted.extend(_extract(files)))
    results["index_stage_rows"] = sum(len(c) + len(li) + len(i) for c, li, i in extracted)
    for name, revision in (("write", "head"), ("write_no_prefix", NO_PREFIX_REVISION)):
        url = f"sqlite:///{work / f'stage-{name}.sqlite3'}"
        results[f"index_stage_{name}_mb_s"] = mb / _write_seconds(url, revision, extracted)
    results["index_stage_fts_lines_mb_s"] = mb / _fts_seconds(extracted, 1)
    results["index_stage_fts_blocks_mb_s"] = mb / _fts_seconds(extracted, BLOCK_LINES)
    engine = make_engine(f"sqlite:///{work / 'stage-import.sqlite3'}", durable=False)
    try:
        upgrade(engine)
        index = Index(engine)
        reports: list[ImportReport] = []
        results["index_stage_import_mb_s"] = mb / _cpu(
            lambda: reports.append(import_casts(index, work / "data", files))
        )
        # The stages must have measured the same work: the import indexed exactly the rows kept.
        imported = [index.indexed(r.connection_id) for r in reports[0].results if r.connection_id]
        written = sum(r.command_count + r.line_count + r.input_count for r in imported if r is not None)
        if len(imported) != len(files) or written != results["index_stage_rows"]:
            raise RuntimeError(
                f"import indexed {written} rows of {len(imported)} recordings; the stages kept "
                f"{results['index_stage_rows']} rows of {len(files)}"
            )
    finally:
        engine.dispose()
    extract, write = results["index_stage_extract_mb_s"], results["index_stage_write_mb_s"]
    results["index_stage_bound_mb_s"] = 1 / (1 / extract + 1 / write)
    return results


def sample(directory: Path, count: int, kb: int = DEFAULT_KB) -> list[Path]:
    """``count`` recordings like the search corpus's, written into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(count):
        path = directory / f"stage-{n:04d}.cast"
        write_recording(path, random.Random(f"stages:{n}"), kb * 1000, rare=False, number=n)
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.index_stages")
    parser.add_argument("--recordings", type=int, default=DEFAULT_SAMPLE)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    try:
        results = run(sample(work / "casts", args.recordings), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, value in results.items():
        print(f"{name:34s} {value:10.2f}")


if __name__ == "__main__":
    main()

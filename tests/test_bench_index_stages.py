"""The indexing stage benchmark measures real work and checks that its stages saw the same rows."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from bench import index_stages
from recorder.cast.reader import open_cast
from recorder.index.db import make_engine, upgrade


def test_every_stage_is_measured_on_the_rows_the_import_writes(tmp_path: Path) -> None:
    files = index_stages.sample(tmp_path / "casts", 3, kb=20)
    results = index_stages.run(files, tmp_path)
    # run() raises when the import indexed other rows than the extract stage kept.
    assert results["index_stage_rows"] > 3 * 50
    assert results["index_stage_sample_mb"] == sum(f.stat().st_size for f in files) / 1e6
    stages = (
        "read",
        "emulate",
        "emulate_rows",
        "extract",
        "write",
        "write_no_prefix",
        "fts_lines",
        "fts_blocks",
        "import",
        "bound",
    )
    for stage in stages:
        assert results[f"index_stage_{stage}_mb_s"] > 0
    bound = 1 / (1 / results["index_stage_extract_mb_s"] + 1 / results["index_stage_write_mb_s"])
    assert abs(results["index_stage_bound_mb_s"] - bound) < 1e-9


def test_the_emulator_floor_feeds_every_event_of_the_sample(tmp_path: Path) -> None:
    files = index_stages.sample(tmp_path / "casts", 2, kb=20)
    events = 0
    for path in files:
        with open_cast(path) as reader:
            events += sum(1 for _ in reader.events())
    assert index_stages._emulate(files, rows=False) == events
    assert index_stages._emulate(files, rows=True) == events


def test_the_fts_floor_uses_the_head_revisions_full_text_options(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'head.sqlite3'}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            sql = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'output_lines_fts'")
            ).scalar_one()
    finally:
        engine.dispose()
    for option in index_stages.FTS_OPTIONS.split(", "):
        assert option in sql

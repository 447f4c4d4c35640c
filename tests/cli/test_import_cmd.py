"""``recorder import`` through the command line: reports, skipped lines, failures, exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from recorder.cli import import_cmd, search_cmd
from recorder.index.db import current_revision, head_revision

runner = CliRunner()

BLANK_LINES = (
    '{"version": 2, "width": 80, "height": 24}\n[0.5, "o", "alpha beta\\r\\n"]\n\n[1.0, "o", "gamma\\r\\n"]\n'
)


@pytest.fixture
def app() -> typer.Typer:
    """A bare app with only import and search."""
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """Test root."""

    import_cmd.register(root)
    search_cmd.register(root)
    return root


def test_import_help(app: typer.Typer) -> None:
    result = runner.invoke(app, ["import", "--help"])
    assert result.exit_code == 0 and "--data-dir" in result.output


def test_imported_file_becomes_searchable_and_skipped_lines_are_reported(
    app: typer.Typer, tmp_path: Path
) -> None:
    source = tmp_path / "other-tool.cast"
    source.write_text(BLANK_LINES)
    data = tmp_path / "data"
    result = runner.invoke(app, ["import", str(source), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "imported as connection 1" in result.stdout
    assert "1 line(s) skipped" in result.stderr and "line 3 skipped (blank_line)" in result.stderr
    assert current_revision(f"sqlite:///{data / 'index.sqlite3'}") == head_revision()
    found = runner.invoke(app, ["search", "gamma", "--json", "--data-dir", str(data)])
    assert found.exit_code == 0, found.output
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert [(h["id"], h["kind"], h["text"], h["offset"]) for h in hits] == [(1, "output", "gamma", 1.0)]


def test_importing_again_says_it_is_already_there(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "a.cast"
    source.write_text(BLANK_LINES)
    args = ["import", str(source), "--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert "already in the index as connection 1" in again.stdout


def _imported_but_not_indexed(app: typer.Typer, tmp_path: Path) -> tuple[Path, Path]:
    """A file imported into a data directory, then left as an import cut short between recording
    the connection and indexing it leaves the index; returns the file and the data directory."""
    source = tmp_path / "a.cast"
    source.write_text(BLANK_LINES)
    data = tmp_path / "data"
    assert runner.invoke(app, ["import", str(source), "--data-dir", str(data)]).exit_code == 0
    with sqlite3.connect(data / "index.sqlite3") as db:
        db.execute("DELETE FROM indexed_recordings")
    return source, data


def test_importing_again_after_an_interruption_says_what_it_finished(
    app: typer.Typer, tmp_path: Path
) -> None:
    source, data = _imported_but_not_indexed(app, tmp_path)
    again = runner.invoke(app, ["import", str(source), "--data-dir", str(data)])
    assert again.exit_code == 0, again.output
    assert again.stdout == (
        f"{source}: already in the index as connection 1; indexed for search now "
        "(0 commands, 2 output lines, 0 typed lines)\n"
    )


def test_a_recording_missing_from_the_data_directory_is_a_one_line_warning(
    app: typer.Typer, tmp_path: Path
) -> None:
    source, data = _imported_but_not_indexed(app, tmp_path)
    (stored,) = (data / "recordings" / "imported").iterdir()
    stored.unlink()
    again = runner.invoke(app, ["import", str(source), "--data-dir", str(data)])
    assert again.exit_code == 0 and "Traceback" not in again.output
    assert again.stdout == f"{source}: already in the index as connection 1\n"
    (warning,) = [line for line in again.stderr.splitlines() if line.startswith("recorder: warning:")]
    assert warning.startswith("recorder: warning: already in the index as connection 1 but not indexed: ")
    assert warning.endswith("No such file or directory")


def test_a_file_that_cannot_be_imported_fails_the_command_with_one_line(
    app: typer.Typer, tmp_path: Path
) -> None:
    good = tmp_path / "good.cast"
    good.write_text(BLANK_LINES)
    bad = tmp_path / "notes.txt"
    bad.write_text("not a recording\n")
    result = runner.invoke(app, ["import", str(bad), str(good), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("recorder: error:")]
    assert errors == [
        f"recorder: error: cannot import {bad}: first line is not a JSON object: not an asciicast recording"
    ]
    # The good file was still imported.
    assert "good.cast: imported as connection 1" in result.stdout


def test_bad_database_url_is_a_one_line_error(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "a.cast"
    source.write_text(BLANK_LINES)
    result = runner.invoke(
        app, ["import", str(source), "--db", "mysql://x@127.0.0.1/db", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert result.stderr.count("\n") == 1 and "unsupported database" in result.stderr


def test_several_jobs_print_each_file_in_the_order_given(app: typer.Typer, tmp_path: Path) -> None:
    sources = []
    for i in range(5):
        source = tmp_path / f"f{i}.cast"
        source.write_text(f'{{"version": 2, "width": 80, "height": 24}}\n[0.5, "o", "word{i}\\r\\n"]\n')
        sources.append(source)
    bad = tmp_path / "notes.txt"
    bad.write_text("not a recording\n")
    data = tmp_path / "data"
    given = [*sources[:2], bad, *sources[2:], sources[0]]
    result = runner.invoke(app, ["import", "--jobs", "2", *map(str, given), "--data-dir", str(data)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    named = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert named == [str(p) for p in given if p != bad]
    # The same file twice: one of the two lines says it was imported, the other that it is there.
    twins = [line for line in result.stdout.splitlines() if line.startswith(f"{sources[0]}:")]
    assert len(twins) == 2 and sum("already in the index as connection" in line for line in twins) == 1
    assert result.stderr.count("recorder: error: cannot import") == 1
    found = runner.invoke(app, ["search", "word4", "--json", "--data-dir", str(data)])
    assert found.exit_code == 0 and len(found.stdout.splitlines()) == 1


@pytest.mark.parametrize("jobs", ["0", "65", "many"])
def test_a_bad_number_of_jobs_is_a_usage_error(app: typer.Typer, tmp_path: Path, jobs: str) -> None:
    source = tmp_path / "a.cast"
    source.write_text(BLANK_LINES)
    data = tmp_path / "data"
    result = runner.invoke(app, ["import", "--jobs", jobs, str(source), "--data-dir", str(data)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "--jobs" in result.output
    assert not (data / "index.sqlite3").exists()

"""``recorder db``: upgrade, downgrade and current through the command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from recorder.cli import db_cmd
from recorder.index.db import current_revision, head_revision
from tests.cli.conftest import bare_app

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    return bare_app(db_cmd)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'deep' / 'index.sqlite3'}"


def test_db_help_lists_the_commands(app: typer.Typer) -> None:
    result = runner.invoke(app, ["db", "--help"])
    assert result.exit_code == 0
    for name in ("upgrade", "downgrade", "current"):
        assert name in result.output


def test_upgrade_then_current_reports_the_newest_revision(app: typer.Typer, url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert result.exit_code == 0, result.output
    assert f"-> {head_revision()}" in result.output
    assert current_revision(url) == head_revision()

    result = runner.invoke(app, ["db", "current", "--db", url])
    assert result.exit_code == 0, result.output
    assert f"{head_revision()} (newest)" in result.output


def test_downgrade_to_base_then_current_says_to_upgrade(app: typer.Typer, url: str) -> None:
    assert runner.invoke(app, ["db", "upgrade", "--db", url]).exit_code == 0
    result = runner.invoke(app, ["db", "downgrade", "--db", url, "--revision", "base"])
    assert result.exit_code == 0, result.output
    assert current_revision(url) is None
    result = runner.invoke(app, ["db", "current", "--db", url])
    assert result.exit_code == 0
    assert "recorder db upgrade" in result.output


def test_downgrade_needs_an_explicit_revision(app: typer.Typer, url: str) -> None:
    result = runner.invoke(app, ["db", "downgrade", "--db", url])
    assert result.exit_code != 0
    assert current_revision(url) is None


def test_default_database_is_sqlite_in_the_data_dir(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECORDER_DB_URL", raising=False)
    monkeypatch.setenv("RECORDER_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert current_revision(f"sqlite:///{tmp_path / 'data' / 'index.sqlite3'}") == head_revision()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("command", ["upgrade", "current"])
@pytest.mark.parametrize("bad", ["bogus://nowhere", "not a url", "postgresql://u:hunter2@127.0.0.1:{port}/x"])
def test_bad_database_url_is_one_line_and_no_traceback(app: typer.Typer, command: str, bad: str) -> None:
    result = runner.invoke(app, ["db", command, "--db", bad.format(port=_closed_port())])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("recorder: error: ")
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unknown_revision_is_one_line(app: typer.Typer, url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--db", url, "--revision", "nope"])
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "nope" in result.stderr


def test_installed_command_runs_db_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    env = {**os.environ, "RECORDER_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", "from recorder.cli.app import main; main()", "db", "current", "--db", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "base (empty)" in done.stdout

"""Auditing the auditors: every command that reads recordings is logged first, or does not run."""

from __future__ import annotations

import getpass
import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from recorder.cli.app import app
from recorder.cli.audit_cmd import AUDITED_COMMANDS, NOT_AUDITED, command_name, install

runner = CliRunner()

CAST = (
    '{"version": 2, "width": 80, "height": 24}\n'
    '[0.1, "o", "$ "]\n[0.2, "i", "echo needle\\r"]\n[0.3, "o", "echo needle\\r\\nneedle\\r\\n$ "]\n'
)


def test_every_command_is_either_audited_or_deliberately_not() -> None:
    names = {command_name(info) for info in app.registered_commands}
    for group in app.registered_groups:
        assert group.typer_instance is not None
        names.add(str(group.name or group.typer_instance.info.name))
    unclassified = names - AUDITED_COMMANDS - NOT_AUDITED
    assert not unclassified, f"add {sorted(unclassified)} to AUDITED_COMMANDS or NOT_AUDITED in audit_cmd.py"
    assert not AUDITED_COMMANDS & NOT_AUDITED
    # Installing is idempotent and covers every audited command that is registered.
    assert set(install(app)) == names & AUDITED_COMMANDS


def _run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(tmp_path / "data")])
    return result.exit_code, result.stdout, result.stderr


def test_auditor_commands_are_logged_with_who_what_and_targets(tmp_path: Path) -> None:
    cast = tmp_path / "session.cast"
    cast.write_text(CAST)
    out = tmp_path / "t.txt"
    steps = [
        ("import", str(cast)),
        ("list",),
        ("show", "1"),
        ("search", "needle"),
        ("transcript", "1"),
        ("export", "1", "--format", "txt", "--output", str(out)),
        ("render", "1", "--output", str(tmp_path / "s.txt")),
    ]
    for step in steps:
        code, stdout, stderr = _run(tmp_path, *step)
        assert code == 0, (step, stdout, stderr)
    code, stdout, _ = _run(tmp_path, "audit-log", "--json")
    assert code == 0
    entries = [json.loads(line) for line in stdout.splitlines()]
    # Newest first; the audit-log run itself is logged before it reads.
    assert [e["command"] for e in reversed(entries)] == [s[0] for s in steps] + ["audit-log"]
    assert {e["actor"] for e in entries} == {getpass.getuser()}
    by_command = {e["command"]: e for e in entries}
    assert by_command["import"]["targets"] == [str(cast)]
    assert by_command["show"]["targets"] == ["1"]
    assert by_command["export"]["targets"] == ["1"]
    assert by_command["export"]["arguments"]["fmt"] == "txt"
    assert by_command["search"]["arguments"]["query"] == "needle"


def test_a_command_whose_audit_entry_cannot_be_written_does_not_run(tmp_path: Path) -> None:
    cast = tmp_path / "session.cast"
    cast.write_text(CAST)
    assert _run(tmp_path, "import", str(cast))[0] == 0
    with sqlite3.connect(tmp_path / "data" / "index.sqlite3") as db:
        db.execute("DROP TABLE audit_log")
    out = tmp_path / "t.txt"
    code, stdout, stderr = _run(tmp_path, "export", "1", "--format", "txt", "--output", str(out))
    assert code != 0 and stdout == "" and not out.exists()
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("recorder: error: cannot write the audit log: ")
    assert lines[0].endswith("`recorder export` did not run")


def test_an_index_at_an_old_revision_is_not_written_and_says_what_to_do(tmp_path: Path) -> None:
    cast = tmp_path / "session.cast"
    cast.write_text(CAST)
    assert _run(tmp_path, "import", str(cast))[0] == 0
    assert (
        runner.invoke(
            app, ["db", "downgrade", "--revision", "0002", "--data-dir", str(tmp_path / "data")]
        ).exit_code
        == 0
    )
    code, _, stderr = _run(tmp_path, "list")
    assert code != 0 and "is at revision 0002: run `recorder db upgrade`" in stderr

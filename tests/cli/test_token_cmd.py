"""``recorder token`` create / list / revoke through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recorder.cli import token_cmd
from tests.cli.conftest import bare_app

runner = CliRunner()
app = bare_app(token_cmd)


def _run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["token", *args, "--data-dir", str(tmp_path)])
    return result.exit_code, result.stdout, result.stderr


def test_create_prints_the_token_alone_on_the_last_line_and_list_never_shows_it(tmp_path: Path) -> None:
    code, stdout, stderr = _run(
        tmp_path, "create", "--principal", "alice", "--group", "ops", "--ttl", "1h30m"
    )
    assert code == 0, stderr
    token = stdout.strip().splitlines()[-1]
    assert token.startswith("rec_") and " " not in token
    code, listed, _ = _run(tmp_path, "list", "--json")
    (row,) = [json.loads(x) for x in listed.splitlines()]
    assert token not in listed and row["principal"] == "alice" and row["groups"] == ["ops"]
    assert row["state"] == "active"
    code, table, _ = _run(tmp_path, "list")
    assert code == 0 and row["id"] in table and token not in table
    assert _run(tmp_path, "revoke", row["id"])[0] == 0
    assert json.loads(_run(tmp_path, "list", "--json")[1])["state"] == "revoked"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "--principal", "a", "--ttl", "soon"), "--ttl must be a duration"),
        (("create", "--principal", "a", "--ttl", "400d"), "at most 366 days"),
        (("create", "--principal", "a", "--group", "no spaces"), "invalid group name"),
        (("revoke", "ffffffffffff"), "no token 'ffffffffffff'"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    code, _, stderr = _run(tmp_path, *args)
    lines = stderr.strip().splitlines()
    assert code != 0 and len(lines) == 1 and message in lines[0]

"""``recorder runtime``: options, one-line errors, the listening line."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from recorder.cli import runtime_cmd
from tests.cli.conftest import bare_app
from tests.procs import run_recorder, start_runtime

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    return bare_app(runtime_cmd)


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_runtime_help_lists_the_options(app: typer.Typer) -> None:
    result = runner.invoke(app, ["runtime", "--help"])
    assert result.exit_code == 0
    for option in ("--listen", "--shell", "--idle-timeout", "--token-file", "--buffer-size", "--max-shells"):
        assert option in result.output


@pytest.mark.parametrize("listen", ["nope", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:http", ":8766"])
def test_a_bad_listen_value_is_a_one_line_error(app: typer.Typer, listen: str) -> None:
    result = runner.invoke(app, ["runtime", "--listen", listen])
    assert result.exit_code != 0
    assert "--listen" in _one_line_error(result.output)


@pytest.mark.parametrize(("shell", "reason"), [("", "empty"), ("'unterminated", "does not parse")])
def test_a_bad_shell_command_is_a_one_line_error(app: typer.Typer, shell: str, reason: str) -> None:
    result = runner.invoke(app, ["runtime", "--shell", shell])
    assert result.exit_code != 0
    assert reason in _one_line_error(result.output)


def test_a_missing_token_file_is_a_one_line_error(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["runtime", "--token-file", str(tmp_path / "absent")])
    assert result.exit_code != 0
    assert "cannot read token file" in _one_line_error(result.output)


def test_a_token_file_without_tokens_is_a_one_line_error(app: typer.Typer, tmp_path: Path) -> None:
    empty = tmp_path / "tokens"
    empty.write_text("\n   \n")
    result = runner.invoke(app, ["runtime", "--token-file", str(empty)])
    assert result.exit_code != 0
    assert "holds no token" in _one_line_error(result.output)


def test_read_tokens_takes_one_per_line_and_strips_spaces(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("  first \n\nsecond\n")
    assert runtime_cmd.read_tokens(path) == frozenset({"first", "second"})


@pytest.mark.parametrize("option", [["--idle-timeout", "0"], ["--buffer-size", "0"], ["--max-shells", "0"]])
def test_limits_must_be_positive(app: typer.Typer, option: list[str]) -> None:
    assert runner.invoke(app, ["runtime", *option]).exit_code != 0


def test_refuses_a_non_loopback_address_without_a_token_file() -> None:
    result = run_recorder("runtime", "--listen", "0.0.0.0:0")
    assert result.returncode != 0
    line = _one_line_error(result.stderr)
    assert "refusing to listen on 0.0.0.0 without authentication" in line
    assert "--token-file" in line


def test_a_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_recorder("runtime", "--listen", f"127.0.0.1:{port}")
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in _one_line_error(result.stderr)


def test_prints_the_exact_listening_line_with_the_chosen_port() -> None:
    with start_runtime() as rt:
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", rt.url)
        port = int(rt.url.rsplit(":", 1)[1])
        assert port != 0
        assert f"listening on ws://127.0.0.1:{port}" in rt.output
        with socket.create_connection(("127.0.0.1", port)):
            pass

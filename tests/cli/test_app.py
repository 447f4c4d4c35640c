"""The ``recorder`` command as a whole: which module each command loads, and what a run imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from recorder.cli import app as cli_app
from recorder.index.db import upgrade
from tests.procs import recorder_command

#: What a search, a listing or a verification must not load (each took 0.1-0.3 s to import).
HEAVY = ("alembic", "boto3", "botocore", "websockets", "recorder.proxy", "recorder.runtime")


def _registered(modules: tuple[str, ...]) -> set[str]:
    group = typer.main.get_command(cli_app.build(modules))
    assert isinstance(group, typer.main.TyperGroup)
    return set(group.commands)


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    for module in cli_app.MODULES:
        names = _registered((module,))
        # audit_cmd's audit-log comes with every build (its install wraps the auditor commands).
        own = names - ({"audit-log"} if module != "recorder.cli.audit_cmd" else set())
        assert own, f"{module} registers no command"
        for name in own:
            assert cli_app.COMMANDS.get(name) == module, f"{name!r} is registered by {module}"
    assert _registered(cli_app.MODULES) == set(cli_app.COMMANDS)
    assert set(cli_app.COMMANDS.values()) == set(cli_app.MODULES)


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["search", "kube*"], "recorder.cli.search_cmd"),
        (["exec", "--", "ls"], "recorder.cli.shell_cmd"),
        (["db", "current"], "recorder.cli.db_cmd"),
        (["search"], "recorder.cli.search_cmd"),
        (["--help"], None),
        ([], None),
        (["nosuch", "x"], None),
    ],
)
def test_a_run_names_the_module_of_its_command_or_none(argv: list[str], module: str | None) -> None:
    assert cli_app.command_module(argv) == module


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = subprocess.run(
        recorder_command("--help"), capture_output=True, text=True, check=True, env=_env(tmp_path)
    ).stdout
    for name in cli_app.COMMANDS:
        assert f" {name} " in out, name


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    return {**os.environ, "RECORDER_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "120"}


#: Runs the command, then lists every module loaded on stderr (-X importtime misses importlib's).
_LISTING = (
    "import atexit, sys; "
    "atexit.register(lambda: print(*('loaded:' + m for m in sys.modules), sep='\\n', file=sys.stderr)); "
    "from recorder.cli.app import main; main()"
)


def _imported(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``recorder <args>``; its result and every module it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _LISTING, *args], capture_output=True, text=True, env=_env(tmp_path)
    )
    modules = {line[len("loaded:") :] for line in done.stderr.splitlines() if line.startswith("loaded:")}
    return done, modules


@pytest.mark.parametrize("args", [("search", "kube*"), ("list",)])
def test_a_reading_command_imports_only_what_it_uses(tmp_path: Path, args: tuple[str, ...]) -> None:
    upgrade(f"sqlite:///{tmp_path / 'data' / 'index.sqlite3'}")
    done, modules = _imported(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(m.startswith("recorder.cli.") for m in modules)  # the record is read right
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == []
    others = {m for m in modules if m.startswith("recorder.cli.") and m.endswith("_cmd")}
    assert others == {cli_app.COMMANDS[args[0]], "recorder.cli.audit_cmd"}


def test_help_loads_every_command_module(tmp_path: Path) -> None:
    done, modules = _imported(tmp_path, "--help")
    assert done.returncode == 0
    assert set(cli_app.MODULES) <= modules

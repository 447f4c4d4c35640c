"""The ``recorder`` command: one module per command group, wired together here.

A run loads only the module of the command it runs (and the audit log's): loading every module
(Alembic, boto3, websockets, the emulator, the proxy and the runtime) took longer than most
commands themselves, about 1.1 of the 1.9 s of a ``recorder search``. ``recorder --help`` and
anything that names no known command load them all; so does importing :data:`app`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

import typer

from recorder.errors import RecorderError

#: Command modules; each has ``register(app)``.
MODULES: tuple[str, ...] = (
    "recorder.cli.audit_cmd",
    "recorder.cli.db_cmd",
    "recorder.cli.doctor_cmd",
    "recorder.cli.export_cmd",
    "recorder.cli.import_cmd",
    "recorder.cli.key_cmd",
    "recorder.cli.list_cmd",
    "recorder.cli.policy_cmd",
    "recorder.cli.play_cmd",
    "recorder.cli.render_cmd",
    "recorder.cli.runtime_cmd",
    "recorder.cli.search_cmd",
    "recorder.cli.serve_cmd",
    "recorder.cli.shell_cmd",
    "recorder.cli.show_cmd",
    "recorder.cli.token_cmd",
    "recorder.cli.transcript_cmd",
    "recorder.cli.verify_cmd",
)

#: The module that registers each top-level command (a test holds this to what they register).
COMMANDS: dict[str, str] = {
    "audit-log": "recorder.cli.audit_cmd",
    "db": "recorder.cli.db_cmd",
    "doctor": "recorder.cli.doctor_cmd",
    "exec": "recorder.cli.shell_cmd",
    "export": "recorder.cli.export_cmd",
    "import": "recorder.cli.import_cmd",
    "key": "recorder.cli.key_cmd",
    "list": "recorder.cli.list_cmd",
    "play": "recorder.cli.play_cmd",
    "policy": "recorder.cli.policy_cmd",
    "render": "recorder.cli.render_cmd",
    "runtime": "recorder.cli.runtime_cmd",
    "search": "recorder.cli.search_cmd",
    "serve": "recorder.cli.serve_cmd",
    "shell": "recorder.cli.shell_cmd",
    "show": "recorder.cli.show_cmd",
    "token": "recorder.cli.token_cmd",
    "transcript": "recorder.cli.transcript_cmd",
    "verify": "recorder.cli.verify_cmd",
}

_AUDIT_MODULE = "recorder.cli.audit_cmd"


def _group() -> None:
    """Record, search and replay interactive shells on agent runtimes."""


def build(modules: Iterable[str] = MODULES) -> typer.Typer:
    """The command with the commands of ``modules`` registered, auditor commands wrapped."""
    cli = typer.Typer(
        name="recorder",
        help="Record, search and replay interactive shells on agent runtimes.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    # A group even with one command registered (Typer would otherwise run that command without
    # its name, and `recorder search kube` would search for "search").
    cli.callback()(_group)
    for name in dict.fromkeys(modules):
        importlib.import_module(name).register(cli)
    # After every module registered: auditor commands log each run (see recorder.cli.audit_cmd).
    importlib.import_module(_AUDIT_MODULE).install(cli)
    return cli


def command_module(argv: list[str]) -> str | None:
    """The module of the command ``argv`` runs, or None when it names none (help, no arguments)."""
    if not argv or argv[0].startswith("-"):
        return None  # options before the command are the group's own (--help)
    return COMMANDS.get(argv[0])


def __getattr__(name: str) -> typer.Typer:
    # `from recorder.cli.app import app` (tests, embedding): every command, built on first use.
    if name == "app":
        full = build()
        globals()["app"] = full
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console entry point: user errors are one line on stderr and a non-zero exit, never a traceback."""
    module = command_module(sys.argv[1:])
    cli = build(MODULES if module is None else (module,))
    try:
        cli()
    except RecorderError as exc:
        print(f"recorder: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)

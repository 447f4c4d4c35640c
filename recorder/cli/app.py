"""The ``recorder`` command: one module per command group, wired together here."""

from __future__ import annotations

import importlib
import sys

import typer

from recorder.errors import RecorderError

app = typer.Typer(
    name="recorder",
    help="Record, search and replay interactive shells on agent runtimes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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

for _name in MODULES:
    importlib.import_module(_name).register(app)

# After every module registered: auditor commands log each run (see recorder.cli.audit_cmd).
importlib.import_module("recorder.cli.audit_cmd").install(app)


def main() -> None:
    """Console entry point: user errors are one line on stderr and a non-zero exit, never a traceback."""
    try:
        app()
    except RecorderError as exc:
        print(f"recorder: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)

"""``recorder transcript``: plain, grep-able text of a recording (commands, output, offsets)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail
from recorder.cli.source import resolve
from recorder.errors import RecorderError
from recorder.replay.export import transcript_text, write_atomic
from recorder.replay.transcript import transcript as transcript_lines


def transcript(
    target: Annotated[str, typer.Argument(help="Connection id, shell:<pk>, or an asciicast file.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    whole_shell: Annotated[
        bool, typer.Option("--shell", help="Every connection of the connection's shell, in order.")
    ] = False,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Print each command with its offset (mm:ss) and its rendered output, indented; grep-able."""
    directory = data_dir(data)
    try:
        source = resolve(target, data=directory, db=db_url(db, directory), whole_shell=whole_shell)
        with contextlib.closing(source):
            if output is not None:
                write_atomic(output, transcript_text(source.header, source.events()).encode("utf-8"))
                return
            # Streamed: a long recording's first commands show before the whole file is read.
            stdout = typer.get_binary_stream("stdout")
            for line in transcript_lines(source.header, source.events()):
                stdout.write((line + "\n").encode("utf-8"))
            stdout.flush()
    except RecorderError as exc:
        raise fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    """Add the ``transcript`` command."""
    app.command("transcript")(transcript)

"""``recorder import FILE...``: bring asciicast v1/v2/v3 recordings from other tools into the index."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail, visible
from recorder.cli.pipeline import MAX_IMPORT_JOBS, ImportResult, import_each
from recorder.errors import RecorderError
from recorder.index.db import upgrade


def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="asciicast files (.cast v2/v3, .json v1).")],
    data: DataOption = None,
    db: DbOption = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=MAX_IMPORT_JOBS,
            help="Worker processes importing at once (reading, emulation and hashing in parallel).",
        ),
    ] = 1,
) -> None:
    """Import recordings made by other tools; they become searchable like recorded ones.

    Each file's result is printed as soon as it is known, in the order given.
    """
    directory = data_dir(data)
    url = db_url(db, directory)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise fail(f"cannot use data directory {directory}: {exc.strerror}") from None
    failed = 0
    try:
        upgrade(url)
        # Closed on any way out (Ctrl-C while a line prints included): the workers stop taking files.
        with closing(import_each(url, directory, files, jobs)) as results:
            for result in results:
                _print(result)
                failed += not result.imported
    except RecorderError as exc:
        raise fail(str(exc)) from None
    if failed:
        raise typer.Exit(1)


def _print(result: ImportResult) -> None:
    name = visible(str(result.source))
    if not result.imported:
        typer.echo(
            f"recorder: error: cannot import {name}: {visible(result.error or 'unknown error')}", err=True
        )
        return
    if result.already:
        line = f"{name}: already in the index as connection {result.connection_id}"
        if result.indexed is not None:
            # An earlier import was cut short before its search rows were written.
            i = result.indexed
            line += (
                f"; indexed for search now ({i.command_count} commands, {i.line_count} output lines, "
                f"{i.input_count} typed lines)"
            )
        typer.echo(line)
    elif result.indexed is not None:
        i = result.indexed
        typer.echo(
            f"{name}: imported as connection {result.connection_id} ({i.command_count} commands, "
            f"{i.line_count} output lines, {i.input_count} typed lines)"
        )
    else:
        typer.echo(f"{name}: imported as connection {result.connection_id}")
    if result.skipped or result.adjusted:
        first = ", ".join(
            f"line {p.line} {p.kind.value} ({p.reason.value}{': ' + p.detail if p.detail else ''})"
            for p in result.problems
        )
        typer.echo(
            f"  {result.skipped} line(s) skipped, {result.adjusted} adjusted; first: {visible(first)}",
            err=True,
        )
    if result.error:
        typer.echo(f"recorder: warning: {visible(result.error)}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``import``."""
    app.command("import")(import_cmd)

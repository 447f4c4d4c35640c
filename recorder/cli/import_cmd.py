"""``recorder import FILE...``: bring asciicast v1/v2/v3 recordings from other tools into the index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail
from recorder.cli.pipeline import ImportResult, import_casts
from recorder.cli.views import visible
from recorder.errors import RecorderError
from recorder.index.db import make_engine, upgrade
from recorder.index.store import Index


def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="asciicast files (.cast v2/v3, .json v1).")],
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Import recordings made by other tools; they become searchable like recorded ones."""
    directory = data_dir(data)
    url = db_url(db, directory)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise fail(f"cannot use data directory {directory}: {exc.strerror}") from None
    try:
        upgrade(url)
        # Imports and their search rows are made again by importing again: no fsync per commit.
        index = Index(make_engine(url, durable=False))
        try:
            report = import_casts(index, directory, files)
        finally:
            index.engine.dispose()
    except RecorderError as exc:
        raise fail(str(exc)) from None
    for result in report.results:
        _print(result)
    if report.failed:
        raise typer.Exit(1)


def _print(result: ImportResult) -> None:
    name = visible(str(result.source))
    if not result.imported:
        typer.echo(
            f"recorder: error: cannot import {name}: {visible(result.error or 'unknown error')}", err=True
        )
        return
    if result.already:
        typer.echo(f"{name}: already in the index as connection {result.connection_id}")
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

"""``recorder export``: a recording or a clip of it as asciicast, text, one offline HTML file, or a bundle."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail
from recorder.cli.source import resolve
from recorder.errors import RecorderError
from recorder.replay.export import ExportFormat, export_recording
from recorder.replay.player import parse_offset


def export(
    target: Annotated[str, typer.Argument(help="Connection id, shell:<pk>, or an asciicast file.")],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="cast-v2, cast-v3, txt, html or bundle (a zip).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    start: Annotated[
        str | None, typer.Option("--from", help="Clip start (seconds, mm:ss or h:mm:ss), screen intact.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Clip end (seconds, mm:ss or h:mm:ss).")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the HTML page (default: the source).")] = None,
    autoplay: Annotated[bool, typer.Option(help="HTML: start playing when the page opens.")] = False,
    whole_shell: Annotated[
        bool, typer.Option("--shell", help="Every connection of the connection's shell, in order.")
    ] = False,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Write a recording (or the clip --from..--to, starting from the right screen) to a file."""
    directory = data_dir(data)
    try:
        t0 = parse_offset(start) if start is not None else 0.0
        t1 = parse_offset(end) if end is not None else None
        source = resolve(target, data=directory, db=db_url(db, directory), whole_shell=whole_shell)
        with contextlib.closing(source):
            result = export_recording(
                source.header,
                source.events(),
                fmt,
                output,
                start=t0,
                end=t1,
                title=title or source.header.title or source.label,
                metadata={"source": source.label, **source.metadata},
                autoplay=autoplay,
            )
    except RecorderError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{result.path}: {result.format.value}, {result.size} bytes, {result.events} events")


def register(app: typer.Typer) -> None:
    """Add the ``export`` command."""
    app.command("export")(export)

"""``recorder render``: the screen at one moment of a recording, as text, SVG or PNG."""

from __future__ import annotations

import contextlib
import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail
from recorder.cli.source import resolve
from recorder.errors import RecorderError
from recorder.replay.export import write_atomic
from recorder.replay.player import parse_offset
from recorder.replay.render import FONT_SIZE, Theme, render_png, render_svg, render_txt, screen_at


class RenderFormat(StrEnum):
    """What ``recorder render`` draws."""

    TXT = "txt"
    SVG = "svg"
    PNG = "png"


def render(
    target: Annotated[str, typer.Argument(help="Connection id, shell:<pk>, or an asciicast file.")],
    at: Annotated[
        str | None,
        typer.Option("--at", help="The moment (seconds, mm:ss or h:mm:ss); default: the end."),
    ] = None,
    fmt: Annotated[RenderFormat, typer.Option("--format", help="txt, svg or png.")] = RenderFormat.TXT,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    font_size: Annotated[
        int, typer.Option(help="Font size in pixels (svg, png).", min=4, max=72)
    ] = FONT_SIZE,
    whole_shell: Annotated[
        bool, typer.Option("--shell", help="Render on the timeline of the connection's whole shell.")
    ] = False,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Draw the screen as it was at a moment of a recording (colours kept in svg and png)."""
    directory = data_dir(data)
    if fmt is RenderFormat.PNG and output is None and sys.stdout.isatty():
        raise fail("a PNG is not for a terminal: give -o PATH (or redirect stdout)")
    try:
        moment = parse_offset(at) if at is not None else math.inf
        source = resolve(target, data=directory, db=db_url(db, directory), whole_shell=whole_shell)
        with contextlib.closing(source):
            screen = screen_at(source.header, source.events(), moment)
            theme = Theme.from_asciicast(source.header.theme)
        if fmt is RenderFormat.TXT:
            data_out = render_txt(screen).encode("utf-8")
        elif fmt is RenderFormat.SVG:
            data_out = render_svg(screen, theme=theme, font_size=font_size).encode("utf-8")
        else:
            data_out = render_png(screen, theme=theme, font_size=font_size)
        if output is not None:
            write_atomic(output, data_out)
    except RecorderError as exc:
        raise fail(str(exc)) from None
    if output is None:
        stdout = typer.get_binary_stream("stdout")
        stdout.write(data_out)
        stdout.flush()


def register(app: typer.Typer) -> None:
    """Add the ``render`` command."""
    app.command("render")(render)

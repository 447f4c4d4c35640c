"""``recorder search QUERY``: find commands, output and typed input across recordings."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from recorder.cli.common import DataOption, DbOption, fail
from recorder.cli.views import (
    ExitCodeOption,
    FailedOption,
    FilterArgs,
    JsonOption,
    PrincipalOption,
    RuntimeOption,
    ShellOption,
    SinceOption,
    StatusOption,
    UntilOption,
    console,
    format_offset,
    highlight,
    hit_json,
    json_line,
    open_index,
    play_command,
    visible,
)
from recorder.errors import RecorderError
from recorder.index.query import parse_query, snippet
from recorder.index.search import DEFAULT_SEARCH_LIMIT, KINDS, Hit, search
from recorder.index.store import MAX_LIST_LIMIT


class Where(StrEnum):
    """What ``--in`` searches."""

    COMMANDS = "commands"
    OUTPUT = "output"
    INPUT = "input"
    ALL = "all"


_KINDS = {Where.COMMANDS: ("command",), Where.OUTPUT: ("output",), Where.INPUT: ("input",), Where.ALL: KINDS}


def search_cmd(
    query: Annotated[
        str,
        typer.Argument(help='Words (all must match), "quoted phrases", prefix*. Quote it for the shell.'),
    ],
    where: Annotated[
        Where, typer.Option("--in", help="Search commands, rendered output, typed input, or all.")
    ] = Where.ALL,
    principal: PrincipalOption = None,
    runtime: RuntimeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    exit_code: ExitCodeOption = None,
    failed: FailedOption = False,
    status: StatusOption = None,
    shell: ShellOption = None,
    limit: Annotated[int, typer.Option(help="At most this many hits.")] = DEFAULT_SEARCH_LIMIT,
    as_json: JsonOption = False,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Search recordings; each hit says where it is and how to replay from there."""
    args = FilterArgs(principal, runtime, since, until, exit_code, failed, status, shell)
    try:
        parsed = parse_query(query)
        filters = args.to_filter(MAX_LIST_LIMIT)
        index = open_index(data, db)
        try:
            hits = search(index, parsed, kinds=_KINDS[where], filters=filters, limit=limit)
        finally:
            index.engine.dispose()
    except RecorderError as exc:
        raise fail(str(exc)) from None
    if as_json:
        for hit in hits:
            typer.echo(json_line(hit_json(hit)))
        return
    if not hits:
        typer.echo("no matches", err=True)
        return
    console().print(_table(hits))


def _table(hits: list[Hit]) -> Table:
    table = Table(box=None, header_style="bold")
    for name in ("ID", "PRINCIPAL", "AT", "IN", "EXIT", "MATCH", "REPLAY"):
        table.add_column(name, no_wrap=name != "MATCH", overflow="fold")
    for hit in hits:
        text, spans = snippet(hit.text, list(hit.spans))
        exit_text = Text("" if hit.exit_code is None else str(hit.exit_code))
        if hit.exit_code:
            exit_text.stylize("bold red")
        table.add_row(
            str(hit.connection_id),
            visible(hit.principal or "-"),
            format_offset(hit.offset),
            hit.kind,
            exit_text,
            highlight(text, spans),
            play_command(hit.connection_id, hit.offset),
        )
    return table


def register(app: typer.Typer) -> None:
    """Add ``search``."""
    app.command("search")(search_cmd)

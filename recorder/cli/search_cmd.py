"""``recorder search QUERY``: find commands, output and typed input across recordings.

With ``--server`` the proxy runs the search on the index it holds (``recorder.proxy.searching``)
and this process only prints: it never loads SQLAlchemy (a test holds it to that), which is most
of a local search's start-up.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from recorder.cli.common import DataOption, DbOption, fail, visible
from recorder.cli.credentials import CaBundle, Token, local_token
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
)
from recorder.errors import RecorderError
from recorder.index.hits import DEFAULT_SEARCH_LIMIT, KINDS, Hit
from recorder.index.query import Query, parse_query, snippet
from recorder.index.vocab import MAX_LIST_LIMIT


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
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="RECORDER_SERVER",
            help="Search through this proxy (http(s):// or ws(s)://, as for recorder shell) instead of "
            "the local index; the proxy must name you as an auditor, and logs the search.",
            show_default=False,
        ),
    ] = None,
    token: Token = None,
    ca_bundle: CaBundle = None,
) -> None:
    """Search recordings; each hit says where it is and how to replay from there."""
    args = FilterArgs(principal, runtime, since, until, exit_code, failed, status, shell)
    try:
        parsed = parse_query(query)
        if server is not None:
            if data is not None or db is not None:
                raise fail("--server searches the proxy's index: --data-dir and --db do not apply")
            hits = _remote(server, query, where, args, limit, token, ca_bundle)
        else:
            if token is not None or ca_bundle is not None:
                raise fail("--token and --ca-bundle are for --server")
            hits = _local(parsed, where, args, limit, data, db)
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


def _local(
    parsed: Query, where: Where, args: FilterArgs, limit: int, data: Path | None, db: str | None
) -> list[Hit]:
    from recorder.index.search import search  # SQLAlchemy: only when this process searches

    filters = args.to_filter(MAX_LIST_LIMIT)
    index = open_index(data, db)
    try:
        return search(index, parsed, kinds=_KINDS[where], filters=filters, limit=limit)
    finally:
        index.engine.dispose()


def _remote(
    server: str,
    query: str,
    where: Where,
    args: FilterArgs,
    limit: int,
    token: str | None,
    ca_bundle: Path | None,
) -> list[Hit]:
    from recorder.cli.remote import clear_text_warning, remote_search
    from recorder.protocol.search import MAX_ANSWER_BYTES

    params: dict[str, str | None] = {
        "q": query,
        "in": where.value,
        "limit": str(limit),
        "principal": args.principal,
        "runtime": args.runtime,
        "since": args.since,
        "until": args.until,
        "exit_code": None if args.exit_code is None else str(args.exit_code),
        "failed": "1" if args.failed else None,
        "status": None if args.status is None else args.status.value,
        "shell": args.shell,
    }
    token = token or local_token(server)
    warning = clear_text_warning(server, token)
    if warning is not None:
        typer.echo(f"recorder: warning: {warning}", err=True)
    answer = remote_search(server, params, token=token, ca_bundle=ca_bundle)
    if answer.cut:
        typer.echo(
            f"recorder: warning: the proxy found {answer.cut} more hits and left them out (its answer is "
            f"at most {MAX_ANSWER_BYTES // (1024 * 1024)} MiB): narrow the search or lower --limit",
            err=True,
        )
    return answer.hits


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

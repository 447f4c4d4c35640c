"""``recorder list``: recorded connections (or refused attempts), newest first."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from recorder.cli.common import DataOption, DbOption, fail, visible
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
    connection_json,
    console,
    format_duration,
    format_time,
    json_line,
    open_index,
    refusal_json,
)
from recorder.errors import RecorderError
from recorder.index.store import DEFAULT_LIST_LIMIT, ConnectionRow, RefusalRow


def list_connections(
    principal: PrincipalOption = None,
    runtime: RuntimeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    exit_code: ExitCodeOption = None,
    failed: FailedOption = False,
    status: StatusOption = None,
    shell: ShellOption = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = DEFAULT_LIST_LIMIT,
    refused: Annotated[
        bool, typer.Option(help="List refused attempts instead: who, from where, what, why.")
    ] = False,
    as_json: JsonOption = False,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """List recorded connections, newest first (or refused attempts with --refused)."""
    args = FilterArgs(principal, runtime, since, until, exit_code, failed, status, shell)
    if refused:
        not_for_refusals = {
            "--exit-code": exit_code is not None,
            "--failed": failed,
            "--status": status is not None,
            "--shell": shell is not None,
        }
        given = [name for name, used in not_for_refusals.items() if used]
        if given:
            raise fail(f"{', '.join(given)} cannot be used with --refused (refusals have no shell or exit)")
    try:
        filters = args.to_filter(limit)
        index = open_index(data, db)
        try:
            if refused:
                refusals = index.list_refusals(
                    since=filters.since,
                    until=filters.until,
                    principal=principal,
                    runtime=runtime,
                    limit=limit,
                )
            else:
                rows = index.list_connections(filters)
        finally:
            index.engine.dispose()
    except RecorderError as exc:
        raise fail(str(exc)) from None
    if refused:
        _print_refusals(refusals, as_json)
    else:
        _print_connections(rows, as_json)


def _print_connections(rows: list[ConnectionRow], as_json: bool) -> None:
    if as_json:
        for row in rows:
            typer.echo(json_line(connection_json(row)))
        return
    table = Table(box=None, header_style="bold")
    for name in ("ID", "STARTED (UTC)", "DURATION", "PRINCIPAL", "RUNTIME", "SHELL", "STATUS", "EXIT"):
        table.add_column(name, no_wrap=name != "RUNTIME")
    for row in rows:
        status = row.status.value if row.end_reason is None else f"{row.status.value}/{row.end_reason.value}"
        table.add_row(
            str(row.id),
            format_time(row.started_at),
            format_duration(row.duration),
            visible(row.principal or "-"),
            visible(row.runtime_arn),
            visible(row.shell_id),
            status,
            "-" if row.exit_code is None else str(row.exit_code),
        )
    if rows:
        console().print(table)
    else:
        typer.echo("no connections match", err=True)


def _print_refusals(rows: list[RefusalRow], as_json: bool) -> None:
    if as_json:
        for row in rows:
            typer.echo(json_line(refusal_json(row)))
        return
    table = Table(box=None, header_style="bold")
    for name in ("AT (UTC)", "PRINCIPAL", "FROM", "RUNTIME", "SHELL", "HTTP", "WHY"):
        table.add_column(name)
    for row in rows:
        table.add_row(
            format_time(row.at),
            visible(row.principal or "-"),
            visible(row.client_address),
            visible(row.runtime_arn or "-"),
            visible(row.shell_id or "-"),
            str(row.http_status),
            visible(row.reason),
        )
    if rows:
        console().print(table)
    else:
        typer.echo("no refused attempts match", err=True)


def register(app: typer.Typer) -> None:
    """Add ``list``."""
    app.command("list")(list_connections)

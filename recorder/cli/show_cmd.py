"""``recorder show ID``: one connection, its shell's timeline and the commands typed in it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from recorder.cli.common import DataOption, DbOption, fail
from recorder.cli.views import (
    JsonOption,
    connection_json,
    console,
    format_duration,
    format_offset,
    format_time,
    json_line,
    open_index,
    play_command,
    visible,
)
from recorder.errors import RecorderError
from recorder.index.rows import CommandRow, IndexedRow
from recorder.index.store import ConnectionRow, ImportRow, Index


def _gather(
    index: Index, conn_id: int
) -> tuple[ConnectionRow, list[ConnectionRow], list[CommandRow], IndexedRow | None, ImportRow | None]:
    row = index.get_connection(conn_id)
    if row is None:
        raise fail(f"no connection {conn_id} in the index (see `recorder list`)")
    return (
        row,
        index.shell_connections(row.shell_pk),
        index.connection_commands(conn_id),
        index.indexed(conn_id),
        index.get_import(conn_id),
    )


def show(
    connection_id: Annotated[int, typer.Argument(help="Connection id (from `recorder list` or search).")],
    as_json: JsonOption = False,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Show a connection: who, where, how it ended, its shell's timeline and its commands."""
    try:
        index = open_index(data, db)
        try:
            row, timeline, commands, indexed, imported = _gather(index, connection_id)
        finally:
            index.engine.dispose()
    except RecorderError as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json_line(_as_json(row, timeline, commands, indexed, imported)))
        return
    out = console()
    out.print(_details(row, indexed, imported))
    out.print(Text(f"\nshell {visible(row.shell_id)}: {len(timeline)} connection(s)", style="bold"))
    out.print(_timeline(row, timeline))
    out.print(Text(f"\ncommands ({len(commands)})", style="bold"))
    if commands:
        out.print(_commands(commands))
    elif indexed is None:
        out.print("  not indexed for search yet")
    typer.echo(f"\nreplay: {play_command(row.id, 0)}")


def _as_json(
    row: ConnectionRow,
    timeline: list[ConnectionRow],
    commands: list[CommandRow],
    indexed: IndexedRow | None,
    imported: ImportRow | None,
) -> dict[str, Any]:
    def iso(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in obj.items()}

    return {
        "connection": connection_json(row),
        "shell_connections": [connection_json(c) for c in timeline],
        "commands": [asdict(c) for c in commands],
        "indexed": None if indexed is None else iso(asdict(indexed)),
        "import": None if imported is None else iso(asdict(imported)),
    }


def _details(row: ConnectionRow, indexed: IndexedRow | None, imported: ImportRow | None) -> Table:
    table = Table(box=None, show_header=False, title=f"connection {row.id}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    ending = row.status.value + ("" if row.end_reason is None else f" ({row.end_reason.value})")
    if row.exit_code is not None:
        ending += f", exit code {row.exit_code}"
    if row.close_code is not None:
        ending += f", close code {row.close_code}"
    c = row.counters
    fields = [
        ("principal", row.principal or "- (no authentication)"),
        ("client", row.client_address),
        ("runtime", row.runtime_arn),
        ("qualifier", row.qualifier),
        ("session", row.session_id),
        ("shell", row.shell_id),
        ("upstream", row.upstream),
        ("started", f"{format_time(row.started_at)} UTC"),
        ("ended", f"{format_time(row.ended_at)} UTC, after {format_duration(row.duration)}"),
        ("status", ending),
        (
            "recording",
            f"{row.recording_path} ({row.recording_size if row.recording_size is not None else '?'} bytes, "
            f"asciicast v{row.cast_version}, {row.cols}x{row.rows})",
        ),
        ("sha256", row.sha256 or "-"),
        (
            "traffic",
            f"in {c['bytes_stdin']} B/{c['frames_stdin']} frames, out {c['bytes_stdout']} B/"
            f"{c['frames_stdout']} frames, {row.invalid_utf8} invalid UTF-8, {row.bytes_dropped} B dropped",
        ),
    ]
    if imported is not None:
        fields.append(
            (
                "imported",
                f"from {imported.source_name} at {format_time(imported.imported_at)} UTC "
                f"({imported.skipped_lines} lines skipped, {imported.adjusted_lines} adjusted)",
            )
        )
    if indexed is None:
        fields.append(("search", "not indexed yet"))
    else:
        text = (
            f"{indexed.command_count} commands, {indexed.line_count} output lines, "
            f"{indexed.input_count} typed lines (indexed {format_time(indexed.indexed_at)} UTC)"
        )
        if indexed.error:
            text += f"; incomplete: {indexed.error}"
        fields.append(("search", text))
    for name, value in fields:
        table.add_row(name, visible(value))
    return table


def _timeline(row: ConnectionRow, timeline: list[ConnectionRow]) -> Table:
    table = Table(box=None, header_style="bold")
    for name in ("", "ID", "STARTED (UTC)", "ENDED (UTC)", "PRINCIPAL", "FROM", "END", "EXIT"):
        table.add_column(name, no_wrap=True)
    for conn in timeline:
        table.add_row(
            ">" if conn.id == row.id else "",
            str(conn.id),
            format_time(conn.started_at),
            format_time(conn.ended_at),
            visible(conn.principal or "-"),
            visible(conn.client_address),
            conn.status.value if conn.end_reason is None else conn.end_reason.value,
            "-" if conn.exit_code is None else str(conn.exit_code),
        )
    return table


def _commands(commands: list[CommandRow]) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("AT", no_wrap=True)
    table.add_column("EXIT", no_wrap=True, justify="right")
    table.add_column("COMMAND")
    for cmd in commands:
        exit_text = Text("-" if cmd.exit_code is None else str(cmd.exit_code))
        if cmd.exit_code:
            exit_text.stylize("bold red")
        table.add_row(format_offset(cmd.offset), exit_text, Text(visible(cmd.text)))
    return table


def register(app: typer.Typer) -> None:
    """Add ``show``."""
    app.command("show")(show)

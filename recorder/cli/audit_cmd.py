"""Auditing the auditors: every command that reads recordings is logged before it runs.

:func:`install` wraps, once, every command of the app whose name is in AUDITED_COMMANDS (also
those of modules written later, such as ``verify``), so a command module needs no code of its own.
The entry (OS user, time, command, arguments, targets) goes to the index's ``audit_log`` table
before the command runs; if it cannot be written the command does not run and exits with a
one-line error: for a security tool, an unlogged look at recordings is worse than no look.
A command sent to a proxy (``recorder search --server``) reads nothing here: the proxy logs it
in its own index, under the principal it authenticated, before it runs it.
``tests/cli/test_audit_cmd.py`` fails when a command is in neither AUDITED_COMMANDS nor
NOT_AUDITED, so a new command cannot be forgotten.
"""

from __future__ import annotations

import enum
import functools
import getpass
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.models import CommandInfo

from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail, visible
from recorder.cli.views import JsonOption, console, format_time, json_line, open_index
from recorder.errors import AuditLogError, RecorderError
from recorder.index.timespec import parse_time
from recorder.index.vocab import DEFAULT_LIST_LIMIT

#: Commands that read recordings or their index, and the audit log itself.
AUDITED_COMMANDS = frozenset(
    {"list", "show", "search", "play", "render", "export", "transcript", "import", "verify", "audit-log"}
)
#: Commands deliberately not audited (they record, serve or administer; they read no recording).
NOT_AUDITED = frozenset({"serve", "runtime", "shell", "exec", "db", "doctor", "token", "policy", "key"})
#: Parameters whose values name what a command looks at.
TARGET_PARAMS = ("target", "targets", "connection_id", "conn_id", "files", "file", "path", "paths", "bundle")
#: The parameter that sends a command to a proxy, which logs it in its own index (search --server).
REMOTE_PARAM = "server"
_AUDITED_MARK = "__recorder_audited__"


def command_name(info: CommandInfo) -> str:
    """The name a registered command is invoked by (Typer's rule when none was given)."""
    if info.name:
        return info.name
    assert info.callback is not None
    return info.callback.__name__.lower().replace("_", "-")


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path | os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def audit_entry(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The arguments worth logging (given ones; a database URL without its password) and the targets."""
    from recorder.index.db import safe_url

    arguments = {
        k: safe_url(v) if k == "db" and isinstance(v, str) else _jsonable(v)
        for k, v in params.items()
        if v is not None and v is not False and v != []
    }
    targets: list[str] = []
    for key in TARGET_PARAMS:
        value = params.get(key)
        if value is None:
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            targets.append(str(_jsonable(item)))
    return arguments, targets


def write_audit(command: str, params: Mapping[str, Any]) -> int:
    """Log one run of ``command``; AuditLogError when the entry cannot be written."""
    # Here, not at the top: every command loads this module, and SQLAlchemy is 200-300 ms of
    # start-up that a command which never opens the local index (search --server) must not pay.
    from recorder.index.access import record_audit
    from recorder.index.db import current_revision, head_revision, make_engine, safe_url, upgrade
    from recorder.index.store import Index

    directory = data_dir(params.get("data"))
    url = db_url(params.get("db"), directory)
    arguments, targets = audit_entry(params)
    try:
        engine = make_engine(url)
    except RecorderError as exc:
        raise AuditLogError(f"cannot write the audit log: {exc}") from None
    try:
        revision = current_revision(engine)
        if revision is None:
            # No index yet (a file played before anything was recorded): the log needs one.
            upgrade(engine)
        elif revision != head_revision():
            raise AuditLogError(
                f"cannot write the audit log: the index at {safe_url(url)} is at revision {revision}: "
                "run `recorder db upgrade`"
            )
        return record_audit(
            Index(engine), actor=getpass.getuser(), command=command, arguments=arguments, targets=targets
        )
    except AuditLogError:
        raise
    except RecorderError as exc:
        raise AuditLogError(f"cannot write the audit log: {exc}") from None
    finally:
        engine.dispose()


def audited(command: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` logging each run to the audit log before it runs (and not running if it cannot)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get(REMOTE_PARAM):
            # Run by a proxy (``--server``): the proxy logs it, under the principal it
            # authenticated, before it searches; this machine's index is never opened.
            return func(*args, **kwargs)
        try:
            write_audit(command, kwargs)
        except AuditLogError as exc:
            raise fail(f"{exc}; `recorder {command}` did not run") from None
        return func(*args, **kwargs)

    setattr(wrapper, _AUDITED_MARK, True)
    return wrapper


def install(app: typer.Typer) -> list[str]:
    """Wrap every registered command named in AUDITED_COMMANDS; return the names wrapped."""
    wrapped = []
    for info in app.registered_commands:
        name = command_name(info)
        if name in AUDITED_COMMANDS and info.callback is not None:
            if not getattr(info.callback, _AUDITED_MARK, False):
                info.callback = audited(name, info.callback)
            wrapped.append(name)
    return wrapped


def audit_log(
    since: Annotated[str | None, typer.Option(help="Only entries since: 24h, 7d, 2025-01-31 ...")] = None,
    actor: Annotated[
        str | None,
        typer.Option(help="Only this actor: an OS user, or a principal a proxy searched for (via=proxy)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = DEFAULT_LIST_LIMIT,
    as_json: JsonOption = False,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Show who ran which auditor command on what, newest first."""
    from recorder.index.access import list_audit

    try:
        start = None if since is None else parse_time(since, now=datetime.now(UTC), what="--since")
        index = open_index(data, db)
        try:
            rows = list_audit(index, since=start, actor=actor, limit=limit)
        finally:
            index.engine.dispose()
    except RecorderError as exc:
        raise fail(str(exc)) from None
    if as_json:
        for r in rows:
            obj = {
                "id": r.id,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "command": r.command,
                "arguments": r.arguments,
                "targets": r.targets,
            }
            typer.echo(json_line(obj))
        return
    table = Table("id", "at", "actor", "command", "targets", "arguments")
    for r in rows:
        args = " ".join(f"{k}={v}" for k, v in sorted(r.arguments.items()))
        table.add_row(
            str(r.id),
            format_time(r.at),
            visible(r.actor),
            r.command,
            visible(" ".join(r.targets)),
            visible(args),
        )
    console().print(table)


def register(app: typer.Typer) -> None:
    """Add ``audit-log``."""
    app.command("audit-log")(audit_log)

"""``recorder token``: bearer tokens for the proxy (create, list, revoke); only their hashes are kept."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail, visible
from recorder.cli.views import JsonOption, console, format_time, json_line
from recorder.errors import RecorderError
from recorder.index.access import MAX_TOKEN_TTL, create_token, list_tokens, revoke_token
from recorder.index.db import make_engine, upgrade
from recorder.index.store import Index

#: Lifetime of a token when --ttl is not given.
DEFAULT_TTL = "8h"
_TTL_RE = re.compile(r"(?:\d{1,9}[smhdw])+\Z", re.ASCII)
_PART_RE = re.compile(r"(\d{1,9})([smhdw])", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

token_app = typer.Typer(
    name="token", help="Bearer tokens for `recorder serve --auth token`.", no_args_is_help=True
)


def parse_ttl(value: str) -> timedelta:
    """``8h``, ``30m``, ``7d``, ``1h30m`` as a timedelta; anything else is a one-line error."""
    text = value.strip().lower()
    if not _TTL_RE.match(text):
        raise fail(f"--ttl must be a duration like 30m, 8h or 7d, got {value!r}")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART_RE.findall(text))
    if not 0 < seconds <= MAX_TOKEN_TTL.total_seconds():
        raise fail(f"--ttl must be more than 0 and at most {MAX_TOKEN_TTL.days} days")
    return timedelta(seconds=seconds)


def _index(data: DataOption, db: DbOption) -> Index:
    directory = data_dir(data)
    url = db_url(db, directory)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        upgrade(url)
        return Index(make_engine(url))
    except OSError as exc:
        raise fail(f"cannot use data directory {directory}: {exc.strerror}") from None
    except RecorderError as exc:
        raise fail(str(exc)) from None


@token_app.command("create")
def create(
    principal: Annotated[str, typer.Option(help="Who the token authenticates as.")],
    group: Annotated[list[str] | None, typer.Option("--group", help="A group (repeatable).")] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 30m, 8h, 7d ... (at most 366d).")] = DEFAULT_TTL,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Create a token; it is printed once, alone on the last line, and only its hash is kept."""
    lifetime = parse_ttl(ttl)
    index = _index(data, db)
    try:
        row, token = create_token(index, principal, group or [], lifetime)
    except RecorderError as exc:
        raise fail(str(exc)) from None
    finally:
        index.engine.dispose()
    typer.echo(f"token {row.id} for {row.principal}, expires {format_time(row.expires_at)}", err=True)
    typer.echo(token)


@token_app.command("list")
def list_cmd(as_json: JsonOption = False, data: DataOption = None, db: DbOption = None) -> None:
    """List tokens (ids, principals, groups, state; never the tokens)."""
    index = _index(data, db)
    try:
        rows = list_tokens(index)
    except RecorderError as exc:
        raise fail(str(exc)) from None
    finally:
        index.engine.dispose()
    now = datetime.now(UTC)
    if as_json:
        for r in rows:
            obj = {
                "id": r.id,
                "principal": r.principal,
                "groups": list(r.groups),
                "created_at": r.created_at.isoformat(),
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                "state": r.state(now),
            }
            typer.echo(json_line(obj))
        return
    table = Table("id", "principal", "groups", "created", "expires", "state")
    for r in rows:
        table.add_row(
            r.id,
            visible(r.principal),
            visible(",".join(r.groups)),
            format_time(r.created_at),
            format_time(r.expires_at) if r.expires_at else "never",
            r.state(now),
        )
    console().print(table)


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id (`recorder token list`).")],
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Revoke a token: the proxy refuses it from the next connection on."""
    index = _index(data, db)
    try:
        row = revoke_token(index, token_id)
    except RecorderError as exc:
        raise fail(str(exc)) from None
    finally:
        index.engine.dispose()
    typer.echo(f"revoked token {row.id} of {row.principal}")


def register(app: typer.Typer) -> None:
    """Add the ``token`` group."""
    app.add_typer(token_app)

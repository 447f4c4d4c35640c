"""``recorder serve``: the recording proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from recorder import logfmt
from recorder.cli.common import DEFAULT_PROXY_LISTEN, data_dir, db_url, fail, parse_listen
from recorder.errors import RecorderError
from recorder.index.db import make_engine, upgrade
from recorder.index.store import Index
from recorder.proxy.server import ProxyServer, ProxySettings
from recorder.proxy.upstream import LocalRuntimeUpstream, Upstream, WebSocketUpstream


def serve(
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on (port 0 picks a free one).")] = (
        DEFAULT_PROXY_LISTEN
    ),
    data: Annotated[
        Path | None, typer.Option("--data-dir", help="Where recordings and the SQLite index live.")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Index database URL (default: SQLite in the data dir).")
    ] = None,
    upstream: Annotated[
        str,
        typer.Option(help="'local' (the embedded runtime), or a ws:// or wss:// URL speaking the protocol."),
    ] = "local",
    cast_version: Annotated[int, typer.Option(help="asciicast version to write: 2 or 3.")] = 2,
    runtime_shell: Annotated[
        str | None, typer.Option(help="With --upstream local: the command each shell runs (default bash).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run the recording proxy in front of an upstream shell service."""
    logfmt.configure(log_level)
    host, port = parse_listen(listen)
    if cast_version not in (2, 3):
        raise fail("--cast-version must be 2 or 3")
    directory = data_dir(data)
    url = db_url(db, directory)
    target: Upstream
    if upstream == "local":
        target = LocalRuntimeUpstream(shell=runtime_shell)
    elif upstream.startswith(("ws://", "wss://")):
        target = WebSocketUpstream(upstream)
    else:
        raise fail(f"--upstream must be 'local' or a ws:// or wss:// URL, got {upstream!r}")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        upgrade(url)
        index = Index(make_engine(url))
    except OSError as exc:
        raise fail(f"cannot use data directory {directory}: {exc.strerror}") from None
    except RecorderError as exc:
        raise fail(str(exc)) from None
    settings = ProxySettings(data_dir=directory, host=host, port=port, cast_version=cast_version)
    server = ProxyServer(settings, target, index)

    def ready(srv: ProxyServer) -> None:
        typer.echo(f"listening on ws://{host}:{srv.port}", err=True)
        typer.echo(f"recordings in {directory}, index at {url}", err=True)

    try:
        asyncio.run(server.run_until_signalled(ready))
    except RecorderError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot listen on {listen}: {exc.strerror}") from None


def register(app: typer.Typer) -> None:
    """Add ``serve``."""
    app.command()(serve)

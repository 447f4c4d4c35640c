"""``recorder runtime``: the embedded AgentCore-compatible shell runtime on local PTYs."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from recorder import logfmt
from recorder.cli import eventloop
from recorder.cli.common import DEFAULT_RUNTIME_LISTEN, fail, parse_listen
from recorder.errors import RecorderError
from recorder.runtime import (
    IDLE_TIMEOUT,
    MAX_ATTACHED_SHELLS,
    RING_BUFFER_SIZE,
    Runtime,
    RuntimeConfig,
    serve_runtime,
)
from recorder.runtime.server import MAX_SHELLS


def read_tokens(path: Path) -> frozenset[str]:
    """The bearer tokens in ``path``: one per line, blank lines and surrounding spaces ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise fail(f"cannot read token file {path}: {reason}") from None
    tokens = frozenset(line.strip() for line in text.splitlines() if line.strip())
    if not tokens:
        raise fail(f"token file {path} holds no token")
    return tokens


def runtime(
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on (port 0 picks a free one).")] = (
        DEFAULT_RUNTIME_LISTEN
    ),
    shell: Annotated[
        str | None,
        typer.Option(help="Command each shell runs, e.g. 'sh' or 'cat' (default: bash with prompt marks)."),
    ] = None,
    idle_timeout: Annotated[
        float, typer.Option(help="Seconds a detached shell lives without a client.", min=0.001)
    ] = IDLE_TIMEOUT,
    token_file: Annotated[
        Path | None,
        typer.Option(help="Require a bearer token from this file (one per line); needed off loopback."),
    ] = None,
    buffer_size: Annotated[
        int, typer.Option(help="Bytes of output a detached shell keeps for the next client.", min=1)
    ] = RING_BUFFER_SIZE,
    max_shells: Annotated[
        int, typer.Option(help="Attached shells allowed per runtime session.", min=1)
    ] = MAX_ATTACHED_SHELLS,
    max_live_shells: Annotated[
        int, typer.Option(help="Live shells allowed in the whole runtime (attached or detached).", min=1)
    ] = MAX_SHELLS,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run a local shell service that speaks InvokeAgentRuntimeCommandShell (real PTYs)."""
    host, port = parse_listen(listen)
    argv: list[str] | None = None
    if shell is not None:
        try:
            argv = shlex.split(shell)
        except ValueError as exc:
            raise fail(f"--shell {shell!r} does not parse: {exc}") from None
        if not argv:
            raise fail("--shell is empty")
    tokens = read_tokens(token_file) if token_file is not None else frozenset()
    config = RuntimeConfig(
        host=host,
        port=port,
        shell=argv,
        idle_timeout=idle_timeout,
        tokens=tokens,
        buffer_size=buffer_size,
        max_attached_shells=max_shells,
        max_shells=max_live_shells,
    )
    try:
        config.check()
    except RecorderError as exc:
        raise fail(str(exc)) from None

    logfmt.configure(log_level)

    def ready(rt: Runtime) -> None:
        # The proxy and the tests wait for exactly this line.
        print(f"listening on {rt.url}", file=sys.stderr, flush=True)

    try:
        eventloop.run(serve_runtime(config, ready=ready))
    except RecorderError as exc:
        raise fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    """Add ``runtime``."""
    app.command()(runtime)

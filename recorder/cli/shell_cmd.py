"""``recorder shell`` (interactive, raw terminal) and ``recorder exec`` (one command, exact output)."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.common import DEFAULT_PROXY_URL, fail, one_line
from recorder.cli.credentials import CaBundle, Token, local_token
from recorder.client import (
    DEFAULT_SIZE,
    EXIT_CONNECT_FAILED,
    EXIT_EXEC_FAILED,
    Ending,
    ShellClient,
    ShellTarget,
    describe,
    exit_status,
    reattach_advised,
    run_command,
    run_shell,
    terminal_size,
)
from recorder.client.oneshot import MAX_STDIN_SIZE
from recorder.client.session import DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT
from recorder.errors import ConnectFailed, ExecError, RecorderError
from recorder.protocol import LOCAL_RUNTIME_ARN

#: Exit status for bad command-line values (click's usage-error status).
EXIT_USAGE = 2

Url = Annotated[
    str,
    typer.Option("--url", envvar="RECORDER_URL", help="ws:// or wss:// base URL of the proxy or runtime."),
]
Arn = Annotated[str, typer.Option("--runtime-arn", help="Runtime ARN to open the shell on.")]
Qualifier = Annotated[str | None, typer.Option("--qualifier", help="Endpoint qualifier (default DEFAULT).")]
SessionId = Annotated[
    str | None,
    typer.Option("--session-id", help="Runtime session id (default: a new one).", show_default=False),
]
ShellId = Annotated[
    str | None, typer.Option("--shell-id", help="Shell id (default: a new one).", show_default=False)
]
PingInterval = Annotated[
    float,
    typer.Option("--ping-interval", min=0.0, help="Seconds between WebSocket pings; 0 turns them off."),
]


def make_target(
    url: str,
    runtime_arn: str,
    qualifier: str | None,
    session_id: str | None,
    shell_id: str | None,
    token: str | None,
    ca_bundle: Path | None,
) -> ShellTarget:
    """Validate the options into a ShellTarget; a bad value is a one-line error."""
    try:
        if token is None:
            token = local_token(url, EXIT_USAGE)
        return ShellTarget.create(
            url,
            runtime_arn,
            qualifier=qualifier,
            shell_id=shell_id,
            session_id=session_id,
            token=token,
            ca_bundle=ca_bundle,
        )
    except RecorderError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def reattach_command(client: ShellClient) -> str:
    """The exact command that reattaches to the client's shell (the token is never printed)."""
    target = client.target
    argv = ["recorder", "shell", "--url", target.base_url, "--runtime-arn", str(target.request.arn)]
    if target.request.qualifier:
        argv += ["--qualifier", target.request.qualifier]
    if target.ca_bundle is not None:
        argv += ["--ca-bundle", str(target.ca_bundle)]
    argv += ["--session-id", client.session_id, "--shell-id", client.shell_id]
    return shlex.join(argv)


def _client(target: ShellTarget, ping_interval: float) -> ShellClient:
    if ping_interval <= 0:
        return ShellClient(target, ping_interval=None, ping_timeout=None)
    return ShellClient(target, ping_interval=ping_interval, ping_timeout=DEFAULT_PING_TIMEOUT)


def _report(ending: Ending, client: ShellClient) -> None:
    message = describe(ending)
    if message:
        message = one_line(message)  # a close reason or a platform's message is the server's text
    if reattach_advised(ending):
        typer.echo(f"recorder: {message}; reattach with:", err=True)
        typer.echo(reattach_command(client), err=True)
    elif message:
        typer.echo(f"recorder: {message}", err=True)


def shell(
    url: Url = DEFAULT_PROXY_URL,
    runtime_arn: Arn = LOCAL_RUNTIME_ARN,
    qualifier: Qualifier = None,
    session_id: SessionId = None,
    shell_id: ShellId = None,
    token: Token = None,
    ca_bundle: CaBundle = None,
    ping_interval: PingInterval = DEFAULT_PING_INTERVAL,
) -> None:
    """Open an interactive shell. Ctrl+] detaches and leaves the shell running for a reattach.

    Exit status: the remote shell's; 254 kicked by another client; 253 the server went away;
    252 the connection was lost; 255 the connection could not be opened.
    """
    target = make_target(url, runtime_arn, qualifier, session_id, shell_id, token, ca_bundle)
    client = _client(target, ping_interval)
    try:
        ending = asyncio.run(run_shell(client))
    except ConnectFailed as exc:
        raise fail(str(exc), EXIT_CONNECT_FAILED) from None
    except RecorderError as exc:
        raise fail(str(exc)) from None
    _report(ending, client)
    raise typer.Exit(exit_status(ending))


def exec_(
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="-- COMMAND...",
            help="The command line, after --; arguments are joined with spaces, as ssh does.",
        ),
    ] = None,
    url: Url = DEFAULT_PROXY_URL,
    runtime_arn: Arn = LOCAL_RUNTIME_ARN,
    qualifier: Qualifier = None,
    session_id: SessionId = None,
    shell_id: ShellId = None,
    token: Token = None,
    ca_bundle: CaBundle = None,
    ping_interval: PingInterval = DEFAULT_PING_INTERVAL,
    stdin: Annotated[
        bool,
        typer.Option(
            "--stdin",
            help=f"Send this process's stdin (read to the end first, at most {MAX_STDIN_SIZE} bytes) "
            "to the command; without it the command's stdin is /dev/null.",
        ),
    ] = False,
) -> None:
    """Run one command in a fresh shell: its output on stdout, byte for byte, and its exit status as ours.

    The command's stderr shares the remote terminal, so it arrives on stdout too.

    Exit status: the command's (128+N when signal N killed it); 250 the command could not be
    started; 255 the connection could not be opened.
    """
    text = " ".join(command or [])
    target = make_target(url, runtime_arn, qualifier, session_id, shell_id, token, ca_bundle)
    data: bytes | None = None
    if stdin:
        # One byte over the limit is enough for run_command to refuse with the limit in the message.
        data = sys.stdin.buffer.read(MAX_STDIN_SIZE + 1)
    client = _client(target, ping_interval)
    size = terminal_size(1) or DEFAULT_SIZE
    try:
        ending = asyncio.run(run_command(client, text, stdin_data=data, size=size))
    except ConnectFailed as exc:
        raise fail(str(exc), EXIT_CONNECT_FAILED) from None
    except ExecError as exc:
        raise fail(str(exc), EXIT_EXEC_FAILED) from None
    except RecorderError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    _report(ending, client)
    raise typer.Exit(exit_status(ending))


def register(app: typer.Typer) -> None:
    """Add ``shell`` and ``exec``."""
    app.command("shell")(shell)
    app.command("exec")(exec_)

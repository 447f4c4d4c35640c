"""What every command shares: where data lives, how errors reach the user."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import platformdirs
import typer

DEFAULT_PROXY_URL = "ws://127.0.0.1:8765"
DEFAULT_RUNTIME_LISTEN = "127.0.0.1:8766"
DEFAULT_PROXY_LISTEN = "127.0.0.1:8765"

#: ``--data-dir`` and ``--db``, the same on every command that reads or writes recorder data.
DataOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where recordings and the SQLite index live.")
]
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Index database URL (default: $RECORDER_DB_URL, else SQLite in the data dir)."),
]


def data_dir(explicit: Path | None = None) -> Path:
    """The data directory: the option, else $RECORDER_DATA_DIR, else the platform's user data dir."""
    if explicit is not None:
        return explicit
    env = os.environ.get("RECORDER_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("recorder", appauthor=False))


def db_url(explicit: str | None, data: Path) -> str:
    """The index URL: the option, else $RECORDER_DB_URL, else SQLite inside the data directory."""
    if explicit:
        return explicit
    env = os.environ.get("RECORDER_DB_URL")
    if env:
        return env
    return f"sqlite:///{data / 'index.sqlite3'}"


#: C0 and C1 control characters but tab and LF: what must not reach a terminal from outside.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with control characters shown as U+FFFD, safe to print on a terminal."""
    return _CONTROL.sub("\ufffd", text)


def one_line(text: str) -> str:
    """``text`` on one line (its line breaks as spaces), safe to print on a terminal.

    Error messages carry words from elsewhere (a server's refusal body, a close reason, a file's
    name): an escape sequence in them must not reach the user's terminal, nor a line break forge
    a line of ours.
    """
    return visible(" ".join(text.splitlines()))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    typer.echo(f"recorder: error: {one_line(message)}", err=True)
    return typer.Exit(code)


def parse_listen(value: str) -> tuple[str, int]:
    """Split HOST:PORT (IPv6 as [::1]:PORT); a bad value is a one-line error."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise fail(f"--listen must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port_text)

"""How a command that talks to a proxy says who it is: a bearer token, and CAs for wss:// and https://.

``recorder shell``/``exec`` (WebSocket) and ``recorder search --server`` (HTTP) share these. The
module is light (no WebSocket client, no index) so that a remote search starts quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.common import data_dir, fail
from recorder.protocol.paths import is_loopback_url

#: The local proxy's token, written into the data directory when the proxy first starts.
LOCAL_TOKEN_FILE = "local-token"

Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="RECORDER_TOKEN",
        help="Bearer token (sent as Authorization: Bearer). Default for a loopback URL: the local "
        "proxy's token file in the data directory, when there is one.",
        show_default=False,
    ),
]
CaBundle = Annotated[
    Path | None,
    typer.Option("--ca-bundle", help="PEM file of CA certificates for wss:// (and https://) URLs."),
]


def local_token(url: str, code: int = 1) -> str | None:
    """The local proxy's token, for a loopback URL only (never sent elsewhere), or None."""
    if not is_loopback_url(url):
        return None
    path = data_dir() / LOCAL_TOKEN_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise fail(f"cannot read the local token file {path}: {reason}", code) from None
    return text or None

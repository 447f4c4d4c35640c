"""``recorder search --server``: a search that a proxy runs on its index, read back as hits.

The request and answer are ``recorder.protocol.search``'s. The client is ``http.client`` on
purpose: it follows no redirect (``urllib`` would resend the bearer token to wherever one points)
and it loads in a few milliseconds. It ignores ``HTTPS_PROXY`` and the like. Everything the server
sends is checked before it is shown, and shown with control characters made visible. A ``ws://``
or ``wss://`` server URL, as ``recorder shell`` takes, means the same host and port over
``http://`` or ``https://``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from recorder.cli.common import visible
from recorder.errors import ProtocolError, RemoteSearchError
from recorder.index.hits import Hit, hit_from_wire
from recorder.protocol.paths import is_loopback_url
from recorder.protocol.search import CONTENT_TYPE, CUT_HEADER, MAX_ANSWER_BYTES, search_target

#: Seconds the whole request may take: connecting, asking and reading the answer.
DEFAULT_TIMEOUT = 30.0
#: Longest part of an error answer quoted in the one-line error.
MAX_ERROR_TEXT = 300
_SCHEMES = {"ws": "http", "http": "http", "wss": "https", "https": "https"}


@dataclass(frozen=True, slots=True)
class RemoteHits:
    """A proxy's answer: the hits, and how many more it found but left out (answer size bound)."""

    hits: list[Hit]
    cut: int = 0


def clear_text_warning(server: str, token: str | None) -> str | None:
    """What to warn about before a token goes to a host other than this one without TLS."""
    scheme = urlsplit(server).scheme
    if token and scheme in ("http", "ws") and not is_loopback_url(server):
        return f"the token and the hits cross the network in clear text ({scheme}://); use https:// or wss://"
    return None


def remote_search(
    server: str,
    params: dict[str, str | None],
    *,
    token: str | None,
    ca_bundle: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> RemoteHits:
    """Ask ``server``'s search endpoint; RemoteSearchError (one line) when it cannot answer."""
    split = urlsplit(server)
    scheme = _SCHEMES.get(split.scheme)
    if scheme is None or not split.hostname:
        raise RemoteSearchError(f"--server must be an http(s):// or ws(s):// URL, got {server!r}")
    if split.query or split.fragment:
        raise RemoteSearchError(f"--server takes no query or fragment, got {server!r}")
    try:
        port = split.port
    except ValueError:
        raise RemoteSearchError(f"--server has a bad port: {server!r}") from None
    try:
        target = split.path.rstrip("/") + search_target(params)
    except ProtocolError as exc:
        raise RemoteSearchError(str(exc)) from None
    headers = {"Accept": CONTENT_TYPE, "User-Agent": "recorder-search"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn: http.client.HTTPConnection
    if scheme == "https":
        try:
            context = ssl.create_default_context(cafile=None if ca_bundle is None else str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise RemoteSearchError(f"cannot use --ca-bundle {ca_bundle}: {exc}") from None
        conn = http.client.HTTPSConnection(split.hostname, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(split.hostname, port, timeout=timeout)
    where = f"{split.hostname}:{port or (443 if scheme == 'https' else 80)}"
    # One deadline for everything: a server that trickles bytes cannot hold the client longer.
    expired = threading.Event()
    opened: list[socket.socket] = []
    watchdog = threading.Timer(timeout, _abort, (opened, expired))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.connect()
        if conn.sock is not None:
            opened.append(conn.sock)  # the response reads it after the connection lets it go
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        body = response.read(MAX_ANSWER_BYTES + 1)
        if expired.is_set():
            raise TimeoutError
    except (OSError, http.client.HTTPException, ValueError) as exc:
        why = "timed out" if expired.is_set() else _reason(exc)
        raise RemoteSearchError(f"cannot reach the proxy at {where}: {why}") from None
    finally:
        watchdog.cancel()
        conn.close()
    if response.status != 200:
        text = _shown(body[:MAX_ERROR_TEXT].decode("utf-8", "replace"))
        said = f": {text}" if text else ""
        raise RemoteSearchError(f"the proxy refused the search ({response.status}){said}", response.status)
    if len(body) > MAX_ANSWER_BYTES:
        raise RemoteSearchError(f"the proxy's answer is over {MAX_ANSWER_BYTES // (1024 * 1024)} MiB")
    media = (response.getheader("Content-Type") or "").split(";")[0].strip()
    if media != CONTENT_TYPE:
        raise RemoteSearchError(
            f"{where} did not answer as a recorder proxy (Content-Type {_shown(media)[:80] or 'none'})"
        )
    cut = response.getheader(CUT_HEADER) or "0"
    if not cut.isascii() or not cut.isdigit() or len(cut) > 12:
        raise RemoteSearchError(f"the proxy's answer has a bad {CUT_HEADER}: {_shown(cut)[:40]!r}")
    return RemoteHits(_hits(body), int(cut))


def _abort(opened: list[socket.socket], expired: threading.Event) -> None:
    expired.set()
    for sock in opened:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _shown(text: str) -> str:
    """Text from the server made safe for one line of the auditor's terminal."""
    return visible(" ".join(text.split()))


def _hits(body: bytes) -> list[Hit]:
    hits = []
    for number, line in enumerate(body.splitlines(), 1):
        try:
            hits.append(hit_from_wire(json.loads(line, parse_constant=_no_constant)))
        except (ValueError, ProtocolError, RecursionError, OverflowError) as exc:
            raise RemoteSearchError(f"the proxy's answer, line {number}: {_shown(str(exc))[:200]}") from None
    return hits


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return _shown(f"TLS: {exc.reason or exc}")
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _shown(str(exc))[:200] or type(exc).__name__

"""``recorder search --server``: a search that a proxy runs on its index, read back as hits.

The request and answer are ``recorder.protocol.search``'s. The client is ``http.client`` on
purpose: it follows no redirect (``urllib`` would resend the bearer token to wherever one points)
and it loads in a few milliseconds. A ``ws://`` or ``wss://`` server URL, as ``recorder shell``
takes, means the same host and port over ``http://`` or ``https://``.
"""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from recorder.errors import ProtocolError, RemoteSearchError
from recorder.index.hits import Hit, hit_from_wire
from recorder.protocol.search import CONTENT_TYPE, search_target

#: Largest answer read; 10,000 hits of long output lines fit well within it.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Seconds allowed to connect, and between bytes of the answer.
DEFAULT_TIMEOUT = 30.0
#: Longest part of an error answer quoted in the one-line error.
MAX_ERROR_TEXT = 300
_SCHEMES = {"ws": "http", "http": "http", "wss": "https", "https": "https"}


def remote_search(
    server: str,
    params: dict[str, str | None],
    *,
    token: str | None,
    ca_bundle: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Hit]:
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
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        body = response.read(MAX_ANSWER_BYTES + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise RemoteSearchError(f"cannot reach the proxy at {where}: {_reason(exc)}") from None
    finally:
        conn.close()
    if response.status != 200:
        text = body[:MAX_ERROR_TEXT].decode("utf-8", "replace").strip().splitlines()
        said = f": {text[0]}" if text else ""
        raise RemoteSearchError(f"the proxy refused the search ({response.status}){said}", response.status)
    if len(body) > MAX_ANSWER_BYTES:
        raise RemoteSearchError(f"the proxy's answer is over {MAX_ANSWER_BYTES // (1024 * 1024)} MiB")
    media = (response.getheader("Content-Type") or "").split(";")[0].strip()
    if media != CONTENT_TYPE:
        raise RemoteSearchError(
            f"{where} did not answer as a recorder proxy (Content-Type {media or 'none'})"
        )
    return _hits(body)


def _hits(body: bytes) -> list[Hit]:
    hits = []
    for number, line in enumerate(body.splitlines(), 1):
        try:
            hits.append(hit_from_wire(json.loads(line)))
        except (ValueError, ProtocolError) as exc:
            raise RemoteSearchError(f"the proxy's answer, line {number}: {exc}") from None
    return hits


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

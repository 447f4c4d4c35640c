"""``recorder search --server``'s client against stand-in servers that answer what a proxy would
not: the wrong media type, redirects, oversized or malformed answers, silence, nothing at all."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recorder.cli import remote
from recorder.cli.remote import remote_search
from recorder.errors import RemoteSearchError
from recorder.index.hits import Hit, hit_to_wire
from recorder.protocol.search import CONTENT_TYPE, SEARCH_PATH

HIT = Hit(
    1, "output", 2.0, "needle", None, "alice", "s1", "arn", datetime(2026, 1, 1, tzinfo=UTC), ((0, 6),), 0
)
Reply = Callable[[BaseHTTPRequestHandler], None]


@contextlib.contextmanager
def server(reply: Reply) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """A local HTTP server answering every GET with ``reply``; yields its URL and (path, auth) seen."""
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append((self.path, self.headers.get("Authorization")))
            reply(self)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def answer(status: int, body: bytes, content_type: str = CONTENT_TYPE, **headers: str) -> Reply:
    def reply(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return reply


def lines(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def test_hits_come_back_and_the_token_goes_only_to_the_server_given() -> None:
    with server(answer(200, lines(hit_to_wire(HIT), hit_to_wire(HIT)))) as (url, seen):
        # A ws:// URL (as `recorder shell` takes) is the same host and port; a path prefix is kept.
        hits = remote_search(
            url.replace("http", "ws") + "/audit/", {"q": "needle", "limit": "2"}, token="tok"
        )
    assert hits == [HIT, HIT]
    assert seen == [("/audit" + SEARCH_PATH + "?q=needle&limit=2", "Bearer tok")]


def test_a_redirect_is_not_followed_so_the_token_never_leaves() -> None:
    with server(answer(200, lines(hit_to_wire(HIT)))) as (elsewhere, elsewhere_seen):
        with server(answer(302, b"", "text/plain", Location=elsewhere + SEARCH_PATH + "?q=x")) as (url, seen):
            with pytest.raises(RemoteSearchError) as info:
                remote_search(url, {"q": "x"}, token="tok")
    assert str(info.value) == "the proxy refused the search (302)"
    assert len(seen) == 1 and not elsewhere_seen


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            answer(200, b"<html>hi</html>", "text/html"),
            "did not answer as a recorder proxy (Content-Type text/html)",
        ),
        (answer(200, b"{}\n", ""), "did not answer as a recorder proxy (Content-Type none)"),
        (answer(200, b"not json\n"), "the proxy's answer, line 1: Expecting value"),
        (
            answer(200, lines(hit_to_wire(HIT), {"id": 1})),
            "the proxy's answer, line 2: a search hit has a bad field",
        ),
        (
            answer(403, b"forbidden\nsecond line\n", "text/plain"),
            "the proxy refused the search (403): forbidden",
        ),
        (answer(503, b"x" * 5000, "text/plain"), "the proxy refused the search (503): " + "x" * 300),
    ],
)
def test_a_bad_answer_is_one_line(reply: Reply, message: str) -> None:
    with server(reply) as (url, _):
        with pytest.raises(RemoteSearchError) as info:
            remote_search(url, {"q": "x"}, token=None)
    assert str(info.value).splitlines() == [str(info.value)]
    assert message in str(info.value)


def test_an_answer_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    body = lines(*[hit_to_wire(HIT)] * 20)
    monkeypatch.setattr(remote, "MAX_ANSWER_BYTES", len(body) - 1)
    with server(answer(200, body)) as (url, _):
        with pytest.raises(RemoteSearchError, match="answer is over"):
            remote_search(url, {"q": "x"}, token=None)
    monkeypatch.setattr(remote, "MAX_ANSWER_BYTES", len(body))
    with server(answer(200, body)) as (url, _):
        assert len(remote_search(url, {"q": "x"}, token=None)) == 20


def test_nothing_listening_and_a_silent_server_are_one_line_each() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RemoteSearchError) as info:
        remote_search(f"http://127.0.0.1:{port}", {"q": "x"}, token=None)
    assert str(info.value) == f"cannot reach the proxy at 127.0.0.1:{port}: Connection refused"
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never answers
        port = silent.getsockname()[1]
        with pytest.raises(RemoteSearchError) as info:
            remote_search(f"http://127.0.0.1:{port}", {"q": "x"}, token=None, timeout=0.3)
    assert str(info.value) == f"cannot reach the proxy at 127.0.0.1:{port}: timed out"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/", "--server must be an http(s):// or ws(s):// URL, got 'ftp://host/'"),
        ("127.0.0.1:8765", "--server must be an http(s):// or ws(s):// URL"),
        ("http://host:99999", "--server has a bad port"),
        ("http://host/?x=1", "--server takes no query or fragment"),
    ],
)
def test_a_bad_server_url_is_refused_before_connecting(url: str, message: str) -> None:
    with pytest.raises(RemoteSearchError, match=re.escape(message)):
        remote_search(url, {"q": "x"}, token=None)


def test_an_unreadable_ca_bundle_is_one_line(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    with pytest.raises(RemoteSearchError, match=f"cannot use --ca-bundle {bundle}"):
        remote_search("https://127.0.0.1:1", {"q": "x"}, token=None, ca_bundle=bundle)

"""``recorder search --server``'s client against stand-in servers that answer what a proxy would
not: the wrong media type, redirects, oversized or malformed answers, silence, nothing at all."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recorder.cli import remote
from recorder.cli.remote import RemoteHits, clear_text_warning, remote_search
from recorder.errors import RemoteSearchError
from recorder.index.hits import Hit, hit_to_wire
from recorder.protocol.search import CONTENT_TYPE, CUT_HEADER, SEARCH_PATH

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
    assert hits == RemoteHits([HIT, HIT], 0)
    assert seen == [("/audit" + SEARCH_PATH + "?q=needle&limit=2", "Bearer tok")]


def test_a_redirect_is_not_followed_so_the_token_never_leaves() -> None:
    with server(answer(200, lines(hit_to_wire(HIT)))) as (elsewhere, elsewhere_seen):
        with server(answer(302, b"", "text/plain", Location=elsewhere + SEARCH_PATH + "?q=x")) as (url, seen):
            with pytest.raises(RemoteSearchError) as info:
                remote_search(url, {"q": "x"}, token="tok")
    assert str(info.value) == "the proxy refused the search (302)"
    assert len(seen) == 1 and not elsewhere_seen


def test_hits_left_out_for_size_are_counted() -> None:
    with server(answer(200, lines(hit_to_wire(HIT)), **{CUT_HEADER: "7"})) as (url, _):
        assert remote_search(url, {"q": "x"}, token=None) == RemoteHits([HIT], 7)
    with server(answer(200, b"", **{CUT_HEADER: "-1"})) as (url, _):
        with pytest.raises(RemoteSearchError, match=f"bad {CUT_HEADER}"):
            remote_search(url, {"q": "x"}, token=None)


def wire(**change: object) -> dict[str, object]:
    return hit_to_wire(HIT) | change


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (answer(200, b'{"offset": NaN}\n'), "line 1: NaN is not a number JSON allows"),
        (
            answer(200, lines(wire()).replace(b'"offset": 2.0', b'"offset": Infinity')),
            "Infinity is not a number",
        ),
        (answer(200, b"[" * 100_000 + b"\n"), "the proxy's answer, line 1: "),
        (answer(200, lines(wire(offset=1e300))), "offset is out of range: 1e+300"),
        (answer(200, lines(wire(id=10**400))), "id is out of range"),
        (answer(200, lines(wire(spans=[[-5, 3]]))), "spans are not sorted ranges of its text: [-5, 3]"),
        (answer(200, lines(wire(spans=[[3, 1]]))), "spans are not sorted ranges of its text: [3, 1]"),
        (answer(200, lines(wire(spans=[[0, 99]]))), "spans are not sorted ranges of its text: [0, 99]"),
        (answer(200, lines(wire(started_at="0001-01-01T00:00:00+14:00"))), "started_at is out of range"),
        # What a server says is shown with its control characters made visible, on one line.
        (
            answer(403, b"\x1b]0;PWNED\x07 no\r\nway\n", "text/plain"),
            "the proxy refused the search (403): \ufffd]0;PWNED\ufffd no way",
        ),
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
        assert len(remote_search(url, {"q": "x"}, token=None).hits) == 20


def test_a_server_that_trickles_its_answer_is_cut_off_at_the_deadline() -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", CONTENT_TYPE)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(100):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.1)  # each byte well within any per-read timeout

    with server(trickle) as (url, _):
        begun = time.monotonic()
        with pytest.raises(RemoteSearchError) as info:
            remote_search(url, {"q": "x"}, token=None, timeout=0.5)
        assert time.monotonic() - begun < 5
    assert str(info.value).endswith(": timed out")


def test_a_token_for_another_host_without_tls_is_warned_about() -> None:
    assert clear_text_warning("http://proxy.example:8765", "tok") is not None
    assert clear_text_warning("ws://10.0.0.5:8765", "tok") is not None
    assert clear_text_warning("https://proxy.example", "tok") is None
    assert clear_text_warning("wss://proxy.example", "tok") is None
    assert clear_text_warning("http://127.0.0.1:8765", "tok") is None
    assert clear_text_warning("http://proxy.example:8765", None) is None


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

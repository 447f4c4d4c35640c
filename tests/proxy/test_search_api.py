"""Auditors search through a real proxy process (``GET /v1/search``, ``recorder search --server``):
the same hits as a local search, only for auditors, every search and refusal on the record."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from tests.procs import run_recorder, wait_until
from tests.proxy.conftest import Stack, stack
from tests.proxy.test_access import create_token, refusals_json

AUDITOR_ARGS = ("--auth", "token", "--auditor", "alice", "--auditor-group", "secops")


def local(s: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_recorder(*args, "--data-dir", str(s.data_dir), "--db", s.db_url)


def remote(
    s: Stack, token: str | None, *args: str, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``recorder search --server`` from a machine with no index of its own (``home``)."""
    env = {"RECORDER_DATA_DIR": str(home)} if home is not None else None
    token_args = ("--token", token) if token is not None else ()
    return run_recorder("search", *args, "--server", s.url, *token_args, env=env)


def get(s: Stack, target: str, token: str | None) -> tuple[int, str, str]:
    """A raw request to the proxy: status, Content-Type, body."""
    split = urlsplit(s.url)
    conn = http.client.HTTPConnection(split.hostname or "", split.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        conn.close()


def exec_through(s: Stack, token: str, command: str) -> None:
    done = run_recorder("exec", "--url", s.url, "--token", token, "--", "sh", "-c", command)
    assert done.returncode in (0, 3), done.stderr


def wait_indexed(s: Stack, count: int) -> None:
    """Wait until ``count`` connections have ended and every one is indexed (the proxy indexes
    each in turn after it ends: a hit from the first says nothing of the second)."""
    rows = s.finished(count)

    def indexed() -> bool:
        return all(s.index.indexed(r.id) is not None for r in rows)

    wait_until(indexed, 30, f"{count} connections indexed")


def audit_entries(s: Stack) -> list[dict[str, object]]:
    result = local(s, "audit-log", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_an_auditor_gets_through_the_proxy_what_a_local_search_gets(tmp_path: Path) -> None:
    needle = f"needle{uuid.uuid4().hex[:10]}"
    home = tmp_path / "auditor-home"
    with stack(tmp_path, *AUDITOR_ARGS) as s:
        alice = create_token(s, "alice")
        carol = create_token(s, "carol", "secops")
        exec_through(s, alice, f"echo {needle} one; echo {needle} two; exit 3")
        exec_through(s, carol, f"echo {needle} three")
        wait_indexed(s, 2)
        # Each with hits but `--in commands` (exec types no command line at a prompt).
        for options in (
            [],
            ["--in", "commands"],
            ["--in", "output"],
            ["--principal", "carol"],
            ["--failed"],
            ["--exit-code", "3"],
            ["--since", "1h", "--until", "2099-01-01"],
            ["--status", "ended"],
            ["--limit", "2"],
        ):
            expected = local(s, "search", needle, "--json", *options)
            assert expected.returncode == 0, expected.stderr
            assert bool(expected.stdout) is (options != ["--in", "commands"]), options
            got = remote(s, alice, needle, "--json", *options, home=home)
            assert got.returncode == 0, got.stderr
            assert got.stdout == expected.stdout, options
        # A member of an auditor group, and the table (not JSON) as a local search prints it.
        table = remote(s, carol, needle, home=home)
        assert table.returncode == 0, table.stderr
        assert table.stdout == local(s, "search", needle).stdout
        assert "recorder play" in table.stdout
        # Nothing was written on the auditor's side: no index, no audit log, no data directory.
        assert not home.exists()
        # The proxy logged each search under the principal that made it, with where it came from.
        entries = [e for e in audit_entries(s) if e["arguments"].get("via") == "proxy"]  # type: ignore[union-attr]
        assert len(entries) == 10
        assert {e["actor"] for e in entries} == {"alice", "carol"}
        newest = entries[0]["arguments"]
        assert isinstance(newest, dict)
        assert newest["query"] == needle and newest["where"] == "all" and newest["limit"] == 50
        assert str(newest["client_address"]).startswith("127.0.0.1:")
        failed = next(e["arguments"] for e in entries if "failed" in e["arguments"])  # type: ignore[operator]
        assert failed["failed"] is True  # type: ignore[index]


def test_only_auditors_may_search_and_every_refusal_is_recorded(tmp_path: Path) -> None:
    with stack(tmp_path, *AUDITOR_ARGS) as s:
        bob = create_token(s, "bob", "ops")
        alice = create_token(s, "alice")
        refused = remote(s, bob, "anything")
        assert refused.returncode == 1
        assert refused.stderr == "recorder: error: the proxy refused the search (403): forbidden\n"
        for token in (None, "rec_not_a_token"):
            unauthenticated = remote(s, token, "anything")
            assert unauthenticated.returncode == 1
            assert unauthenticated.stderr == (
                "recorder: error: the proxy refused the search (401): authentication required\n"
            )
        reasons = [(r["principal"], r["http_status"], r["reason"]) for r in refusals_json(s)]
        assert ("bob", 403, "search: not an auditor") in reasons
        assert sum(1 for _, status, _ in reasons if status == 401) == 2
        # Refused callers left nothing in the audit log; the auditor's own search is there.
        assert remote(s, alice, "anything").returncode == 0
        assert [e["actor"] for e in audit_entries(s) if e["command"] == "search"] == ["alice"]


BAD_REQUESTS = [
    ("/v1/search", "a search needs a query (q)"),
    ("/v1/search?q=", "a search needs a query (q)"),
    ("/v1/search?q=a&q=b", "search parameter 'q' given twice"),
    ("/v1/search?q=a&db=sqlite:///x", "unknown search parameter 'db'"),
    ("/v1/search?q=a&in=everything", "in must be one of commands, output, input, all, not 'everything'"),
    ("/v1/search?q=a&limit=0", "limit must be between 1 and 10000, not 0"),
    ("/v1/search?q=a&limit=ten", "limit must be a whole number, not 'ten'"),
    ("/v1/search?q=a&status=gone", "status must be one of active, ended, interrupted, not 'gone'"),
    ("/v1/search?q=a&failed=yes", "failed must be 1 when given, not 'yes'"),
    ("/v1/search?q=x*", "prefix x* is too short: give at least 2 characters before *"),
    ("/v1/search?q=" + "a" * 600, "query of 600 characters exceeds the 512-character limit"),
    ("/v1/search?q=a&since=tomorrowish", "since: cannot read 'tomorrowish'"),
    ("/v1/search?q=a&q", "bad search query string: bad query field: 'q'"),
    ("/v1/search?q=%ff", "bad search query string"),
    ("/v1/search?q=a&principal=" + "p" * 7980, "search request longer than 8000 characters"),
]


def test_bad_requests_get_400_with_one_line_that_says_why(tmp_path: Path) -> None:
    with stack(tmp_path, *AUDITOR_ARGS) as s:
        alice = create_token(s, "alice")
        for target, message in BAD_REQUESTS:
            status, content_type, body = get(s, target, alice)
            assert status == 400, (target, body)
            assert content_type.startswith("text/plain"), target
            assert body.startswith(message) and body.endswith("\n") and body.count("\n") == 1, (target, body)
        # None of them was searched, so none is in the audit log; each is a refusal.
        assert not [e for e in audit_entries(s) if e["command"] == "search"]
        refused = [r for r in refusals_json(s) if r["http_status"] == 400]
        assert len(refused) == len(BAD_REQUESTS)
        assert {r["principal"] for r in refused} == {"alice"}
        assert all(str(r["reason"]).startswith("search: ") for r in refused)
        # A request line over 8 KiB is refused by the HTTP parser itself, before anything else.
        status, _, _ = get(s, "/v1/search?q=a&principal=" + "p" * 8200, alice)
        assert status == 414


def test_search_is_off_unless_auditors_are_named_and_needs_authentication(tmp_path: Path) -> None:
    with stack(tmp_path, "--auth", "token") as s:
        alice = create_token(s, "alice")
        status, _, body = get(s, "/v1/search?q=a", alice)
        assert (status, body) == (404, "search is not enabled on this proxy (recorder serve --auditor)\n")
    result = run_recorder("serve", "--listen", "127.0.0.1:0", "--auth", "none", "--auditor", "alice")
    assert result.returncode == 1
    assert result.stderr == (
        "recorder: error: --auditor and --auditor-group need --auth token or jwt: "
        "searches are logged by principal\n"
    )


def test_a_remote_search_loads_neither_sqlalchemy_nor_the_websocket_client(tmp_path: Path) -> None:
    # Start-up is the point of --server: the command must not load what a local search needs.
    script = (
        "import sys\n"
        "sys.argv = ['recorder', 'search', 'word', '--server', 'http://127.0.0.1:9', '--token', 't']\n"
        "from recorder.cli import app\n"
        "try:\n"
        "    app.main()\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "print(sorted(m for m in ('sqlalchemy', 'websockets', 'alembic', 'avt') if m in sys.modules))\n"
    )
    env = {**os.environ, "RECORDER_DATA_DIR": str(tmp_path / "none")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout == "exit 1\n[]\n", done.stderr
    assert done.stderr.startswith("recorder: error: cannot reach the proxy at 127.0.0.1:9: ")

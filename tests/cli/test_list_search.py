"""``recorder list``, ``search`` and ``show`` through the command line, on a real SQLite index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from recorder.cli import list_cmd, search_cmd, show_cmd
from recorder.cli.common import visible
from recorder.cli.views import format_offset, highlight
from recorder.index.db import downgrade, make_engine, upgrade
from recorder.index.query import MAX_QUERY_LENGTH
from recorder.index.store import Index
from tests.index.test_search import DEV, PROD, SESSIONS, T0, load

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    """A bare app with only these commands, so other command modules cannot break these tests."""
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """Test root."""

    for module in (list_cmd, search_cmd, show_cmd):
        module.register(root)
    return root


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'index.sqlite3'}"


@pytest.fixture
def ids(url: str) -> Iterator[list[int]]:
    """Three connections (alice, bob, carol) with commands, output and input, plus two refusals."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        index = Index(engine)
        conn_ids = load(index)
        for n, (who, arn) in enumerate((("mallory", PROD), ("eve", DEV))):
            index.record_refusal(
                at=T0 + timedelta(minutes=n),
                principal=who,
                client_address=f"203.0.113.{n + 1}:4000",
                runtime_arn=arn,
                qualifier=None,
                shell_id=None,
                session_id=None,
                http_status=403,
                reason=f"{who} may not use this runtime",
            )
        yield conn_ids
    finally:
        engine.dispose()


def run(app: typer.Typer, url: str, *args: str) -> Result:
    return runner.invoke(app, [*args, "--db", url])


def json_rows(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("recorder: error: ")
    return lines[0]


# -- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["list", "search", "show"])
def test_every_command_has_help(app: typer.Typer, command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--db" in result.output and "--data-dir" in result.output


# -- list ----------------------------------------------------------------------------------------


def test_list_shows_connections_newest_first(app: typer.Typer, url: str, ids: list[int]) -> None:
    rows = json_rows(run(app, url, "list", "--json"))
    assert [r["id"] for r in rows] == list(reversed(ids))
    assert [r["principal"] for r in rows] == ["carol", "bob", "alice"]
    assert rows[-1]["started_at"] == T0.isoformat()
    table = run(app, url, "list")
    assert table.exit_code == 0
    assert "carol" in table.stdout and "alice" in table.stdout


@pytest.mark.parametrize(
    ("args", "principals"),
    [
        (["--principal", "bob"], ["bob"]),
        (["--runtime", "*:runtime/prod-*"], ["carol", "alice"]),
        (["--since", "2025-03-01T09:30"], ["carol", "bob"]),
        (["--until", "2025-03-01T09:30Z"], ["alice"]),
        (["--exit-code", "1"], ["bob"]),
        (["--failed"], ["carol", "bob"]),
        (["--status", "interrupted"], ["carol"]),
        (["--shell", "shell-a"], ["alice"]),
        (["--limit", "1"], ["carol"]),
    ],
)
def test_list_filters(
    app: typer.Typer, url: str, ids: list[int], args: list[str], principals: list[str]
) -> None:
    rows = json_rows(run(app, url, "list", "--json", *args))
    assert [r["principal"] for r in rows] == principals


def test_list_since_accepts_durations(app: typer.Typer, url: str, ids: list[int]) -> None:
    # The data is from 2025: nothing in the last day, everything in the last 100 years.
    assert json_rows(run(app, url, "list", "--json", "--since", "24h")) == []
    assert len(json_rows(run(app, url, "list", "--json", "--since", "36500d"))) == 3


def test_list_refused_shows_who_from_where_what_and_why(app: typer.Typer, url: str, ids: list[int]) -> None:
    rows = json_rows(run(app, url, "list", "--refused", "--json"))
    assert [(r["principal"], r["client_address"], r["runtime_arn"], r["http_status"]) for r in rows] == [
        ("eve", "203.0.113.2:4000", DEV, 403),
        ("mallory", "203.0.113.1:4000", PROD, 403),
    ]
    assert rows[0]["reason"] == "eve may not use this runtime"
    only = json_rows(run(app, url, "list", "--refused", "--json", "--principal", "mallory"))
    assert [r["principal"] for r in only] == ["mallory"]
    table = run(app, url, "list", "--refused")
    assert "may not use this runtime" in table.stdout


def test_list_refused_with_connection_only_filters_is_an_error(
    app: typer.Typer, url: str, ids: list[int]
) -> None:
    assert "--failed" in one_line_error(run(app, url, "list", "--refused", "--failed"))


@pytest.mark.parametrize("value", ["yesterday", "7x", "2025-02-30"])
def test_bad_since_is_a_one_line_error(app: typer.Typer, url: str, ids: list[int], value: str) -> None:
    line = one_line_error(run(app, url, "list", "--since", value))
    assert "--since" in line and "24h" in line


def test_bad_limit_is_a_one_line_error(app: typer.Typer, url: str, ids: list[int]) -> None:
    assert "limit" in one_line_error(run(app, url, "list", "--limit", "0"))


def test_missing_index_says_nothing_was_recorded(app: typer.Typer, tmp_path: Path) -> None:
    line = one_line_error(run(app, f"sqlite:///{tmp_path / 'none.sqlite3'}", "list"))
    assert "no index" in line
    assert not (tmp_path / "none.sqlite3").exists()


def test_old_index_says_to_upgrade(app: typer.Typer, url: str, ids: list[int]) -> None:
    downgrade(url, "0001")
    assert "recorder db upgrade" in one_line_error(run(app, url, "search", "passwd"))


# -- search --------------------------------------------------------------------------------------


def test_search_json_has_one_object_per_hit(app: typer.Typer, url: str, ids: list[int]) -> None:
    hits = json_rows(run(app, url, "search", "nonexistent", "--json"))
    assert [(h["id"], h["kind"], h["offset"], h["exit_code"], h["principal"]) for h in hits] == [
        (ids[1], "command", 9.0, 2, "bob"),
        (ids[1], "output", 9.1, None, "bob"),
    ]
    assert hits[0]["text"] == "ls /nonexistent"
    assert hits[0]["play"] == f"recorder play {ids[1]} --at 00:09"
    assert [hits[0]["text"][s:e] for s, e in hits[0]["spans"]] == ["nonexistent"]


@pytest.mark.parametrize(
    ("where", "kinds"),
    [
        ("commands", {"command"}),
        ("output", {"output"}),
        ("input", {"input"}),
        ("all", {"command", "output", "input"}),
    ],
)
def test_search_in_chooses_what_is_searched(
    app: typer.Typer, url: str, ids: list[int], where: str, kinds: set[str]
) -> None:
    hits = json_rows(run(app, url, "search", "etc", "--in", where, "--json"))
    assert {h["kind"] for h in hits} == kinds


def test_search_takes_the_list_filters(app: typer.Typer, url: str, ids: list[int]) -> None:
    hits = json_rows(run(app, url, "search", "passwd", "--principal", "carol", "--json"))
    assert {h["principal"] for h in hits} == {"carol"}
    hits = json_rows(
        run(app, url, "search", "passwd", "--runtime", "*prod*", "--until", "2025-03-01T10:00", "--json")
    )
    assert {h["principal"] for h in hits} == {"alice"}
    assert json_rows(run(app, url, "search", "passwd", "--failed", "--exit-code", "1", "--json")) == []


def test_search_table_shows_where_and_how_to_replay(app: typer.Typer, url: str, ids: list[int]) -> None:
    result = run(app, url, "search", '"permission denied"')
    assert result.exit_code == 0, result.output
    assert "alice" in result.stdout and "00:05" in result.stdout
    assert f"recorder play {ids[0]} --at 00:05" in result.stdout
    assert "Permission denied" in result.stdout


def test_search_without_hits_says_so(app: typer.Typer, url: str, ids: list[int]) -> None:
    result = run(app, url, "search", "zzzzzz")
    assert result.exit_code == 0
    assert result.stdout == "" and "no matches" in result.stderr


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('"unbalanced', "unbalanced quote"),
        ("", "empty query"),
        ("&&", "no words"),
        ("x" * (MAX_QUERY_LENGTH + 1), "limit"),
    ],
)
def test_malformed_query_is_a_one_line_error(
    app: typer.Typer, url: str, ids: list[int], query: str, message: str
) -> None:
    assert message in one_line_error(run(app, url, "search", query))


# -- show ----------------------------------------------------------------------------------------


def test_show_lists_metadata_timeline_and_commands(app: typer.Typer, url: str, ids: list[int]) -> None:
    result = run(app, url, "show", str(ids[0]))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "alice" in out and PROD in out and "shell-a" in out
    assert "00:02" in out and "cat /etc/passwd" in out
    assert "00:05" in out and "grep root /etc/shadow" in out
    assert f"recorder play {ids[0]} --at 00:00" in out


def test_show_json_has_the_shell_timeline_and_commands(app: typer.Typer, url: str, ids: list[int]) -> None:
    (shown,) = json_rows(run(app, url, "show", str(ids[1]), "--json"))
    assert shown["connection"]["id"] == ids[1]
    assert [c["id"] for c in shown["shell_connections"]] == [ids[1]]
    assert [(c["offset"], c["text"], c["exit_code"]) for c in shown["commands"]] == [
        (1.0, "git commit -m 'fix login'", 0),
        (9.0, "ls /nonexistent", 2),
    ]
    assert shown["indexed"]["command_count"] == 2


def test_show_unknown_connection_is_a_one_line_error(app: typer.Typer, url: str, ids: list[int]) -> None:
    assert "no connection 999" in one_line_error(run(app, url, "show", "999"))


# -- presentation helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "00:00"), (9.99, "00:09"), (61.0, "01:01"), (3599.5, "59:59"), (3725.0, "1:02:05")],
)
def test_offsets_are_mm_ss_rounded_down(seconds: float, text: str) -> None:
    assert format_offset(seconds) == text


def test_recorded_text_cannot_drive_the_auditors_terminal() -> None:
    assert visible("a\x1b[2Jb\x07c\x9bd") == "a\ufffd[2Jb\ufffdc\ufffdd"
    text = "[bold]not markup[/bold] root"
    start = text.index("root")
    shown = highlight(text, [(start, start + 4)])
    assert shown.plain == text
    assert [(s.start, s.end) for s in shown.spans] == [(start, start + 4)]


def test_sessions_fixture_matches_what_the_tests_expect() -> None:
    assert [s.principal for s in SESSIONS] == ["alice", "bob", "carol"]
    assert SESSIONS[1].started == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)

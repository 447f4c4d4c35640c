"""Full-text search on SQLite (FTS5) and PostgreSQL (tsvector): words, phrases, prefixes, filters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.errors import ConfigError, IndexStoreError, QueryError
from recorder.index.db import make_engine, upgrade
from recorder.index.hits import KINDS, Hit
from recorder.index.models import ConnectionStatus, EndReason
from recorder.index.query import parse_query, to_tsquery
from recorder.index.reads import Batch, Reads
from recorder.index.search import MAX_SEARCH_LIMIT, search
from recorder.index.store import ConnectionFilter, Index

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
PROD = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/prod-api"
DEV = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/dev-box"


@dataclass(frozen=True)
class Cmd:
    offset: float
    text: str
    exit_code: int | None = 0
    output_preview: str = ""
    end_offset: float | None = None


@dataclass(frozen=True)
class Line:
    offset: float
    text: str


@dataclass(frozen=True)
class Session:
    """One connection's data: who, where, when, how it ended, and what was typed and shown."""

    principal: str
    runtime: str
    shell_id: str
    started: datetime
    exit_code: int | None
    commands: tuple[Cmd, ...]
    lines: tuple[Line, ...]
    inputs: tuple[Line, ...] = ()
    status: ConnectionStatus = ConnectionStatus.ENDED


SESSIONS = (
    Session(
        "alice",
        PROD,
        "shell-a",
        T0,
        0,
        (Cmd(2.0, "cat /etc/passwd"), Cmd(5.0, "grep root /etc/shadow", 2)),
        (Line(2.1, "root:x:0:0:root:/root:/bin/bash"), Line(5.1, "grep: /etc/shadow: Permission denied")),
        (Line(1.5, "cat /etc/passwd"), Line(4.0, "grep root /etc/shadow")),
    ),
    Session(
        "bob",
        DEV,
        "shell-b",
        T0 + timedelta(hours=1),
        1,
        (Cmd(1.0, "git commit -m 'fix login'"), Cmd(9.0, "ls /nonexistent", 2)),
        (Line(1.2, "[main 1a2b3c4] fix login"), Line(9.1, "ls: cannot access '/nonexistent': No such file")),
    ),
    Session(
        "carol",
        PROD,
        "shell-c",
        T0 + timedelta(hours=2),
        None,
        (Cmd(3.0, "curl http://example.com/api?q=passwd"),),
        (Line(3.5, "password reset for carol@example.com"),),
        status=ConnectionStatus.INTERRUPTED,
    ),
)


def load(index: Index, sessions: tuple[Session, ...] = SESSIONS) -> list[int]:
    """Write the sessions through the store API; returns their connection ids."""
    ids = []
    for n, s in enumerate(sessions):
        conn_id = index.open_connection(
            runtime_arn=s.runtime,
            qualifier=None,
            session_id=f"session-{n}",
            shell_id=s.shell_id,
            principal=s.principal,
            client_address="127.0.0.1:5000",
            upstream="local",
            started_at=s.started,
            recording_path=f"recordings/{n}.cast",
            cast_version=2,
            cols=80,
            rows=24,
        )
        if s.status is ConnectionStatus.INTERRUPTED:
            index.mark_interrupted(conn_id, duration=60.0)
        else:
            index.finish_connection(
                conn_id,
                ended_at=s.started + timedelta(minutes=1),
                status=s.status,
                end_reason=EndReason.EXIT,
                close_code=1000,
                exit_code=s.exit_code,
                counters={},
                invalid_utf8=0,
                recording_size=10,
                sha256=None,
                reconnected=False,
                bytes_dropped=0,
            )
        index.replace_search_rows(conn_id, s.commands, s.lines, s.inputs)
        ids.append(conn_id)
    return ids


@pytest.fixture
def loaded(index: Index) -> tuple[Index, list[int]]:
    return index, load(index)


def where(hits: list[Hit]) -> list[tuple[str, str, str]]:
    """(principal, kind, text) of each hit, in order."""
    return [(h.principal or "", h.kind, h.text) for h in hits]


# -- the language on a real index ----------------------------------------------------------------


def test_a_word_is_found_in_commands_output_and_input(loaded: tuple[Index, list[int]]) -> None:
    index, _ = loaded
    assert where(search(index, "passwd")) == [
        ("carol", "command", "curl http://example.com/api?q=passwd"),
        ("alice", "input", "cat /etc/passwd"),
        ("alice", "command", "cat /etc/passwd"),
    ]


def test_all_words_must_match(loaded: tuple[Index, list[int]]) -> None:
    index, _ = loaded
    assert where(search(index, "grep shadow", kinds={"command"})) == [
        ("alice", "command", "grep root /etc/shadow")
    ]
    assert search(index, "grep nonexistent") == []


def test_a_phrase_needs_its_words_adjacent_and_in_order(loaded: tuple[Index, list[int]]) -> None:
    index, _ = loaded
    assert where(search(index, '"permission denied"')) == [
        ("alice", "output", "grep: /etc/shadow: Permission denied")
    ]
    assert search(index, '"denied permission"') == []
    assert where(search(index, "/etc/shadow", kinds={"command"})) == [
        ("alice", "command", "grep root /etc/shadow")
    ]


def test_a_prefix_matches_the_start_of_words_only(loaded: tuple[Index, list[int]]) -> None:
    index, _ = loaded
    assert [h.text for h in search(index, "passw*", kinds={"output"})] == [
        "password reset for carol@example.com"
    ]
    assert search(index, "asswd*") == []
    assert [h.text for h in search(index, '"fix log"*', kinds={"command"})] == ["git commit -m 'fix login'"]


def test_words_match_whatever_their_case(loaded: tuple[Index, list[int]]) -> None:
    index, _ = loaded
    assert len(search(index, "PERMISSION")) == 1


def test_hits_carry_who_where_when_and_the_match_spans(loaded: tuple[Index, list[int]]) -> None:
    index, ids = loaded
    (hit,) = search(index, "nonexistent", kinds={"command"})
    assert hit.connection_id == ids[1]
    assert (hit.kind, hit.offset, hit.exit_code, hit.principal) == ("command", 9.0, 2, "bob")
    assert (hit.shell_id, hit.runtime_arn, hit.started_at) == ("shell-b", DEV, T0 + timedelta(hours=1))
    assert [hit.text[s:e] for s, e in hit.spans] == ["nonexistent"]


def test_hits_are_newest_connection_first_then_in_time_order(loaded: tuple[Index, list[int]]) -> None:
    index, _ = loaded
    hits = search(index, "passwd", kinds=KINDS)
    assert [(h.principal, h.offset, h.kind) for h in hits] == [
        ("carol", 3.0, "command"),
        ("alice", 1.5, "input"),
        ("alice", 2.0, "command"),
    ]
    hits = search(index, "root")
    assert [(h.principal, h.offset, h.kind) for h in hits] == [
        ("alice", 2.1, "output"),
        ("alice", 4.0, "input"),
        ("alice", 5.0, "command"),
    ]


def test_kinds_choose_what_is_searched(loaded: tuple[Index, list[int]]) -> None:
    index, _ = loaded
    assert {h.kind for h in search(index, "passwd", kinds={"input"})} == {"input"}
    assert {h.kind for h in search(index, "passwd", kinds={"command", "input"})} == {"command", "input"}
    with pytest.raises(ConfigError, match="unknown search kinds"):
        search(index, "passwd", kinds={"commands"})
    with pytest.raises(ConfigError, match="at least one kind"):
        search(index, "passwd", kinds=set())


def test_limit_cuts_the_merged_list_and_is_bounded(loaded: tuple[Index, list[int]]) -> None:
    index, _ = loaded
    assert len(search(index, "passwd", limit=2)) == 2
    assert search(index, "passwd", limit=1)[0].principal == "carol"
    for bad in (0, MAX_SEARCH_LIMIT + 1):
        with pytest.raises(ConfigError, match="limit"):
            search(index, "passwd", limit=bad)


def test_malformed_query_raises_query_error_before_touching_the_database(index: Index) -> None:
    with pytest.raises(QueryError):
        search(index, '"unbalanced')


def test_an_engine_can_be_searched_directly(loaded: tuple[Index, list[int]]) -> None:
    index, _ = loaded
    assert search(index.engine, "passwd") == search(index, "passwd")


# -- filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "principals"),
    [
        (ConnectionFilter(principal="alice"), ["alice"]),
        (ConnectionFilter(runtime="*:runtime/prod-*"), ["carol", "alice"]),
        (ConnectionFilter(runtime="*EU-WEST-1*"), ["bob"]),
        (ConnectionFilter(since=T0 + timedelta(minutes=30)), ["carol", "bob"]),
        (ConnectionFilter(until=T0 + timedelta(minutes=30)), ["alice"]),
        (ConnectionFilter(exit_code=1), ["bob"]),
        (ConnectionFilter(failed=True), ["carol", "bob"]),
        (ConnectionFilter(status=ConnectionStatus.INTERRUPTED), ["carol"]),
        (ConnectionFilter(shell_id="shell-b"), ["bob"]),
        (ConnectionFilter(principal="alice", exit_code=1), []),
    ],
    ids=[
        "principal",
        "runtime",
        "runtime-case",
        "since",
        "until",
        "exit",
        "failed",
        "status",
        "shell",
        "none",
    ],
)
def test_connection_filters_narrow_the_hits(
    loaded: tuple[Index, list[int]], filters: ConnectionFilter, principals: list[str]
) -> None:
    index, _ = loaded
    # Each word is in one session; together they reach all three.
    found: list[Hit] = []
    for word in ("passwd", "login", "password", "root", "nonexistent"):
        found.extend(search(index, word, filters=filters))
    seen = sorted({(h.started_at, h.principal) for h in found}, reverse=True)
    assert [p for _, p in seen] == principals


def test_searches_that_differ_only_in_values_reuse_their_statements(
    loaded: tuple[Index, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    search_module = importlib.import_module("recorder.index.search")
    index, _ = loaded
    builders = (search_module._hits_statement, search_module._bound_statement, search_module._count_statement)

    def misses() -> int:
        return sum(b.cache_info().misses for b in builders)

    for builder in builders:
        builder.cache_clear()  # earlier tests in this process built statements too
    # Few hits each: one count and one read per kind, whatever the word and the filter's values.
    first = search(index, "passwd", filters=ConnectionFilter(principal="alice", since=T0))
    built = misses()
    later = ConnectionFilter(principal="carol", since=T0 + timedelta(minutes=1))
    again = search(index, "password", filters=later)
    assert misses() == built
    # Same statements, other values: the values still decide the hits.
    assert {h.principal for h in first} == {"alice"} and {h.principal for h in again} == {"carol"}
    # A filter on another field is another statement.
    search(index, "password", filters=ConnectionFilter(exit_code=1))
    assert misses() > built
    # Read in windows of one connection: the window and bound statements are built once too.
    monkeypatch.setattr(search_module, "FIRST_WINDOW", 1)
    monkeypatch.setattr(search_module, "WINDOWED_FROM", 1)
    windowed = search(index, "passwd", limit=2)
    built = misses()
    assert search(index, "passwd", limit=2) == windowed and misses() == built
    assert all(b.cache_info().maxsize == search_module.STATEMENT_CACHE for b in builders)


def test_a_word_postgresql_knows_as_common_is_read_in_windows_without_counting(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    search_module = importlib.import_module("recorder.index.search")
    conn_id = load(index, SESSIONS[:1])[0]
    lines = [Line(float(i), f"connection refused on port {i}") for i in range(400)]
    index.replace_search_rows(conn_id, [], [*lines, Line(401.0, "quetzal sighted")], [])
    if index.engine.dialect.name == "postgresql":
        with index.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE output_lines")  # the statistics the planner estimates from
    statements = record_reads(monkeypatch)

    def run(
        query: str, limit: int, kinds: tuple[str, ...] = ("output",)
    ) -> tuple[list[Hit], list[str], list[str]]:
        statements.clear()
        hits = search(index, query, kinds=kinds, limit=limit)
        counted = [s for s in statements if "count(*)" in s]
        return hits, counted, [s for s in statements if s.startswith("EXPLAIN")]

    whole = search(index, "refused", kinds=["output"], limit=10)
    # Read in windows from as many rows as hits asked for: 'refused' (400 rows) is over 10.
    monkeypatch.setattr(search_module, "WINDOWED_FROM", 1)
    common, common_counted, common_estimated = run("refused", 10)
    # One hit asked for: the planner's guess for any word (at least one row) reaches that.
    rare, rare_counted, rare_estimated = run("quetzal", 1)
    assert common == whole and [h.text for h in rare] == ["quetzal sighted"]
    # Every kind searched: one statement asks for all the estimates.
    _every, every_counted, every_estimated = run("refused", 10, ("command", "output", "input"))
    if index.engine.dialect.name == "postgresql":
        # Known as common: straight to the windows. Guessed, not known: counted.
        assert common_counted == [] and len(common_estimated) == 1
        assert len(rare_counted) == 1 and len(rare_estimated) == 1
        # Commands and input hold no 'refused': their estimates are guesses, so they are counted.
        assert len(every_estimated) == 1 and len(every_counted) == 2
        # A plan of another shape gives no estimates: every kind is counted, the hits are the same.
        search_module._estimate_statement.cache_clear()
        monkeypatch.setattr(
            search_module, "_estimate_statement", lambda kinds: sa.text("EXPLAIN (FORMAT JSON) SELECT 1")
        )
        odd, odd_counted, _ = run("refused", 10)
        assert odd == common and len(odd_counted) == 1
    else:
        assert len(common_counted) == len(rare_counted) == 1
        assert common_estimated == rare_estimated == every_estimated == []


def record_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every statement that searches send to the database from now on, in order."""
    sent: list[str] = []
    batch = Reads.batch

    def recording(self: Reads, statements: Batch) -> list[list[tuple[Any, ...]]]:
        sent.extend(str(statement) for statement, _ in statements)
        return batch(self, statements)

    monkeypatch.setattr(Reads, "batch", recording)
    return sent


def _plan_nodes(plan: dict[str, Any]) -> Iterator[str]:
    yield plan["Node Type"]
    for child in plan.get("Plans", ()):
        yield from _plan_nodes(child)


def test_every_statement_of_a_search_on_postgresql_reaches_rows_by_index_lookups(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No sequential scan, hash join or merge join in any plan of a search, whatever the planner
    guesses: on the benchmark's archive a rare word's rows (82, guessed 3,442) were joined by
    hashing all 10,000 indexed recordings. Small tables do not make the planner guess that wrong,
    so the settings are checked to be in force for every statement, and the plans here too. No
    plan is JIT-compiled either, though this engine's connections ask for JIT above a cost of 0.

    The plans are the ones the server ran: PostgreSQL's auto_explain logs each statement with its
    plan and the settings in force, and sends the log to this client as notices."""
    import importlib

    search_module = importlib.import_module("recorder.index.search")
    engine = make_engine(pg_url)
    logged: list[str] = []

    @sa.event.listens_for(engine, "connect")
    def _explain_everything(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.add_notice_handler(lambda diagnostic: logged.append(diagnostic.message_primary))
        for statement in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_format = 'json'",
            "SET auto_explain.log_settings = on",
            "SET auto_explain.log_level = 'notice'",
            # Every plan costs more than this: JIT compiles each one unless a search turns it off.
            "SET jit_above_cost = 0",
        ):
            dbapi_connection.execute(statement)
        dbapi_connection.commit()

    try:
        try:
            upgrade(engine)
        except IndexStoreError as exc:
            if "auto_explain" in str(exc) or "permission denied" in str(exc):
                pytest.skip(f"auto_explain needs a superuser here: {exc}")
            raise
        index = Index(engine)
        ids = load(index)
        bulk = [Line(float(i), f"connection refused on port {i}") for i in range(300)]
        index.replace_search_rows(ids[0], [], [*bulk, *SESSIONS[0].lines], [*SESSIONS[0].inputs])
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")  # statistics, so that the planner has a choice to make
        with engine.connect() as conn:
            jit_available = conn.exec_driver_sql("SELECT pg_jit_available()").scalar_one()
            if jit_available:  # outside a search, the same plans are compiled: the check can fail
                plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) SELECT id FROM commands").scalar_one()
                assert "JIT" in plan[0]
        logged.clear()
        sent = record_reads(monkeypatch)
        search(index, "passwd")  # few rows: counted, then read in one statement per kind
        search(index, "refused", filters=ConnectionFilter(principal="alice", since=T0))
        monkeypatch.setattr(search_module, "FIRST_WINDOW", 1)
        monkeypatch.setattr(search_module, "WINDOWED_FROM", 1)
        search(index, "refused", limit=5)  # read in windows of connections, newest first
        search(index, "refuse* port", limit=3)
        with engine.connect() as conn:
            # SET LOCAL: gone with the search's transaction.
            assert conn.exec_driver_sql("SHOW enable_hashjoin").scalar_one() == "on"
    finally:
        engine.dispose()
    plans = [json.loads(message.split("plan:", 1)[1]) for message in logged if "plan:" in message]
    ran = [plan for plan in plans if "set_config" not in plan["Query Text"]]
    # Counts, window bounds and hits of every kind were all run, under the search's settings.
    assert len(ran) >= 6
    off = dict.fromkeys(("enable_seqscan", "enable_hashjoin", "enable_mergejoin", "jit"), "off")
    for plan in ran:
        assert {name: plan.get("Settings", {}).get(name) for name in off} == off, plan["Query Text"]
        assert "JIT" not in plan or not jit_available, plan["Query Text"]
        nodes = set(_plan_nodes(plan["Plan"]))
        assert not nodes & {"Seq Scan", "Hash Join", "Merge Join"}, (plan["Query Text"], nodes)
    # The estimates' EXPLAIN too, one a search.
    assert sum(plan["Query Text"].startswith("EXPLAIN") for plan in ran) == 4
    assert sum(statement.startswith("EXPLAIN") for statement in sent) == 4


def test_only_the_live_generation_is_searched(loaded: tuple[Index, list[int]]) -> None:
    index, ids = loaded
    writer = index.search_writer(ids[0])
    writer.add_commands([Cmd(1.0, "draft-only-word")])
    assert search(index, "draft") == []
    writer.discard()


# -- the same hits on both databases -------------------------------------------------------------

PARITY_TEXTS = (
    "cat /etc/passwd && echo done",
    "curl -sS https://api.example.com/v2/items?id=42&sort=desc",
    "mail to carol@example.com about the 1.2.3 release",
    "docker run --rm -it ubuntu:22.04 bash -lc 'apt-get update'",
    "x-y_z foo-bar baz_qux snake_case_name CamelCaseName",
    "numbers 3.14 1e5 0x1F 12abc abc12 2024-01-31T12:00:00Z",
    "Żółć jaźń ÉCOLE café naïve 日本語 テスト",
    "superscript 10² half ½ roman Ⅻ",
    "tab\tseparated\tvalues and   spaces",
    "base64 rkwH47+fOo/yzgNsfP/LWrKscYx5IKRVvMfTzD3m==",
    "ERROR: connection refused (errno=111) at host db-01.internal:5432",
    "the quick brown fox jumps over the lazy dog",
)
PARITY_QUERIES = (
    "passwd",
    "etc passwd",
    "/etc/passwd",
    '"echo done"',
    "example",
    "example.com",
    "api.example.com/v2",
    "carol@example.com",
    "1.2.3",
    "22.04",
    "apt-get",
    "foo-bar",
    "baz_qux",
    "snake",
    "camelcasename",
    "3.14",
    "1e5",
    "0x1f",
    "12abc",
    "żółć",
    "ÉCOLE",
    "ecole",
    "cafe",
    "café",
    "日本語",
    "10",
    "separated values",
    "rkwh47",
    "fOo",
    "db-01.internal",
    "errno 111",
    "errno=111",
    "connect*",
    "conn*",
    '"quick brown"',
    '"brown quick"',
    '"the lazy"',
    '"lazy do"*',
    "qu* fo*",
    "the",
)


@pytest.fixture
def both(sqlite_url: str, pg_url: str) -> Iterator[tuple[Index, Index]]:
    """The same data in a SQLite index and a PostgreSQL index."""
    engines = [make_engine(sqlite_url), make_engine(pg_url)]
    try:
        indexes = []
        for engine in engines:
            upgrade(engine)
            index = Index(engine)
            conn_id = load(index, SESSIONS[:1])[0]
            lines = [Line(float(i), t) for i, t in enumerate(PARITY_TEXTS)]
            index.replace_search_rows(conn_id, [Cmd(0.5, t) for t in PARITY_TEXTS], lines, lines)
            indexes.append(index)
        yield indexes[0], indexes[1]
    finally:
        for engine in engines:
            engine.dispose()


def _comparable(hits: list[Hit]) -> list[tuple[Any, ...]]:
    return [(h.connection_id, h.kind, h.offset, h.text, h.exit_code, h.spans) for h in hits]


@pytest.mark.parametrize("query", PARITY_QUERIES)
def test_sqlite_and_postgresql_return_the_same_hits(both: tuple[Index, Index], query: str) -> None:
    lite, pg = both
    lite_hits = search(lite, query, limit=200)
    assert _comparable(lite_hits) == _comparable(search(pg, query, limit=200))


@pytest.mark.parametrize("query", PARITY_QUERIES)
def test_sqlite_and_postgresql_return_the_same_hits_read_in_windows(
    both: tuple[Index, Index], query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every word read in windows: on PostgreSQL output lines are then found by their blocks."""
    import importlib

    search_module = importlib.import_module("recorder.index.search")
    monkeypatch.setattr(search_module, "WINDOWED_FROM", 0)
    lite, pg = both
    assert _comparable(search(lite, query, limit=200)) == _comparable(search(pg, query, limit=200))


def test_parity_queries_are_not_all_empty(both: tuple[Index, Index]) -> None:
    lite, _ = both
    found = [q for q in PARITY_QUERIES if search(lite, q)]
    assert len(found) >= len(PARITY_QUERIES) - 6, set(PARITY_QUERIES) - set(found)


# -- rendered queries always run -----------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_any_parsed_query_runs_on_the_database(index: Index, text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError:
        return
    search(index, query)
    if index.engine.dialect.name == "postgresql":
        with index.engine.connect() as conn:
            conn.execute(
                sa.select(sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), to_tsquery(query)))
            )


# -- windows: newest connections are read first, and the hits are the same as reading all ----------

VOCAB = ("deploy", "refused", "token", "cache", "kube", "kubectl", "rollback", "quetzal")


def _random_sessions(seed: int, count: int) -> tuple[Session, ...]:
    import random

    rnd = random.Random(seed)
    sessions = []
    for n in range(count):
        # Few distinct start times: many connections tie on started_at and are ordered by id.
        started = T0 + timedelta(minutes=rnd.randrange(count // 3))

        def words(k: int) -> str:
            return " ".join(rnd.choice(VOCAB) for _ in range(k))

        sessions.append(
            Session(
                rnd.choice(("alice", "bob")),
                rnd.choice((PROD, DEV)),
                f"shell-{n}",
                started,
                0,
                tuple(Cmd(float(i), words(2)) for i in range(rnd.randrange(3))),
                tuple(Line(rnd.uniform(0, 9), words(3)) for _ in range(rnd.randrange(6))),
                tuple(Line(float(i), words(1)) for i in range(rnd.randrange(2))),
            )
        )
    return tuple(sessions)


@pytest.mark.parametrize("seed", [1, 2])
def test_windowed_search_finds_exactly_what_one_pass_over_everything_finds(
    index: Index, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import random

    # (recorder.index re-exports the function search under the module's name)
    search_module = importlib.import_module("recorder.index.search")
    sessions = _random_sessions(seed, 40)
    ids = load(index, sessions)
    # Re-index some older connections: their live rows now have the highest row ids, so row
    # order no longer follows connection order (what a late import or a re-index does).
    rnd = random.Random(seed)
    for n in rnd.sample(range(len(ids)), 10):
        s = sessions[n]
        index.replace_search_rows(ids[n], s.commands, s.lines, s.inputs)
    queries = ["refused", "kube*", '"deploy token"', "cache rollback", "quetzal", "nothing-here"]
    filters = [None, ConnectionFilter(principal="alice"), ConnectionFilter(runtime="*dev-box")]
    cases = [(q, f, limit) for q in queries for f in filters for limit in (1, 3, 7, 50)]

    monkeypatch.setattr(search_module, "FIRST_WINDOW", 10**6)
    whole = [search(index, q, filters=f, limit=limit) for q, f, limit in cases]
    monkeypatch.setattr(search_module, "FIRST_WINDOW", 2)
    monkeypatch.setattr(search_module, "WINDOW_GROWTH", 2)
    windowed = [search(index, q, filters=f, limit=limit) for q, f, limit in cases]
    assert windowed == whole
    # Every word read in windows, however few its rows.
    monkeypatch.setattr(search_module, "WINDOWED_FROM", 1)
    assert [search(index, q, filters=f, limit=limit) for q, f, limit in cases] == whole
    # The comparison is not vacuous: common words fill the limit, rare ones do not.
    assert any(len(hits) == 50 for hits in whole) and any(0 < len(hits) < 7 for hits in whole)


def test_words_of_a_phrase_on_two_lines_of_one_block_are_not_a_match(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's blocks hold their lines' words without positions: the block of two lines
    ending and starting the phrase matches its words, and the lines then checked do not."""
    import importlib

    search_module = importlib.import_module("recorder.index.search")
    older, newer = load(index, SESSIONS[:2])
    index.replace_search_rows(older, [], [Line(1.0, "open: permission denied")], [])
    split = [Line(float(i), f"line {i}") for i in range(8)]
    split += [Line(8.0, "asked for permission"), Line(9.0, "denied by policy"), Line(10.0, "permission")]
    index.replace_search_rows(newer, [], split, [])
    monkeypatch.setattr(search_module, "WINDOWED_FROM", 0)  # read in windows (and blocks)
    monkeypatch.setattr(search_module, "FIRST_WINDOW", 1)
    hits = search(index, '"permission denied"', kinds=["output"])
    assert [(h.connection_id, h.text) for h in hits] == [(older, "open: permission denied")]
    # The words alone match both lines of the newer connection, in its block.
    assert [h.text for h in search(index, "permission denied", kinds=["output"])] == [
        "open: permission denied"
    ]
    assert [h.text for h in search(index, "permission", kinds=["output"])][:2] == [
        "asked for permission",
        "permission",
    ]


def test_hits_in_windows_come_in_time_order_across_a_connections_blocks(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import random

    search_module = importlib.import_module("recorder.index.search")
    conn_id = load(index, SESSIONS[:1])[0]
    # Lines written in one order, timed in another (a line's time is when it last changed).
    offsets = [float(i) for i in range(95)]
    random.Random(3).shuffle(offsets)
    lines = [Line(t, f"deploy step {t:.0f}") for t in offsets]
    index.replace_search_rows(conn_id, [], lines, [])
    monkeypatch.setattr(search_module, "WINDOWED_FROM", 0)
    hits = search(index, "deploy", kinds=["output"], limit=7)
    assert [h.offset for h in hits] == [float(i) for i in range(7)]
    assert len(search(index, "step", kinds=["output"], limit=200)) == 95


def test_hit_statements_put_each_column_where_search_reads_it() -> None:
    """Search reads the rows of its hit statements by position (``_CONNECTION_ID`` ...): every
    statement that makes hits, on either database, lists its columns in that order."""
    import importlib

    module = importlib.import_module("recorder.index.search")
    names = ("connection_id", "offset", "text", "seq", "exit_code", "principal", "shell_id", "runtime_arn")
    positions = {name: getattr(module, f"_{name.upper()}") for name in (*names, "started_at")}
    shape = module._Shape(())
    statements = [module._block_hits_statement(shape)]
    for dialect in ("sqlite", "postgresql"):
        statements += [module._hits_statement(kind, dialect, shape, False) for kind in KINDS]
    for statement in statements:
        columns = [column.name for column in statement.selected_columns]
        assert {name: columns.index(name) for name in positions} == positions

"""The store API round trips on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recorder.errors import (
    ConfigError,
    ConnectionNotActive,
    IndexStoreError,
    IndexValueTooLong,
    UnknownConnection,
)
from recorder.index.db import make_engine
from recorder.index.models import COUNTER_NAMES, MAX_ARN, MAX_PRINCIPAL, ConnectionStatus, EndReason
from recorder.index.store import (
    CLIPPED_MARK,
    MAX_LIST_LIMIT,
    ConnectionFilter,
    Index,
    glob_to_like,
)

ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/shop"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
SHA = "ab" * 32


def _open(index: Index, **overrides: Any) -> int:
    values: dict[str, Any] = {
        "runtime_arn": ARN,
        "qualifier": "DEFAULT",
        "session_id": "session-1",
        "shell_id": "shell-1",
        "principal": "alice",
        "client_address": "127.0.0.1:50000",
        "upstream": "local",
        "started_at": T0,
        "recording_path": "2025/03/01/one.cast",
        "cast_version": 2,
        "cols": 120,
        "rows": 40,
    }
    values.update(overrides)
    return index.open_connection(**values)


def _finish(index: Index, conn_id: int, **overrides: Any) -> None:
    values: dict[str, Any] = {
        "ended_at": T0 + timedelta(minutes=5),
        "status": ConnectionStatus.ENDED,
        "end_reason": EndReason.EXIT,
        "close_code": 1000,
        "exit_code": 0,
        "counters": {},
        "invalid_utf8": 0,
        "recording_size": 1234,
        "sha256": SHA,
        "reconnected": False,
        "bytes_dropped": 0,
    }
    values.update(overrides)
    index.finish_connection(conn_id, **values)


# -- opening, finishing ----------------------------------------------------------------------


def test_open_connection_round_trips_every_field(index: Index) -> None:
    conn_id = _open(index)
    row = index.get_connection(conn_id)
    assert row is not None
    assert (row.runtime_arn, row.qualifier, row.session_id, row.shell_id) == (
        ARN,
        "DEFAULT",
        "session-1",
        "shell-1",
    )
    assert (row.principal, row.client_address, row.upstream) == ("alice", "127.0.0.1:50000", "local")
    assert row.started_at == T0 and row.started_at.tzinfo is UTC
    assert row.ended_at is None and row.duration is None
    assert row.status is ConnectionStatus.ACTIVE
    assert row.end_reason is None and row.exit_code is None and row.close_code is None
    assert dict(row.counters) == dict.fromkeys(COUNTER_NAMES, 0)
    assert (row.recording_path, row.cast_version, row.cols, row.rows) == ("2025/03/01/one.cast", 2, 120, 40)
    assert row.recording_size is None and row.sha256 is None
    assert row.reconnected is False and row.bytes_dropped == 0 and row.invalid_utf8 == 0
    assert row == index.get_connection(conn_id) and hash(row) == hash(index.get_connection(conn_id))
    shell = index.get_shell(row.shell_pk)
    assert shell is not None
    assert shell.first_seen == T0 and shell.last_seen == T0 and shell.last_exit_code is None


def test_get_connection_of_an_unknown_id_is_none(index: Index) -> None:
    assert index.get_connection(987654) is None


def test_connections_to_the_same_shell_share_one_shell_row(index: Index) -> None:
    first = _open(index)
    again = _open(index, started_at=T0 + timedelta(hours=1))
    other_session = _open(index, session_id="session-2")
    other_qualifier = _open(index, qualifier="prod")
    rows = [index.get_connection(i) for i in (first, again, other_session, other_qualifier)]
    pks = [r.shell_pk for r in rows if r is not None]
    assert pks[0] == pks[1]
    assert len(set(pks)) == 3
    shell = index.get_shell(pks[0])
    assert shell is not None
    assert shell.first_seen == T0 and shell.last_seen == T0 + timedelta(hours=1)
    assert [r.id for r in index.shell_connections(pks[0])] == [first, again]


def test_missing_qualifier_means_the_default_endpoint(index: Index) -> None:
    a = index.get_connection(_open(index, qualifier=None))
    b = index.get_connection(_open(index, qualifier="DEFAULT"))
    assert a is not None and b is not None
    assert a.qualifier == "DEFAULT" and a.shell_pk == b.shell_pk


def test_unauthenticated_connection_keeps_a_null_principal(index: Index) -> None:
    row = index.get_connection(_open(index, principal=None))
    assert row is not None and row.principal is None


def test_finish_connection_records_the_end_and_updates_the_shell(index: Index) -> None:
    conn_id = _open(index)
    counters = {name: n for n, name in enumerate(COUNTER_NAMES, start=1)}
    counters["bytes_stdout"] = 5_000_000_000  # beyond 32 bits: long sessions print a lot
    _finish(
        index,
        conn_id,
        exit_code=3,
        counters=counters,
        invalid_utf8=2,
        reconnected=True,
        bytes_dropped=17,
        recording_size=99,
    )
    row = index.get_connection(conn_id)
    assert row is not None
    assert row.status is ConnectionStatus.ENDED and row.end_reason is EndReason.EXIT
    assert row.ended_at == T0 + timedelta(minutes=5) and row.duration == 300.0
    assert (row.close_code, row.exit_code) == (1000, 3)
    assert dict(row.counters) == counters
    assert (row.invalid_utf8, row.recording_size, row.sha256) == (2, 99, SHA)
    assert row.reconnected is True and row.bytes_dropped == 17
    shell = index.get_shell(row.shell_pk)
    assert shell is not None
    assert shell.last_seen == T0 + timedelta(minutes=5) and shell.last_exit_code == 3


def test_finish_without_exit_code_keeps_the_shell_last_exit_code(index: Index) -> None:
    first = _open(index)
    _finish(index, first, exit_code=7)
    second = _open(index, started_at=T0 + timedelta(hours=1))
    _finish(
        index,
        second,
        ended_at=T0 + timedelta(hours=2),
        end_reason=EndReason.CLIENT_DROPPED,
        exit_code=None,
        close_code=None,
    )
    row = index.get_connection(second)
    assert row is not None
    shell = index.get_shell(row.shell_pk)
    assert shell is not None and shell.last_exit_code == 7 and shell.last_seen == T0 + timedelta(hours=2)


def test_finish_accepts_the_start_size_learned_after_open(index: Index) -> None:
    conn_id = _open(index, cols=80, rows=24)
    _finish(index, conn_id, cols=200, rows=50)
    row = index.get_connection(conn_id)
    assert row is not None and (row.cols, row.rows) == (200, 50)


def test_finishing_twice_is_refused(index: Index) -> None:
    conn_id = _open(index)
    _finish(index, conn_id)
    with pytest.raises(ConnectionNotActive, match="already ended"):
        _finish(index, conn_id, exit_code=1)
    row = index.get_connection(conn_id)
    assert row is not None and row.exit_code == 0


def test_finishing_an_unknown_connection_is_refused(index: Index) -> None:
    with pytest.raises(UnknownConnection, match="424242"):
        _finish(index, 424242)


@pytest.mark.parametrize(
    "counters", [{"bytes_telepathy": 1}, {"bytes_stdin": -1}, {"frames_stdout": 1.5}, {"frames_close": True}]
)
def test_bad_counters_are_refused_and_the_connection_stays_active(index: Index, counters: Any) -> None:
    conn_id = _open(index)
    with pytest.raises(ValueError):
        _finish(index, conn_id, counters=counters)
    row = index.get_connection(conn_id)
    assert row is not None and row.status is ConnectionStatus.ACTIVE


def test_finish_cannot_leave_a_connection_active(index: Index) -> None:
    conn_id = _open(index)
    with pytest.raises(ValueError, match="active"):
        _finish(index, conn_id, status=ConnectionStatus.ACTIVE)


def test_connection_ids_are_never_reused(index: Index, engine: Engine) -> None:
    first = _open(index)
    newest = _open(index)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM connections WHERE id = :id"), {"id": newest})
    assert _open(index) > newest > first


# -- upstream-assigned ids -------------------------------------------------------------------


def test_update_ids_moves_the_connection_and_drops_the_provisional_shell(index: Index) -> None:
    conn_id = _open(index, session_id="provisional", shell_id="provisional")
    before = index.get_connection(conn_id)
    assert before is not None
    index.update_connection_ids(conn_id, "session-9", "shell-9")
    after = index.get_connection(conn_id)
    assert after is not None
    assert (after.session_id, after.shell_id) == ("session-9", "shell-9")
    assert after.runtime_arn == ARN and after.qualifier == "DEFAULT"
    assert index.get_shell(before.shell_pk) is None
    shell = index.get_shell(after.shell_pk)
    assert shell is not None and shell.first_seen == T0


def test_update_ids_merges_into_an_existing_shell(index: Index) -> None:
    earlier = _open(index, session_id="s", shell_id="real", started_at=T0 - timedelta(days=1))
    _finish(index, earlier, ended_at=T0 - timedelta(days=1) + timedelta(minutes=1), exit_code=None)
    keeper = _open(index, session_id="s", shell_id="guess")
    moved = _open(index, session_id="s", shell_id="guess", started_at=T0 + timedelta(minutes=1))
    index.update_connection_ids(moved, "s", "real")
    real = index.get_connection(earlier)
    guess = index.get_connection(keeper)
    assert real is not None and guess is not None
    assert [r.id for r in index.shell_connections(real.shell_pk)] == [earlier, moved]
    shell = index.get_shell(real.shell_pk)
    assert shell is not None
    assert shell.first_seen == T0 - timedelta(days=1) and shell.last_seen == T0 + timedelta(minutes=1)
    # The shell left behind still has a connection: it stays, its times recomputed.
    left = index.get_shell(guess.shell_pk)
    assert left is not None and left.first_seen == T0 and left.last_seen == T0


def test_update_ids_with_the_same_ids_changes_nothing(index: Index) -> None:
    conn_id = _open(index)
    before = index.get_connection(conn_id)
    index.update_connection_ids(conn_id, "session-1", "shell-1")
    assert index.get_connection(conn_id) == before


def test_update_ids_of_an_unknown_connection_is_refused(index: Index) -> None:
    with pytest.raises(UnknownConnection):
        index.update_connection_ids(31337, "s", "sh")


# -- crash recovery --------------------------------------------------------------------------


def test_active_connections_are_recovered_as_interrupted(index: Index) -> None:
    done = _open(index)
    _finish(index, done)
    left_a = _open(index, shell_id="a")
    left_b = _open(index, shell_id="b", started_at=T0 + timedelta(minutes=1))
    assert [r.id for r in index.active_connections()] == [left_a, left_b]

    index.mark_interrupted(
        left_a, duration=42.5, recording_size=10, sha256=SHA, counters={"frames_stdout": 3}
    )
    index.mark_interrupted(left_b, ended_at=T0 + timedelta(minutes=2), end_reason=EndReason.PROXY_SHUTDOWN)

    assert index.active_connections() == []
    a = index.get_connection(left_a)
    b = index.get_connection(left_b)
    assert a is not None and b is not None
    assert a.status is ConnectionStatus.INTERRUPTED and a.end_reason is None
    assert a.ended_at == T0 + timedelta(seconds=42.5) and a.duration == 42.5
    assert (a.recording_size, a.sha256, a.counters["frames_stdout"]) == (10, SHA, 3)
    assert b.status is ConnectionStatus.INTERRUPTED and b.end_reason is EndReason.PROXY_SHUTDOWN
    shell = index.get_shell(a.shell_pk)
    assert shell is not None and shell.last_seen == T0 + timedelta(seconds=42.5)
    with pytest.raises(ConnectionNotActive):
        index.mark_interrupted(left_a, duration=1.0)


@pytest.mark.parametrize(
    "kwargs", [{}, {"duration": 1.0, "ended_at": T0}, {"duration": -1.0}, {"duration": float("nan")}]
)
def test_mark_interrupted_needs_one_sane_end(index: Index, kwargs: dict[str, Any]) -> None:
    conn_id = _open(index)
    with pytest.raises(ValueError):
        index.mark_interrupted(conn_id, **kwargs)


# -- refusals --------------------------------------------------------------------------------


def test_refusals_round_trip_newest_first(index: Index) -> None:
    first = index.record_refusal(
        at=T0,
        principal=None,
        client_address="10.0.0.1:1",
        runtime_arn=None,
        qualifier=None,
        shell_id=None,
        session_id=None,
        http_status=401,
        reason="missing token",
    )
    second = index.record_refusal(
        at=T0 + timedelta(seconds=1),
        principal="mallory",
        client_address="10.0.0.2:2",
        runtime_arn=ARN,
        qualifier="DEFAULT",
        shell_id="sh",
        session_id="se",
        http_status=403,
        reason="policy denies mallory on shop",
    )
    rows = index.list_refusals()
    assert [r.id for r in rows] == [second, first]
    assert (rows[0].principal, rows[0].runtime_arn, rows[0].http_status) == ("mallory", ARN, 403)
    assert rows[1].principal is None and rows[1].reason == "missing token" and rows[1].at == T0
    assert [r.id for r in index.list_refusals(since=T0 + timedelta(seconds=1))] == [second]
    assert [r.id for r in index.list_refusals(until=T0 + timedelta(seconds=1))] == [first]
    assert [r.id for r in index.list_refusals(limit=1)] == [second]


def test_refusal_values_over_their_limit_are_clipped_and_marked(index: Index) -> None:
    hostile = "arn:" + "x" * 5000
    index.record_refusal(
        at=T0,
        principal="p" * 1000,
        client_address="10.0.0.1:1",
        runtime_arn=hostile,
        qualifier=None,
        shell_id=None,
        session_id=None,
        http_status=400,
        reason="bad ARN",
    )
    (row,) = index.list_refusals()
    assert row.runtime_arn is not None and len(row.runtime_arn) == MAX_ARN
    assert row.runtime_arn.endswith(CLIPPED_MARK) and row.runtime_arn.startswith("arn:xxx")
    assert row.principal is not None and len(row.principal) == MAX_PRINCIPAL


@pytest.mark.parametrize("status", [200, 302, 600])
def test_refusal_needs_an_error_status(index: Index, status: int) -> None:
    with pytest.raises(ValueError):
        index.record_refusal(
            at=T0,
            principal=None,
            client_address="x",
            runtime_arn=None,
            qualifier=None,
            shell_id=None,
            session_id=None,
            http_status=status,
            reason="?",
        )


# -- limits and inputs -----------------------------------------------------------------------


def test_value_over_its_column_limit_is_refused_with_a_named_error(index: Index) -> None:
    with pytest.raises(IndexValueTooLong, match="principal") as info:
        _open(index, principal="p" * (MAX_PRINCIPAL + 1))
    assert (info.value.size, info.value.limit) == (MAX_PRINCIPAL + 1, MAX_PRINCIPAL)
    assert index.list_connections() == []
    _open(index, principal="p" * MAX_PRINCIPAL)  # exactly at the limit is fine


@pytest.mark.parametrize("field", ["session_id", "shell_id", "runtime_arn"])
def test_empty_shell_key_part_is_refused(index: Index, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _open(index, **{field: ""})


def test_naive_times_are_refused(index: Index) -> None:
    with pytest.raises(ValueError, match="timezone"):
        _open(index, started_at=datetime(2025, 1, 1))


def test_times_in_any_zone_come_back_in_utc(index: Index) -> None:
    cest = timezone(timedelta(hours=2))
    conn_id = _open(index, started_at=datetime(2025, 6, 1, 14, 0, tzinfo=cest))
    row = index.get_connection(conn_id)
    assert row is not None
    assert row.started_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC) and row.started_at.tzinfo is UTC


@pytest.mark.parametrize("limit", [0, -1, MAX_LIST_LIMIT + 1])
def test_listing_limit_outside_its_bounds_is_a_config_error(limit: int) -> None:
    with pytest.raises(ConfigError, match="limit"):
        ConnectionFilter(limit=limit)


def test_listing_limit_at_its_bound_is_accepted() -> None:
    assert ConnectionFilter(limit=MAX_LIST_LIMIT).limit == MAX_LIST_LIMIT


def test_naive_filter_times_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="timezone"):
        ConnectionFilter(since=datetime(2025, 1, 1))


def test_an_unmigrated_database_says_to_upgrade(engine: Engine) -> None:
    with pytest.raises(IndexStoreError, match="recorder db upgrade") as info:
        _open(Index(engine))
    assert "\n" not in str(info.value)


def test_concurrent_opens_from_threads_share_one_shell(index: Index) -> None:
    start = threading.Barrier(4)

    def worker(n: int) -> list[int]:
        start.wait(timeout=10)
        return [_open(index, started_at=T0 + timedelta(seconds=n * 100 + i)) for i in range(10)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = [conn_id for batch in pool.map(worker, range(4)) for conn_id in batch]
    assert len(set(ids)) == 40
    rows = index.list_connections(ConnectionFilter(limit=100))
    assert {r.id for r in rows} == set(ids)
    assert len({r.shell_pk for r in rows}) == 1
    shell = index.get_shell(rows[0].shell_pk)
    assert shell is not None and shell.last_seen == T0 + timedelta(seconds=309)


# -- listing ---------------------------------------------------------------------------------


@pytest.fixture
def populated(index: Index) -> dict[str, int]:
    """Six connections with different principals, runtimes, outcomes and times."""
    ids: dict[str, int] = {}
    ids["ok"] = _open(index, principal="alice", started_at=T0)
    _finish(index, ids["ok"], exit_code=0)
    ids["nonzero"] = _open(index, principal="bob", started_at=T0 + timedelta(hours=1), shell_id="s2")
    _finish(index, ids["nonzero"], exit_code=2)
    ids["dropped"] = _open(index, principal="alice", started_at=T0 + timedelta(hours=2), shell_id="s3")
    _finish(index, ids["dropped"], exit_code=None, end_reason=EndReason.CLIENT_DROPPED)
    ids["error"] = _open(
        index,
        principal="carol",
        started_at=T0 + timedelta(hours=3),
        runtime_arn="arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/billing",
    )
    _finish(index, ids["error"], exit_code=None, end_reason=EndReason.ERROR)
    ids["crashed"] = _open(index, principal="bob", started_at=T0 + timedelta(hours=4), session_id="other")
    index.mark_interrupted(ids["crashed"], duration=5.0)
    ids["live"] = _open(index, principal="alice", started_at=T0 + timedelta(hours=5))
    return ids


def _ids(index: Index, **filters: Any) -> list[int]:
    return [row.id for row in index.list_connections(ConnectionFilter(**filters))]


def test_listing_is_newest_first_and_limited(index: Index, populated: dict[str, int]) -> None:
    order = ["live", "crashed", "error", "dropped", "nonzero", "ok"]
    assert _ids(index) == [populated[k] for k in order]
    assert _ids(index, limit=2) == [populated["live"], populated["crashed"]]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"principal": "alice"}, ["live", "dropped", "ok"]),
        ({"principal": "nobody"}, []),
        ({"since": T0 + timedelta(hours=2)}, ["live", "crashed", "error", "dropped"]),
        ({"until": T0 + timedelta(hours=2)}, ["nonzero", "ok"]),
        ({"since": T0 + timedelta(hours=1), "until": T0 + timedelta(hours=3)}, ["dropped", "nonzero"]),
        ({"exit_code": 2}, ["nonzero"]),
        ({"exit_code": 0}, ["ok"]),
        ({"failed": True}, ["crashed", "error", "nonzero"]),
        ({"status": ConnectionStatus.ACTIVE}, ["live"]),
        ({"status": ConnectionStatus.INTERRUPTED}, ["crashed"]),
        ({"shell_id": "s3"}, ["dropped"]),
        ({"session_id": "other"}, ["crashed"]),
        ({"runtime": "*:runtime/billing"}, ["error"]),
        (
            {"runtime": "arn:aws:bedrock-agentcore:us-east-1:*"},
            ["live", "crashed", "dropped", "nonzero", "ok"],
        ),
        ({"principal": "alice", "failed": True}, []),
        ({"principal": "bob", "status": ConnectionStatus.ENDED}, ["nonzero"]),
    ],
)
def test_listing_filters(
    index: Index, populated: dict[str, int], filters: dict[str, Any], expected: list[str]
) -> None:
    assert _ids(index, **filters) == [populated[k] for k in expected]


@pytest.mark.parametrize(
    ("glob", "expected"),
    [
        ("*runtime/my_rt", ["my_rt"]),  # _ is literal, not "any character"
        ("*runtime/a%b", ["a%b"]),  # % is literal, not "any run"
        ("*runtime/my?rt", ["my_rt", "myXrt"]),
        ("*runtime/a*b", ["a%b", "aXb", "a\\b"]),
        ("*runtime/a\\b", ["a\\b"]),  # the escape character itself is literal
        ("*RUNTIME/MY_RT", ["my_rt"]),  # case-insensitive on both databases
        ("runtime/my_rt", []),  # a glob matches the whole ARN
    ],
)
def test_runtime_glob_escapes_like_wildcards(index: Index, glob: str, expected: list[str]) -> None:
    prefix = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/"
    ids = {name: _open(index, runtime_arn=prefix + name) for name in ["my_rt", "myXrt", "a%b", "aXb", "a\\b"]}
    assert sorted(_ids(index, runtime=glob)) == sorted(ids[name] for name in expected)


def test_glob_to_like_translates_and_escapes() -> None:
    assert glob_to_like("a*b?c") == "a%b_c"
    assert glob_to_like("100%_x\\") == "100\\%\\_x\\\\"
    assert glob_to_like("") == ""


def test_concurrent_finishes_from_threads_all_land(index: Index) -> None:
    ids = [_open(index, started_at=T0 + timedelta(seconds=i)) for i in range(24)]
    start = threading.Barrier(4)

    def worker(chunk: list[int]) -> None:
        start.wait(timeout=10)
        for conn_id in chunk:
            _finish(index, conn_id, ended_at=T0 + timedelta(minutes=conn_id), exit_code=conn_id % 3)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(worker, [ids[i::4] for i in range(4)]))
    rows = index.list_connections(ConnectionFilter(status=ConnectionStatus.ENDED))
    assert sorted(r.id for r in rows) == sorted(ids)
    shell = index.get_shell(rows[0].shell_pk)
    assert shell is not None and shell.last_seen == T0 + timedelta(minutes=max(ids))


# -- refusal filters, imports ------------------------------------------------------------------


def _refuse(index: Index, principal: str | None, arn: str | None, at: datetime) -> int:
    return index.record_refusal(
        at=at,
        principal=principal,
        client_address="10.0.0.9:4000",
        runtime_arn=arn,
        qualifier=None,
        shell_id=None,
        session_id=None,
        http_status=403,
        reason="policy denies",
    )


def test_refusals_filter_by_principal_and_runtime_glob(index: Index) -> None:
    mallory = _refuse(index, "mallory", ARN, T0)
    eve = _refuse(index, "eve", ARN.replace("shop", "bank"), T0 + timedelta(seconds=1))
    _refuse(index, None, None, T0 + timedelta(seconds=2))
    assert [r.id for r in index.list_refusals(principal="mallory")] == [mallory]
    assert [r.id for r in index.list_refusals(runtime="*:runtime/BANK")] == [eve]
    assert [r.id for r in index.list_refusals(runtime="*runtime/*")] == [eve, mallory]


def _import(index: Index, **overrides: Any) -> int:
    values: dict[str, Any] = {
        "source_name": "/tmp/demo.cast",
        "sha256": "cd" * 32,
        "recording_path": "recordings/imported/" + "cd" * 32 + ".cast",
        "recording_size": 4321,
        "cast_version": 3,
        "cols": 100,
        "rows": 50,
        "started_at": T0,
        "ended_at": T0 + timedelta(seconds=42),
        "exit_code": 3,
        "principal": None,
        "runtime_arn": "import",
        "qualifier": None,
        "session_id": "import-cdcd",
        "shell_id": "import-cdcd",
        "counters": {"bytes_stdout": 100, "frames_stdout": 7},
        "skipped_lines": 2,
        "adjusted_lines": 1,
    }
    values.update(overrides)
    return index.import_connection(**values)


def test_imported_recording_is_an_ended_connection_with_its_origin(index: Index) -> None:
    conn_id = _import(index)
    row = index.get_connection(conn_id)
    assert row is not None
    assert (row.status, row.end_reason, row.exit_code) == (ConnectionStatus.ENDED, EndReason.EXIT, 3)
    assert (row.upstream, row.client_address, row.runtime_arn) == ("import", "import", "import")
    assert (row.cast_version, row.cols, row.rows, row.duration) == (3, 100, 50, 42.0)
    assert row.counters["bytes_stdout"] == 100 and row.counters["frames_stdout"] == 7
    shell = index.get_shell(row.shell_pk)
    assert shell is not None and shell.last_exit_code == 3
    imported = index.get_import(conn_id)
    assert imported is not None
    assert (imported.source_name, imported.sha256, imported.skipped_lines, imported.adjusted_lines) == (
        "/tmp/demo.cast",
        "cd" * 32,
        2,
        1,
    )
    assert index.get_import(4242) is None


def test_imports_into_one_shell_give_it_the_span_and_the_exit_code_of_the_latest(index: Index) -> None:
    shared = {"session_id": "s-1", "shell_id": "sh-1"}
    late_start = T0 + timedelta(hours=2)
    late = _import(index, sha256="a1" * 32, started_at=late_start, ended_at=late_start, exit_code=7, **shared)
    early = _import(index, sha256="a2" * 32, started_at=T0, ended_at=T0 + timedelta(hours=5), **shared)
    rows = [index.get_connection(c) for c in (late, early)]
    assert rows[0] is not None and rows[1] is not None and rows[0].shell_pk == rows[1].shell_pk
    shell = index.get_shell(rows[0].shell_pk)
    assert shell is not None
    # first seen: the earliest start; last seen: the latest end, whichever connection it is;
    # exit code: the connection that started last.
    assert (shell.first_seen, shell.last_seen, shell.last_exit_code) == (T0, T0 + timedelta(hours=5), 7)


def _compilations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement SQLAlchemy compiles from now on (its SQL), in order."""
    seen: list[str] = []
    real = sa.sql.compiler.SQLCompiler.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        seen.append(" ".join(str(self.string).split())[:80])

    monkeypatch.setattr(sa.sql.compiler.SQLCompiler, "__init__", counting)
    return seen


def test_importing_and_indexing_compiles_each_statement_once(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = SimpleNamespace(offset=1.0, text="a line")
    command = SimpleNamespace(offset=0.5, text="ls", exit_code=0, output_preview="a line", end_offset=1.0)

    def import_and_index(n: int) -> None:
        conn_id = _import(index, sha256=f"{n:064x}", session_id=f"s-{n}", shell_id=f"sh-{n}")
        writer = index.search_writer(conn_id)
        writer.stage([command], [line], [line])
        assert writer.commit() is not None

    import_and_index(1)  # each statement's first run compiles it
    compiled = _compilations(monkeypatch)
    import_and_index(2)
    import_and_index(3)
    assert compiled == []


def test_find_recording_knows_imported_and_recorded_files(index: Index) -> None:
    imported = _import(index)
    assert index.find_recording("cd" * 32) == imported
    recorded = _open(index)
    _finish(index, recorded)
    assert index.find_recording(SHA) == recorded
    assert index.find_recording("ef" * 32) is None
    with pytest.raises(ValueError):
        index.find_recording("not-a-digest")


def test_find_recording_seeks_by_index_without_reading_every_connection(index: Index) -> None:
    # Each import looks its bytes up; a full scan of connections grew with the archive (0008).
    _finish(index, _open(index))
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sa.event.listen(index.engine, "before_cursor_execute", seen)
    try:
        assert index.find_recording("ef" * 32) is None  # a miss asks both tables
    finally:
        sa.event.remove(index.engine, "before_cursor_execute", seen)
    assert len(statements) == 2
    sqlite = index.engine.dialect.name == "sqlite"
    with index.engine.connect() as conn:
        if not sqlite:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table is read whole otherwise
        for statement, parameters in statements:
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            plan = [str(row[-1]) for row in conn.exec_driver_sql(explain + statement, parameters)]
            if sqlite:  # SEARCH t USING INDEX ... (sha256=?), not SCAN t
                assert all(step.startswith("SEARCH") and "(sha256=?)" in step for step in plan), plan
            else:  # Index Cond: sha256 = ..., not a walk of another index filtering each row
                assert any("Index Cond" in step and "sha256" in step for step in plan), plan


def test_same_file_cannot_be_imported_twice(index: Index) -> None:
    _import(index)
    with pytest.raises(IndexStoreError):
        _import(index, session_id="other", shell_id="other")


def test_import_without_an_exit_code_has_no_end_reason(index: Index) -> None:
    row = index.get_connection(_import(index, exit_code=None))
    assert row is not None and row.end_reason is None and row.exit_code is None


def test_import_that_ends_before_it_starts_is_refused(index: Index) -> None:
    with pytest.raises(ValueError, match="ended_at"):
        _import(index, ended_at=T0 - timedelta(seconds=1))


# -- readers and writers -------------------------------------------------------------------------


def test_reads_and_searches_do_not_wait_for_a_writer(index: Index, engine: Engine) -> None:
    """An auditor's listing or search goes on while an indexer or the proxy holds a write.

    On SQLite each write transaction takes the database's one write lock at BEGIN; a read that
    took it too would wait behind every indexing batch (and fail after the busy timeout behind
    a long one). Reads are deferred transactions: in WAL mode they read the last commit.
    """
    from recorder.index.access import create_token, find_token, list_audit, list_tokens, record_audit
    from recorder.index.search import search

    conn_id = _open(index)
    _finish(index, conn_id)

    class Seen:
        offset = 1.0
        text = "connection refused"

    index.replace_search_rows(conn_id, [], [Seen()], [])
    _row, token = create_token(index, "auditor")
    record_audit(index, actor="alice", command="token create", arguments={}, targets=[])
    writer = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with writer.connect() as conn, conn.begin():
            # Holds the write lock (SQLite) or the connection's row lock (PostgreSQL) from here.
            steal = sa.text("UPDATE connections SET principal = 'mallory' WHERE id = :id")
            conn.execute(steal, {"id": conn_id})
            row = index.get_connection(conn_id)
            assert row is not None and row.principal == "alice"  # the last commit, not the write
            assert [r.id for r in index.list_connections()] == [conn_id]
            assert [h.text for h in search(index, "refused")] == ["connection refused"]
            indexed = index.indexed(conn_id)
            assert indexed is not None and indexed.line_count == 1
            assert index.find_recording(SHA) == conn_id
            # The proxy checks a bearer token on every connection it accepts.
            assert find_token(index, token) is not None and len(list_tokens(index)) == 1
            assert [e.command for e in list_audit(index)] == ["token create"]
            conn.rollback()
    finally:
        writer.dispose()

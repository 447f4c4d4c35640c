"""Statements read on the driver: the same values in and out as through SQLAlchemy, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from recorder.errors import IndexStoreError
from recorder.index.models import Connection, ConnectionStatus, EndReason, Shell
from recorder.index.reads import Reads
from recorder.index.store import Index

T0 = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _open(index: Index, n: int, started_at: datetime) -> int:
    return index.open_connection(
        runtime_arn="arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/reads",
        qualifier=None,
        session_id=f"session-{n}",
        shell_id=f"shell-{n}",
        principal=f"user-{n}",
        client_address="127.0.0.1:5000",
        upstream="local",
        started_at=started_at,
        recording_path=f"recordings/{n}.cast",
        cast_version=2,
        cols=80,
        rows=24,
    )


#: Every value converted on the way in or out: datetimes (UTC, aware), an enum, a float, NULL.
_COLUMNS = sa.select(
    Connection.id,
    Connection.started_at,
    Connection.status,
    Connection.exit_code,
    sa.cast(Connection.id, sa.Float).label("ratio"),
    Shell.shell_id,
).join(Shell, Shell.id == Connection.shell_pk)
_AFTER = _COLUMNS.where(
    Connection.started_at >= sa.bindparam("since"),
    Connection.status == sa.bindparam("status"),
).order_by(Connection.id)


def test_rows_hold_the_values_sqlalchemy_gives(index: Index) -> None:
    ids = [_open(index, n, T0 + timedelta(minutes=n)) for n in range(3)]
    # Given in another zone: the parameter's type turns it into UTC as it would through SQLAlchemy.
    since = (T0 + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=-5)))
    params = {"since": since, "status": ConnectionStatus.ACTIVE}
    with index.reading() as session:
        conn = session.connection()
        expected = [tuple(row) for row in conn.execute(_AFTER, params)]
        read = Reads(conn).rows(_AFTER, params)
    assert read == expected
    assert [row[0] for row in read] == ids[1:]
    started = read[0][1]
    assert started == T0 + timedelta(minutes=1) and started.utcoffset() == timedelta(0)
    assert read[0][2] is ConnectionStatus.ACTIVE and read[0][3] is None
    assert isinstance(read[0][4], float)


def test_a_batch_reads_what_each_statement_reads_alone(index: Index) -> None:
    for n in range(4):
        _open(index, n, T0 + timedelta(minutes=n))
    statements = [
        (_AFTER, {"since": T0 + timedelta(minutes=m), "status": ConnectionStatus.ACTIVE}) for m in range(4)
    ]
    statements.append((sa.select(sa.func.count()).select_from(Connection), {}))
    with index.reading() as session:
        reads = Reads(session.connection())
        alone = [reads.rows(statement, params) for statement, params in statements]
        together = reads.batch(statements)
    assert together == alone
    assert [len(rows) for rows in together] == [4, 3, 2, 1, 1] and together[-1] == [(4,)]


def test_a_naive_datetime_is_refused_as_through_sqlalchemy(index: Index) -> None:
    with index.reading() as session:
        reads = Reads(session.connection())
        with pytest.raises(ValueError, match="naive datetime"):
            reads.rows(_AFTER, {"since": datetime(2025, 3, 1), "status": ConnectionStatus.ACTIVE})


def test_a_statement_with_a_list_filled_in_at_execution_is_refused(index: Index) -> None:
    listed = _COLUMNS.where(Connection.end_reason.in_([EndReason.ERROR, EndReason.RECORD_FAILURE]))
    with index.reading() as session:
        with pytest.raises(ValueError, match="values expanded at execution"):
            Reads(session.connection()).rows(listed, {})


def test_a_database_error_in_a_batch_is_one_index_error_and_the_index_still_reads(index: Index) -> None:
    _open(index, 0, T0)
    missing = sa.text("SELECT id FROM no_such_table")
    # The middle one fails: on PostgreSQL all three went out in one pipeline.
    with pytest.raises(IndexStoreError, match="no_such_table") as info:
        with index.reading() as session:
            Reads(session.connection()).batch([(_COLUMNS, {}), (missing, {}), (_COLUMNS, {})])
    assert "\n" not in str(info.value)
    with index.reading() as session:
        assert len(Reads(session.connection()).rows(_COLUMNS, {})) == 1


def test_postgresql_sends_a_batch_in_one_pipeline_unless_libpq_lacks_it(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        _open(index, n, T0 + timedelta(minutes=n))
    active = ConnectionStatus.ACTIVE
    statements = [(_AFTER, {"since": T0 + timedelta(minutes=m), "status": active}) for m in range(3)]
    entered: list[int] = []
    pipeline = psycopg.Connection.pipeline

    def counted(self: psycopg.Connection[Any]) -> Any:
        entered.append(1)
        return pipeline(self)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counted)
    with index.reading() as session:
        together = Reads(session.connection()).batch(statements)
    # A libpq before 14 has no pipeline mode: the same statements go one at a time.
    monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
    with index.reading() as session:
        one_by_one = Reads(session.connection()).batch(statements)
    assert together == one_by_one and [len(rows) for rows in together] == [3, 2, 1]
    assert entered == ([1] if index.engine.dialect.name == "postgresql" else [])

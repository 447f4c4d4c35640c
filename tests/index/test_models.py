"""The models against the migrated schema, and the constraints the database enforces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from recorder.index.db import upgrade
from recorder.index.models import (
    CHANNELS,
    COUNTER_NAMES,
    FTS5_TOKENIZER,
    OUTPUT_BLOCKS,
    TSV_COLUMN,
    Base,
    UtcDateTime,
    include_object,
    output_blocks,
)
from recorder.protocol.frames import Channel

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_models_match_the_migrated_schema(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "compare_server_default": True, "include_object": include_object},
        )
        assert compare_metadata(context, Base.metadata) == []


def test_counters_cover_every_protocol_channel() -> None:
    assert CHANNELS == (*(c.name.lower() for c in Channel), "unknown")
    assert len(COUNTER_NAMES) == 2 * len(CHANNELS)
    assert set(COUNTER_NAMES) <= set(Base.metadata.tables["connections"].columns.keys())


def _insert_shell(conn: sa.Connection) -> int:
    shells = Base.metadata.tables["shells"]
    result = conn.execute(
        shells.insert().values(
            runtime_arn="arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/rt",
            qualifier="DEFAULT",
            session_id="s",
            shell_id="sh",
            first_seen=NOW,
            last_seen=NOW,
        )
    )
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def _connection_values(shell_pk: int, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "shell_pk": shell_pk,
        "principal": "alice",
        "client_address": "127.0.0.1:5000",
        "upstream": "local",
        "started_at": NOW,
        "status": "active",
        "recording_path": "2025/03/01/x.cast",
        "cast_version": 2,
        "cols": 80,
        "rows": 24,
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize(
    "overrides",
    [{"status": "paused"}, {"end_reason": "bored"}, {"cast_version": 4}],
    ids=["status", "end_reason", "cast_version"],
)
def test_database_rejects_values_outside_the_check_constraints(
    engine: Engine, overrides: dict[str, Any]
) -> None:
    upgrade(engine)
    # Plain SQL text, so only the database (not the model's Enum validation) can refuse the value.
    columns = ", ".join(_connection_values(0, **overrides))
    params = ", ".join(f":{name}" for name in _connection_values(0, **overrides))
    with engine.begin() as conn:
        shell_pk = _insert_shell(conn)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO connections ({columns}) VALUES ({params})").bindparams(
                sa.bindparam("started_at", type_=UtcDateTime())
            ),
            _connection_values(shell_pk, **overrides),
        )


def test_database_accepts_a_valid_row_through_the_same_sql(engine: Engine) -> None:
    upgrade(engine)
    values = _connection_values(0, end_reason="client-closed")
    columns = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    with engine.begin() as conn:
        values["shell_pk"] = _insert_shell(conn)
        conn.execute(
            sa.text(f"INSERT INTO connections ({columns}) VALUES ({params})").bindparams(
                sa.bindparam("started_at", type_=UtcDateTime())
            ),
            values,
        )
        assert conn.execute(sa.text("SELECT count(*) FROM connections")).scalar() == 1


def test_database_rejects_a_connection_to_a_missing_shell(engine: Engine) -> None:
    upgrade(engine)
    connections = Base.metadata.tables["connections"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(connections.insert().values(**_connection_values(424242)))


def test_database_rejects_a_refusal_with_a_success_status(engine: Engine) -> None:
    upgrade(engine)
    refused = Base.metadata.tables["refused_attempts"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(refused.insert().values(at=NOW, client_address="x", http_status=200, reason="ok?"))


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
def test_utc_datetime_refuses_naive_values(dialect: sa.Dialect) -> None:
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2025, 1, 1), dialect)


def test_utc_datetime_stores_utc_and_reads_back_aware() -> None:
    plus_two = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    stored = UtcDateTime().process_bind_param(plus_two, sqlite.dialect())
    assert stored == datetime(2025, 1, 1, 12, 0)
    assert UtcDateTime().process_result_value(stored, sqlite.dialect()) == plus_two
    back = UtcDateTime().process_result_value(plus_two, postgresql.dialect())
    assert back is not None and back.tzinfo is UTC


def test_only_full_text_objects_are_left_out_of_the_comparison(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    names = set()
    for diff in diffs:
        kind, obj = diff[0], diff[1] if diff[0] != "remove_column" else diff[3]
        assert kind in {"remove_table", "remove_index", "remove_column"}, diff
        names.add(obj.name)
    if engine.dialect.name == "sqlite":
        assert {"commands_fts", "output_lines_fts", "input_lines_fts", "commands_fts_data"} <= names
        assert all("_fts" in name for name in names)
    else:
        assert names == {
            "tsv",
            "ix_commands_tsv",
            "ix_output_lines_tsv",
            "ix_input_lines_tsv",
            # Blocks of output lines (revision 0007), a table of PostgreSQL's alone, and its index.
            "output_blocks",
            "ix_output_blocks_connection_id",
        }


def test_full_text_index_uses_the_tokenizer_the_query_language_assumes(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'output_lines_fts'"
            ).scalar()
            assert sql is not None and FTS5_TOKENIZER in sql
        else:
            generated = conn.exec_driver_sql(
                "SELECT is_generated, generation_expression FROM information_schema.columns "
                "WHERE table_name = 'output_lines' AND column_name = 'tsv' "
                "AND table_schema = current_schema()"
            ).one()
            assert generated[0] == "ALWAYS" and "'simple'" in generated[1]


def test_the_statement_table_of_output_blocks_matches_postgresql_s_schema(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        if engine.dialect.name != "postgresql":
            assert OUTPUT_BLOCKS not in tables
            return
        columns = {c["name"]: c for c in sa.inspect(conn).get_columns(OUTPUT_BLOCKS)}
    # Every column the statements name is there, of the same type and nullability; tsv besides.
    for column in output_blocks.columns:
        reflected = columns.pop(column.name)
        assert reflected["type"].compile(engine.dialect) == column.type.compile(engine.dialect)
        assert reflected["nullable"] == column.nullable
    assert list(columns) == [TSV_COLUMN]

"""Index fixtures: a fresh database per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recorder.index.db import make_engine, normalise_url, upgrade
from recorder.index.store import Index

PG_ENV = "RECORDER_TEST_PG_URL"
PG_SKIP_REASON = f"{PG_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema made for this test alone, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("RECORDER_TEST_REQUIRE_PG"):
            # .ci/run sets both: a PostgreSQL URL lost on the way (a Makefile once unexported it)
            # must fail the run, not skip a third of the index tests.
            pytest.fail(f"RECORDER_TEST_REQUIRE_PG is set but {PG_ENV} did not reach the tests")
        pytest.skip(PG_SKIP_REASON)
    # Other runs may share the database: a unique schema keeps them apart and reruns clean.
    schema = f"recorder_test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(normalise_url(base))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = normalise_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'index.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database, once per backend."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the empty database."""
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def index(engine: Engine) -> Index:
    """A store on a database migrated to the newest revision."""
    upgrade(engine)
    return Index(engine)

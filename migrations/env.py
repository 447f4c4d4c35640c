"""Alembic environment for the recorder index.

The database URL comes from the caller, in this order: a connection handed over in
``config.attributes["connection"]`` (``recorder db upgrade`` and ``recorder.index.db.upgrade``),
``-x url=...`` on the alembic command line, then $RECORDER_DB_URL. Nothing is hard-coded.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from recorder.index.db import make_engine, migration_connection, normalise_url
from recorder.index.models import Base, include_object

config = context.config
target_metadata = Base.metadata

# Only the alembic command line configures logging; a library caller keeps its own setup.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("RECORDER_DB_URL")
    if not url:
        raise SystemExit("no database URL: pass `-x url=...` or set RECORDER_DB_URL")
    return url


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade --sql`)."""
    context.configure(
        url=normalise_url(_url()),
        target_metadata=target_metadata,
        render_as_batch=True,
        include_object=include_object,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
        # Full-text objects live outside the metadata (FTS5 tables, PostgreSQL tsv columns).
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database, in one transaction."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with migration_connection(engine) as own:
            _run(own)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""``recorder db``: migrate the SQL index (upgrade, downgrade, current)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail
from recorder.errors import IndexStoreError
from recorder.index.db import (
    current_revision,
    downgrade,
    head_revision,
    known_revisions,
    make_engine,
    safe_url,
    upgrade,
)

db_app = typer.Typer(
    name="db",
    help="Migrate the SQL index: upgrade, downgrade, current.",
    no_args_is_help=True,
)


def _label(revision: str | None) -> str:
    return revision if revision is not None else "base (empty)"


@db_app.command("upgrade")
def upgrade_cmd(
    db: DbOption = None,
    data: DataOption = None,
    revision: Annotated[
        str, typer.Option("--revision", help="Target revision (default: the newest).")
    ] = "head",
) -> None:
    """Migrate the index up to a revision (default: the newest)."""
    _migrate(upgrade, revision, db, data)


@db_app.command("downgrade")
def downgrade_cmd(
    revision: Annotated[
        str, typer.Option("--revision", help="Target revision; 'base' drops every index table.")
    ],
    db: DbOption = None,
    data: DataOption = None,
) -> None:
    """Migrate the index down to a revision ('base' drops every table and its data)."""
    _migrate(downgrade, revision, db, data)


def _migrate(step: Callable[[Engine, str], None], revision: str, db: str | None, data: Path | None) -> None:
    """Run one migration step and print the revision before and after."""
    url = db_url(db, data_dir(data))
    try:
        engine = make_engine(url)
        try:
            before = current_revision(engine)
            step(engine, revision)
            after = current_revision(engine)
        finally:
            engine.dispose()
    except IndexStoreError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{safe_url(url)}: {_label(before)} -> {_label(after)}")


@db_app.command("current")
def current_cmd(db: DbOption = None, data: DataOption = None) -> None:
    """Print the revision the index is at and whether it is the newest."""
    url = db_url(db, data_dir(data))
    try:
        current = current_revision(url)
        head = head_revision()
        known = known_revisions()
    except IndexStoreError as exc:
        raise fail(str(exc)) from None
    if current == head:
        note = "(newest)"
    elif current is not None and current not in known:
        note = "(unknown to this recorder: written by a newer version?)"
    else:
        note = f"(newest is {head}: run `recorder db upgrade`)"
    typer.echo(f"{safe_url(url)}: {_label(current)} {note}")


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group."""
    app.add_typer(db_app, name="db")

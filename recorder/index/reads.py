"""A search's statements, read straight from the database driver inside SQLAlchemy's transaction.

SQLAlchemy compiles each statement once (its SQL, its parameters' and columns' type processing);
each execution then goes to the driver's cursor, and rows come back as plain tuples. On
PostgreSQL, statements that do not wait on each other's rows go out in one psycopg pipeline: one
round trip instead of one each.

Why: SQLAlchemy builds each statement's cache key anew on every execution (150 us for a window's
block statement, 89 us for a kind's hits) and a Row per row read, about as much client time as
the database's own work on a small search. On the benchmark's archive (10,000 recordings, the
code before and after in turns, three rounds of 25 searches a query) SQLite's prefix search went
from 2.97-3.06 to 2.56-2.69 ms and its rare word from 1.39-1.48 to 1.18-1.21 ms. The statements
are still SQLAlchemy's, so both databases get the same SQL as before, every value is converted by
its SQLAlchemy type as before, and the transaction, its settings and its end are still the
Session's. Not for statements with an IN list that SQLAlchemy fills in at execution: those are
refused when first compiled. What SQLAlchemy's engine logging (``echo``) and cursor events see
of a search is its transaction only; PostgreSQL's own logging (``log_statement``, auto_explain)
sees every statement, and the tests read the plans from there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

#: Statement forms kept compiled: one per statement object (the search builds each shape once).
COMPILED_CACHE = 1024

Processor = Callable[[Any], Any]
Batch = Sequence[tuple[sa.ClauseElement, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement as the driver takes it: SQL in the driver's parameter style, and what SQLAlchemy
    would have done to the values going in and coming out."""

    sql: str
    #: Parameters in driver order (qmark style, SQLite); None for named ones (pyformat, psycopg).
    order: tuple[str, ...] | None
    #: Values the statement holds itself (``LIMIT 1``, an enum literal), by parameter name.
    defaults: Mapping[str, Any]
    #: The parameters whose type converts a value before it goes to the driver.
    binds: tuple[tuple[str, Processor], ...]
    #: The selected columns' types (none for text()), which may convert the values read back.
    columns: tuple[TypeEngine[Any], ...]
    #: Those conversions (position, processor) by the driver's column type codes: some depend on
    #: the type the database sent (a float column read as float or numeric), known at the first read.
    results: dict[tuple[Any, ...], tuple[tuple[int, Processor], ...]] = field(default_factory=dict)

    def parameters(self, values: Mapping[str, Any]) -> Mapping[str, Any] | tuple[Any, ...]:
        merged = {**self.defaults, **values}
        for name, process in self.binds:
            if name in merged:
                merged[name] = process(merged[name])
        if self.order is None:
            return merged
        return tuple(merged[name] for name in self.order)

    def rows(self, cursor: Any, dialect: Dialect) -> list[tuple[Any, ...]]:
        """The rows left in ``cursor``, with SQLAlchemy's conversions of the values."""
        fetched: list[tuple[Any, ...]] = cursor.fetchall()
        if not self.columns or not fetched:
            return fetched
        codes = tuple(column[1] for column in cursor.description)
        results = self.results.get(codes)
        if results is None:
            processors = (
                (position, kind.result_processor(dialect, code))
                for position, (kind, code) in enumerate(zip(self.columns, codes, strict=True))
            )
            results = tuple((position, process) for position, process in processors if process is not None)
            self.results[codes] = results
        if not results:
            return fetched
        out = []
        for row in fetched:
            values = list(row)
            for position, process in results:
                values[position] = process(values[position])
            out.append(tuple(values))
        return out


@lru_cache(maxsize=COMPILED_CACHE)
def _compiled(statement: sa.ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)  # a SELECT or a text(), not DDL
    sql = compiled.string
    if "POSTCOMPILE" in sql:
        # An IN list, say: SQLAlchemy fills it in at each execution, which the driver does not.
        raise ValueError(f"statement needs values expanded at execution, which reads do not do: {sql}")
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    defaults = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
    # Types as the dialect handles them: a TypeDecorator around the dialect's own DATETIME, say.
    processors = [
        (name, bind.type.dialect_impl(dialect).bind_processor(dialect)) for name, bind in binds.items()
    ]
    columns: tuple[TypeEngine[Any], ...] = ()
    if isinstance(statement, sa.Select):
        columns = tuple(column.type.dialect_impl(dialect) for column in statement.selected_columns)
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    if not compiled.positional:
        missing = [name for name in binds if not re.search(rf"%\({re.escape(name)}\)s", sql)]
        if missing:
            raise ValueError(f"parameters {missing} are not in the statement's SQL as named: {sql}")
    return _Compiled(
        sql=sql,
        order=order,
        defaults=defaults,
        binds=tuple((name, process) for name, process in processors if process is not None),
        columns=columns,
    )


class Reads:
    """Statements of one SQLAlchemy transaction, run on its driver connection."""

    def __init__(self, connection: sa.Connection) -> None:
        self._dialect = connection.dialect
        driver = connection.connection.driver_connection
        if driver is None:
            raise sa.exc.InvalidRequestError("reads need a live connection to the database")
        self._driver: Any = driver
        self._error: type[Exception] = self._dialect.loaded_dbapi.Error
        #: psycopg 3's pipeline mode (PostgreSQL), when its libpq has it (14 and later; the binary
        #: wheels bring their own): otherwise statements go one at a time.
        self._pipeline: Callable[[], Any] | None = None
        if self._dialect.name == "postgresql":
            # Imported here: psycopg is loaded only by PostgreSQL engines (a tenth of a SQLite
            # `recorder search`'s start-up otherwise).
            import psycopg

            if isinstance(driver, psycopg.Connection) and psycopg.Pipeline.is_supported():
                self._pipeline = driver.pipeline

    def rows(self, statement: sa.ClauseElement, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one statement."""
        return self.batch([(statement, params)])[0]

    def batch(self, statements: Batch) -> list[list[tuple[Any, ...]]]:
        """The rows of each statement, in order; on PostgreSQL all sent before any is read."""
        compiled = [(_compiled(statement, self._dialect), params) for statement, params in statements]
        sql = ""
        params: Any = None
        together = self._pipeline() if self._pipeline is not None and len(compiled) > 1 else nullcontext()
        cursors = [self._driver.cursor() for _ in compiled]
        try:
            with together:
                for (form, values), cursor in zip(compiled, cursors, strict=True):
                    sql, params = form.sql, form.parameters(values)
                    cursor.execute(sql, params)
            forms = [form for form, _ in compiled]
            return [form.rows(cursor, self._dialect) for form, cursor in zip(forms, cursors, strict=True)]
        except self._error as exc:
            # As SQLAlchemy would have raised it: the index's callers turn it into one line.
            raise sa.exc.DBAPIError.instance(sql, params, exc, self._error, dialect=self._dialect) from exc
        finally:
            for cursor in cursors:
                cursor.close()

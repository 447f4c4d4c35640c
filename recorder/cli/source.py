"""What ``play``, ``render``, ``transcript`` and ``export`` read: a connection id, a shell, or a file.

TARGET is resolved in this order:

- ``shell:<pk>``: every connection of that shell (``ConnectionRow.shell_pk``), in the order they
  started, played as one recording;
- all digits: a connection id in the index (``--shell`` widens it to every connection of its
  shell); a file whose name is all digits is read as ``./<name>``;
- anything else: an asciicast file.

Connections of one shell are joined on one timeline: each starts after the previous one ended,
the gap between them shortened to at most :data:`SHELL_GAP_SECONDS`; a marker names each
connection and a resize event carries its terminal size when it differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from recorder.cast.model import MARKER, RESIZE, Event, Header, format_resize
from recorder.cast.reader import open_cast
from recorder.errors import ConfigError, IndexStoreError
from recorder.index.db import make_engine, safe_url
from recorder.index.models import ConnectionStatus
from recorder.index.store import ConnectionRow, Index
from recorder.storage.local import LocalStorage

#: Longest pause kept between two connections of a shell played as one recording (seconds).
SHELL_GAP_SECONDS = 1.0
SHELL_PREFIX = "shell:"


@dataclass
class Source:
    """A resolved TARGET: its header, a way to read its events (again), and what it is."""

    label: str
    header: Header
    #: Every call returns a fresh iterator over the events (absolute times).
    events: Callable[[], Iterator[Event]]
    #: Metadata for exports: connection rows, or the file's header context.
    metadata: dict[str, Any]
    #: The recording file, when the source is one file (a connection or a FILE).
    path: Path | None = None
    #: Whether the recording is still being written (the index says the connection is active).
    is_active: Callable[[], bool] = field(default=lambda: False)
    #: The index the source was found in, if any (closed by :meth:`close`).
    index: Index | None = None

    def close(self) -> None:
        """Release the index connection pool."""
        if self.index is not None:
            self.index.engine.dispose()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def connection_metadata(row: ConnectionRow) -> dict[str, Any]:
    """A connection row as JSON-ready values."""
    out = {f.name: _jsonable(getattr(row, f.name)) for f in dataclasses.fields(row)}
    out["duration"] = row.duration
    return out


def _file_events(path: Path) -> Callable[[], Iterator[Event]]:
    def events() -> Iterator[Event]:
        with open_cast(path) as reader:
            yield from reader.events()

    return events


def _read_header(path: Path) -> Header:
    with open_cast(path) as reader:
        return reader.header


def file_source(path: Path) -> Source:
    """An asciicast file given by path."""
    if not path.is_file():
        raise ConfigError(f"no recording file {path} (give a connection id, shell:<pk> or a .cast path)")
    header = _read_header(path)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    meta = {
        "file": str(path),
        "sha256": digest.hexdigest(),
        "version": header.version,
        "width": header.width,
        "height": header.height,
        "timestamp": header.timestamp,
        "title": header.title,
        "context": header.context,
    }
    return Source(str(path), header, _file_events(path), meta, path)


def open_index(data: Path, url: str) -> Index:
    """The index at ``url``; a SQLite file that does not exist is an error, not a new empty index."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"invalid database URL {url!r}") from None
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
        if not Path(database).expanduser().is_file():
            raise ConfigError(f"no index at {database}; pass --data-dir or --db (or record first)")
    try:
        return Index(make_engine(url))
    except IndexStoreError as exc:
        raise ConfigError(f"cannot open the index {safe_url(url)}: {exc}") from None


def _connection_source(index: Index, storage: LocalStorage, row: ConnectionRow) -> Source:
    path = storage.path(row.recording_path)
    if not path.is_file():
        raise ConfigError(f"connection {row.id}: recording {path} is missing")
    header = _read_header(path)

    def active() -> bool:
        current = index.get_connection(row.id)
        return current is not None and current.status == ConnectionStatus.ACTIVE

    return Source(
        f"connection {row.id}",
        header,
        _file_events(path),
        {"connection": connection_metadata(row), "context": header.context},
        path,
        active,
        index,
    )


def _shell_source(index: Index, storage: LocalStorage, shell_pk: int, rows: list[ConnectionRow]) -> Source:
    if not rows:
        raise ConfigError(f"no shell {shell_pk} in the index (or it has no connections)")
    paths = [storage.path(r.recording_path) for r in rows]
    for row, path in zip(rows, paths, strict=True):
        if not path.is_file():
            raise ConfigError(f"connection {row.id}: recording {path} is missing")
    headers = [_read_header(p) for p in paths]

    def events() -> Iterator[Event]:
        offset = 0.0
        size = (headers[0].width, headers[0].height)
        for i, (row, path, header) in enumerate(zip(rows, paths, headers, strict=True)):
            if i:
                prev = rows[i - 1]
                gap = (row.started_at - prev.ended_at).total_seconds() if prev.ended_at else 0.0
                offset += min(max(gap, 0.0), SHELL_GAP_SECONDS)
            yield Event(offset, MARKER, f"connection {row.id}")
            if (header.width, header.height) != size:
                size = (header.width, header.height)
                yield Event(offset, RESIZE, format_resize(*size))
            last = 0.0
            with open_cast(path) as reader:
                for ev in reader.events():
                    last = ev.time
                    yield Event(offset + ev.time, ev.code, ev.data)
            offset += last

    first = dataclasses.replace(headers[0])
    meta = {"shell": shell_pk, "connections": [connection_metadata(r) for r in rows]}
    return Source(f"shell {shell_pk}", first, events, meta, index=index)


def resolve(target: str, *, data: Path, db: str, whole_shell: bool = False) -> Source:
    """TARGET (connection id, ``shell:<pk>`` or file path) as a :class:`Source`."""
    storage = LocalStorage(data)
    if target.startswith(SHELL_PREFIX):
        pk_text = target[len(SHELL_PREFIX) :]
        if not (pk_text.isascii() and pk_text.isdigit()):
            raise ConfigError(f"{target!r}: expected shell:<number>")
        index = open_index(data, db)
        try:
            return _shell_source(index, storage, int(pk_text), index.shell_connections(int(pk_text)))
        except BaseException:
            index.engine.dispose()
            raise
    if target.isascii() and target.isdigit():
        index = open_index(data, db)
        try:
            row = index.get_connection(int(target))
            if row is None:
                raise ConfigError(f"no connection {target} in the index at {safe_url(db)}")
            if whole_shell:
                return _shell_source(index, storage, row.shell_pk, index.shell_connections(row.shell_pk))
            return _connection_source(index, storage, row)
        except BaseException:
            index.engine.dispose()
            raise
    if whole_shell:
        raise ConfigError("--shell needs a connection id, not a file")
    return file_source(Path(target))

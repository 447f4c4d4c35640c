"""A real runtime process and a real proxy process in front of it, with a fresh data directory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recorder.index.db import make_engine
from recorder.index.store import ConnectionRow, Index
from tests.procs import RunningProcess, start_recorder, start_runtime, wait_until


@dataclass
class Stack:
    """The processes of one test and where their data lives."""

    proxy: RunningProcess
    runtime: RunningProcess | None
    data_dir: Path
    db_url: str
    index: Index

    @property
    def url(self) -> str:
        return self.proxy.url

    def finished(self, count: int = 1, timeout: float = 20.0) -> list[ConnectionRow]:
        """Wait until ``count`` connections are no longer active; newest first."""

        def done() -> bool:
            rows = self.index.list_connections()
            return len(rows) >= count and all(r.status != "active" for r in rows)

        wait_until(done, timeout, f"{count} finished connection(s)")
        return self.index.list_connections()

    def cast_path(self, row: ConnectionRow) -> Path:
        assert row.recording_path
        return self.data_dir / row.recording_path


def proxy_args(data_dir: Path, db_url: str, upstream: str, *extra: str) -> list[str]:
    """``recorder serve`` on loopback without client authentication (``extra`` may turn it on again:
    the last ``--auth`` given wins); tests/proxy/test_access.py covers authentication."""
    return [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(data_dir),
        "--db",
        db_url,
        "--upstream",
        upstream,
        "--auth",
        "none",
        *extra,
    ]


@contextlib.contextmanager
def stack(
    tmp_path: Path, *extra: str, upstream: str | None = None, runtime_args: tuple[str, ...] = ()
) -> Iterator[Stack]:
    data_dir = tmp_path / "data"
    db_url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    with contextlib.ExitStack() as es:
        runtime = None
        if upstream is None:
            runtime = es.enter_context(start_runtime(*runtime_args))
            upstream = runtime.url
        proxy = es.enter_context(start_recorder(*proxy_args(data_dir, db_url, upstream, *extra)))
        engine = make_engine(db_url)
        es.callback(engine.dispose)
        yield Stack(proxy, runtime, data_dir, db_url, Index(engine))


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Stack]:
    """The proxy in front of a separate runtime process."""
    with stack(tmp_path) as s:
        yield s

"""Fixtures of the runtime tests: a running `recorder runtime` and an SDK-compatible client for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import LocalShellClient, RunningProcess, start_runtime


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty HOME, so the user's own ~/.bashrc does not shape the shells."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def runtime(home: Path) -> Iterator[RunningProcess]:
    """One `recorder runtime` process (default bash) shared by a test module."""
    with start_runtime(env={"HOME": str(home)}) as running:
        yield running


@pytest.fixture
def client(runtime: RunningProcess) -> LocalShellClient:
    """An SDK-compatible client pointed at the shared runtime."""
    return LocalShellClient(runtime.url)

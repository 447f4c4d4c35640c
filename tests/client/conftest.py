"""Fixtures of the client tests: a real `recorder runtime` process on loopback, and ways to run the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import RunningProcess, start_runtime


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
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory for the CLI (no local token file unless a test writes one)."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("RECORDER_DATA_DIR", str(path))
    monkeypatch.delenv("RECORDER_TOKEN", raising=False)
    monkeypatch.delenv("RECORDER_URL", raising=False)
    return path

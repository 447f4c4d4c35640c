"""Suite-wide settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.procs import RunningProcess, start_runtime

# The embedded runtime's bash would source the machine's ~/.bashrc (pyenv hooks and the like):
# tests must not depend on it, nor wait on it.
os.environ.setdefault("RECORDER_RUNTIME_NO_USER_RC", "1")

# No per-example deadline: on a shared 2-core machine one example of a microsecond-scale test
# can still be held for a second, and hypothesis would fail it as too slow (DeadlineExceeded).
# Properties are about results, not speed; bench/ measures speed.
settings.register_profile("recorder", deadline=None)
settings.load_profile("recorder")


@pytest.fixture(scope="session", autouse=True)
def _own_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands run without --data-dir use a directory of the test run, never the user's own.

    (The user's index may be at an older revision, or hold real recordings.) Tests that need a
    particular directory set RECORDER_DATA_DIR or --data-dir themselves.
    """
    before = os.environ.get("RECORDER_DATA_DIR")
    os.environ["RECORDER_DATA_DIR"] = str(tmp_path_factory.mktemp("default-data-dir"))
    yield
    if before is None:
        os.environ.pop("RECORDER_DATA_DIR", None)
    else:
        os.environ["RECORDER_DATA_DIR"] = before


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty HOME, so the user's own ~/.bashrc does not shape the shells."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def runtime(home: Path) -> Iterator[RunningProcess]:
    """One `recorder runtime` process (default bash) shared by a test module."""
    with start_runtime(env={"HOME": str(home)}) as running:
        yield running

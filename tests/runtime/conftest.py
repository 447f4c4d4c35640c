"""Fixtures of the runtime tests: a running `recorder runtime` and an SDK-compatible client for it."""

from __future__ import annotations

import pytest

from tests.procs import LocalShellClient, RunningProcess


@pytest.fixture
def client(runtime: RunningProcess) -> LocalShellClient:
    """An SDK-compatible client pointed at the shared runtime."""
    return LocalShellClient(runtime.url)

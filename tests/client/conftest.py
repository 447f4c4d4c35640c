"""Fixtures of the client tests: a real `recorder runtime` process on loopback, and ways to run the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory for the CLI (no local token file unless a test writes one)."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("RECORDER_DATA_DIR", str(path))
    monkeypatch.delenv("RECORDER_TOKEN", raising=False)
    monkeypatch.delenv("RECORDER_URL", raising=False)
    return path

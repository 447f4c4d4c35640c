"""Shared fixtures for the asciicast tests: the external corpus lives in ../shared, read-only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("RECORDER_CORPUS_DIR", REPO.parent / "shared" / "corpus" / "asciicast"))
CORPUS_FILES = (
    "asciinema__demo-v2.cast",
    "asciinema__full-v1.json",
    "asciinema__full-v2.cast",
    "asciinema__full-v3.cast",
    "asciinema__nulls-v2.cast",
    "docs__typing-v2.cast",
    "player__markers-v2.cast",
    "player__resizing-v3.cast",
    "player__theme-256-v3.cast",
    "server__big-v3.cast",
    "server__blank-lines-v2.cast",
    "server__full-v3.cast",
)


@pytest.fixture
def corpus() -> Path:
    """The asciicast corpus folder; skips when it is not beside the repository."""
    if not (CORPUS / "README.md").is_file():
        pytest.skip(f"asciicast corpus not found at {CORPUS} (set RECORDER_CORPUS_DIR or add ../shared)")
    return CORPUS

"""Recordings in a local directory: <data dir>/recordings/YYYY/MM/DD/<file>.cast."""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime
from pathlib import Path

from recorder.errors import ConfigError

RECORDINGS_DIR = "recordings"
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class LocalStorage:
    """Where recording files live, with paths stored relative to the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def ensure(self) -> None:
        """Create the data directory (0700: recordings are sensitive)."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            (self.data_dir / RECORDINGS_DIR).mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"cannot create data directory {self.data_dir}: {exc.strerror}") from None

    def new_recording(self, started: datetime, shell_id: str) -> str:
        """A fresh relative path for a connection's recording; its directory exists."""
        day = started.strftime("%Y/%m/%d")
        name = f"{started:%H%M%S}-{_SAFE.sub('_', shell_id)[:40]}-{uuid.uuid4().hex[:12]}.cast"
        rel = f"{RECORDINGS_DIR}/{day}/{name}"
        (self.data_dir / RECORDINGS_DIR / day).mkdir(parents=True, exist_ok=True, mode=0o700)
        return rel

    def path(self, rel: str) -> Path:
        """The absolute path of a stored recording."""
        return self.data_dir / rel

    def open_new(self, rel: str) -> int:
        """Create a recording file exclusively (0600) and return its descriptor."""
        return os.open(self.path(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)

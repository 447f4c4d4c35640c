"""Asciicast values shared by the reader, the writer and everything that replays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Event codes.
OUTPUT = "o"
INPUT = "i"
RESIZE = "r"
MARKER = "m"
EXIT = "x"

#: Header key under which recorder keeps its context (principal, ARN, ids); players ignore it.
CONTEXT_KEY = "recorder"


@dataclass(frozen=True, slots=True)
class Event:
    """One event. ``time`` is seconds since the start of the recording (absolute, never relative)."""

    time: float
    code: str
    data: str


@dataclass(slots=True)
class Header:
    """A recording's header, whatever version it was read from."""

    version: int
    width: int
    height: int
    timestamp: int | None = None
    idle_time_limit: float | None = None
    command: str | None = None
    title: str | None = None
    env: dict[str, Any] = field(default_factory=dict)
    theme: dict[str, Any] | None = None
    term_type: str | None = None
    #: Keys this model does not name, kept as they were (the recorder context among them).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def context(self) -> dict[str, Any]:
        """The recorder context (principal, runtime ARN, ids), or an empty dict."""
        ctx = self.extra.get(CONTEXT_KEY)
        return ctx if isinstance(ctx, dict) else {}

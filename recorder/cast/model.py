"""Asciicast values shared by the reader, the writer and everything that replays."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

#: Event codes.
OUTPUT = "o"
INPUT = "i"
RESIZE = "r"
MARKER = "m"
EXIT = "x"

#: Header key under which recorder keeps its context (principal, ARN, ids); players ignore it.
CONTEXT_KEY = "recorder"


class Event(NamedTuple):
    """One event. ``time`` is seconds since the start of the recording (absolute, never relative).

    A named tuple, not a frozen dataclass: readers make one per line, and a tuple is built at
    a third of the cost (indexing reads millions of them).
    """

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


#: Longest line (without its newline) the reader accepts and the writer produces: 16 MiB.
MAX_LINE_BYTES = 16 * 1024 * 1024
#: Longest header line (v2, v3) the reader accepts and the writer produces: 1 MiB.
MAX_HEADER_BYTES = 1024 * 1024
#: Largest v1 document (one JSON value, so it is read whole): 64 MiB.
MAX_V1_BYTES = 64 * 1024 * 1024
#: Largest event time or interval, in seconds (about 31 years). Below 2**53 microseconds, so
#: converting to integer microseconds is exact.
MAX_TIME_SECONDS = 1_000_000_000.0
#: How many problems a reader keeps; past this it only counts them.
MAX_PROBLEMS = 1000


class ProblemKind(StrEnum):
    """What the reader did about a line it could not use as it was."""

    #: The line was not used (no event came out of it).
    SKIPPED = "skipped"
    #: The file ends in a half-written line (no newline, not JSON): what a killed writer leaves.
    TRUNCATED = "truncated"
    #: The event was kept with a value changed (time clamped, invalid UTF-8 or lone surrogate replaced).
    ADJUSTED = "adjusted"


class Reason(StrEnum):
    """Why a line was reported."""

    BLANK_LINE = "blank_line"
    COMMENT_NOT_ALLOWED = "comment_not_allowed"
    LINE_TOO_LONG = "line_too_long"
    INVALID_UTF8 = "invalid_utf8"
    LONE_SURROGATE = "lone_surrogate"
    INVALID_JSON = "invalid_json"
    NOT_A_LIST = "not_a_list"
    BAD_ARITY = "bad_arity"
    BAD_TIME = "bad_time"
    BAD_CODE = "bad_code"
    BAD_DATA = "bad_data"
    TIME_WENT_BACKWARDS = "time_went_backwards"
    NEGATIVE_INTERVAL = "negative_interval"
    TRUNCATED_TAIL = "truncated_tail"
    BAD_HEADER_FIELD = "bad_header_field"
    TRAILING_DATA = "trailing_data"


@dataclass(frozen=True, slots=True)
class Problem:
    """A line the reader skipped or changed. ``line`` is 1-based; in v1 it is the stdout frame number."""

    line: int
    kind: ProblemKind
    reason: Reason
    detail: str = ""


def format_resize(cols: int, rows: int) -> str:
    """Resize event data: ``"COLSxROWS"``."""
    return f"{cols}x{rows}"


def parse_resize(data: str) -> tuple[int, int] | None:
    """``(cols, rows)`` from resize event data, or None when it is not ``"COLSxROWS"``."""
    cols, sep, rows = data.partition("x")
    for part in (cols, rows):
        # isdigit() alone admits non-ASCII digits; the length cap keeps int() cheap.
        if not (part.isascii() and part.isdigit() and len(part) <= 6):
            return None
    return int(cols), int(rows)

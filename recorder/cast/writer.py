"""Write asciicast v2 or v3, one line per call, returning the exact bytes written.

Every line is JSON with ``ensure_ascii=False`` (UTF-8 kept as is, control characters escaped), so
stock players (asciinema 2.x and 3.x, asciinema-player) read the file unmodified. Times are kept as
integer microseconds: v2 writes them absolute, v3 writes the difference from the previous event, so
accumulated v3 times equal the v2 times exactly. Times are written in fixed notation (``1.234567``,
never ``1e-06``).

A time earlier than the previous event's is clamped to it (and counted in ``clamped_times``): the
recording path must not lose data over a clock hiccup. A time that is not a finite number from 0 to
MAX_TIME_SECONDS, a bad event code, or a line over the line limit raises CastValueError.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import IO, Any

import orjson

from recorder.cast.model import (
    EXIT,
    INPUT,
    MARKER,
    MAX_HEADER_BYTES,
    MAX_LINE_BYTES,
    MAX_TIME_SECONDS,
    OUTPUT,
    RESIZE,
    Header,
    format_resize,
)
from recorder.errors import CastLineTooLong, CastValueError, CastWriteError
from recorder.logfmt import get_logger

log = get_logger(__name__)

#: Versions the writer produces (v1 is a single JSON document and cannot be streamed).
WRITABLE_VERSIONS = (2, 3)

#: Codes the writer accepts: one lowercase ASCII letter (o, i, r, m, x, and room for more).
EVENT_CODES = frozenset("abcdefghijklmnopqrstuvwxyz")
_SURROGATE = re.compile("[\ud800-\udfff]")
_US = 1_000_000
# The C JSON string encoder without ASCII escaping: quotes, escapes '"', '\\' and U+0000-U+001F.
_encode_string = json.encoder.encode_basestring
# The same escaping straight to UTF-8 bytes, several times faster: event data is most of what a
# recording proxy spends its CPU on. orjson writes exactly the bytes ``_encode_string(s).encode()``
# does (tests/cast/test_writer.py checks every code point); it refuses lone surrogates.
_dump_string = orjson.dumps
_V2_NAMED = frozenset(
    {"version", "width", "height", "timestamp", "idle_time_limit", "command", "title", "env", "theme"}
)
_V3_NAMED = frozenset({"version", "term", "timestamp", "idle_time_limit", "command", "title", "env"})
_TERM_NAMED = frozenset({"cols", "rows", "type", "theme"})


def format_time(us: int) -> str:
    """Seconds in fixed notation from integer microseconds: ``1234567`` -> ``"1.234567"``."""
    seconds, frac = divmod(us, _US)
    if not frac:
        return f"{seconds}.0"
    return f"{seconds}.{frac:06d}".rstrip("0")


def to_microseconds(time: float) -> int:
    """Integer microseconds for a time in seconds, validated (finite, 0..MAX_TIME_SECONDS)."""
    if type(time) not in (float, int) or not 0 <= time <= MAX_TIME_SECONDS:
        raise CastValueError(f"event time must be a number from 0 to {MAX_TIME_SECONDS:.0f} s, got {time!r}")
    return round(time * _US)


def _check_dimension(name: str, value: Any) -> None:
    if type(value) is not int or value < 0:
        raise CastValueError(f"header {name} must be a non-negative integer, got {value!r}")


class CastWriter:
    """Streams one recording to a binary file object: ``write_header()``, then ``write_event()``s."""

    def __init__(
        self,
        fileobj: IO[bytes],
        header: Header,
        version: int = 2,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        if version not in WRITABLE_VERSIONS:
            raise CastValueError(f"can write asciicast v2 or v3, not v{version}")
        _check_dimension("width", header.width)
        _check_dimension("height", header.height)
        self._file = fileobj
        self.header = header
        self.version = version
        self.max_line_bytes = max_line_bytes
        self.max_header_bytes = max_header_bytes
        self.header_written = False
        self.closed = False
        #: Bytes written so far (header included).
        self.bytes_written = 0
        self.events_written = 0
        #: Events whose time was earlier than the previous one and was clamped to it.
        self.clamped_times = 0
        self._last_us = 0

    @property
    def last_time(self) -> float:
        """Time of the last event written, in seconds (as written: microsecond precision)."""
        return self._last_us / _US

    # -- header ---------------------------------------------------------------------------------

    def header_object(self) -> dict[str, Any]:
        """The header as the JSON object this writer's version writes."""
        h = self.header
        obj: dict[str, Any] = {"version": self.version}
        if self.version == 2:
            obj["width"] = h.width
            obj["height"] = h.height
            named = _V2_NAMED
        else:
            term: dict[str, Any] = {"cols": h.width, "rows": h.height}
            if h.term_type is not None:
                term["type"] = h.term_type
            # Term keys this model does not name (e.g. "version") come back from extra["term"].
            leftovers = h.extra.get("term")
            if isinstance(leftovers, dict):
                term.update((k, v) for k, v in leftovers.items() if k not in _TERM_NAMED)
            if h.theme is not None:
                term["theme"] = h.theme
            obj["term"] = term
            named = _V3_NAMED
        if h.timestamp is not None:
            obj["timestamp"] = h.timestamp
        if h.idle_time_limit is not None:
            obj["idle_time_limit"] = h.idle_time_limit
        if h.command is not None:
            obj["command"] = h.command
        if h.title is not None:
            obj["title"] = h.title
        if h.env:
            obj["env"] = h.env
        if self.version == 2 and h.theme is not None:
            obj["theme"] = h.theme
        for key, value in h.extra.items():
            if key not in named:
                obj[key] = value
        return obj

    def write_header(self) -> bytes:
        """Write the header line; returns the exact bytes written."""
        if self.header_written:
            raise CastWriteError("header already written")
        h = self.header
        if h.timestamp is not None and type(h.timestamp) is not int:
            raise CastValueError(f"header timestamp must be an integer, got {h.timestamp!r}")
        if h.idle_time_limit is not None and not (
            type(h.idle_time_limit) in (int, float)
            and math.isfinite(h.idle_time_limit)
            and h.idle_time_limit >= 0
        ):
            raise CastValueError(
                f"header idle_time_limit must be a non-negative number, got {h.idle_time_limit!r}"
            )
        try:
            text = json.dumps(
                self.header_object(), ensure_ascii=False, allow_nan=False, separators=(", ", ": ")
            )
            line = (text + "\n").encode("utf-8")
        except (TypeError, ValueError) as exc:
            # UnicodeEncodeError (a lone surrogate) is a ValueError too.
            raise CastValueError(f"header cannot be written as JSON: {str(exc).splitlines()[0]}") from exc
        if len(line) - 1 > self.max_header_bytes:
            raise CastLineTooLong(len(line) - 1, self.max_header_bytes)
        self._write(line)
        self.header_written = True
        return line

    # -- events ---------------------------------------------------------------------------------

    def write_event(self, time: float, code: str, data: str) -> bytes:
        """Write one event at ``time`` (absolute seconds); returns the exact bytes written."""
        if not self.header_written:
            raise CastWriteError("write_header() must come before the first event")
        if type(code) is not str or code not in EVENT_CODES:
            raise CastValueError(f"event code must be one lowercase letter, got {code!r}")
        if type(data) is not str:
            raise CastValueError(f"event data must be a string, got {type(data).__name__}")
        us = to_microseconds(time)
        if us < self._last_us:
            self.clamped_times += 1
            log.warning("cast.time_clamped", time=time, previous=self._last_us / _US)
            us = self._last_us
        stamp = format_time(us if self.version == 2 else us - self._last_us)
        try:
            line = b"".join((b"[", stamp.encode(), b', "', code.encode(), b'", ', _dump_string(data), b"]\n"))
        except TypeError:
            # A lone surrogate cannot be UTF-8; strict readers (serde) also refuse its \\uD800
            # escape, so it becomes U+FFFD, as an invalid byte does in the decoder.
            text = _SURROGATE.sub("\ufffd", data)
            line = f"[{stamp}, {_encode_string(code)}, {_encode_string(text)}]\n".encode()
        if len(line) - 1 > self.max_line_bytes:
            raise CastLineTooLong(len(line) - 1, self.max_line_bytes)
        self._write(line)
        self._last_us = us
        self.events_written += 1
        return line

    def write_output(self, time: float, data: str) -> bytes:
        """An ``o`` event."""
        return self.write_event(time, OUTPUT, data)

    def write_input(self, time: float, data: str) -> bytes:
        """An ``i`` event."""
        return self.write_event(time, INPUT, data)

    def write_resize(self, time: float, cols: int, rows: int) -> bytes:
        """An ``r`` event with data ``"COLSxROWS"``."""
        if type(cols) is not int or type(rows) is not int or cols < 0 or rows < 0:
            raise CastValueError(f"resize needs non-negative integer cols and rows, got {cols!r}x{rows!r}")
        return self.write_event(time, RESIZE, format_resize(cols, rows))

    def write_marker(self, time: float, label: str = "") -> bytes:
        """An ``m`` event whose data is the label."""
        return self.write_event(time, MARKER, label)

    def write_exit(self, time: float, status: int) -> bytes:
        """An ``x`` event whose data is the exit status as a string."""
        if type(status) is not int:
            raise CastValueError(f"exit status must be an integer, got {status!r}")
        return self.write_event(time, EXIT, str(status))

    # -- I/O ------------------------------------------------------------------------------------

    def _write(self, line: bytes) -> None:
        if self.closed:
            raise CastWriteError("recording is closed")
        try:
            view = memoryview(line)
            while view:
                # Raw (unbuffered) files may write less than asked; buffered ones return len or raise.
                written = self._file.write(view)
                if not written:
                    raise CastWriteError("recording file accepted no bytes (non-blocking file?)")
                view = view[written:]
        except OSError as exc:
            raise CastWriteError(f"cannot write recording: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise CastWriteError(f"cannot write recording: {exc}") from exc
        self.bytes_written += len(line)

    def flush(self, fsync: bool = False) -> None:
        """Flush to the OS; with ``fsync`` also to the disk."""
        try:
            self._file.flush()
            if fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            raise CastWriteError(f"cannot flush recording: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise CastWriteError(f"cannot flush recording: {exc}") from exc

    def close(self, fsync: bool = False) -> None:
        """Flush (and optionally fsync), then close the file object. Idempotent."""
        if self.closed:
            return
        try:
            self.flush(fsync)
        finally:
            self.closed = True
            try:
                self._file.close()
            except OSError as exc:
                raise CastWriteError(f"cannot close recording: {exc.strerror or exc}") from exc

    def __enter__(self) -> CastWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Read asciicast v1, v2 and v3 recordings, line by line, reporting every line it cannot use.

Decisions this reader makes (the specs leave them open):

- Times out of ``events()`` are absolute seconds. v3 intervals and v1 delays are accumulated in
  integer microseconds (the formats' precision), so long recordings do not drift; v2 times are kept
  exactly as written.
- v2 time going backwards is kept, clamped to the previous event's time, and reported
  (``adjusted``/``time_went_backwards``): the data survives and every consumer can rely on
  non-decreasing times. A negative v3 interval or v1 delay is clamped to zero the same way.
- Blank lines are reported (``skipped``/``blank_line``) in every version; asciinema 2.x stops reading
  at the first one, so they matter. ``#`` comment lines are legal in v3 and only counted
  (``CastReader.comments``); in v2 they are reported (``comment_not_allowed``).
- A last line with no newline that is not valid JSON is what a killed writer leaves: it is reported
  as ``truncated``/``truncated_tail`` and everything before it is read.
- Invalid UTF-8 inside a line is replaced with U+FFFD and reported (``adjusted``/``invalid_utf8``);
  so is a lone surrogate spelled as a JSON escape (``lone_surrogate``), which no UTF-8 consumer
  downstream could encode.
- Event codes are any non-empty string (the format is open to new codes); data must be a string.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from recorder.cast.model import (
    MAX_HEADER_BYTES,
    MAX_LINE_BYTES,
    MAX_PROBLEMS,
    MAX_TIME_SECONDS,
    MAX_V1_BYTES,
    Event,
    Header,
    Problem,
    ProblemKind,
    Reason,
)
from recorder.errors import CastError, CastFormatError, CastTooLarge, CastValueError
from recorder.logfmt import get_logger

log = get_logger(__name__)

#: What open_cast() reads: a path, or a binary or text file object (BinaryIO and TextIO included).
Source = str | os.PathLike[str] | IO[bytes] | IO[str]

_BOM = b"\xef\xbb\xbf"
_SKIP_CHUNK = 64 * 1024
_US = 1_000_000
_MIN_TIME = -MAX_TIME_SECONDS
#: Lines and bytes read and parsed as one block (see CastReader._line_events).
_BLOCK_LINES = 256
_BLOCK_BYTES = 256 * 1024
# JSON can spell lone surrogates (\ud800) that no UTF-8 consumer downstream could encode.
_SURROGATE = re.compile("[\ud800-\udfff]")

# Header keys each version names; the rest goes to Header.extra untouched.
_NAMED_KEYS: dict[int, frozenset[str]] = {
    1: frozenset({"version", "width", "height", "timestamp", "command", "title", "env", "stdout"}),
    2: frozenset(
        {"version", "width", "height", "timestamp", "idle_time_limit", "command", "title", "env", "theme"}
    ),
    3: frozenset({"version", "term", "timestamp", "idle_time_limit", "command", "title", "env"}),
}
# Keys of the v3 "term" object that map onto Header fields; other term keys go to extra["term"].
_TERM_NAMED = frozenset({"cols", "rows", "type", "theme"})


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, list | dict) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    try:
        text = repr(value)
    except RecursionError:
        return f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _TextAsBytes(io.RawIOBase):
    """A raw byte stream over a text file object, UTF-8 encoded chunk by chunk."""

    def __init__(self, text: IO[str], chunk: int = _SKIP_CHUNK) -> None:
        super().__init__()
        self._text = text
        self._chunk = chunk
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            text = self._text.read(self._chunk)
            if not text:
                return 0
            # surrogatepass: a lone surrogate becomes bytes the line decoder then reports.
            self._pending = text.encode("utf-8", "surrogatepass")
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _as_binary(source: Source) -> tuple[IO[bytes], bool]:
    """A binary file object for ``source`` and whether the reader owns (and so closes) it."""
    if isinstance(source, str | os.PathLike):
        try:
            # Owned: CastReader.close() closes it.
            return open(source, "rb"), True
        except OSError as exc:
            raise CastError(f"cannot open recording {os.fspath(source)!r}: {exc.strerror or exc}") from exc
    try:
        probe = source.read(0)
    except (OSError, ValueError) as exc:
        raise CastError(f"cannot read recording: {exc}") from exc
    if isinstance(probe, str):
        return io.BufferedReader(_TextAsBytes(cast(IO[str], source))), False
    if isinstance(source, io.RawIOBase):
        # Raw files read lines a byte per system call; a buffer in front keeps that fast.
        return io.BufferedReader(source), False
    return cast(IO[bytes], source), False


def _parse_json(data: bytes) -> tuple[Any, str | None, bool]:
    """``(value, error, utf8_replaced)`` for one JSON document in UTF-8 bytes."""
    try:
        text = data.decode("utf-8")
        replaced = False
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        replaced = True
    try:
        return json.loads(text), None, replaced
    except ValueError as exc:
        return None, str(exc).splitlines()[0], replaced
    except RecursionError:
        return None, "JSON nested too deeply", replaced


def _replace_surrogates(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _seconds(value: Any) -> float | None:
    """``value`` as seconds when it is a number from 0 to MAX_TIME_SECONDS, else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_TIME_SECONDS:
        return float(value)
    return None


def _dimension(version: int, obj: dict[str, Any], key: str, label: str) -> int:
    value = obj.get(key)
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or value < 0:
        raise CastFormatError(
            f"asciicast v{version} header: {label} must be a non-negative integer, got {_short(value, 40)}"
        )
    return value


@dataclass(slots=True)
class _LineState:
    """Where an events() pass stands between lines: the last v2 time, the v3 running total."""

    prev_time: float = 0.0
    total_us: int = 0

    def absolute(self, time: float, is_v3: bool) -> tuple[float, tuple[Reason, str] | None]:
        """An event's absolute time from its written one, and the adjustment made, if any.

        v3 times are intervals, summed in whole microseconds (a negative one counts as 0); v2
        times are absolute, and one earlier than the last is clamped to it.
        """
        if is_v3:
            us = round(time * _US)
            adjusted = None
            if us < 0:
                adjusted = (Reason.NEGATIVE_INTERVAL, f"interval {time} clamped to 0")
                us = 0
            self.total_us += us
            return self.total_us / _US, adjusted
        adjusted = None
        if time < self.prev_time:
            adjusted = (Reason.TIME_WENT_BACKWARDS, f"time {time} clamped to {self.prev_time}")
            time = self.prev_time
        self.prev_time = float(time)
        return self.prev_time, adjusted


class CastReader:
    """An open recording: ``header`` at once, then ``events()`` streamed with absolute times."""

    def __init__(
        self,
        fileobj: IO[bytes],
        *,
        owned: bool = False,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_v1_bytes: int = MAX_V1_BYTES,
        max_problems: int = MAX_PROBLEMS,
    ) -> None:
        for name, limit in (
            ("max_line_bytes", max_line_bytes),
            ("max_header_bytes", max_header_bytes),
            ("max_v1_bytes", max_v1_bytes),
        ):
            if limit < 1:
                raise CastValueError(f"{name} must be at least 1, got {limit}")
        self._file = fileobj
        self._owned = owned
        self.max_line_bytes = max_line_bytes
        self.max_header_bytes = max_header_bytes
        self.max_v1_bytes = max_v1_bytes
        self.max_problems = max_problems
        #: Problems of the header and of the latest events() pass, at most ``max_problems`` of them.
        self.problems: list[Problem] = []
        #: Every problem counted, including those past ``max_problems``.
        self.problem_count = 0
        #: v3 ``#`` comment lines seen by the latest events() pass.
        self.comments = 0
        #: Bytes consumed so far, header included.
        self.bytes_read = 0
        #: Bytes up to the end of the last newline-terminated line: where a clean file would end.
        self.complete_bytes = 0
        #: True when the latest events() pass ended in a half-written line.
        self.truncated_tail = False
        self._header_problems: list[Problem] = []
        self._header_problem_count = 0
        self._header_bytes = 0
        self._header_complete = 0
        self._events_start: int | None = None
        self._passes = 0
        self._v1_frames: list[Any] = []
        self.version, self.header = self._read_header()
        self._header_problems = list(self.problems)
        self._header_problem_count = self.problem_count

    # -- header ---------------------------------------------------------------------------------

    def _read_header(self) -> tuple[int, Header]:
        f = self._file
        first = f.readline(self.max_header_bytes + 1)
        if not first:
            raise CastFormatError("empty file: not an asciicast recording")
        self.bytes_read = len(first)
        body = first[len(_BOM) :] if first.startswith(_BOM) else first
        if not body.lstrip().startswith(b"{"):
            raise CastFormatError("first line is not a JSON object: not an asciicast recording")
        too_long = len(first) > self.max_header_bytes and not first.endswith(b"\n")
        if not too_long:
            obj, _, replaced = _parse_json(body)
            if isinstance(obj, dict):
                if replaced:
                    self._problem(
                        1, ProblemKind.ADJUSTED, Reason.INVALID_UTF8, "header: replaced with U+FFFD"
                    )
                version = obj.get("version")
                if version == 1 and type(version) is int:
                    self._check_v1_trailing()
                    return 1, self._v1_header(obj)
                if version in (2, 3) and type(version) is int:
                    self.complete_bytes = self.bytes_read if first.endswith(b"\n") else 0
                    self._header_bytes = self.bytes_read
                    self._header_complete = self.complete_bytes
                    self._events_start = self._tell()
                    return version, self._line_header(version, obj)
                if "version" not in obj:
                    raise CastFormatError('JSON header has no "version": not an asciicast recording')
                raise CastFormatError(
                    f"unsupported asciicast version {_short(version, 20)} (expected 1, 2 or 3)"
                )
        return self._read_v1_document(body, too_long)

    def _tell(self) -> int | None:
        try:
            return self._file.tell() if self._file.seekable() else None
        except (OSError, ValueError):
            return None

    def _read_v1_document(self, body: bytes, too_long: bool) -> tuple[int, Header]:
        # The first line is not a JSON header: the file may be a pretty-printed (or one very long
        # line) v1 document, which is one JSON value and must be read whole, within max_v1_bytes.
        rest = self._file.read(max(0, self.max_v1_bytes - len(body)) + 1)
        document = body + rest
        self.bytes_read += len(rest)
        if len(document) > self.max_v1_bytes:
            if too_long:
                raise CastTooLarge("header line", self.max_header_bytes + 1, self.max_header_bytes)
            raise CastTooLarge(
                "first line is not a JSON header; as an asciicast v1 document the file",
                len(document),
                self.max_v1_bytes,
            )
        obj, error, replaced = _parse_json(document)
        if isinstance(obj, dict) and obj.get("version") == 1 and type(obj.get("version")) is int:
            if replaced:
                self._problem(
                    1, ProblemKind.ADJUSTED, Reason.INVALID_UTF8, "v1 document: replaced with U+FFFD"
                )
            return 1, self._v1_header(obj)
        if too_long:
            raise CastTooLarge("header line", self.max_header_bytes + 1, self.max_header_bytes)
        if isinstance(obj, dict):
            raise CastFormatError("asciicast v2/v3 header must be a single JSON line")
        raise CastFormatError(f"first line is not valid JSON ({error}): not an asciicast recording")

    def _check_v1_trailing(self) -> None:
        rest = self._file.read(_SKIP_CHUNK)
        self.bytes_read += len(rest)
        if rest.strip():
            self._problem(2, ProblemKind.SKIPPED, Reason.TRAILING_DATA, "data after the v1 document")

    def _v1_header(self, obj: dict[str, Any]) -> Header:
        stdout = obj.get("stdout")
        if not isinstance(stdout, list):
            raise CastFormatError('asciicast v1 document has no "stdout" list of frames')
        self._v1_frames = stdout
        self.complete_bytes = self.bytes_read
        header = Header(
            version=1,
            width=_dimension(1, obj, "width", '"width"'),
            height=_dimension(1, obj, "height", '"height"'),
        )
        self._common_fields(header, obj, 1)
        return header

    def _line_header(self, version: int, obj: dict[str, Any]) -> Header:
        if version == 2:
            header = Header(
                version=2,
                width=_dimension(2, obj, "width", '"width"'),
                height=_dimension(2, obj, "height", '"height"'),
            )
            theme = obj.get("theme")
            if isinstance(theme, dict):
                header.theme = theme
            elif theme is not None:
                self._bad_field("theme", theme)
        else:
            term = obj.get("term")
            if not isinstance(term, dict):
                raise CastFormatError('asciicast v3 header has no "term" object')
            header = Header(
                version=3,
                width=_dimension(3, term, "cols", '"term.cols"'),
                height=_dimension(3, term, "rows", '"term.rows"'),
            )
            term_type = term.get("type")
            if isinstance(term_type, str):
                header.term_type = self._clean_text("term.type", term_type)
            elif term_type is not None:
                self._bad_field("term.type", term_type)
            theme = term.get("theme")
            if isinstance(theme, dict):
                header.theme = theme
            elif theme is not None:
                self._bad_field("term.theme", theme)
            leftovers = {k: v for k, v in term.items() if k not in _TERM_NAMED}
            if leftovers:
                header.extra["term"] = leftovers
        self._common_fields(header, obj, version)
        return header

    def _common_fields(self, header: Header, obj: dict[str, Any], version: int) -> None:
        timestamp = obj.get("timestamp")
        if type(timestamp) is int or (type(timestamp) is float and abs(timestamp) <= 1e15):
            header.timestamp = int(timestamp)
        elif timestamp is not None:
            self._bad_field("timestamp", timestamp)
        limit = obj.get("idle_time_limit")
        seconds = _seconds(limit)
        if seconds is not None:
            header.idle_time_limit = seconds
        elif limit is not None:
            self._bad_field("idle_time_limit", limit)
        for key in ("command", "title"):
            value = obj.get(key)
            if isinstance(value, str):
                setattr(header, key, self._clean_text(key, value))
            elif value is not None:
                self._bad_field(key, value)
        env = obj.get("env")
        if isinstance(env, dict):
            header.env = env
        elif env is not None:
            self._bad_field("env", env)
        named = _NAMED_KEYS[version]
        for key, value in obj.items():
            if key not in named:
                header.extra[key] = value

    def _clean_text(self, key: str, value: str) -> str:
        fixed = _replace_surrogates(value)
        if fixed != value:
            self._problem(1, ProblemKind.ADJUSTED, Reason.LONE_SURROGATE, f"header {key}: U+FFFD put in")
        return fixed

    def _bad_field(self, key: str, value: Any) -> None:
        self._problem(1, ProblemKind.ADJUSTED, Reason.BAD_HEADER_FIELD, f"dropped {key}={_short(value)}")

    # -- problems -------------------------------------------------------------------------------

    def _problem(self, line: int, kind: ProblemKind, reason: Reason, detail: str = "") -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(line, kind, reason, detail))
        log.debug("cast.problem", line=line, kind=kind.value, reason=reason.value, detail=detail)

    # -- events ---------------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """Every usable event, absolute times, in file order; problems land in ``problems``."""
        if self._passes:
            self._rewind()
        self._passes += 1
        self.problems = list(self._header_problems)
        self.problem_count = self._header_problem_count
        self.comments = 0
        self.truncated_tail = False
        if self.version == 1:
            return self._v1_events()
        return self._line_events()

    def _rewind(self) -> None:
        if self.version == 1:
            return
        if self._events_start is None:
            raise CastError("events() can be read only once from a source that cannot seek")
        self._file.seek(self._events_start)
        self.bytes_read = self._header_bytes
        self.complete_bytes = self._header_complete

    def _v1_events(self) -> Iterator[Event]:
        total_us = 0
        for number, frame in enumerate(self._v1_frames, 1):
            if type(frame) is not list:
                self._problem(number, ProblemKind.SKIPPED, Reason.NOT_A_LIST, _short(frame))
                continue
            if len(frame) != 2:
                self._problem(
                    number, ProblemKind.SKIPPED, Reason.BAD_ARITY, f"{len(frame)} elements, expected 2"
                )
                continue
            delay, data = frame
            if type(delay) not in (int, float) or not _MIN_TIME <= delay <= MAX_TIME_SECONDS:
                self._problem(number, ProblemKind.SKIPPED, Reason.BAD_TIME, _short(delay))
                continue
            if type(data) is not str:
                self._problem(number, ProblemKind.SKIPPED, Reason.BAD_DATA, _short(data))
                continue
            fixed = _replace_surrogates(data)
            if fixed != data:
                self._problem(number, ProblemKind.ADJUSTED, Reason.LONE_SURROGATE, "replaced with U+FFFD")
                data = fixed
            us = round(delay * _US)
            if us < 0:
                self._problem(
                    number, ProblemKind.ADJUSTED, Reason.NEGATIVE_INTERVAL, f"delay {delay} clamped to 0"
                )
                us = 0
            total_us += us
            yield Event(total_us / _US, "o", data)

    def _line_events(self) -> Iterator[Event]:
        """v2/v3 events. Lines are read in blocks parsed as one JSON array (several times faster
        than a parse per line); a block with anything unusual in it is read again line by line,
        so every problem is reported exactly as the line-by-line reader would."""
        readline = self._file.readline
        limit = self.max_line_bytes
        # Blocks only from a file: a pipe or socket must hand each event on as soon as it arrives.
        block_lines = _BLOCK_LINES if self._events_start is not None else 1
        state = _LineState()
        lineno = 1
        block: list[bytes] = []
        size = 0
        while True:
            raw = readline(limit + 1)
            plain = raw[-2:] == b"]\n" and raw[0] == 0x5B  # '[' ... ']\n': a whole event line
            if plain:
                block.append(raw)
                size += len(raw)
                if len(block) < block_lines and size < _BLOCK_BYTES:
                    continue
            if block:
                self.bytes_read += size
                self.complete_bytes = self.bytes_read
                events = self._block_events(block, lineno, state)
                if events is None:
                    events = []
                    for i, line in enumerate(block, lineno + 1):
                        event = self._line_event(line, i, state)
                        if event is not None:
                            events.append(event)
                lineno += len(block)
                block = []
                size = 0
                yield from events
            if plain:
                continue
            if not raw:
                return
            lineno += 1
            self.bytes_read += len(raw)
            if raw[-1] == 0x0A:
                self.complete_bytes = self.bytes_read
            elif len(raw) > limit:
                size = len(raw) + self._skip_rest_of_line()
                self._problem(
                    lineno, ProblemKind.SKIPPED, Reason.LINE_TOO_LONG, f"at least {size} bytes, limit {limit}"
                )
                size = 0
                continue
            event = self._line_event(raw, lineno, state)
            if event is not None:
                yield event

    def _block_events(self, block: list[bytes], first: int, state: _LineState) -> list[Event] | None:
        """Events of whole lines parsed as one array; None when any line needs a closer look."""
        joined = b",".join(block)
        if b"\\ud" in joined or b"\\uD" in joined:
            return None  # maybe a lone surrogate: the line reader replaces and reports it
        try:
            objs = json.loads(b"[" + joined + b"]")
        except (ValueError, RecursionError):
            return None
        # Each line starts with "[" and ends with "]": with the same count of [time, code, data]
        # arrays as lines (no nested arrays; strings cannot span lines), each line is one event.
        if type(objs) is not list or len(objs) != len(block):
            return None
        events: list[Event] = []
        append = events.append
        is_v3 = self.version == 3
        # A copy: a block that turns out bad leaves the pass's state as it was.
        local = _LineState(state.prev_time, state.total_us)
        absolute = local.absolute
        # Reported only once the whole block is known good (else the line reader reports them).
        adjusted: list[tuple[int, tuple[Reason, str]]] = []
        for i, obj in enumerate(objs):
            if type(obj) is not list or len(obj) != 3:
                return None
            time, code, data = obj
            if (
                type(time) not in (float, int)
                or not _MIN_TIME <= time <= MAX_TIME_SECONDS
                or type(code) is not str
                or not code
                or type(data) is not str
            ):
                return None
            at, adjustment = absolute(time, is_v3)
            if adjustment is not None:
                adjusted.append((first + 1 + i, adjustment))
            append(Event(at, code, data))
        state.prev_time, state.total_us = local.prev_time, local.total_us
        for lineno, (reason, detail) in adjusted:
            self._problem(lineno, ProblemKind.ADJUSTED, reason, detail)
        return events

    def _line_event(self, raw: bytes, lineno: int, state: _LineState) -> Event | None:
        """The event of one line (read whole, within the limit), or None with the problem noted."""
        problem = self._problem
        skipped = ProblemKind.SKIPPED
        tail = raw[-1] != 0x0A
        if raw[0] == 0x23:  # '#'
            if self.version == 3:
                self.comments += 1
            else:
                problem(lineno, skipped, Reason.COMMENT_NOT_ALLOWED, "'#' comment lines are v3 only")
            return None
        try:
            text = raw.decode("utf-8")
            bad_utf8 = False
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            bad_utf8 = True
        if not text.strip():
            problem(lineno, skipped, Reason.BLANK_LINE)
            return None
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            if tail:
                self.truncated_tail = True
                problem(lineno, ProblemKind.TRUNCATED, Reason.TRUNCATED_TAIL, f"{len(raw)} bytes, no newline")
            else:
                detail = str(exc).splitlines()[0] if isinstance(exc, ValueError) else "nested too deeply"
                problem(lineno, skipped, Reason.INVALID_JSON, detail)
            return None
        if type(obj) is not list:
            problem(lineno, skipped, Reason.NOT_A_LIST, _short(obj))
            return None
        if len(obj) != 3:
            problem(lineno, skipped, Reason.BAD_ARITY, f"{len(obj)} elements, expected 3")
            return None
        time, code, data = obj
        # Exact type checks: bool is an int subclass and is not a time.
        if type(time) not in (float, int) or not _MIN_TIME <= time <= MAX_TIME_SECONDS:
            problem(lineno, skipped, Reason.BAD_TIME, _short(time))
            return None
        if type(code) is not str or not code:
            problem(lineno, skipped, Reason.BAD_CODE, _short(code))
            return None
        if type(data) is not str:
            problem(lineno, skipped, Reason.BAD_DATA, _short(data))
            return None
        if bad_utf8:
            problem(lineno, ProblemKind.ADJUSTED, Reason.INVALID_UTF8, "replaced with U+FFFD")
        if b"\\ud" in raw or b"\\uD" in raw:
            fixed_code, fixed_data = _replace_surrogates(code), _replace_surrogates(data)
            if fixed_code != code or fixed_data != data:
                problem(lineno, ProblemKind.ADJUSTED, Reason.LONE_SURROGATE, "replaced with U+FFFD")
                code, data = fixed_code, fixed_data
        at, adjustment = state.absolute(time, self.version == 3)
        if adjustment is not None:
            problem(lineno, ProblemKind.ADJUSTED, *adjustment)
        return Event(at, code, data)

    def _skip_rest_of_line(self) -> int:
        skipped = 0
        while True:
            chunk = self._file.readline(_SKIP_CHUNK)
            skipped += len(chunk)
            self.bytes_read += len(chunk)
            if not chunk:
                return skipped
            if chunk[-1] == 0x0A:
                self.complete_bytes = self.bytes_read
                return skipped

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file if this reader opened it."""
        if self._owned:
            self._file.close()

    def __enter__(self) -> CastReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_cast(
    source: Source,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_v1_bytes: int = MAX_V1_BYTES,
    max_problems: int = MAX_PROBLEMS,
) -> CastReader:
    """Open a recording (path, binary or text file object) and read its header; sniffs v1/v2/v3."""
    fileobj, owned = _as_binary(source)
    try:
        return CastReader(
            fileobj,
            owned=owned,
            max_line_bytes=max_line_bytes,
            max_header_bytes=max_header_bytes,
            max_v1_bytes=max_v1_bytes,
            max_problems=max_problems,
        )
    except BaseException:
        if owned:
            fileobj.close()
        raise


def read_header(source: Source) -> Header:
    """Only the header of a recording (reads the first line; a v1 document is read whole)."""
    with open_cast(source) as reader:
        return reader.header


@dataclass(frozen=True, slots=True)
class CastSummary:
    """What a full pass over a recording found: enough for crash recovery and the index."""

    version: int
    #: The header's declared ``duration`` when it has a valid one, else ``last_time``.
    duration: float
    #: Absolute time of the last event read (0.0 with no events).
    last_time: float
    #: Event count per code.
    counts: dict[str, int]
    events: int
    #: Bytes read (the file size for a path).
    size: int
    #: Bytes up to the end of the last complete line: truncate here to drop a half-written tail.
    complete_bytes: int
    #: True when the file ended in a half-written line.
    truncated: bool
    problems: tuple[Problem, ...]
    problem_count: int


def cast_summary(source: Source) -> CastSummary:
    """Read a whole recording (possibly half-written) and sum it up without keeping its events."""
    with open_cast(source) as reader:
        counts: dict[str, int] = {}
        last_time = 0.0
        total = 0
        for event in reader.events():
            counts[event.code] = counts.get(event.code, 0) + 1
            last_time = event.time
            total += 1
        declared = _seconds(reader.header.extra.get("duration"))
        duration = last_time if declared is None else declared
        return CastSummary(
            version=reader.version,
            duration=duration,
            last_time=last_time,
            counts=counts,
            events=total,
            size=reader.bytes_read,
            complete_bytes=reader.complete_bytes,
            truncated=reader.truncated_tail,
            problems=tuple(reader.problems),
            problem_count=reader.problem_count,
        )

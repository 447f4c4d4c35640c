"""The terminal player: paced output, keys (pause, step, next marker, speed, quit), live follow.

The loop in :class:`Player` touches the outside world through three injected edges: ``write``
(where output goes), ``clock`` (seconds, monotonic) and ``keys`` (a :class:`KeySource` whose
``wait(timeout)`` is both the sleep and the keyboard). Tests drive it with a fake clock and
scripted keys; :class:`TerminalKeys` is the real one (raw mode on the terminal, restored on every
way out, SIGTERM/SIGINT/SIGHUP turned into a quit).

Decisions:

- Playback time advances at ``speed`` times the clock while playing and stands still while
  paused; an event is written once playback time reaches it (a slow terminal does not stretch
  the recording). Delays longer than ``idle_limit`` are shortened to it.
- ``.`` while paused writes exactly one event. ``]`` writes everything up to and including the
  next marker at once, then pauses there. ``+``/``-`` double/halve the speed within
  :data:`MIN_SPEED`..:data:`MAX_SPEED`. ``q`` (or Ctrl-C) quits.
- Not paced (``paced=False``, what ``recorder play`` does when stdout is not a terminal and no
  ``--speed`` is given): every event is written at once, keys are not read.
- Resize events cannot resize the terminal the player writes to: they are counted
  (``PlayResult.resizes``, ``last_size``) and playback continues.
- Live follow: the event source may yield None, meaning "nothing new yet"; the player then waits
  ``poll_interval`` for keys. The first event after such a wait is written at once and playback
  time restarts from it, so live output is shown as it arrives, not delayed by idle time that
  already passed.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import select
import signal
import termios
import tty
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Protocol

from recorder.cast.model import MARKER, MAX_LINE_BYTES, MAX_TIME_SECONDS, OUTPUT, RESIZE, Event, Header
from recorder.cast.model import parse_resize as _parse_resize
from recorder.cast.reader import CastReader
from recorder.errors import CastFormatError, CastValueError, InvalidOffset
from recorder.logfmt import get_logger
from recorder.replay.export import clip_condensed

log = get_logger(__name__)

#: Slowest and fastest playback the +/- keys reach.
MIN_SPEED = 1 / 64
MAX_SPEED = 64.0
#: Factor applied by one press of + or -.
SPEED_STEP = 2.0
#: Seconds between two looks at a growing recording while following.
FOLLOW_POLL_SECONDS = 0.2
#: How long --follow waits for a recording's header line before giving up (seconds).
FOLLOW_HEADER_SECONDS = 10.0
#: Largest read from the keyboard at once.
KEY_READ_BYTES = 1024

#: Keys the player understands.
KEY_PAUSE = " "
KEY_STEP = "."
KEY_NEXT_MARKER = "]"
KEY_FASTER = "+"
KEY_SLOWER = "-"
KEY_QUIT = "q"
KEY_INTERRUPT = "\x03"  # Ctrl-C: raw mode delivers it as a key, not as SIGINT

#: Written to a terminal when playback ends: leave the alternate screen only if playback entered
#: it, then reset the pen, show the cursor, turn off mouse reporting, bracketed paste, application
#: cursor keys and keypad, and reset the scroll region without moving the cursor.
RESET_MODES = (
    "\x1b[0m\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?1l\x1b>\x1b7\x1b[r\x1b8"
)
LEAVE_ALTERNATE = "\x1b[?1049l"

_OFFSET_RE = re.compile(r"(?:(\d+):)??(?:(\d+):)?(\d+(?:\.\d*)?|\.\d+)")
_ALT_SWITCH_RE = re.compile(r"\x1b\[\?(?:1049|1047|47)([hl])")


def parse_offset(text: str) -> float:
    """Seconds from ``SS[.f]``, ``MM:SS[.f]`` or ``H:MM:SS[.f]``; InvalidOffset otherwise."""
    value = text.strip()
    m = _OFFSET_RE.fullmatch(value)
    if m is None:
        raise InvalidOffset(f"time {text!r} is not seconds, mm:ss or h:mm:ss (e.g. 90, 1:30, 1:02:03.5)")
    hours, minutes, seconds = m.group(1), m.group(2), float(m.group(3))
    if minutes is not None and seconds >= 60:
        raise InvalidOffset(f"time {text!r}: seconds must be below 60 after a colon")
    if hours is not None and minutes is not None and int(minutes) >= 60:
        raise InvalidOffset(f"time {text!r}: minutes must be below 60 in h:mm:ss")
    total = seconds + 60 * int(minutes or 0) + 3600 * int(hours or 0)
    if total > MAX_TIME_SECONDS:
        raise InvalidOffset(f"time {text!r} is beyond the {MAX_TIME_SECONDS:.0f} s limit")
    return total


# -- keys ------------------------------------------------------------------------------------------


class KeySource(Protocol):
    """Waits up to ``timeout`` seconds (None: forever) and returns the keys pressed, or None."""

    def wait(self, timeout: float | None) -> str | None:
        """Keys pressed, or None once ``timeout`` passed without any."""
        ...


class SleepKeys:
    """No keyboard: waiting is sleeping (stdin is not a terminal)."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        self._sleep = sleep

    def wait(self, timeout: float | None) -> str | None:
        """Sleep ``timeout`` seconds; no keys ever come (None: returns at once)."""
        if timeout is not None and timeout > 0:
            self._sleep(timeout)
        return None


class TerminalKeys:
    """Keys from a terminal in raw mode; termination signals arrive as Ctrl-C (see ``signal``)."""

    _SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self, fd: int) -> None:
        self.fd = fd
        #: The signal that ended playback, if one did.
        self.signal: int | None = None
        # Self-pipe: a signal handler cannot interrupt select() for us (PEP 475 retries it).
        self._wake: tuple[int, int] | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"!")

    @contextlib.contextmanager
    def raw(self) -> Iterator[TerminalKeys]:
        """Raw mode and signal handlers for the block; the settings and handlers come back on every exit."""
        saved = termios.tcgetattr(self.fd)
        self._wake = os.pipe()
        os.set_blocking(self._wake[1], False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in self._SIGNALS}
        try:
            tty.setraw(self.fd, termios.TCSANOW)
            yield self
        finally:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            wake, self._wake = self._wake, None
            for fd in wake:
                os.close(fd)

    def wait(self, timeout: float | None) -> str | None:
        """Keys typed within ``timeout`` seconds (inside :meth:`raw`); Ctrl-C once a signal came in."""
        if self.signal is not None:
            return KEY_INTERRUPT
        watched = [self.fd] if self._wake is None else [self.fd, self._wake[0]]
        try:
            ready, _, _ = select.select(watched, [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for other platforms
            ready = []
        if self.signal is not None:
            return KEY_INTERRUPT
        if self.fd in ready:
            try:
                data = os.read(self.fd, KEY_READ_BYTES)
            except OSError:
                return KEY_INTERRUPT  # the terminal went away
            if not data:
                return KEY_INTERRUPT
            return data.decode("utf-8", "replace")
        return None


# -- the loop --------------------------------------------------------------------------------------


@dataclass
class PlayResult:
    """How playback ended and what it saw."""

    #: "end" (the recording ran out), "quit" (q), "interrupt" (Ctrl-C or a signal).
    reason: str = "end"
    events: int = 0
    markers: int = 0
    resizes: int = 0
    last_size: tuple[int, int] | None = None
    #: Recording time of the last event written (seconds, on the input's clock).
    position: float = 0.0
    #: Speeds in effect over time (the first is the starting speed).
    speeds: list[float] = field(default_factory=list)


class Player:
    """Writes events to ``write`` paced by ``clock``, reading keys from ``keys``."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        clock: Callable[[], float],
        keys: KeySource,
        speed: float = 1.0,
        idle_limit: float | None = None,
        paced: bool = True,
        pause_on_markers: bool = False,
        poll_interval: float = FOLLOW_POLL_SECONDS,
    ) -> None:
        for name, value in (("speed", speed), ("poll interval", poll_interval)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise CastValueError(f"{name} must be a positive finite number, got {value!r}")
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise CastValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
        if idle_limit is not None and not (math.isfinite(idle_limit) and idle_limit > 0):
            raise CastValueError(f"idle limit must be a positive finite number, got {idle_limit!r}")
        self._write = write
        self._clock = clock
        self._keys = keys
        self.speed = float(speed)
        self._idle_limit = idle_limit
        self._paced = paced
        self._pause_on_markers = pause_on_markers
        self._poll = poll_interval
        self.paused = False
        self._skip_to_marker = False
        self._step = False
        self._stop: str | None = None
        # Playback time = anchor_pos + (clock - anchor_wall) * speed while playing.
        self._anchor_pos = 0.0
        self._anchor_wall = 0.0

    # -- timeline ----------------------------------------------------------------------------

    def _position(self) -> float:
        if self.paused:
            return self._anchor_pos
        return self._anchor_pos + (self._clock() - self._anchor_wall) * self.speed

    def _reanchor(self, pos: float) -> None:
        self._anchor_pos = pos
        self._anchor_wall = self._clock()

    # -- keys --------------------------------------------------------------------------------

    def _handle(self, keys: str | None, result: PlayResult, target: float) -> None:
        if not keys:
            return
        for key in keys:
            if key == KEY_QUIT:
                self._stop = "quit"
            elif key == KEY_INTERRUPT:
                self._stop = "interrupt"
            elif key == KEY_PAUSE:
                pos = min(self._position(), target)
                self.paused = not self.paused
                self._reanchor(pos)
            elif key == KEY_STEP and self.paused:
                self._step = True
            elif key == KEY_NEXT_MARKER:
                self._skip_to_marker = True
            elif key in (KEY_FASTER, KEY_SLOWER):
                pos = min(self._position(), target)
                factor = SPEED_STEP if key == KEY_FASTER else 1 / SPEED_STEP
                self.speed = min(MAX_SPEED, max(MIN_SPEED, self.speed * factor))
                self._reanchor(pos)
                result.speeds.append(self.speed)
            if self._stop is not None:
                return

    def _wait_until(self, target: float, result: PlayResult) -> None:
        """Return once ``target`` is due (or a step, a skip or a stop says so)."""
        while self._stop is None:
            if self._skip_to_marker:
                return
            if self.paused:
                if self._step:
                    self._step = False
                    return
                keys = self._keys.wait(None)
                if keys is None:
                    # An endless wait that ends without a key: there is no keyboard to resume with.
                    self.paused = False
                    self._reanchor(self._anchor_pos)
                self._handle(keys, result, target)
                continue
            remaining = (target - self._position()) / self.speed
            if remaining <= 0:
                # Due already: still look at the keyboard, so q works while catching up.
                self._handle(self._keys.wait(0), result, target)
                return
            self._handle(self._keys.wait(remaining), result, target)

    # -- playing -----------------------------------------------------------------------------

    def play(self, events: Iterable[Event | None]) -> PlayResult:
        """Play until the events run out or a key says stop; the caller restores the terminal."""
        result = PlayResult(speeds=[self.speed])
        self._reanchor(0.0)
        last_time = 0.0
        target = 0.0  # playback time of the current event: recording time with idle gaps capped
        live = False
        for ev in events:
            if ev is None:
                live = True
                self._handle(self._keys.wait(self._poll), result, target)
                if self._stop is not None:
                    break
                continue
            # A time going backwards is a zero delay, as in cast.timing.relative().
            delay = max(0.0, ev.time - last_time)
            if self._idle_limit is not None:
                delay = min(delay, self._idle_limit)
            target += delay
            last_time = max(ev.time, last_time)
            if live:
                live = False
                if not self.paused:
                    self._reanchor(target)
            if self._paced:
                self._wait_until(target, result)
                if self._stop is not None:
                    break
            self._emit(ev, result)
            result.position = ev.time
            if self.paused:
                self._anchor_pos = target
            if ev.code == MARKER:
                if self._skip_to_marker:
                    self._skip_to_marker = False
                    self.paused = True
                    self._reanchor(target)
                elif self._pause_on_markers and self._paced:
                    self.paused = True
                    self._reanchor(target)
        result.reason = self._stop or "end"
        return result

    def _emit(self, ev: Event, result: PlayResult) -> None:
        result.events += 1
        if ev.code == OUTPUT:
            self._write(ev.data)
        elif ev.code == MARKER:
            result.markers += 1
        elif ev.code == RESIZE:
            size = _parse_resize(ev.data)
            if size is not None:
                result.resizes += 1
                result.last_size = size


class AlternateTracker:
    """Follows output to know whether the alternate screen is on (to leave it when playback stops)."""

    def __init__(self) -> None:
        self.on = False
        self._tail = ""

    def feed(self, text: str) -> None:
        """Look at output text (a switch split across two chunks is still seen)."""
        chunk = self._tail + text
        for m in _ALT_SWITCH_RE.finditer(chunk):
            self.on = m.group(1) == "h"
        # Keep a tail long enough to hold a split "\x1b[?1049h".
        self._tail = chunk[-8:]


def restore_sequence(alternate: bool) -> str:
    """What to write to a terminal after playback: leave the alternate screen if on, reset modes."""
    return (LEAVE_ALTERNATE if alternate else "") + RESET_MODES


# -- follow ----------------------------------------------------------------------------------------


class CastTail:
    """Complete event lines appended to a growing asciicast v2/v3 file, parsed as they arrive."""

    def __init__(self, path: str | os.PathLike[str], *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise CastValueError(f"max_line_bytes must be at least 1, got {max_line_bytes}")
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise CastFormatError(f"cannot open recording {self.path}: {exc.strerror or exc}") from None
        self._buf = b""
        self._header_line: bytes | None = None
        self.header: Header | None = None
        self._base = 0.0  # v3: absolute time of the last event read
        self._skipping = False
        #: Lines longer than max_line_bytes that were dropped.
        self.lines_too_long = 0

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> CastTail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lines(self) -> list[bytes]:
        self._buf += self._file.read()
        lines: list[bytes] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.max_line_bytes:
                    # A line over the limit is dropped, as the reader does, up to its newline.
                    self._buf = b""
                    if not self._skipping:
                        self.lines_too_long += 1
                        log.warning("replay.follow_line_too_long", limit=self.max_line_bytes)
                    self._skipping = True
                return lines
            line, self._buf = self._buf[: nl + 1], self._buf[nl + 1 :]
            if self._skipping:
                self._skipping = False
                continue
            if len(line) - 1 > self.max_line_bytes:
                self.lines_too_long += 1
                log.warning("replay.follow_line_too_long", limit=self.max_line_bytes)
                continue
            lines.append(line)

    def poll(self) -> list[Event]:
        """Events from the lines completed since the last call (absolute times)."""
        lines = self._lines()
        if self._header_line is None:
            if not lines:
                return []
            self._header_line = lines.pop(0)
            reader = CastReader(io.BytesIO(self._header_line), max_line_bytes=self.max_line_bytes)
            if reader.version not in (2, 3):
                raise CastFormatError("--follow needs an asciicast v2 or v3 recording (v1 is one document)")
            self.header = reader.header
        if not lines:
            return []
        reader = CastReader(
            io.BytesIO(self._header_line + b"".join(lines)), max_line_bytes=self.max_line_bytes
        )
        events = list(reader.events())
        if reader.version == 3:
            # v3 times are intervals: this batch continues from the previous one's last event.
            events = [Event(ev.time + self._base, ev.code, ev.data) for ev in events]
        if events:
            self._base = events[-1].time
        return events


def follow_events(
    tail: CastTail, active: Callable[[], bool], initial: list[Event] | None = None
) -> Iterator[Event | None]:
    """Events of a growing recording: what is there, then new ones, None while nothing is new.

    Ends once ``active()`` says the recording is finished and the last lines are read.
    """
    if initial:
        yield from initial
    while True:
        batch = tail.poll()
        if batch:
            yield from batch
            continue
        if not active():
            yield from tail.poll()
            return
        yield None


def live_events(
    tail: CastTail,
    active: Callable[[], bool],
    *,
    start: float | None = None,
    header_timeout: float = FOLLOW_HEADER_SECONDS,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[Header, Iterator[Event | None]]:
    """A growing recording ready to play: the screen at ``start`` (default: now) first, then new events.

    Times are rebased so that ``start`` is 0. Waits up to ``header_timeout`` seconds for the header
    line of a recording that has not written it yet.
    """
    deadline = clock() + header_timeout
    initial = tail.poll()
    while tail.header is None:
        if not active() or clock() >= deadline:
            raise CastFormatError(f"{tail.path} has no asciicast header yet; is it a recording?")
        sleep(FOLLOW_POLL_SECONDS)
        initial = tail.poll()
    header = tail.header
    origin = (initial[-1].time if initial else 0.0) if start is None else start
    clipped_header, head = clip_condensed(header, initial, origin)

    def stream() -> Iterator[Event | None]:
        yield from head
        for ev in follow_events(tail, active):
            yield None if ev is None else Event(max(0.0, ev.time - origin), ev.code, ev.data)

    return clipped_header, stream()

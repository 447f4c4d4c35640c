"""Typed input as lines of text, from a recording's ``i`` events, for ``recorder search --in input``.

This is what the keyboard sent, not what the shell ran (the ``commands`` table has that, read
from the screen): history recall and tab completion are not visible here, but everything typed
is, including keys sent to full-screen programs and text typed at password prompts. Decisions:

- Enter (CR, LF; CR LF once) ends a line; so do Ctrl-C and Ctrl-D, which abandon a line that was
  still typed and so still belongs in an audit. Empty lines are not emitted.
- Line editing keys apply: Backspace/DEL removes a character, Ctrl-U the line, Ctrl-W a word.
- Escape sequences (arrows, function keys, Alt+key, bracketed-paste brackets) are dropped; pasted
  text is kept. Other control characters are dropped; a tab reads as a space.
- A line's offset is the time of its first key.

The parser is incremental: an escape sequence split across two events is still recognised.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum, auto

from recorder.cast.model import INPUT, Event

_ESC = "\x1b"
_CTRL_U = "\x15"
_CTRL_W = "\x17"
_ENDERS = frozenset("\r\n\x03\x04")
_ERASERS = frozenset("\x7f\x08")


@dataclass(frozen=True, slots=True)
class TypedLine:
    """One line of typed input and the time (seconds) its first key was sent."""

    offset: float
    text: str


class _State(Enum):
    TEXT = auto()
    ESC = auto()  # after ESC
    CSI = auto()  # ESC [ ... up to a final byte
    SS3 = auto()  # ESC O x
    STRING = auto()  # ESC ] / P / X / ^ / _ ... up to BEL or ESC \


class TypedLines:
    """Feed input events in order; completed lines come out of :meth:`take`."""

    def __init__(self) -> None:
        self._state = _State.TEXT
        self._line: list[str] = []
        self._start: float | None = None
        self._prev_cr = False
        self._done: list[TypedLine] = []

    @property
    def pending(self) -> bool:
        """Whether lines completed since the last :meth:`take` are waiting."""
        return bool(self._done)

    def take(self) -> list[TypedLine]:
        """Lines completed since the last call."""
        done, self._done = self._done, []
        return done

    def feed(self, time: float, data: str) -> None:
        """Add the keys of one input event sent at ``time``."""
        if data and self._state is _State.TEXT and data.isprintable():
            # Plain typing (the common event: one printable key): no state machine needed.
            # isprintable() is False for every control character, C1 included, and for tab.
            if not self._line:
                self._start = time
            self._line.extend(data)
            self._prev_cr = False
            return
        for char in data:
            self._char(time, char)

    def finish(self) -> None:
        """End of the recording: a line still being typed counts as typed."""
        self._end_line()

    def _end_line(self) -> None:
        text = "".join(self._line)
        if text.strip() and self._start is not None:
            self._done.append(TypedLine(self._start, text))
        self._line.clear()
        self._start = None

    def _char(self, time: float, char: str) -> None:
        state = self._state
        if state is _State.ESC:
            if char == "[":
                self._state = _State.CSI
            elif char == "O":
                self._state = _State.SS3
            elif char in "]PX^_":
                self._state = _State.STRING
            elif char == _ESC:
                self._state = _State.ESC
            else:
                self._state = _State.TEXT  # Alt+key: dropped
            return
        if state is _State.CSI:
            if "\x40" <= char <= "\x7e":
                self._state = _State.TEXT  # final byte (bracketed paste 200~/201~ included)
            elif char == _ESC:
                self._state = _State.ESC
            return
        if state is _State.SS3:
            self._state = _State.TEXT
            return
        if state is _State.STRING:
            if char == "\x07":
                self._state = _State.TEXT
            elif char == _ESC:
                self._state = _State.ESC  # ESC \ ends it; the "\" is then an Alt+key, dropped
            return
        self._text_char(time, char)

    def _text_char(self, time: float, char: str) -> None:
        was_cr, self._prev_cr = self._prev_cr, char == "\r"
        if char == _ESC:
            self._state = _State.ESC
        elif char in _ENDERS:
            if char == "\n" and was_cr:
                return
            self._end_line()
        elif char in _ERASERS:
            if self._line:
                self._line.pop()
        elif char == _CTRL_U:
            self._line.clear()
        elif char == _CTRL_W:
            while self._line and self._line[-1] == " ":
                self._line.pop()
            while self._line and self._line[-1] != " ":
                self._line.pop()
        elif char == "\t":
            self._append(time, " ")
        elif char >= " " and not ("\x80" <= char <= "\x9f"):
            self._append(time, char)

    def _append(self, time: float, char: str) -> None:
        if self._start is None or not self._line:
            self._start = time
        self._line.append(char)


def typed_lines(events: Iterable[Event]) -> Iterator[TypedLine]:
    """Every typed line of a recording's input events, in order."""
    lines = TypedLines()
    for event in events:
        if event.code == INPUT:
            lines.feed(event.time, event.data)
            yield from lines.take()
    lines.finish()
    yield from lines.take()

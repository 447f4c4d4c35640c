"""Rendered output text, line by line with time offsets, for full-text search.

Escape sequences are interpreted by the emulator, so a line is what the terminal showed, not the
bytes with escapes stripped: a progress bar redrawn with CR shows its final state, backspaced
text is gone, wrapped rows are one line.

Policy:

- Primary screen: a line is emitted once, when it is finalised: when it scrolls off the top,
  when an erase (ED 0/1/2) or a reset (RIS) wipes it, or at the end of the recording (then the
  visible rows down to the last non-blank one). Its offset is the last time its row changed.
  A row overwritten in place is emitted in its final state only, so an unchanged screen never
  yields the same lines twice. A blank line takes the offset of the line before it when that
  is later (blank rows are passed over, not written). Wrapped rows are joined into one line;
  a row that ends in a blank cell is treated as not wrapped (the wrap flag costs a repr; a
  break at a blank loses nothing for word search).
- Alternate screen (vim, less, top): the screen is sampled when a key is sent, before it is
  erased or reset, when the program leaves it, and at the end. Each sample emits the non-blank
  rows whose text was not already emitted during this alternate-screen session, so redraws do
  not flood the index; at most :data:`MAX_ALT_LINES` distinct texts are remembered per session.

Lines come out in the order they are finalised, so offsets are not monotonic: rows still on
screen come out at the next erase or at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import avt

from recorder.cast.model import Event, Header
from recorder.replay.driver import Observer, run
from recorder.replay.marks import Mark, MarkKind
from recorder.replay.screen import Screen, line_wrapped

#: Distinct alternate-screen lines remembered per full-screen session before forgetting them all.
MAX_ALT_LINES = 100_000


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of rendered output and when it last changed (seconds from the start)."""

    offset: float
    text: str


def _maybe_wrapped(line: avt.Line, raw: str) -> bool:
    return bool(raw) and raw[-1] != " " and line_wrapped(line)


class LineTracker(Observer):
    """Observer that emits finalised output lines (see the module docstring for the policy)."""

    def __init__(self, screen: Screen) -> None:
        self._rows: list[tuple[str, float]] = [("", 0.0)] * screen.rows
        self._saved_primary: list[tuple[str, float]] | None = None
        self._wrap: list[tuple[str, float]] = []
        self._alt_seen: set[str] = set()
        self._out: list[TextLine] = []
        self._last = 0.0

    def take(self) -> list[TextLine]:
        """Lines finalised since the last call."""
        out, self._out = self._out, []
        return out

    def low_water(self) -> float:
        """Earliest offset a line emitted from now on can have (inf when nothing is pending)."""
        times = [t for text, t in self._rows if text]
        times.extend(t for _, t in self._wrap)
        if self._saved_primary is not None:
            times.extend(t for text, t in self._saved_primary if text)
        return min(times, default=float("inf"))

    # -- emission -------------------------------------------------------------------------------

    def _emit(self, raw: str, time: float, wrapped: bool) -> None:
        if not raw.strip():
            # A blank row that output only passed over keeps an old time; it belongs where it sits.
            time = max(time, self._last)
        self._last = time
        if wrapped:
            self._wrap.append((raw, time))
            return
        if self._wrap:
            pieces = self._wrap
            self._wrap = []
            text = "".join(p for p, _ in pieces) + raw
            time = max(time, max(t for _, t in pieces))
            self._out.append(TextLine(time, text.rstrip()))
        else:
            self._out.append(TextLine(time, raw.rstrip()))

    def _emit_rows(self, screen: Screen, first: int, last: int) -> None:
        """Emit visible primary rows first..last (inclusive), trailing blank rows left out."""
        view = screen.visible_rows()
        while last >= first and not self._rows[last][0]:
            last -= 1
        for r in range(first, last + 1):
            line = view[r]
            raw = line.text
            self._emit(raw, self._rows[r][1], r < last and _maybe_wrapped(line, raw))
            self._rows[r] = ("", self._rows[r][1])
        self._flush_wrap()

    def _flush_wrap(self) -> None:
        if self._wrap:
            self._emit("", 0.0, False)

    def _sample_alt(self, screen: Screen) -> None:
        seen = self._alt_seen
        for text, time in self._rows:
            if text and text not in seen:
                if len(seen) >= MAX_ALT_LINES:
                    seen.clear()
                seen.add(text)
                self._out.append(TextLine(time, text))

    # -- tracking -------------------------------------------------------------------------------

    def _sync(self, screen: Screen, time: float) -> None:
        changed, scrolled = screen.drain_changes()
        rows = self._rows
        if not scrolled and len(rows) == screen.rows:
            # The common case (typed echo, output that stays on screen): re-read the changed rows.
            row_text = screen.row_text
            for r in changed:
                text = row_text(r).rstrip()
                if text != rows[r][0]:
                    rows[r] = (text, time)
            return
        n = len(scrolled)
        if n and not screen.alternate:
            for j, line in enumerate(scrolled):
                raw = line.text
                stripped = raw.rstrip()
                t = rows[j][1] if j < len(rows) and rows[j][0] == stripped else time
                self._emit(raw, t, _maybe_wrapped(line, raw))
            shift = min(n, len(rows))
            rows = rows[shift:] + [("", time)] * shift
        if len(rows) != screen.rows:
            rows = (rows + [("", time)] * screen.rows)[: screen.rows]
            changed = set(range(screen.rows))
        row_text = screen.row_text
        for r in changed:
            if r < len(rows):
                text = row_text(r).rstrip()
                if text != rows[r][0]:
                    rows[r] = (text, time)
        self._rows = rows

    def on_output(self, screen: Screen, time: float) -> None:
        """Bring the row texts and times up to date."""
        self._sync(screen, time)

    def on_input(self, screen: Screen, event: Event) -> None:
        """A key in a full-screen program: sample what the user was looking at."""
        if screen.alternate:
            self._sync(screen, event.time)
            self._sample_alt(screen)

    def needs_screen_at(self, screen: Screen, event: Event) -> bool:
        """Keys are sampled only in full-screen programs."""
        return screen.alternate

    def on_resize(self, screen: Screen, time: float) -> None:
        """Lines pushed off by a resize are finalised; the rest are re-read."""
        self._sync(screen, time)

    def on_mark(self, screen: Screen, mark: Mark, time: float) -> None:
        """Before an erase, reset or buffer switch: emit what is about to go."""
        kind = mark.kind
        if kind in (MarkKind.PROMPT_START, MarkKind.COMMAND_START, MarkKind.COMMAND_EXECUTED):
            return
        if kind is MarkKind.COMMAND_FINISHED:
            return
        self._sync(screen, time)
        blank = [("", time)] * screen.rows
        if screen.alternate:
            if kind is MarkKind.ALT_SCREEN_ON:
                return
            self._sample_alt(screen)
            if kind is MarkKind.ALT_SCREEN_OFF or kind is MarkKind.RESET:
                primary = self._saved_primary or blank
                self._saved_primary = None
                self._alt_seen = set()
                if kind is MarkKind.RESET:
                    for text, t in primary:
                        if text:
                            self._out.append(TextLine(t, text))
                    primary = blank
                self._rows = (primary + blank)[: screen.rows]
            else:
                self._rows = list(blank)
            return
        if kind is MarkKind.ALT_SCREEN_ON:
            self._saved_primary = self._rows
            self._rows = list(blank)
            return
        if kind is MarkKind.ALT_SCREEN_OFF:
            return
        c = screen.cursor
        row = min(c.row, screen.rows - 1)
        if kind is MarkKind.ERASE_BELOW:
            self._emit_rows(screen, row if c.col == 0 else row + 1, screen.rows - 1)
        elif kind is MarkKind.ERASE_ABOVE:
            self._emit_rows(screen, 0, row - 1)
        else:
            self._emit_rows(screen, 0, screen.rows - 1)

    def finish(self, screen: Screen, time: float) -> None:
        """End of the recording: everything still shown is final."""
        self._sync(screen, time)
        if screen.alternate:
            self._sample_alt(screen)
            for text, t in self._saved_primary or []:
                if text:
                    self._out.append(TextLine(t, text))
            self._saved_primary = None
            self._flush_wrap()
        else:
            self._emit_rows(screen, 0, screen.rows - 1)


def output_lines(header: Header, events: Iterable[Event]) -> Iterator[TextLine]:
    """Rendered output lines, each once when finalised, with the time it last changed."""
    screen = Screen(header.width, header.height, collect_scrolled=True)
    tracker = LineTracker(screen)
    for _ in run(screen, events, [tracker]):
        if tracker._out:
            yield from tracker.take()

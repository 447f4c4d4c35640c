"""A terminal screen: asciinema's own emulator (avt, through pyavt) behind a small typed API.

Why avt and not pyte: on 3 MB of real output avt feeds about 100 MB/s and pyte about 1 MB/s
(bench/bench_replay.py). The wrapper adds what replay needs and avt does not report:
which buffer is active (primary or alternate), where OSC 133 marks fall in the stream
(:mod:`recorder.replay.marks`), absolute row numbers that survive scrolling, the lines that
scrolled off the top, and whether the emulator is between escape sequences (so a snapshot
taken there replays exactly).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import avt

from recorder.errors import ScreenSizeError
from recorder.replay.marks import Mark, MarkKind, MarkScanner

#: Widest and tallest terminal the emulator accepts (a resize beyond this is a damaged recording).
MAX_COLS = 1000
MAX_ROWS = 500
#: How many rows that scrolled off the top are kept for reading back (commands spanning a scroll).
HISTORY_ROWS = 1000
#: How far back from the end of the last fed text to look for an unterminated escape sequence.
OPEN_SEQUENCE_WINDOW = 4096

#: A colour: None for the terminal default, an int for a palette index (0-255), or (r, g, b).
Color = int | tuple[int, int, int] | None

_INTRODUCERS = ("\x1b", "\x9b", "\x9d", "\x90", "\x98", "\x9e", "\x9f")
_CSI_DONE = re.compile(r"[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]")
_ESC_DONE = re.compile(r"[\x20-\x2f]*[\x30-\x7e]")
# Escapes that may move the cursor up or switch buffers (anything but SGR, EL, OSC and charsets).
_MAY_JUMP = re.compile(r"\x1b(?:\[[0-9;:?<=>]*[^0-9;:?<=>mK]|[78DEMc])|[\x9b\x8d]")


@dataclass(frozen=True, slots=True)
class Style:
    """How a run of cells is drawn."""

    fg: Color = None
    bg: Color = None
    bold: bool = False
    faint: bool = False
    italic: bool = False
    underline: bool = False
    strikethrough: bool = False
    blink: bool = False
    inverse: bool = False


DEFAULT_STYLE = Style()


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive cells of one row with the same style; ``width`` counts cells (wide chars take 2)."""

    column: int
    width: int
    text: str
    style: Style
    #: Each character's column relative to ``column`` when some are wide; None when all are 1 cell.
    offsets: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Cursor position (0-based); ``col`` equals the width while a wrap is pending."""

    row: int
    col: int
    visible: bool


@dataclass(frozen=True, slots=True)
class ScreenState:
    """Everything needed to rebuild a :class:`Screen` exactly (see :meth:`Screen.state`)."""

    cols: int
    rows: int
    dump: str
    alternate: bool
    scrolled: int
    pending: str


def check_size(cols: int, rows: int) -> None:
    """Raise ScreenSizeError unless 1 <= cols <= MAX_COLS and 1 <= rows <= MAX_ROWS."""
    if not (1 <= cols <= MAX_COLS and 1 <= rows <= MAX_ROWS):
        raise ScreenSizeError(cols, rows, MAX_COLS, MAX_ROWS)


def _color(c: avt.Color | None) -> Color:
    if c is None:
        return None
    if isinstance(c, avt.Color.RGB):
        return (c[0], c[1], c[2])
    if isinstance(c, avt.Color.Indexed):
        return int(c[0])
    return None


def _style(pen: avt.Pen) -> Style:
    if pen.is_default():
        return DEFAULT_STYLE
    return Style(
        fg=_color(pen.foreground),
        bg=_color(pen.background),
        bold=pen.bold,
        faint=pen.faint,
        italic=pen.italic,
        underline=pen.underline,
        strikethrough=pen.strikethrough,
        blink=pen.blink,
        inverse=pen.inverse,
    )


def _run(start: int, width: int, chars: list[str], style: Style, offsets: list[int] | None) -> Run:
    return Run(start, width, "".join(chars), style, tuple(offsets) if offsets is not None else None)


def line_wrapped(line: avt.Line) -> bool:
    """Whether the row continues on the next one (the text was wrapped, not broken by a newline)."""
    # pyavt does not expose the flag; its repr (the Rust Debug form) appends "⏎" to wrapped rows.
    r = repr(line)
    if not r.endswith('⏎")'):
        return False
    # A row whose last cell really holds "⏎" ends that way too: then a wrap adds a second one.
    return not line.text.endswith("⏎") or r.endswith('⏎⏎")')


def _cells_text(line: avt.Line, start: int = 0, end: int | None = None, cols: int | None = None) -> str:
    """The text of cells ``start:end``; ``cols`` (the line's width, when known) allows a fast path."""
    if cols is not None:
        text = line.text
        # One character per cell (no wide characters): slicing the text is exact and avoids
        # building a Python object per cell.
        if len(text) == cols:
            return text[start:end]
    return "".join(c.char for c in line.cells[start:end] if c.width)


def _sequence_open(text: str) -> bool:
    """Whether ``text`` ends inside an escape sequence (an emulator would wait for more)."""
    window = text[-OPEN_SEQUENCE_WINDOW:]
    p = max(window.rfind(ch) for ch in _INTRODUCERS)
    if p < 0:
        return False
    seq = window[p:]
    lead = seq[0]
    if lead == "\x1b":
        if len(seq) == 1:
            return True
        kind, rest = seq[1], seq[2:]
        if kind == "[":
            return _CSI_DONE.match(rest) is None
        if kind == "]":
            return "\x07" not in rest
        if kind in "PX^_":
            return True  # DCS/SOS/PM/APC end only with ST, whose ESC would be the last introducer
        return _ESC_DONE.match(seq, 1) is None
    if lead == "\x9b":
        return _CSI_DONE.match(seq, 1) is None
    if lead == "\x9d":
        return "\x07" not in seq
    return True


class Screen:
    """A terminal of ``cols`` x ``rows`` fed with output text."""

    def __init__(
        self, cols: int, rows: int, *, history: int = HISTORY_ROWS, collect_scrolled: bool = False
    ) -> None:
        check_size(cols, rows)
        self._vt = avt.Vt(cols, rows, scrollback_limit=0)
        self._cols = cols
        self._rows = rows
        self._scanner = MarkScanner()
        self._alternate = False
        self._scrolled = 0
        self._history: deque[avt.Line] = deque(maxlen=history)
        self._collect = collect_scrolled
        self._collected: list[avt.Line] = []
        self._changed: set[int] = set()
        self._dirty_from = rows
        self._last_raw = ""
        self._layout = 0

    # -- feeding -------------------------------------------------------------------------------

    def feed(self, text: str) -> None:
        """Interpret output text."""
        for part in self._scanner.scan(text):
            if isinstance(part, str):
                self._feed_raw(part)
            else:
                self._apply(part)

    def feed_marks(self, text: str) -> Iterator[Mark]:
        """Interpret output text, pausing at each mark *before* its own sequence takes effect."""
        for part in self._scanner.scan(text):
            if isinstance(part, str):
                self._feed_raw(part)
            else:
                yield part
                self._apply(part)

    def split(self, text: str) -> list[str | Mark]:
        """Scan output text into pieces and marks without feeding it (see :meth:`feed_piece`)."""
        return self._scanner.scan(text)

    def feed_piece(self, text: str) -> None:
        """Feed a text piece from :meth:`split` (any slice of one, in order)."""
        self._feed_raw(text)

    def is_plain(self, text: str) -> bool:
        """Whether ``text`` holds no escape and no LF and no sequence is open: nothing to split or
        stop at, so it can go straight to :meth:`feed_piece` (the common case: typed echo, plain
        output)."""
        return not self._scanner.pending and "\x1b" not in text and "\n" not in text

    def apply(self, mark: Mark) -> None:
        """Let a mark from :meth:`split` take effect (call after looking at the screen)."""
        self._apply(mark)

    def flush(self) -> None:
        """Feed text held back as a possible split sequence (call at the end of the stream)."""
        rest = self._scanner.flush()
        if rest:
            self._feed_raw(rest)

    def resize(self, cols: int, rows: int) -> None:
        """Change the size; the emulator reflows wrapped lines like a real terminal."""
        check_size(cols, rows)
        changed, scrolled = self._vt.resize(cols, rows)
        self._cols, self._rows = cols, rows
        self._layout += 1
        self._took(list(range(rows)), scrolled)
        self._dirty_from = 0

    def _feed_raw(self, text: str) -> None:
        if not text:
            return
        if self._collect and self._dirty_from:
            # Plain text only writes at and below the cursor; anything else may touch any row.
            if _MAY_JUMP.search(text):
                self._dirty_from = 0
            else:
                self._dirty_from = min(self._dirty_from, self._vt.cursor.row)
        changed, scrolled = self._vt.feed_str(text)
        self._last_raw = text
        self._took(changed, scrolled)
        if scrolled and self._collect:
            self._dirty_from = max(0, self._dirty_from - len(scrolled))

    def _took(self, changed: list[int], scrolled: list[avt.Line]) -> None:
        if changed and self._collect:
            self._changed.update(changed)
        if scrolled:
            self._scrolled += len(scrolled)
            self._history.extend(scrolled)
            if self._collect:
                self._collected.extend(scrolled)

    def _apply(self, mark: Mark) -> None:
        kind = mark.kind
        if kind is MarkKind.ALT_SCREEN_ON:
            self._alternate = True
        elif kind is MarkKind.ALT_SCREEN_OFF or kind is MarkKind.RESET:
            self._alternate = False

    # -- state ---------------------------------------------------------------------------------

    @property
    def cols(self) -> int:
        """Width in cells."""
        return self._cols

    @property
    def rows(self) -> int:
        """Height in rows."""
        return self._rows

    @property
    def cursor(self) -> Cursor:
        """Where the cursor is."""
        c = self._vt.cursor
        return Cursor(c.row, c.col, c.visible)

    @property
    def alternate(self) -> bool:
        """Whether the alternate screen (full-screen programs) is active."""
        return self._alternate

    @property
    def scrolled(self) -> int:
        """How many rows have scrolled off the top since the start: row r is absolute row scrolled + r."""
        return self._scrolled

    @property
    def layout(self) -> int:
        """Counter bumped by every resize: absolute rows from different layouts do not compare."""
        return self._layout

    @property
    def at_rest(self) -> bool:
        """Whether no escape sequence is half-fed (a snapshot taken now replays exactly)."""
        return not self._scanner.pending and not _sequence_open(self._last_raw)

    # -- reading -------------------------------------------------------------------------------

    def lines(self) -> list[str]:
        """The visible rows as text, trailing blanks removed."""
        return [line.text.rstrip() for line in self._vt.view()]

    def styled_lines(self) -> list[list[Run]]:
        """The visible rows as runs of equally styled cells (blank default cells included)."""
        out: list[list[Run]] = []
        for line in self._vt.view():
            runs: list[Run] = []
            pen: avt.Pen | None = None
            style = DEFAULT_STYLE
            start = 0
            chars: list[str] = []
            offsets: list[int] = []
            wide = False
            cells = line.cells
            for col, cell in enumerate(cells):
                if pen is None or cell.pen != pen:
                    if col > start:
                        runs.append(_run(start, col - start, chars, style, offsets if wide else None))
                    pen = cell.pen
                    style = _style(pen)
                    start = col
                    chars, offsets, wide = [], [], False
                w = cell.width
                if w:
                    chars.append(cell.char)
                    offsets.append(col - start)
                    wide = wide or w > 1
            if len(cells) > start:
                runs.append(_run(start, len(cells) - start, chars, style, offsets if wide else None))
            out.append(runs)
        return out

    def row_wrapped(self, row: int) -> bool:
        """Whether visible row ``row`` continues on the next row."""
        return line_wrapped(self._vt[row])

    def _logical_bounds(self, row: int) -> tuple[int, int]:
        view = self._vt.view()
        first = row
        while first > 0 and line_wrapped(view[first - 1]):
            first -= 1
        last = row
        while last < len(view) - 1 and line_wrapped(view[last]):
            last += 1
        return first, last

    def cursor_line_text(self) -> str:
        """The logical line under the cursor (wrapped rows joined), trailing blanks removed."""
        row = min(self._vt.cursor.row, self._rows - 1)
        first, last = self._logical_bounds(row)
        view = self._vt.view()
        return "".join(view[r].text for r in range(first, last + 1)).rstrip()

    def text_before_cursor(self) -> str:
        """The logical line under the cursor, from its start up to the cursor."""
        c = self._vt.cursor
        row = min(c.row, self._rows - 1)
        first, _ = self._logical_bounds(row)
        view = self._vt.view()
        head = "".join(view[r].text for r in range(first, row))
        return head + _cells_text(view[row], 0, c.col, self._cols)

    def _row_line(self, absolute: int) -> avt.Line | None:
        r = absolute - self._scrolled
        if 0 <= r < self._rows:
            return self._vt[r]
        h = len(self._history) + r
        if r < 0 and h >= 0:
            return self._history[h]
        return None

    def text_between(self, start_row: int, start_col: int, end_row: int, end_col: int) -> str | None:
        """Text from an absolute position up to (not including) another; None if rows were lost.

        Wrapped rows are joined, other row ends become newlines, each line right-stripped.
        """
        if end_row < start_row:
            return None
        parts: list[str] = []
        for absolute in range(start_row, end_row + 1):
            line = self._row_line(absolute)
            if line is None:
                return None
            lo = start_col if absolute == start_row else 0
            hi = end_col if absolute == end_row else None
            # Visible rows have the screen's width; a scrolled-off row may be from another layout.
            visible = 0 <= absolute - self._scrolled < self._rows
            parts.append(_cells_text(line, lo, hi, self._cols if visible else None))
            if absolute != end_row:
                parts.append("" if line_wrapped(line) else "\n")
        return "\n".join(piece.rstrip() for piece in "".join(parts).split("\n"))

    def logical_line_at(self, absolute: int) -> tuple[int, str] | None:
        """(first absolute row, text) of the logical line holding absolute row ``absolute``."""
        line = self._row_line(absolute)
        if line is None:
            return None
        first = absolute
        while True:
            prev = self._row_line(first - 1)
            if prev is None or not line_wrapped(prev):
                break
            first -= 1
        texts: list[str] = []
        r = first
        cur: avt.Line | None = self._row_line(r)
        while cur is not None:
            texts.append(cur.text)
            if not line_wrapped(cur) or r >= self._scrolled + self._rows - 1:
                break
            r += 1
            cur = self._row_line(r)
        return first, "".join(texts).rstrip()

    def drain_changes(self) -> tuple[set[int], list[avt.Line]]:
        """Visible rows that may have changed and rows scrolled off since the last call.

        Needs ``collect_scrolled``. Row indexes are in the current view: after a scroll, rows
        above the first one listed hold what the rows below them held before.
        """
        lowest = self._dirty_from
        changed = {r for r in self._changed if r >= lowest} if lowest else self._changed
        scrolled = self._collected
        self._changed, self._collected, self._dirty_from = set(), [], self._rows
        return changed, scrolled

    def row_text(self, row: int) -> str:
        """Visible row ``row`` as text (not stripped)."""
        return self._vt[row].text

    def visible_rows(self) -> list[avt.Line]:
        """The visible rows as emulator lines (for callers that need wrap flags)."""
        return self._vt.view()

    # -- snapshots -----------------------------------------------------------------------------

    def state(self) -> ScreenState:
        """A snapshot of this screen (exact when :attr:`at_rest`)."""
        return ScreenState(
            self._cols, self._rows, self._vt.dump(), self._alternate, self._scrolled, self._scanner.pending
        )

    @classmethod
    def from_state(cls, state: ScreenState, *, history: int = HISTORY_ROWS) -> Screen:
        """Rebuild a screen from :meth:`state` (scrolled-off history is not kept)."""
        screen = cls(state.cols, state.rows, history=history)
        screen._vt.feed_str(state.dump)
        screen._alternate = state.alternate
        screen._scrolled = state.scrolled
        screen._scanner.pending = state.pending
        return screen

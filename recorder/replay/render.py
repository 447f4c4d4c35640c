"""The screen at a moment of a recording, drawn as text, SVG or PNG; fast seeking with snapshots.

Seeking replays output into an emulator. :class:`Snapshots` keeps the emulator's own
serialisation (avt's ``dump()``: escape sequences that rebuild both buffers, cursor, pen,
modes, scroll region and charsets) every :data:`SNAPSHOT_CHARS` characters of output or
:data:`SNAPSHOT_SECONDS` of recording time, taken only between escape sequences, so seeking
replays at most one interval.
"""

from __future__ import annotations

import bisect
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont

from recorder.cast.model import OUTPUT, RESIZE, Event, Header, parse_resize
from recorder.errors import RenderTooLarge
from recorder.logfmt import get_logger
from recorder.replay.screen import Color, Screen, ScreenState, Style

log = get_logger(__name__)

#: Output characters between two snapshots.
SNAPSHOT_CHARS = 1_000_000
#: Recording seconds between two snapshots (when some output came in between).
SNAPSHOT_SECONDS = 300.0
#: Largest PNG the renderer draws, in pixels.
MAX_PNG_PIXELS = 40_000_000
#: Default font size (pixels) for SVG and PNG.
FONT_SIZE = 14
#: Monospace TrueType fonts tried for PNG, regular then bold (Debian's fonts-dejavu-core first).
FONT_CANDIDATES = (
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
    ),
    ("/usr/share/fonts/dejavu/DejaVuSansMono.ttf", "/usr/share/fonts/dejavu/DejaVuSansMono-Bold.ttf"),
)

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_HEX = re.compile(r"#?([0-9a-fA-F]{6})")

RGB = tuple[int, int, int]


# -- colours ---------------------------------------------------------------------------------------


def _hex(value: str) -> RGB | None:
    m = _HEX.fullmatch(value.strip())
    if m is None:
        return None
    n = int(m.group(1), 16)
    return (n >> 16 & 255, n >> 8 & 255, n & 255)


_XTERM16: tuple[RGB, ...] = tuple(
    _hex(c) or (0, 0, 0)
    for c in (
        "000000 cd0000 00cd00 cdcd00 0000ee cd00cd 00cdcd e5e5e5 "
        "7f7f7f ff0000 00ff00 ffff00 5c5cff ff00ff 00ffff ffffff"
    ).split()
)


@dataclass(frozen=True, slots=True)
class Theme:
    """Default foreground, background and the 16 base colours (the rest of 256 are fixed)."""

    fg: RGB = (0xD0, 0xD0, 0xD0)
    bg: RGB = (0x12, 0x12, 0x12)
    palette: tuple[RGB, ...] = _XTERM16

    @classmethod
    def from_asciicast(cls, theme: dict[str, Any] | None) -> Theme:
        """A theme from an asciicast header's ``theme`` ({"fg", "bg", "palette": "#..:#.."}), else default."""
        if not isinstance(theme, dict):
            return cls()
        fg = _hex(str(theme.get("fg", "")))
        bg = _hex(str(theme.get("bg", "")))
        raw = theme.get("palette")
        colours = [_hex(p) for p in raw.split(":")] if isinstance(raw, str) else []
        if fg is None or bg is None or len(colours) not in (8, 16) or any(c is None for c in colours):
            log.warning("replay.theme_ignored", reason="not fg/bg/palette of 8 or 16 #rrggbb colours")
            return cls()
        palette = [c for c in colours if c is not None]
        if len(palette) == 8:
            palette += palette
        return cls(fg, bg, tuple(palette))

    def rgb(self, color: Color, default: RGB) -> RGB:
        """The RGB value of a cell colour."""
        if color is None:
            return default
        if isinstance(color, tuple):
            return color
        if color < 16:
            return self.palette[color]
        if color < 232:
            i = color - 16
            levels = (0, 95, 135, 175, 215, 255)
            return (levels[i // 36], levels[i // 6 % 6], levels[i % 6])
        g = 8 + 10 * (color - 232)
        return (g, g, g)

    def colors(self, style: Style) -> tuple[RGB, RGB]:
        """(foreground, background) of a style, inverse applied."""
        fg = self.rgb(style.fg, self.fg)
        bg = self.rgb(style.bg, self.bg)
        if style.inverse:
            fg, bg = bg, fg
        if style.faint:
            fg = (fg[0] * 2 + bg[0]) // 3, (fg[1] * 2 + bg[1]) // 3, (fg[2] * 2 + bg[2]) // 3
        return fg, bg


DEFAULT_THEME = Theme()


def _css(rgb: RGB) -> str:
    return f"#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}"


# -- seeking ---------------------------------------------------------------------------------------


def _apply(screen: Screen, ev: Event) -> None:
    if ev.code == OUTPUT:
        screen.feed(ev.data)
    elif ev.code == RESIZE:
        size = parse_resize(ev.data)
        if size is not None:
            screen.resize(*size)


def screen_at(header: Header, events: Iterable[Event], at: float) -> Screen:
    """The screen as it was at ``at`` seconds (every event with time <= at applied, resizes too)."""
    screen = Screen(header.width, header.height)
    for ev in events:
        if ev.time > at:
            break
        _apply(screen, ev)
    screen.flush()
    return screen


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The screen after ``events[:index]``; ``time`` is the last applied event's time."""

    index: int
    time: float
    state: ScreenState


class Snapshots:
    """Periodic emulator snapshots of one recording, for seeking without replaying from the start."""

    def __init__(
        self,
        header: Header,
        events: Sequence[Event],
        *,
        every_chars: int = SNAPSHOT_CHARS,
        every_seconds: float = SNAPSHOT_SECONDS,
    ) -> None:
        if every_chars < 1 or not every_seconds > 0:
            raise ValueError("snapshot intervals must be positive")
        self._header = header
        self._events = events
        self._snaps: list[Snapshot] = []
        screen = Screen(header.width, header.height)
        chars = 0
        last_time = 0.0
        for i, ev in enumerate(events):
            _apply(screen, ev)
            if ev.code == OUTPUT:
                chars += len(ev.data)
            due = chars >= every_chars or (chars and ev.time - last_time >= every_seconds)
            if due and screen.at_rest:
                self._snaps.append(Snapshot(i + 1, ev.time, screen.state()))
                chars = 0
                last_time = ev.time
        self._times = [s.time for s in self._snaps]

    def __len__(self) -> int:
        return len(self._snaps)

    def screen_at(self, at: float) -> Screen:
        """The screen at ``at`` seconds, replayed from the nearest earlier snapshot."""
        k = bisect.bisect_right(self._times, at) - 1
        if k < 0:
            return screen_at(self._header, self._events, at)
        snap = self._snaps[k]
        screen = Screen.from_state(snap.state)
        events = self._events
        for i in range(snap.index, len(events)):
            ev = events[i]
            if ev.time > at:
                break
            _apply(screen, ev)
        screen.flush()
        return screen


# -- text ------------------------------------------------------------------------------------------


def render_txt(screen: Screen) -> str:
    """The visible rows as plain text, one line per row."""
    return "\n".join(screen.lines()) + "\n"


# -- SVG -------------------------------------------------------------------------------------------


def _xml(text: str) -> str:
    return escape(_XML_BAD.sub("\ufffd", text))


def render_svg(screen: Screen, *, theme: Theme = DEFAULT_THEME, font_size: int = FONT_SIZE) -> str:
    """A self-contained SVG of the screen: monospace grid, colours, bold/italic/underline, cursor."""
    cw = round(font_size * 0.6, 2)
    ch = round(font_size * 1.2, 2)
    width = math.ceil(screen.cols * cw)
    height = math.ceil(screen.rows * ch)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="\'DejaVu Sans Mono\', Menlo, Consolas, monospace" '
        f'font-size="{font_size}">',
        f'<rect width="100%" height="100%" fill="{_css(theme.bg)}"/>',
    ]
    texts: list[str] = []
    cursor = screen.cursor
    for r, runs in enumerate(screen.styled_lines()):
        y = round(r * ch, 2)
        base = round(r * ch + font_size * 0.95, 2)
        for run in runs:
            fg, bg = theme.colors(run.style)
            x = round(run.column * cw, 2)
            if bg != theme.bg:
                w = round(run.width * cw, 2)
                out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{ch}" fill="{_css(bg)}"/>')
            text = run.text.rstrip(" ")
            if not text:
                continue
            cells = run.width - (len(run.text) - len(text))
            attrs = [f'x="{x}"', f'y="{base}"', f'fill="{_css(fg)}"', f'textLength="{round(cells * cw, 2)}"']
            st = run.style
            if st.bold:
                attrs.append('font-weight="bold"')
            if st.italic:
                attrs.append('font-style="italic"')
            deco = [d for d, on in (("underline", st.underline), ("line-through", st.strikethrough)) if on]
            if deco:
                attrs.append(f'text-decoration="{" ".join(deco)}"')
            texts.append(f'<text {" ".join(attrs)} lengthAdjust="spacingAndGlyphs">{_xml(text)}</text>')
    out.append('<g xml:space="preserve">')
    out.extend(texts)
    out.append("</g>")
    if cursor.visible and cursor.row < screen.rows:
        col = min(cursor.col, screen.cols - 1)
        out.append(
            f'<rect class="cursor" x="{round(col * cw, 2)}" y="{round(cursor.row * ch, 2)}" '
            f'width="{cw}" height="{ch}" fill="{_css(theme.fg)}" fill-opacity="0.6"/>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- PNG -------------------------------------------------------------------------------------------

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
_fonts: dict[int, tuple[_Font, _Font, bool]] = {}


def load_fonts(size: int = FONT_SIZE) -> tuple[_Font, _Font, bool]:
    """(regular, bold, is_truetype_monospace) for PNG rendering; Pillow's own font if none is installed."""
    cached = _fonts.get(size)
    if cached is not None:
        return cached
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).is_file():
            reg = ImageFont.truetype(regular, size)
            bld = ImageFont.truetype(bold, size) if Path(bold).is_file() else reg
            _fonts[size] = (reg, bld, True)
            return _fonts[size]
    log.warning("replay.png_font_fallback", reason="no monospace TrueType font found; using Pillow's default")
    default = ImageFont.load_default(size)
    _fonts[size] = (default, default, False)
    return _fonts[size]


def render_png(screen: Screen, *, theme: Theme = DEFAULT_THEME, font_size: int = FONT_SIZE) -> bytes:
    """The screen as a PNG image: cell grid, colours, bold, underline, cursor."""
    regular, bold, _ = load_fonts(font_size)
    _, top, _, bottom = (int(v) for v in regular.getbbox("Mg"))
    cw = max(1, math.ceil(regular.getlength("M")))
    chh = max(1, math.ceil(font_size * 1.2), bottom - min(top, 0) + 2)
    width, height = screen.cols * cw, screen.rows * chh
    if width * height > MAX_PNG_PIXELS:
        raise RenderTooLarge(width * height, MAX_PNG_PIXELS)
    img = Image.new("RGB", (width, height), theme.bg)
    draw = ImageDraw.Draw(img)
    offset_y = (chh - (bottom - top)) // 2 - top
    for r, runs in enumerate(screen.styled_lines()):
        y = r * chh
        for run in runs:
            fg, bg = theme.colors(run.style)
            x0 = run.column * cw
            if bg != theme.bg:
                draw.rectangle((x0, y, x0 + run.width * cw - 1, y + chh - 1), fill=bg)
            font = bold if run.style.bold else regular
            offsets = run.offsets or range(len(run.text))
            for char, off in zip(run.text, offsets, strict=True):
                if char != " ":
                    draw.text((x0 + off * cw, y + offset_y), char, font=font, fill=fg)
            if run.style.underline:
                draw.line((x0, y + chh - 2, x0 + run.width * cw - 1, y + chh - 2), fill=fg)
            if run.style.strikethrough:
                draw.line((x0, y + chh // 2, x0 + run.width * cw - 1, y + chh // 2), fill=fg)
    cursor = screen.cursor
    if cursor.visible and cursor.row < screen.rows:
        col = min(cursor.col, screen.cols - 1)
        x0, y0 = col * cw, cursor.row * chh
        draw.rectangle((x0, y0, x0 + cw - 1, y0 + chh - 1), outline=theme.fg)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()

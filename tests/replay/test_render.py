"""Screens at a moment, drawn as text, SVG and PNG; snapshot seeking equals a full replay."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import avt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from recorder.cast.model import OUTPUT, RESIZE, Event, Header
from recorder.errors import RenderTooLarge
from recorder.replay import render as render_mod
from recorder.replay.render import (
    Snapshots,
    Theme,
    load_fonts,
    render_png,
    render_svg,
    render_txt,
    screen_at,
)
from recorder.replay.screen import Screen

from .conftest import Scripted

pytestmark = pytest.mark.timeout(60)


def test_render_txt_at_a_time_matches_the_emulator_fed_the_raw_stream(scripted: Scripted) -> None:
    rec = scripted.recording
    at = scripted.zebra_time
    screen = screen_at(rec.header, rec.events, at)
    vt = avt.Vt(rec.header.width, rec.header.height)
    vt.feed_str(rec.output_until(at))
    assert render_txt(screen) == "\n".join(line.text.rstrip() for line in vt.view()) + "\n"
    rows = render_txt(screen).splitlines()
    assert "zebra-unicorn" in rows
    assert any(r.endswith("echo zebra-unicorn") for r in rows)


def test_screen_at_before_a_word_was_printed_does_not_show_it(scripted: Scripted) -> None:
    rec = scripted.recording
    before = render_txt(screen_at(rec.header, rec.events, scripted.zebra_time - 0.001))
    assert "zebra-unicorn\n" not in before.replace("echo zebra-unicorn\n", "")


def test_svg_keeps_colour_for_red_text(scripted: Scripted) -> None:
    rec = scripted.recording
    svg = render_svg(screen_at(rec.header, rec.events, scripted.red_time))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    red = [t for t in root.iter(f"{ns}text") if t.text == "red"]
    assert red and red[0].get("fill") == "#cd0000"
    assert root.find(f".//{ns}rect[@class='cursor']") is not None


def _red_screen() -> Screen:
    screen = Screen(40, 5)
    screen.feed("plain \x1b[31mred\x1b[0m \x1b[1;48;5;21mblue bg\x1b[0m ")
    screen.feed("\x1b[38;2;0;200;0mrgb\x1b[0m \x1b[7minv\x1b[0m")
    return screen


def test_svg_renders_256_rgb_bold_and_inverse() -> None:
    svg = render_svg(_red_screen())
    ET.fromstring(svg)  # well-formed
    assert 'fill="#0000ff"' in svg  # 256-colour index 21 background
    assert 'fill="#00c800"' in svg  # RGB foreground
    assert 'font-weight="bold"' in svg
    texts = {t.text: t for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")}
    assert texts["inv"].get("fill") == "#121212"  # inverse: the default background as foreground
    assert texts["red"].get("x") == str(round(6 * 8.4, 2))  # column 6 on the monospace grid


def test_svg_escapes_markup_in_screen_text() -> None:
    screen = Screen(20, 2)
    screen.feed('<b>&"x"</b>')
    root = ET.fromstring(render_svg(screen))
    assert any(t.text == '<b>&"x"</b>' for t in root.iter("{http://www.w3.org/2000/svg}text"))


def test_png_decodes_with_the_grid_size_and_a_red_pixel(scripted: Scripted) -> None:
    rec = scripted.recording
    data = render_png(screen_at(rec.header, rec.events, scripted.red_time))
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    regular, _, _ = load_fonts()
    cw = int(-(-regular.getlength("M") // 1))
    assert img.width == rec.header.width * cw
    assert img.height % rec.header.height == 0
    raw = img.convert("RGB").tobytes()
    pixels = (raw[i : i + 3] for i in range(0, len(raw), 3))
    assert any(p[0] > 150 and p[1] < 60 and p[2] < 60 for p in pixels)


def test_png_over_the_pixel_limit_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_mod, "MAX_PNG_PIXELS", 1000)
    with pytest.raises(RenderTooLarge):
        render_png(_red_screen())


def test_theme_from_an_asciicast_header() -> None:
    theme = Theme.from_asciicast({"fg": "#ffffff", "bg": "#000000", "palette": ":".join(["#010203"] * 8)})
    assert theme.fg == (255, 255, 255) and theme.palette[9] == (1, 2, 3) and len(theme.palette) == 16
    assert Theme.from_asciicast({"fg": "nope"}) == Theme()
    assert theme.rgb(196, theme.fg) == (255, 0, 0) and theme.rgb(244, theme.fg) == (128, 128, 128)


def test_resizes_are_applied_when_seeking() -> None:
    header = Header(version=2, width=10, height=3)
    events = [Event(1.0, OUTPUT, "abc"), Event(2.0, RESIZE, "30x5"), Event(3.0, OUTPUT, "def")]
    assert (screen_at(header, events, 1.5).cols, screen_at(header, events, 2.5).cols) == (10, 30)
    assert screen_at(header, events, 2.5).rows == 5


# -- snapshot seeking -------------------------------------------------------------------------------

_PIECES = [
    "hello ",
    "wörld ",
    "漢字",
    "\r\n",
    "\n",
    "\r",
    "\b",
    "\t",
    "\x1b[31m",
    "\x1b[1;4;7m",
    "\x1b[38;5;120m",
    "\x1b[48;2;1;2;3m",
    "\x1b[0m",
    "\x1b[H",
    "\x1b[2;5H",
    "\x1b[2J",
    "\x1b[K",
    "\x1b[3A",
    "\x1b[?1049h",
    "\x1b[?1049l",
    "\x1b[2;4r",
    "\x1b[r",
    "\x1b7",
    "\x1b8",
    "\x1b(0qqq\x1b(B",
    "\x1b[4h",
    "\x1b[4l",
    "\x1b[?25l",
    "\x1b[?25h",
    "\x1b]0;title\x07",
    "\x1b]133;A\x07",
    "\x1b[?7l",
    "\x1b[?7h",
    "x" * 30,
]


@st.composite
def recordings(draw: st.DrawFn) -> tuple[Header, list[Event]]:
    text = "".join(draw(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=120)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=30))))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if b > a]
    events: list[Event] = []
    t = 0.0
    for chunk in chunks:
        t += draw(st.sampled_from([0.0, 0.1, 1.0]))
        events.append(Event(t, OUTPUT, chunk))
        if draw(st.integers(0, 9)) == 0:
            events.append(Event(t, RESIZE, f"{draw(st.integers(5, 30))}x{draw(st.integers(2, 8))}"))
    return Header(version=2, width=20, height=6), events


def _same(a: Screen, b: Screen) -> None:
    assert (a.cols, a.rows, a.alternate) == (b.cols, b.rows, b.alternate)
    assert a.cursor == b.cursor
    assert a.lines() == b.lines()
    assert a.styled_lines() == b.styled_lines()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=recordings(), ats=st.lists(st.floats(-1.0, 40.0), min_size=1, max_size=5))
def test_snapshot_seek_equals_full_replay(rec: tuple[Header, list[Event]], ats: list[float]) -> None:
    header, events = rec
    snaps = Snapshots(header, events, every_chars=8, every_seconds=0.5)
    for at in ats:
        _same(snaps.screen_at(at), screen_at(header, events, at))


def test_snapshots_are_taken_at_the_given_interval() -> None:
    header = Header(version=2, width=20, height=5)
    events = [Event(float(i), OUTPUT, f"line {i:03d}\r\n") for i in range(100)]  # 10 chars each
    assert len(Snapshots(header, events, every_chars=100)) == 10
    assert len(Snapshots(header, events, every_chars=10**9, every_seconds=10.0)) == 9
    with pytest.raises(ValueError):
        Snapshots(header, events, every_chars=0)


def test_no_snapshot_is_taken_inside_an_escape_sequence() -> None:
    header = Header(version=2, width=20, height=5)
    events = [Event(1.0, OUTPUT, "ab\x1b[3"), Event(2.0, OUTPUT, "1mred"), Event(3.0, OUTPUT, "\x1b]0;ti")]
    snaps = Snapshots(header, events, every_chars=1)
    assert len(snaps) == 1  # only after "1mred": the others end mid-sequence
    _same(snaps.screen_at(2.5), screen_at(header, events, 2.5))

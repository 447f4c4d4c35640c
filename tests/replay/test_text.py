"""Rendered output lines for search: once each, when finalised, with the time they last changed."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.cast.model import INPUT, OUTPUT, RESIZE, Event, Header
from recorder.replay import screen as screen_mod
from recorder.replay import text as text_mod
from recorder.replay.text import TextLine, output_lines

from .conftest import Scripted

pytestmark = pytest.mark.timeout(60)
HEADER = Header(version=2, width=20, height=4)


def _texts(lines: list[TextLine]) -> list[str]:
    return [ln.text for ln in lines]


def test_a_word_printed_mid_session_is_found_near_when_it_was_printed(scripted: Scripted) -> None:
    rec = scripted.recording
    lines = list(output_lines(rec.header, rec.events))
    hits = [ln for ln in lines if ln.text == "zebra-unicorn"]
    assert len(hits) == 1
    assert abs(hits[0].offset - scripted.zebra_time) < 0.05
    # The shell line that typed it is there too, timed at the last key typed before Enter.
    typed = [ln for ln in lines if ln.text.endswith("echo zebra-unicorn")]
    assert len(typed) == 1 and typed[0].offset <= hits[0].offset


def test_escape_sequences_are_interpreted_not_stripped(scripted: Scripted) -> None:
    rec = scripted.recording
    texts = _texts(list(output_lines(rec.header, rec.events)))
    assert "red" in texts  # printf '\e[31mred\e[0m\n' shows "red"
    assert all("\x1b" not in t for t in texts)
    # The backspaced typing shows its final state only.
    assert any(t.endswith("echo helo world") for t in texts)
    assert not any(t.endswith("echo helohelo") for t in texts)


def test_full_screen_program_lines_are_captured_once(scripted: Scripted) -> None:
    if not scripted.has_less:
        pytest.skip("/usr/bin/less is not installed")
    rec = scripted.recording
    texts = _texts(list(output_lines(rec.header, rec.events)))
    assert texts.count("alpha contents") == 1


def test_scrolled_lines_come_out_in_order_with_their_times() -> None:
    events = [Event(1.0, OUTPUT, "one\r\ntwo\r\n"), Event(2.0, OUTPUT, "three\r\nfour\r\nfive\r\nsix")]
    lines = list(output_lines(HEADER, events))
    assert _texts(lines) == ["one", "two", "three", "four", "five", "six"]
    assert [ln.offset for ln in lines] == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]


def test_a_row_rewritten_with_cr_gives_its_final_state_only() -> None:
    events = [Event(1.0, OUTPUT, "10%"), Event(2.0, OUTPUT, "\r50%"), Event(3.0, OUTPUT, "\r100%\r\ndone")]
    assert list(output_lines(HEADER, events)) == [TextLine(3.0, "100%"), TextLine(3.0, "done")]


def test_clearing_the_screen_finalises_its_lines_once() -> None:
    events = [
        Event(1.0, OUTPUT, "alpha\r\nbeta\r\n"),
        Event(2.0, OUTPUT, "\x1b[H\x1b[2J"),
        Event(3.0, OUTPUT, "\x1b[H\x1b[2J"),
        Event(4.0, OUTPUT, "gamma"),
    ]
    assert list(output_lines(HEADER, events)) == [
        TextLine(1.0, "alpha"),
        TextLine(1.0, "beta"),
        TextLine(4.0, "gamma"),
    ]


def test_wrapped_rows_are_one_line() -> None:
    events = [Event(1.0, OUTPUT, "a" * 25 + "b" * 10 + "\r\nnext\r\n\r\n\r\n\r\n")]
    texts = _texts(list(output_lines(HEADER, events)))
    assert texts[0] == "a" * 25 + "b" * 10
    assert texts[1] == "next"


def test_alternate_screen_redraws_do_not_flood() -> None:
    frames = [Event(1.0, OUTPUT, "$ top\r\n\x1b[?1049h")]
    for i in range(50):
        frames.append(Event(1.0 + i, OUTPUT, f"\x1b[H\x1b[2Jload {i % 2}\r\nstatic row"))
        frames.append(Event(1.5 + i, INPUT, " "))
    frames.append(Event(60.0, OUTPUT, "\x1b[?1049l$ "))
    texts = _texts(list(output_lines(HEADER, frames)))
    assert texts.count("static row") == 1
    assert texts.count("load 0") == 1 and texts.count("load 1") == 1
    assert texts[0] == "$ top" or "$ top" in texts


def test_alternate_screen_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_mod, "MAX_ALT_LINES", 2)
    frames = [Event(0.0, OUTPUT, "\x1b[?1049h")]
    for i, word in enumerate(["a", "b", "c", "a"]):
        frames.append(Event(float(i), OUTPUT, f"\x1b[H\x1b[2J{word}"))
    frames.append(Event(9.0, OUTPUT, "\x1b[?1049l"))
    # With room for two texts, "a" is forgotten when "c" arrives and emitted again.
    assert _texts(list(output_lines(HEADER, frames))) == ["a", "b", "c", "a"]


def test_lines_pushed_off_by_a_resize_are_kept() -> None:
    events = [Event(1.0, OUTPUT, "one\r\ntwo\r\nthree\r\nfour"), Event(2.0, RESIZE, "20x2")]
    assert _texts(list(output_lines(HEADER, events))) == ["one", "two", "three", "four"]


# The line tracker re-reads only rows that output may have touched (the cursor row and below,
# unless a cursor-moving escape came). Re-reading every row must give the same lines.
_PIECES = [
    "word ",
    "\r\n",
    "\r",
    "\b",
    "\x1b[K",
    "\x1b[31m",
    "\x1b[0m",
    "\x1b[H",
    "\x1b[2;3H",
    "\x1b[A",
    "\x1b[2J",
    "\x1b[J",
    "\x1b[?1049h",
    "\x1b[?1049l",
    "\x1bM",
    "\x1b7",
    "\x1b8",
    "y" * 23,
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from(_PIECES), min_size=1, max_size=80),
    cuts=st.lists(st.integers(0, 400), max_size=20),
)
def test_partial_row_rereads_match_full_rereads(pieces: list[str], cuts: list[int]) -> None:
    text = "".join(pieces)
    bounds = sorted({c for c in cuts if c < len(text)} | {0, len(text)})
    events = [
        Event(float(i), OUTPUT, text[a:b]) for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]
    fast = list(output_lines(HEADER, events))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(screen_mod, "_MAY_JUMP", re.compile(""))  # every feed may touch every row
        full = list(output_lines(HEADER, events))
    assert fast == full

"""The avt-backed screen: text, styles, cursor, wrapping, buffers, limits and snapshots."""

from __future__ import annotations

import pytest

from recorder.errors import ScreenSizeError
from recorder.replay.screen import MAX_COLS, MAX_ROWS, Cursor, Run, Screen, Style


def test_lines_and_cursor_follow_the_output() -> None:
    s = Screen(20, 4)
    s.feed("hello\r\nwor\x08\x08ORLD")
    assert s.lines() == ["hello", "wORLD", "", ""]
    assert s.cursor == Cursor(1, 5, True)


def test_styled_lines_carry_palette_and_rgb_colours_and_attributes() -> None:
    s = Screen(20, 2)
    s.feed("\x1b[31;1mR\x1b[0m\x1b[38;2;1;2;3;48;5;200;3;4;7mX\x1b[0m")
    runs = s.styled_lines()[0]
    assert runs[0] == Run(0, 1, "R", Style(fg=1, bold=True))
    assert runs[1] == Run(1, 1, "X", Style(fg=(1, 2, 3), bg=200, italic=True, underline=True, inverse=True))
    assert runs[2].style == Style() and runs[2].width == 18


def test_wide_characters_take_two_cells() -> None:
    s = Screen(10, 1)
    s.feed("a漢b")
    (run,) = s.styled_lines()[0]
    assert (run.text, run.offsets) == ("a漢b" + " " * 6, (0, 1, 3, 4, 5, 6, 7, 8, 9))


def test_cursor_line_text_joins_wrapped_rows() -> None:
    s = Screen(10, 4)
    s.feed("$ " + "x" * 15)
    assert s.cursor_line_text() == "$ " + "x" * 15
    assert s.text_before_cursor() == "$ " + "x" * 15
    s.feed("\x1b[3D")
    assert s.text_before_cursor() == "$ " + "x" * 12
    assert s.row_wrapped(0) and not s.row_wrapped(1)


def test_alternate_screen_is_tracked() -> None:
    s = Screen(10, 3)
    s.feed("shell")
    s.feed("\x1b[?1049h\x1b[Hfull")
    assert s.alternate and s.lines()[0] == "full"
    s.feed("\x1b[?1049l")
    assert not s.alternate and s.lines()[0] == "shell"


def test_text_between_reads_rows_that_scrolled_off() -> None:
    s = Screen(10, 2)
    s.feed("$ ab\r\nout1\r\nout2\r\nout3")
    assert s.scrolled == 2
    assert s.text_between(0, 2, 0, 10) == "ab"
    assert s.text_between(0, 0, 1, 10) == "$ ab\nout1"


def test_rows_beyond_the_history_limit_are_lost() -> None:
    s = Screen(10, 2, history=1)
    s.feed("a\r\nb\r\nc\r\nd")
    assert s.text_between(1, 0, 1, 10) == "b"
    assert s.text_between(0, 0, 0, 10) is None


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (MAX_COLS + 1, 10), (10, MAX_ROWS + 1)])
def test_sizes_outside_the_limits_raise(size: tuple[int, int]) -> None:
    with pytest.raises(ScreenSizeError):
        Screen(*size)
    s = Screen(10, 10)
    with pytest.raises(ScreenSizeError):
        s.resize(*size)


def test_state_rebuilds_an_identical_screen() -> None:
    s = Screen(12, 4)
    s.feed("one\r\ntwo\x1b[2;3r\x1b[31m\x1b[?1049hALT\x1b[4h")
    copy = Screen.from_state(s.state())
    assert (copy.lines(), copy.cursor, copy.alternate) == (s.lines(), s.cursor, s.alternate)
    for screen in (s, copy):
        screen.feed("zz\r\nmore\r\n\x1b[?1049l")
    assert copy.styled_lines() == s.styled_lines() and copy.cursor == s.cursor


def test_at_rest_is_false_inside_an_escape_sequence() -> None:
    s = Screen(10, 2)
    for text, rest in [("a", True), ("\x1b[3", False), ("1m", True), ("\x1b]0;t", False), ("\x07", True)]:
        s.feed(text)
        assert s.at_rest is rest, text

"""Typed input lines from a recording's input events: line editing applied, escapes dropped."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.cast.model import Event
from recorder.index.typed import TypedLine, TypedLines, typed_lines


def lines_of(*keys: tuple[float, str]) -> list[TypedLine]:
    return list(typed_lines(Event(t, "i", data) for t, data in keys))


def test_enter_ends_a_line_and_its_offset_is_the_first_key() -> None:
    assert lines_of((1.0, "ls"), (1.5, " -l"), (2.0, "\r"), (3.0, "pwd\r")) == [
        TypedLine(1.0, "ls -l"),
        TypedLine(3.0, "pwd"),
    ]


def test_cr_lf_ends_one_line_and_empty_lines_are_skipped() -> None:
    assert lines_of((0.0, "a\r\n\r\n\nb\n")) == [TypedLine(0.0, "a"), TypedLine(0.0, "b")]


def test_backspace_and_delete_remove_characters() -> None:
    assert lines_of((0.0, "echo zebra"), (1.0, "\x7f" * 5), (2.0, "quo\x08okka\r")) == [
        TypedLine(0.0, "echo quokka")
    ]


def test_erasing_everything_restarts_the_line_offset() -> None:
    assert lines_of((0.0, "oops"), (1.0, "\x7f" * 4), (5.0, "ls\r")) == [TypedLine(5.0, "ls")]


def test_ctrl_u_clears_and_ctrl_w_deletes_a_word() -> None:
    assert lines_of((0.0, "rm -rf /\x15ls -la /tmp  \x17\x17/var\r")) == [TypedLine(0.0, "ls /var")]


def test_ctrl_c_and_ctrl_d_end_an_abandoned_line_which_is_still_reported() -> None:
    assert lines_of((0.0, "rm -rf /\x03"), (1.0, "exit\x04")) == [
        TypedLine(0.0, "rm -rf /"),
        TypedLine(1.0, "exit"),
    ]


def test_arrow_keys_function_keys_and_alt_keys_are_dropped() -> None:
    keys = "\x1b[A\x1b[1;5Cls\x1bOP\x1bb -a\x1b[15~\r"
    assert lines_of((0.0, keys)) == [TypedLine(0.0, "ls -a")]


def test_escape_sequence_split_across_events_is_still_dropped() -> None:
    assert lines_of((0.0, "ab\x1b"), (0.1, "["), (0.2, "1;"), (0.3, "5Dcd\r")) == [TypedLine(0.0, "abcd")]


def test_bracketed_paste_keeps_the_pasted_text() -> None:
    assert lines_of((0.0, "\x1b[200~git status\x1b[201~\r")) == [TypedLine(0.0, "git status")]


def test_osc_strings_in_input_are_dropped() -> None:
    assert lines_of((0.0, "a\x1b]11;rgb:0000/0000/0000\x07b\x1b]0;t\x1b\\c\r")) == [TypedLine(0.0, "abc")]


def test_tab_reads_as_space_and_other_controls_are_dropped() -> None:
    assert lines_of((0.0, "cd\t/us\x01\x02r\x9b\r")) == [TypedLine(0.0, "cd /usr")]


def test_line_still_being_typed_at_the_end_is_reported() -> None:
    assert lines_of((0.0, "ls\r"), (4.0, "sudo reboot")) == [
        TypedLine(0.0, "ls"),
        TypedLine(4.0, "sudo reboot"),
    ]


def test_output_and_other_events_are_ignored() -> None:
    events = [Event(0.0, "o", "prompt$ "), Event(0.5, "m", "marker"), Event(1.0, "i", "id\r")]
    assert list(typed_lines(events)) == [TypedLine(1.0, "id")]


@settings(max_examples=300)
@given(st.lists(st.text(max_size=30), max_size=20))
def test_any_input_gives_lines_without_control_characters(chunks: list[str]) -> None:
    builder = TypedLines()
    out: list[TypedLine] = []
    for i, chunk in enumerate(chunks):
        builder.feed(float(i), chunk)
        out.extend(builder.take())
    builder.finish()
    out.extend(builder.take())
    for line in out:
        assert line.text.strip()
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line.text)
    assert [line.offset for line in out] == sorted(line.offset for line in out)

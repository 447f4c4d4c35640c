"""The incremental scanner for OSC 133 marks, alternate-screen switches, erases and resets."""

from __future__ import annotations

from recorder.replay.marks import MAX_MARK_LENGTH, Mark, MarkKind, MarkScanner


def test_marks_are_placed_before_their_own_sequence() -> None:
    parts = MarkScanner().scan("a\x1b]133;A\x07$ \x1b]133;B\x07")
    assert parts == [
        "a",
        Mark(MarkKind.PROMPT_START),
        "\x1b]133;A\x07$ ",
        Mark(MarkKind.COMMAND_START),
        "\x1b]133;B\x07",
    ]


def test_exit_status_is_read_from_d_with_bel_or_st() -> None:
    s = MarkScanner()
    assert Mark(MarkKind.COMMAND_FINISHED, 2) in s.scan("\x1b]133;D;2\x07")
    assert Mark(MarkKind.COMMAND_FINISHED, 130) in s.scan("\x1b]133;D;130;aid=1\x1b\\")
    assert Mark(MarkKind.COMMAND_FINISHED, None) in s.scan("\x1b]133;D\x07")


def test_a_mark_split_across_chunks_is_held_back_and_found() -> None:
    s = MarkScanner()
    assert s.scan("out\x1b]13") == ["out"]
    assert s.pending == "\x1b]13"
    assert s.scan("3;C") == []
    parts = s.scan("\x07more")
    assert parts == [Mark(MarkKind.COMMAND_EXECUTED), "\x1b]133;C\x07more"]
    assert s.pending == ""


def test_alt_screen_erase_and_reset_are_recognised() -> None:
    parts = MarkScanner().scan("\x1b[?1049h\x1b[?47l\x1b[?1;1047h\x1b[J\x1b[1J\x1b[2J\x1bc\x1b[?2004h")
    kinds = [p.kind for p in parts if isinstance(p, Mark)]
    assert kinds == [
        MarkKind.ALT_SCREEN_ON,
        MarkKind.ALT_SCREEN_OFF,
        MarkKind.ALT_SCREEN_ON,
        MarkKind.ERASE_BELOW,
        MarkKind.ERASE_ABOVE,
        MarkKind.ERASE_ALL,
        MarkKind.RESET,
    ]


def test_text_without_escapes_passes_through_whole() -> None:
    s = MarkScanner()
    assert s.scan("plain text\r\n") == ["plain text\r\n"]
    assert s.scan("") == []


def test_an_unterminated_mark_longer_than_the_limit_is_passed_through() -> None:
    s = MarkScanner()
    s.scan("\x1b]133;A" + "x" * 10)
    assert s.pending.startswith("\x1b]133;A")
    parts = s.scan("y" * (MAX_MARK_LENGTH + 10))
    assert s.pending == ""
    assert "".join(p for p in parts if isinstance(p, str)).startswith("\x1b]133;A")
    assert not any(isinstance(p, Mark) for p in parts)


def test_flush_returns_held_back_text() -> None:
    s = MarkScanner()
    s.scan("abc\x1b[")
    assert s.flush() == "\x1b["
    assert s.pending == ""

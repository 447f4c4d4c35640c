"""Command extraction from real bash sessions recorded in a PTY, with and without OSC 133 marks."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.cast.model import INPUT, OUTPUT, Event, Header
from recorder.replay import commands as commands_mod
from recorder.replay.commands import PREVIEW_CHARS, PREVIEW_LINES, Command, extract_commands, iter_commands

from .conftest import ALT_SCREEN, BashSession, Scripted, require

pytestmark = pytest.mark.timeout(60)


def _texts(cmds: list[Command]) -> list[str]:
    return [c.text for c in cmds]


def _by_text(cmds: list[Command], text: str) -> Command:
    matches = [c for c in cmds if c.text == text]
    assert matches, f"{text!r} not among {_texts(cmds)}"
    return matches[0]


def test_backspace_corrections_give_the_edited_command(scripted: Scripted) -> None:
    cmds = extract_commands(scripted.recording.header, scripted.recording.events)
    assert cmds[0].text == "echo helo world"
    assert cmds[0].output_preview == "helo world"


def test_up_arrow_recall_gives_the_recalled_command(scripted: Scripted) -> None:
    texts = _texts(extract_commands(scripted.recording.header, scripted.recording.events))
    assert texts[2:4] == ["false", "false"]


def test_tab_completion_gives_the_completed_command(scripted: Scripted) -> None:
    texts = _texts(extract_commands(scripted.recording.header, scripted.recording.events))
    assert "echo tabbed" in texts
    assert not any(t.startswith("ec\t") or t.startswith("ectabbed") for t in texts)


def test_every_typed_command_comes_out_in_order(scripted: Scripted) -> None:
    texts = _texts(extract_commands(scripted.recording.header, scripted.recording.events))
    expected = [
        "echo helo world",
        "ls /nonexistent",
        "false",
        "false",
        "echo tabbed",
        r"printf '\e[31mred\e[0m\n'",
        "echo zebra-unicorn",
        "seq 1 12",
    ]
    if scripted.has_less:
        expected.append("less alpha-file.txt")
    expected += ["echo done", "exit"]
    assert texts == expected


def test_exit_codes_come_from_marks_and_are_unknown_without(scripted: Scripted) -> None:
    cmds = extract_commands(scripted.recording.header, scripted.recording.events)
    codes = {c.text: c.exit_code for c in cmds}
    if scripted.marks:
        assert codes["ls /nonexistent"] == 2
        assert codes["false"] == 1
        assert codes["echo zebra-unicorn"] == 0
    else:
        assert set(codes.values()) == {None}


def test_keys_inside_a_full_screen_program_are_not_commands(scripted: Scripted) -> None:
    if not scripted.has_less:
        pytest.skip("/usr/bin/less is not installed")
    texts = _texts(extract_commands(scripted.recording.header, scripted.recording.events))
    # "/alpha" + Enter and "q" were typed inside less.
    assert not any("alpha" in t and not t.startswith("less") for t in texts)
    assert "q" not in texts


def test_offsets_are_when_enter_was_sent(scripted: Scripted) -> None:
    rec = scripted.recording
    enters = [ev.time for ev in rec.events if ev.code == INPUT and "\r" in ev.data]
    cmds = extract_commands(rec.header, rec.events)
    for cmd in cmds:
        assert cmd.offset in enters
        assert cmd.end_offset is None or cmd.end_offset >= cmd.offset
    zebra = _by_text(cmds, "echo zebra-unicorn")
    assert zebra.offset <= scripted.zebra_time


def test_output_preview_keeps_the_first_lines_only(scripted: Scripted) -> None:
    cmds = extract_commands(scripted.recording.header, scripted.recording.events)
    seq = _by_text(cmds, "seq 1 12")
    assert seq.output_preview.split("\n") == [str(i) for i in range(1, PREVIEW_LINES + 1)]
    assert "No such file or directory" in _by_text(cmds, "ls /nonexistent").output_preview


def test_iter_commands_streams_the_same_commands(scripted: Scripted) -> None:
    rec = scripted.recording
    assert list(iter_commands(rec.header, iter(rec.events))) == extract_commands(rec.header, rec.events)


@pytest.mark.parametrize("marks", [False, True], ids=["heuristic", "osc133"])
def test_commands_typed_ahead_in_one_input_event_are_both_found(
    bash_session: type[BashSession], tmp_path: Path, marks: bool
) -> None:
    s = bash_session(tmp_path, marks=marks)
    s.send("echo one\recho two\r")
    s.wait_prompt()
    s.pump(0.3)
    rec = s.close()
    cmds = extract_commands(rec.header, rec.events)
    assert _texts(cmds)[:2] == ["echo one", "echo two"]
    assert [c.output_preview for c in cmds[:2]] == ["one", "two"]


def test_output_without_final_newline_is_in_the_preview_with_marks(
    bash_session: type[BashSession], tmp_path: Path
) -> None:
    s = bash_session(tmp_path, marks=True)
    s.run("printf nonl")
    rec = s.close()
    assert _by_text(extract_commands(rec.header, rec.events), "printf nonl").output_preview == "nonl"


def test_vim_keystrokes_are_not_commands(bash_session: type[BashSession], tmp_path: Path) -> None:
    require("vim")
    s = bash_session(tmp_path, marks=False)
    s.type("vim -u NONE -N notes.txt")
    s.send("\r")
    s.wait_output(ALT_SCREEN)  # vim is up: the keys below are its, not the shell's
    s.pump(0.2)
    for key in ("i", "ls -la", "\r", "rm x", "\x1b", ":wq", "\r"):
        s.send(key)
        s.pump(0.15)
    s.wait_prompt()
    s.run("echo after")
    rec = s.close()
    texts = _texts(extract_commands(rec.header, rec.events))
    assert texts[:2] == ["vim -u NONE -N notes.txt", "echo after"]
    assert "ls -la" not in texts and ":wq" not in texts


def test_a_long_command_wrapping_over_rows_is_one_command(
    bash_session: type[BashSession], tmp_path: Path
) -> None:
    s = bash_session(tmp_path, marks=True, cols=30)
    line = "echo " + "abcdefghij" * 6
    s.run(line)
    rec = s.close()
    cmd = _by_text(extract_commands(rec.header, rec.events), line)
    assert cmd.output_preview == "abcdefghij" * 6


def test_preview_is_cut_at_the_character_limit() -> None:
    header = Header(version=2, width=200, height=10)
    long = "x" * 180
    events = [
        Event(0.0, OUTPUT, "$ "),
        Event(1.0, INPUT, "cat big\r"),
        Event(1.1, OUTPUT, "cat big\r\n" + (long + "\r\n") * 4 + "$ "),
    ]
    (cmd,) = extract_commands(header, events)
    assert cmd.text == "cat big"
    assert len(cmd.output_preview) == PREVIEW_CHARS
    assert cmd.output_preview.startswith(long + "\n" + long)


def test_heuristic_ignores_enter_at_a_prompt_that_is_not_a_shell_prompt() -> None:
    header = Header(version=2, width=80, height=10)
    events = [
        Event(0.0, OUTPUT, "$ "),
        Event(1.0, INPUT, "./install\r"),
        Event(1.1, OUTPUT, "./install\r\nContinue? [y/N] "),
        Event(2.0, INPUT, "y\r"),
        Event(2.1, OUTPUT, "y\r\ninstalled\r\n$ "),
    ]
    cmds = extract_commands(header, events)
    assert _texts(cmds) == ["./install"]
    assert cmds[0].output_preview == "Continue? [y/N] y\ninstalled"


def test_typed_ahead_echo_waits_a_bounded_number_of_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands_mod, "ECHO_WAIT_LINES", 3)
    header = Header(version=2, width=80, height=30)
    events = [
        Event(0.0, OUTPUT, "$ "),
        Event(1.0, INPUT, "seq 10\recho late\r"),
        Event(
            1.1,
            OUTPUT,
            "seq 10\r\n" + "".join(f"{i}\r\n" for i in range(1, 11)) + "$ echo late\r\nlate\r\n$ ",
        ),
    ]
    # The second Enter's echo comes 10 lines later, past the 3-line wait: it is dropped.
    assert _texts(extract_commands(header, events)) == ["seq 10"]
    monkeypatch.setattr(commands_mod, "ECHO_WAIT_LINES", 50)
    assert _texts(extract_commands(header, events)) == ["seq 10", "echo late"]


def test_marks_split_across_events_are_still_seen() -> None:
    header = Header(version=2, width=80, height=10)
    events = [
        Event(0.0, OUTPUT, "\x1b]133;A\x07$ \x1b]13"),
        Event(0.1, OUTPUT, "3;B\x07"),
        Event(1.0, INPUT, "false\r"),
        Event(1.1, OUTPUT, "false\r\n\x1b]133;C\x07"),
        Event(1.2, OUTPUT, "\x1b]133;D;"),
        Event(1.3, OUTPUT, "1\x1b\\\x1b]133;A\x07$ \x1b]133;B\x07"),
    ]
    (cmd,) = extract_commands(header, events)
    assert (cmd.text, cmd.exit_code, cmd.offset, cmd.end_offset) == ("false", 1, 1.0, 1.3)

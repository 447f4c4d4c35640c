"""Transcripts: commands with offsets, their output indented, shell lines left out."""

from __future__ import annotations

import re

import pytest

from recorder.cast.model import INPUT, OUTPUT, Event, Header
from recorder.replay.commands import extract_commands
from recorder.replay.transcript import INDENT, format_offset, transcript

from .conftest import Scripted

pytestmark = pytest.mark.timeout(60)


def test_transcript_lists_commands_with_offsets_and_output(scripted: Scripted) -> None:
    rec = scripted.recording
    lines = list(transcript(rec.header, rec.events))
    cmds = extract_commands(rec.header, rec.events)
    headers = [ln for ln in lines if ln.startswith("[")]
    assert len(headers) == len(cmds)
    for line, cmd in zip(headers, cmds, strict=True):
        assert re.match(r"\[\d\d:\d\d\] \$ ", line)
        assert line.startswith(f"[{format_offset(cmd.offset)}] $ {cmd.text}")
    i = lines.index(next(ln for ln in headers if ln.endswith("$ seq 1 12")))
    assert lines[i + 1 : i + 13] == [INDENT + str(n) for n in range(1, 13)]
    j = lines.index(next(ln for ln in headers if ln.endswith("$ echo zebra-unicorn")))
    assert lines[j + 1] == INDENT + "zebra-unicorn"
    # The prompt + command lines are not repeated as output.
    assert not any(ln.startswith(INDENT) and ln.endswith("echo zebra-unicorn") for ln in lines)
    if scripted.marks:
        assert any(ln.endswith("$ ls /nonexistent  [exit 2]") for ln in headers)


def test_transcript_without_commands_gives_lines_with_offsets() -> None:
    header = Header(version=2, width=20, height=3)
    events = [Event(5.0, OUTPUT, "boot\r\n"), Event(65.0, OUTPUT, "ready\r\n"), Event(3700.0, OUTPUT, "late")]
    assert list(transcript(header, events)) == ["[00:05] boot", "[01:05] ready", "[1:01:40] late"]


def test_format_offset() -> None:
    assert [format_offset(s) for s in (0, 12.9, 61, 3599, 3600)] == [
        "00:00",
        "00:12",
        "01:01",
        "59:59",
        "1:00:00",
    ]


def test_blank_output_lines_stay_in_place_and_shell_lines_are_left_out() -> None:
    header = Header(version=2, width=20, height=3)
    events = [
        Event(0.0, OUTPUT, "$ "),
        Event(61.0, INPUT, "cmd\r"),
        Event(61.5, OUTPUT, "cmd\r\na\r\n\r\nb\r\n$ "),
    ]
    assert list(transcript(header, events)) == ["[01:01] $ cmd", INDENT + "a", INDENT, INDENT + "b"]

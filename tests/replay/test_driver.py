"""The replay driver holds plain output back and feeds it when something needs the screen.

Each test compares against the same pass with nothing held (``hold_chars=0``, every event fed
as it comes): holding must change how often the emulator is fed, never what comes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from recorder.cast.model import INPUT, OUTPUT, Event, Header
from recorder.cast.reader import open_cast
from recorder.replay import driver
from recorder.replay.commands import Command, CommandTracker
from recorder.replay.screen import Screen
from recorder.replay.text import LineTracker, TextLine

from .conftest import BashSession, Scripted

pytestmark = pytest.mark.timeout(120)


class CountingScreen(Screen):
    """A real screen that also keeps the size of every piece of text fed to it."""

    def __init__(self, cols: int, rows: int) -> None:
        super().__init__(cols, rows, collect_scrolled=True)
        self.pieces: list[int] = []

    def feed_piece(self, text: str) -> None:
        self.pieces.append(len(text))
        super().feed_piece(text)


def _extract(
    header: Header, events: Sequence[Event], hold_chars: int
) -> tuple[list[Command], list[TextLine], CountingScreen]:
    screen = CountingScreen(header.width or 80, header.height or 24)
    commands, lines = CommandTracker(), LineTracker(screen)
    for _ in driver.run(screen, events, [commands, lines], hold_chars=hold_chars):
        pass
    return commands.take(), lines.take(), screen


def _same_either_way(header: Header, events: Sequence[Event]) -> tuple[int, int]:
    """Assert held and unheld passes agree; returns how many pieces each fed."""
    exact = _extract(header, events, 0)
    held = _extract(header, events, driver.HOLD_CHARS)
    assert held[0] == exact[0]
    assert held[1] == exact[1]
    assert held[2].lines() == exact[2].lines()
    return len(exact[2].pieces), len(held[2].pieces)


def test_a_real_shell_session_extracts_the_same_with_fewer_feeds(scripted: Scripted) -> None:
    # Editing, history, completion, less (keys in the alternate screen), with and without marks.
    rec = scripted.recording
    exact, held = _same_either_way(rec.header, rec.events)
    assert held < exact


def test_a_command_typed_over_several_rows_extracts_the_same(
    bash_session: type[BashSession], tmp_path: Path
) -> None:
    for marks in (False, True):
        s = bash_session(tmp_path, marks=marks, cols=30)
        s.run("echo " + "abcdefghij" * 6)
        s.run("true")
        rec = s.close()
        _same_either_way(rec.header, rec.events)


def test_every_corpus_recording_extracts_the_same(corpus: Path) -> None:
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".cast", ".json"))
    assert files
    for path in files:
        with open_cast(path) as reader:
            header, events = reader.header, list(reader.events())
        _same_either_way(header, events)


def test_the_prompt_is_read_after_held_output_without_marks() -> None:
    # The first key at a prompt reads the prompt off the screen: the held "$ " must be on it.
    header = Header(version=2, width=40, height=5)
    events = [
        Event(0.0, OUTPUT, "$ "),
        Event(1.0, INPUT, "l"),
        Event(1.1, OUTPUT, "l"),
        Event(1.2, INPUT, "s"),
        Event(1.3, OUTPUT, "s"),
        Event(2.0, INPUT, "\r"),
        Event(2.1, OUTPUT, "\r\nfile\r\n$ "),
    ]
    commands, _, screen = _extract(header, events, driver.HOLD_CHARS)
    assert [(c.offset, c.text, c.output_preview) for c in commands] == [(2.0, "ls", "file")]
    assert screen.pieces[0] == len("$ ")  # fed alone, at the first key


def test_keys_in_a_full_screen_program_sample_the_held_output() -> None:
    # In the alternate screen each key samples what was shown: "hello", later overwritten by
    # "world" (plain text after a CR), must be sampled at the key, before the overwrite.
    header = Header(version=2, width=40, height=5)
    events = [
        Event(0.0, OUTPUT, "\x1b[?1049h"),
        Event(0.5, OUTPUT, "hello"),
        Event(1.0, INPUT, "q"),
        Event(1.5, OUTPUT, "\rworld"),
        Event(2.0, OUTPUT, "\x1b[?1049l"),
    ]
    _, lines, _ = _extract(header, events, driver.HOLD_CHARS)
    assert [(line.offset, line.text) for line in lines] == [(0.5, "hello"), (1.5, "world")]


def test_plain_output_is_held_up_to_the_bound() -> None:
    # One long line without LF in 1,000-character events: fed in pieces of at most the bound.
    header = Header(version=2, width=80, height=24)
    events = [Event(n * 0.01, OUTPUT, "x" * 1000) for n in range(100)]
    hold = 8_000
    exact = _extract(header, events, 0)
    held = _extract(header, events, hold)
    assert held[1] == exact[1]
    assert held[2].lines() == exact[2].lines()
    assert max(held[2].pieces) == hold
    assert held[2].pieces == [hold] * 12 + [4_000]
